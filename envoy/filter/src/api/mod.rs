//! The LLM APIs the filter understands, one module each. A module owns everything about its
//! API: which paths are its, where the texts are in a request and in an answer, where the
//! explicit label goes, its error and refusal bodies, and what its stream events mean and how a
//! stream is cut. Adding an API is one new file and one line in [`KNOWN`].

use aigc_edge::label::LabelPosition;
use aigc_edge::ExplicitLabel;
use serde_json::{json, Value};

use crate::config::Roles;
use crate::sse::{write_json_event, Event, Key, Lanes};

mod anthropic;
mod chat;
mod images;
mod raw;
mod responses;

/// What one API is, for the filter. Streams and images have defaults for APIs without them.
pub trait Shape: Sync + core::fmt::Debug {
    /// A short name, for logs.
    fn name(&self) -> &'static str;

    /// True when a request path (query string and trailing `/` removed) is this API's.
    fn matches(&self, path: &str) -> bool;

    /// True for [`raw::Raw`], the fallback for paths no API claims.
    fn is_raw(&self) -> bool {
        false
    }

    /// Calls `f` on every prompt text of a request body.
    fn request_texts(&self, body: &mut Value, roles: Roles, f: &mut dyn FnMut(&mut String));

    /// Calls `f` on every generated text of a (non-streamed) answer.
    fn response_texts(&self, body: &mut Value, f: &mut dyn FnMut(&mut String));

    /// Puts the explicit label into the answer's generated text.
    fn label_response(&self, _body: &mut Value, _label: &ExplicitLabel) {}

    /// Calls `f` on every generated file of an answer, base64-encoded, to label it.
    fn generated_files(&self, _body: &mut Value, _f: &mut dyn FnMut(&mut String)) {}

    /// The error body for a refused request (`param` `"prompt"`) or answer.
    fn error_body(&self, message: &str, param: &str) -> String {
        json!({"error": {"message": message, "type": "content_filter", "code": "content_filter", "param": param}})
            .to_string()
    }

    /// The body of a blocked answer whose status already left: no text, the API's
    /// content-filter stop reason, and the error object.
    fn blocked_body(&self, message: &str) -> Value {
        json!({"error": openai_blocked_error(message)})
    }

    /// True when the API's stream events repeat the whole text (each lane keeps what it emitted).
    fn repeats_text(&self) -> bool {
        false
    }

    /// Rewrites a common event without parsing it into a `Value`; false leaves it to
    /// [`Shape::stream_event`].
    fn stream_fast(&self, _lanes: &mut Lanes, _event: &Event<'_>, _data: &str, _out: &mut Vec<u8>) -> bool {
        false
    }

    /// Rewrites one parsed event: its texts through the lanes, the rest as it was.
    fn stream_event(&self, _lanes: &mut Lanes, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
        write_json_event(out, event.name, value, event.newline);
    }

    /// The events that end a blocked stream the way the API's clients understand.
    fn stream_block(&self, lanes: &mut Lanes, _out: &mut Vec<u8>, _newline: &str) {
        lanes.finished = true;
    }

    /// At the end of the stream: the lanes' held-back texts as events of the API's kind.
    fn stream_flush(&self, _lanes: &mut Lanes, _pieces: Vec<(Key, String)>, _out: &mut Vec<u8>) {}
}

/// Every API the filter knows, in path-matching order.
const KNOWN: [&dyn Shape; 4] = [&chat::Chat, &responses::Responses, &anthropic::Anthropic, &images::Images];

/// The API of one request.
#[derive(Clone, Copy, Debug)]
pub struct Api(&'static dyn Shape);

impl Api {
    /// The API for a request path (query string ignored); [`raw::Raw`] when none claims it.
    pub fn from_path(path: &str) -> Api {
        let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
        Api(KNOWN.into_iter().find(|api| api.matches(path)).unwrap_or(&raw::Raw))
    }
}

impl core::ops::Deref for Api {
    type Target = dyn Shape;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Api {
    fn eq(&self, other: &Api) -> bool {
        self.name() == other.name()
    }
}

/// Labels the first text of an answer (the last, for a label at the end).
fn label_first_or_last(mut texts: Vec<&mut String>, label: &ExplicitLabel) {
    let target = match label.position() {
        LabelPosition::End => texts.pop(),
        LabelPosition::Start => texts.into_iter().next(),
    };
    if let Some(s) = target {
        *s = label.apply(s);
    }
}

/// The `text` strings of an array of parts.
fn part_texts(parts: &mut [Value]) -> impl Iterator<Item = &mut String> {
    parts.iter_mut().filter_map(|p| match p.get_mut("text") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

/// The OpenAI error object of a blocked answer.
fn openai_blocked_error(message: &str) -> Value {
    json!({"message": message, "type": "content_filter", "code": "content_filter", "param": "response"})
}

/// Calls `f` on a content value: a string, or the text parts of an array of parts.
fn visit_parts(content: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match content {
        Value::String(s) => f(s),
        Value::Array(parts) => {
            for part in parts {
                let is_text = matches!(
                    part.get("type").and_then(Value::as_str),
                    Some("text" | "input_text" | "output_text") | None
                );
                if let (true, Some(Value::String(s))) = (is_text, part.get_mut("text")) {
                    f(s);
                }
            }
        }
        _ => {}
    }
}

/// True when a message's role is inspected under `roles`.
fn role_checked(message: &Value, roles: Roles) -> bool {
    roles == Roles::All || message.get("role").and_then(Value::as_str).is_none_or(|r| r == "user")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_request(path: &str, json: &str, roles: Roles) -> Vec<String> {
        let mut v: Value = serde_json::from_str(json).unwrap();
        let mut out = Vec::new();
        Api::from_path(path).request_texts(&mut v, roles, &mut |s| out.push(s.clone()));
        out
    }

    #[test]
    fn request_texts_by_api() {
        let chat = r#"{"messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"},
            {"role":"user","content":[{"type":"text","text":"part"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(collect_request("/v1/chat/completions", chat, Roles::All), ["sys", "hi", "part"]);
        assert_eq!(collect_request("/v1/chat/completions", chat, Roles::User), ["hi", "part"]);
        let responses =
            r#"{"instructions":"be nice","input":[{"role":"user","content":[{"type":"input_text","text":"q"}]}]}"#;
        assert_eq!(collect_request("/v1/responses", responses, Roles::All), ["be nice", "q"]);
        assert_eq!(collect_request("/v1/responses", r#"{"input":"plain"}"#, Roles::User), ["plain"]);
        let anthropic = r#"{"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b"}]}"#;
        assert_eq!(collect_request("/v1/messages", anthropic, Roles::All), ["s", "a", "b"]);
        assert_eq!(collect_request("/v1/messages", anthropic, Roles::User), ["a"]);
    }

    #[test]
    fn paths() {
        let cases = [
            ("/v1/chat/completions", "chat"),
            ("/openai/v1/chat/completions?x=1", "chat"),
            ("/v1/responses", "responses"),
            ("/v1/messages", "anthropic"),
            ("/v1/images/generations", "images"),
            ("/v1/embeddings", "raw"),
        ];
        for (path, api) in cases {
            assert_eq!(Api::from_path(path).name(), api, "{path}");
        }
    }

    #[test]
    fn labels_land_in_the_assistant_text() {
        let label = |position| ExplicitLabel::new("AI生成", position).unwrap();
        let mut chat: Value =
            serde_json::from_str(r#"{"choices":[{"message":{"role":"assistant","content":"答"}}]}"#).unwrap();
        Api::from_path("/v1/chat/completions").label_response(&mut chat, &label(LabelPosition::Start));
        assert_eq!(chat.pointer("/choices/0/message/content").unwrap(), "AI生成\n\n答");
        let mut a: Value =
            serde_json::from_str(r#"{"content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}"#).unwrap();
        Api::from_path("/v1/messages").label_response(&mut a, &label(LabelPosition::End));
        assert_eq!(a.pointer("/content/1/text").unwrap(), "y\n\nAI生成");
    }
}
