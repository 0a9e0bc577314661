//! Anthropic messages: `POST …/messages`.

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use super::{first_or_last, part_texts, set_string, string_of, write_rest, Edit, Shape};
use crate::json::Doc;
use crate::sse::{write_event, Event, Key, Lanes};

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

    fn label_targets(&self, doc: &Doc, position: LabelPosition) -> Vec<usize> {
        first_or_last(part_texts(doc, doc.root.get(doc, "content")), position)
    }

    fn error_body(&self, message: &str, _param: &str) -> String {
        json!({"type": "error", "error": error(message)}).to_string()
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({"type": "message", "role": "assistant", "content": [], "stop_reason": "refusal", "error": error(message)})
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        let kind = doc.root.get(doc, "type").and_then(|t| t.as_str(doc)).unwrap_or("").to_string();
        let index = doc.root.get(doc, "index").and_then(|n| n.as_u64(doc)).unwrap_or(0);
        let mut edits: Vec<Edit> = Vec::new();
        let mut handled = Vec::new();
        // `content_block_start` may carry the block's first text; deltas carry the rest.
        let block = match kind.as_str() {
            "content_block_delta" => doc.root.get(doc, "delta"),
            "content_block_start" => doc.root.get(doc, "content_block"),
            _ => None,
        };
        if let Some(block) = block {
            for field in ["text", "thinking"] {
                if let Some(i) = string_of(block.get(doc, field)) {
                    handled.push(i);
                    let mut settled = lanes.feed(&(index, field.into(), 0), doc.str(i));
                    // The label goes into the first text delta (a block's start text is often empty).
                    if field == "text" && kind == "content_block_delta" {
                        if let Some(label) = lanes.start_label(0) {
                            settled = label + &settled;
                        }
                    }
                    edits.extend(set_string(doc, i, &settled));
                }
            }
            if let Some(i) = string_of(block.get(doc, "partial_json")) {
                handled.push(i);
                let settled = lanes.hold(&(index, "partial_json".into(), 0), doc.str(i)).unwrap_or_default();
                edits.extend(set_string(doc, i, &settled));
            }
        }
        if kind == "content_block_stop" {
            for key in lanes.keys_of(index) {
                let tail = if lanes.is_held(&key) { lanes.release(&key) } else { lanes.finish(&key) };
                if !tail.is_empty() && !lanes.cut() {
                    write_delta(out, &key, &tail, event.newline);
                }
            }
            if lanes.cut() {
                return;
            }
        }
        write_rest(lanes, event, doc, &handled, edits, out);
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
            write_delta(out, &key, &tail, "\n");
        }
    }
}

fn error(message: &str) -> Value {
    json!({"type": "content_filter", "message": message})
}

/// A `content_block_delta` event carrying `text` for `key`.
fn write_delta(out: &mut Vec<u8>, key: &Key, text: &str, newline: &str) {
    let delta = match key.1.as_str() {
        "thinking" => json!({"type": "thinking_delta", "thinking": text}),
        "partial_json" => json!({"type": "input_json_delta", "partial_json": text}),
        _ => json!({"type": "text_delta", "text": text}),
    };
    let v = json!({"type": "content_block_delta", "index": key.0, "delta": delta});
    write_event(out, Some("content_block_delta"), &v.to_string(), newline);
}
