//! Anthropic messages: `POST …/messages`.

use aigc_edge::ExplicitLabel;
use serde_json::{json, Value};

use super::{label_first_or_last, part_texts, role_checked, visit_parts, Shape};
use crate::config::Roles;
use crate::sse::{write_event, write_json_event, Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Anthropic;

impl Shape for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/messages")
    }

    fn request_texts(&self, body: &mut Value, roles: Roles, f: &mut dyn FnMut(&mut String)) {
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

    fn response_texts(&self, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
        if let Some(c) = body.get_mut("content") {
            visit_parts(c, f);
        }
    }

    fn label_response(&self, body: &mut Value, label: &ExplicitLabel) {
        if let Some(parts) = body.get_mut("content").and_then(Value::as_array_mut) {
            label_first_or_last(part_texts(parts).collect(), label);
        }
    }

    fn error_body(&self, message: &str, _param: &str) -> String {
        json!({"type": "error", "error": error(message)}).to_string()
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({"type": "message", "role": "assistant", "content": [], "stop_reason": "refusal", "error": error(message)})
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "content_block_delta" => {
                for field in ["text", "thinking"] {
                    if let Some(Value::String(text)) = value.pointer(&format!("/delta/{field}")).cloned() {
                        let mut settled = lanes.feed((index, field, 0), &text);
                        if field == "text" {
                            if let Some(label) = lanes.start_label(0) {
                                settled = label + &settled;
                            }
                        }
                        if let Some(slot) = value.pointer_mut(&format!("/delta/{field}")) {
                            *slot = Value::String(settled);
                        }
                    }
                }
                write_json_event(out, event.name, value, event.newline);
                if lanes.blocked.is_some() {
                    self.stream_block(lanes, out, event.newline);
                }
            }
            "content_block_stop" => {
                for field in ["text", "thinking"] {
                    let tail = lanes.finish((index, field, 0));
                    if !tail.is_empty() {
                        write_delta(out, (index, field, 0), &tail, event.newline);
                    }
                }
                if lanes.blocked.is_some() {
                    self.stream_block(lanes, out, event.newline);
                } else {
                    out.extend_from_slice(event.raw);
                }
            }
            _ => out.extend_from_slice(event.raw),
        }
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        for index in lanes.indices() {
            let stop = json!({"type": "content_block_stop", "index": index});
            write_event(out, Some("content_block_stop"), &stop.to_string(), newline);
        }
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": null}, "usage": {"output_tokens": 0}});
        write_event(out, Some("message_delta"), &delta.to_string(), newline);
        write_event(out, Some("message_stop"), &json!({"type": "message_stop"}).to_string(), newline);
        lanes.finished = true;
    }

    fn stream_flush(&self, _lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        for (key, tail) in pieces {
            write_delta(out, key, &tail, "\n");
        }
    }
}

fn error(message: &str) -> Value {
    json!({"type": "content_filter", "message": message})
}

/// A `content_block_delta` event carrying `text` for `key`.
fn write_delta(out: &mut Vec<u8>, key: Key, text: &str, newline: &str) {
    let kind = if key.1 == "thinking" { "thinking_delta" } else { "text_delta" };
    let v = json!({"type": "content_block_delta", "index": key.0, "delta": {"type": kind, key.1: text}});
    write_event(out, Some("content_block_delta"), &v.to_string(), newline);
}
