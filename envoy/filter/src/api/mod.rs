//! The LLM APIs the filter understands, one module each. A module owns everything about its
//! API: which paths are its, where the explicit label goes and which strings are generated
//! files, its error and refusal bodies, and what its stream events mean and how a stream is
//! cut. What is *inspected* is not per API: every string of every body is (deny by default,
//! `inspect.rs`), so the next field of the next API version is covered before anyone writes
//! code for it. Adding an API is one new file and one line in [`KNOWN`].

use core::ops::Range;

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use crate::json::{quote, Doc, Node};
use crate::sse::{Event, Key, Lanes};

mod anthropic;
mod chat;
mod completions;
mod images;
mod ollama;
mod raw;
mod responses;
pub mod speech;

/// An edit of a JSON text: a byte range and its replacement.
pub type Edit = (Range<usize>, String);

/// What one API is, for the filter. Streams and files have defaults for APIs without them.
pub trait Shape: Sync + core::fmt::Debug {
    /// A short name, for logs.
    fn name(&self) -> &'static str;

    /// True when a normalized request path ([`normalize_path`]) is this API's.
    fn matches(&self, path: &str) -> bool;

    /// True when a request body (to a path no API claims) has this API's shape.
    fn matches_body(&self, _doc: &Doc) -> bool {
        false
    }

    /// True for [`raw::Raw`], the fallback for paths no API claims.
    fn is_raw(&self) -> bool {
        false
    }

    /// The strings of a 2xx answer the explicit label goes into.
    fn label_targets(&self, _doc: &Doc, _position: LabelPosition) -> Vec<usize> {
        Vec::new()
    }

    /// The strings of an answer that are generated files, base64-encoded, to label.
    fn generated_files(&self, _doc: &Doc) -> Vec<usize> {
        Vec::new()
    }

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

    /// Rewrites a common event without building its tree; false leaves it to
    /// [`Shape::stream_event`] (which reads everything the fast path declines).
    fn stream_fast(&self, _lanes: &mut Lanes, _event: &Event<'_>, _data: &str, _out: &mut Vec<u8>) -> bool {
        false
    }

    /// Rewrites one event: its deltas through the lanes, every other string checked whole.
    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        write_rest(lanes, event, doc, &[], Vec::new(), out);
    }

    /// The events that end a blocked stream the way the API's clients understand.
    fn stream_block(&self, _lanes: &mut Lanes, _out: &mut Vec<u8>, _newline: &str) {}

    /// At the end of the stream: the lanes' held-back texts as events of the API's kind.
    fn stream_flush(&self, _lanes: &mut Lanes, _pieces: Vec<(Key, String)>, _out: &mut Vec<u8>) {}
}

/// Every API the filter knows, in path-matching order.
const KNOWN: [&dyn Shape; 8] = [
    &chat::Chat,
    &completions::Completions,
    &responses::Responses,
    &anthropic::Anthropic,
    &images::Images,
    &speech::Speech,
    &ollama::OllamaChat,
    &ollama::OllamaGenerate,
];

/// The API of one request.
#[derive(Clone, Copy, Debug)]
pub struct Api(&'static dyn Shape);

impl Api {
    /// The API for a request path, normalized first ([`normalize_path`]); [`raw::Raw`] when
    /// none claims it.
    pub fn from_path(path: &str) -> Api {
        let path = normalize_path(path);
        Api(KNOWN.into_iter().find(|api| api.matches(&path)).unwrap_or(&raw::Raw))
    }

    /// For a path no API claims, the API whose request shape the body has, if any.
    pub fn from_body(doc: &Doc) -> Option<Api> {
        KNOWN.into_iter().find(|api| api.matches_body(doc)).map(Api)
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

/// A request path as upstream frameworks route it: query and fragment dropped,
/// percent-decoded once, lower case, `\` read as `/`, `;params` dropped from each segment,
/// empty and `.` segments dropped and `..` resolved; no trailing `/`.
pub fn normalize_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                decoded.push(v);
                i += 3;
            }
            (b, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).to_lowercase().replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/"))
}

/// Writes `event` with `edits` and the masks of every string not `handled` (checked whole);
/// byte for byte the same when nothing changes.
pub fn write_rest(
    lanes: &mut Lanes,
    event: &Event<'_>,
    doc: &Doc,
    handled: &[usize],
    mut edits: Vec<Edit>,
    out: &mut Vec<u8>,
) {
    edits.extend(lanes.inspect_rest(doc, handled));
    if edits.is_empty() {
        out.extend_from_slice(event.raw);
    } else {
        event.write(out, &doc.rewrite_text(&mut edits));
    }
}

/// The edit that sets a string to `text`, when it differs.
pub fn set_string(doc: &Doc, index: usize, text: &str) -> Option<Edit> {
    let s = doc.strings.get(index)?;
    (doc.str(index) != text).then(|| (s.range.clone(), quote(text)))
}

/// The string index of `node`, when it is a string.
pub fn string_of(node: Option<&Node>) -> Option<usize> {
    match node {
        Some(Node::Str(i)) => Some(*i),
        _ => None,
    }
}

/// The text strings (`"text"` members) of an array of parts.
fn part_texts(doc: &Doc, parts: Option<&Node>) -> Vec<usize> {
    parts.map_or(&[][..], Node::items).iter().filter_map(|p| string_of(p.get(doc, "text"))).collect()
}

/// The first of `texts` (the last, for a label at the end).
fn first_or_last(mut texts: Vec<usize>, position: LabelPosition) -> Vec<usize> {
    let one = match position {
        LabelPosition::End => texts.pop(),
        LabelPosition::Start => texts.into_iter().next(),
    };
    one.into_iter().collect()
}

/// The OpenAI error object of a blocked answer.
fn openai_blocked_error(message: &str) -> Value {
    json!({"message": message, "type": "content_filter", "code": "content_filter", "param": "response"})
}

/// The index of a choice or block: its `index` member, or its position.
fn index_of(doc: &Doc, node: &Node, position: usize) -> u64 {
    node.get(doc, "index").and_then(|n| n.as_u64(doc)).unwrap_or(position as u64)
}

#[cfg(test)]
mod tests {
    use aigc_edge::ExplicitLabel;

    use super::*;

    #[test]
    fn paths_are_normalized_before_matching() {
        let cases = [
            ("/v1/chat/completions", "chat"),
            ("/openai/v1/chat/completions?x=1", "chat"),
            ("/V1/Chat/Completions", "chat"),
            ("/v1/chat%2Fcompletions", "chat"),
            ("/v1/chat/%63ompletions", "chat"),
            ("/v1/chat/completions;x=1", "chat"),
            ("/v1/./chat/../chat/completions/", "chat"),
            ("//v1//chat//completions", "chat"),
            ("/v1\\chat\\completions", "chat"),
            ("/v1/completions", "completions"),
            ("/v1/responses", "responses"),
            ("/v1/messages", "anthropic"),
            ("/v1/images/generations", "images"),
            ("/api/chat", "ollama-chat"),
            ("/api/generate", "ollama-generate"),
            ("/v1/embeddings", "raw"),
        ];
        for (path, api) in cases {
            assert_eq!(Api::from_path(path).name(), api, "{path}");
        }
        assert_eq!(normalize_path("/a/../../b/%2e%2e/c"), "/c");
    }

    #[test]
    fn labels_land_in_the_assistant_text() {
        let label = |position| ExplicitLabel::new("AI生成", position).unwrap();
        let cases = [
            (
                "/v1/chat/completions",
                r#"{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]}"#,
                LabelPosition::Start,
                vec!["a", "b"],
            ),
            (
                "/v1/messages",
                r#"{"content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}"#,
                LabelPosition::End,
                vec!["y"],
            ),
            (
                "/v1/responses",
                r#"{"output":[{"content":[{"text":"p"},{"text":"q"}]}]}"#,
                LabelPosition::Start,
                vec!["p"],
            ),
            ("/v1/completions", r#"{"choices":[{"text":"t"}]}"#, LabelPosition::Start, vec!["t"]),
            ("/api/chat", r#"{"message":{"content":"o"}}"#, LabelPosition::Start, vec!["o"]),
            ("/api/generate", r#"{"response":"g"}"#, LabelPosition::Start, vec!["g"]),
        ];
        for (path, body, position, want) in cases {
            let doc = Doc::parse_str(body).unwrap();
            let got: Vec<&str> = Api::from_path(path)
                .label_targets(&doc, label(position).position())
                .iter()
                .map(|&i| doc.str(i))
                .collect();
            assert_eq!(got, want, "{path}");
        }
    }
}
