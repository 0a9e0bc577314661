//! Where the text is in the JSON bodies of the APIs the filter understands.

use serde_json::Value;

use crate::config::{LabelPosition, Roles};

/// The API of a request, from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI-compatible `POST /v1/chat/completions`.
    Chat,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// Anthropic `POST /v1/messages`.
    Anthropic,
    /// OpenAI `POST /v1/images/generations` (and `edits`): the prompt is checked, generated
    /// images get the implicit label.
    Images,
    /// Any other path, the body checked as plain text (when `inspect.raw` is on).
    Raw,
}

impl Api {
    /// The API for a request path (query string ignored).
    pub fn from_path(path: &str) -> Api {
        let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Api::Chat
        } else if path.ends_with("/responses") {
            Api::Responses
        } else if path.ends_with("/messages") {
            Api::Anthropic
        } else if path.ends_with("/images/generations") || path.ends_with("/images/edits") {
            Api::Images
        } else {
            Api::Raw
        }
    }

    /// The error body for a blocked prompt (`param: "prompt"`) or response.
    pub fn error_body(self, message: &str, param: &str) -> String {
        let v = match self {
            Api::Anthropic => serde_json::json!({
                "type": "error",
                "error": {"type": "content_filter", "message": message}
            }),
            _ => serde_json::json!({
                "error": {"message": message, "type": "content_filter", "code": "content_filter", "param": param}
            }),
        };
        v.to_string()
    }
}

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

fn role_checked(message: &Value, roles: Roles) -> bool {
    roles == Roles::All || message.get("role").and_then(Value::as_str).is_none_or(|r| r == "user")
}

/// Calls `f` on every prompt text of a request body.
pub fn visit_request(api: Api, body: &mut Value, roles: Roles, f: &mut dyn FnMut(&mut String)) {
    match api {
        Api::Chat => {
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                for m in messages.iter_mut().filter(|m| role_checked(m, roles)) {
                    if let Some(c) = m.get_mut("content") {
                        visit_parts(c, f);
                    }
                }
            }
        }
        Api::Responses => {
            if roles == Roles::All {
                if let Some(Value::String(s)) = body.get_mut("instructions") {
                    f(s);
                }
            }
            match body.get_mut("input") {
                Some(Value::String(s)) => f(s),
                Some(Value::Array(items)) => {
                    for item in items.iter_mut().filter(|m| role_checked(m, roles)) {
                        if let Some(c) = item.get_mut("content") {
                            visit_parts(c, f);
                        }
                    }
                }
                _ => {}
            }
        }
        Api::Anthropic => {
            if roles == Roles::All {
                if let Some(system) = body.get_mut("system") {
                    visit_parts(system, f);
                }
            }
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                for m in messages.iter_mut().filter(|m| role_checked(m, roles)) {
                    if let Some(c) = m.get_mut("content") {
                        visit_parts(c, f);
                    }
                }
            }
        }
        Api::Images => {
            if let Some(Value::String(s)) = body.get_mut("prompt") {
                f(s);
            }
        }
        Api::Raw => {}
    }
}

/// Calls `f` on every generated text of a (non-streamed) response body.
pub fn visit_response(api: Api, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match api {
        Api::Chat => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for choice in choices {
                    if let Some(message) = choice.get_mut("message") {
                        for field in ["content", "reasoning_content"] {
                            if let Some(Value::String(s)) = message.get_mut(field) {
                                f(s);
                            }
                        }
                        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                            for call in calls {
                                if let Some(Value::String(s)) = call.pointer_mut("/function/arguments") {
                                    f(s);
                                }
                            }
                        }
                    }
                }
            }
        }
        Api::Responses => {
            if let Some(Value::Array(output)) = body.get_mut("output") {
                for item in output {
                    if let Some(c) = item.get_mut("content") {
                        visit_parts(c, f);
                    }
                }
            }
            if let Some(Value::String(s)) = body.get_mut("output_text") {
                f(s);
            }
        }
        Api::Anthropic => {
            if let Some(c) = body.get_mut("content") {
                visit_parts(c, f);
            }
        }
        Api::Images => {
            if let Some(Value::Array(data)) = body.get_mut("data") {
                for item in data {
                    if let Some(Value::String(s)) = item.get_mut("revised_prompt") {
                        f(s);
                    }
                }
            }
        }
        Api::Raw => {}
    }
}

/// Calls `f` on every base64 image of an images response (`data[].b64_json`).
pub fn visit_images(body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    if let Some(Value::Array(data)) = body.get_mut("data") {
        for item in data {
            if let Some(Value::String(s)) = item.get_mut("b64_json") {
                f(s);
            }
        }
    }
}

/// Adds the explicit label to the assistant text of a response body.
pub fn label_response(api: Api, body: &mut Value, label: &str, position: LabelPosition) {
    let apply = |s: &mut String| match position {
        LabelPosition::Start => *s = format!("{label}\n\n{s}"),
        LabelPosition::End => s.push_str(&format!("\n\n{label}")),
        LabelPosition::None => {}
    };
    match api {
        Api::Chat => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for choice in choices {
                    if let Some(Value::String(s)) = choice.pointer_mut("/message/content") {
                        apply(s);
                    }
                }
            }
        }
        Api::Responses | Api::Anthropic => {
            let mut texts: Vec<&mut String> = Vec::new();
            if api == Api::Anthropic {
                if let Some(parts) = body.get_mut("content").and_then(Value::as_array_mut) {
                    texts.extend(parts.iter_mut().filter_map(|p| match p.get_mut("text") {
                        Some(Value::String(s)) => Some(s),
                        _ => None,
                    }));
                }
            } else if let Some(Value::Array(output)) = body.get_mut("output") {
                for item in output {
                    if let Some(Value::Array(parts)) = item.get_mut("content") {
                        texts.extend(parts.iter_mut().filter_map(|p| match p.get_mut("text") {
                            Some(Value::String(s)) => Some(s),
                            _ => None,
                        }));
                    }
                }
            }
            let target = match position {
                LabelPosition::End => texts.pop(),
                _ => texts.into_iter().next(),
            };
            if let Some(s) = target {
                apply(s);
            }
        }
        Api::Images | Api::Raw => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_request(api: Api, json: &str, roles: Roles) -> Vec<String> {
        let mut v: Value = serde_json::from_str(json).unwrap();
        let mut out = Vec::new();
        visit_request(api, &mut v, roles, &mut |s| out.push(s.clone()));
        out
    }

    #[test]
    fn request_texts_by_api() {
        let chat = r#"{"messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"},
            {"role":"user","content":[{"type":"text","text":"part"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(collect_request(Api::Chat, chat, Roles::All), ["sys", "hi", "part"]);
        assert_eq!(collect_request(Api::Chat, chat, Roles::User), ["hi", "part"]);
        let responses =
            r#"{"instructions":"be nice","input":[{"role":"user","content":[{"type":"input_text","text":"q"}]}]}"#;
        assert_eq!(collect_request(Api::Responses, responses, Roles::All), ["be nice", "q"]);
        assert_eq!(collect_request(Api::Responses, r#"{"input":"plain"}"#, Roles::User), ["plain"]);
        let anthropic = r#"{"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b"}]}"#;
        assert_eq!(collect_request(Api::Anthropic, anthropic, Roles::All), ["s", "a", "b"]);
        assert_eq!(collect_request(Api::Anthropic, anthropic, Roles::User), ["a"]);
    }

    #[test]
    fn paths() {
        let cases = [
            ("/v1/chat/completions", Api::Chat),
            ("/openai/v1/chat/completions?x=1", Api::Chat),
            ("/v1/responses", Api::Responses),
            ("/v1/messages", Api::Anthropic),
            ("/v1/images/generations", Api::Images),
            ("/v1/embeddings", Api::Raw),
        ];
        for (path, api) in cases {
            assert_eq!(Api::from_path(path), api, "{path}");
        }
    }

    #[test]
    fn labels_land_in_the_assistant_text() {
        let mut chat: Value =
            serde_json::from_str(r#"{"choices":[{"message":{"role":"assistant","content":"答"}}]}"#).unwrap();
        label_response(Api::Chat, &mut chat, "AI生成", LabelPosition::Start);
        assert_eq!(chat.pointer("/choices/0/message/content").unwrap(), "AI生成\n\n答");
        let mut a: Value =
            serde_json::from_str(r#"{"content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}"#).unwrap();
        label_response(Api::Anthropic, &mut a, "AI生成", LabelPosition::End);
        assert_eq!(a.pointer("/content/1/text").unwrap(), "y\n\nAI生成");
    }
}
