//! Ollama: `POST /api/chat` (`messages` in, `message.content` out) and `POST /api/generate`
//! (`prompt` in, `response` out). Streams are newline-delimited JSON, one object a line, the
//! last with `"done": true`.

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use super::{set_string, string_of, write_rest, Edit, Shape};
use crate::json::Doc;
use crate::sse::{Event, Key, Lanes};

/// `/api/chat`.
#[derive(Debug)]
pub struct OllamaChat;

/// `/api/generate`.
#[derive(Debug)]
pub struct OllamaGenerate;

impl Shape for OllamaChat {
    fn name(&self) -> &'static str {
        "ollama-chat"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/api/chat")
    }

    fn label_targets(&self, doc: &Doc, _position: LabelPosition) -> Vec<usize> {
        string_of(doc.root.get(doc, "message").and_then(|m| m.get(doc, "content"))).into_iter().collect()
    }

    fn error_body(&self, message: &str, _param: &str) -> String {
        json!({"error": message}).to_string()
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "content_filter", "error": message})
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        let message = doc.root.get(doc, "message");
        let texts = ["content", "thinking"].map(|f| (f, string_of(message.and_then(|m| m.get(doc, f)))));
        line(lanes, event, doc, &texts, out);
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, _newline: &str) {
        let last = lanes
            .from_template(r#""message":{"role":"assistant","content":""},"done":true,"done_reason":"content_filter""#);
        out.extend_from_slice(last.as_bytes());
        out.push(b'\n');
        lanes.finished = true;
    }

    fn stream_flush(&self, lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        for ((_, field, _), tail) in pieces {
            let member = json!({"role": "assistant", field: tail});
            let line = lanes.from_template(&format!(r#""message":{member},"done":false"#));
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
}

impl Shape for OllamaGenerate {
    fn name(&self) -> &'static str {
        "ollama-generate"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/api/generate")
    }

    fn label_targets(&self, doc: &Doc, _position: LabelPosition) -> Vec<usize> {
        string_of(doc.root.get(doc, "response")).into_iter().collect()
    }

    fn error_body(&self, message: &str, _param: &str) -> String {
        json!({"error": message}).to_string()
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({"response": "", "done": true, "done_reason": "content_filter", "error": message})
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        let texts = [
            ("response", string_of(doc.root.get(doc, "response"))),
            ("thinking", string_of(doc.root.get(doc, "thinking"))),
        ];
        line(lanes, event, doc, &texts, out);
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, _newline: &str) {
        let last = lanes.from_template(r#""response":"","done":true,"done_reason":"content_filter""#);
        out.extend_from_slice(last.as_bytes());
        out.push(b'\n');
        lanes.finished = true;
    }

    fn stream_flush(&self, lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        for ((_, field, _), tail) in pieces {
            let line = lanes.from_template(&format!(r#"{}:{},"done":false"#, json!(field), json!(tail)));
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
}

/// One line of an Ollama stream: `texts` through the lanes, the held-back text and labels
/// added on the `done` line, every other string checked whole.
fn line(lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, texts: &[(&str, Option<usize>)], out: &mut Vec<u8>) {
    lanes.keep_template(doc, &["model"]);
    let done = doc.root.get(doc, "done").is_some_and(|d| doc.scalar(&d.range(doc)) == "true");
    let mut edits: Vec<Edit> = Vec::new();
    let mut handled = Vec::new();
    for &(field, index) in texts {
        let Some(i) = index else { continue };
        handled.push(i);
        let key = (0, field.to_string(), 0);
        let mut settled = lanes.feed(&key, doc.str(i));
        if field != "thinking" {
            if let Some(label) = lanes.start_label(0) {
                settled = label + &settled;
            }
        }
        if done {
            settled.push_str(&lanes.finish(&key));
            if field != "thinking" {
                settled.extend(lanes.end_label(0));
            }
        }
        edits.extend(set_string(doc, i, &settled));
    }
    if done {
        // Anything still held goes out before the last line.
        let rest = lanes.finish_all();
        if !rest.is_empty() && !lanes.cut() {
            for ((_, field, _), tail) in rest {
                let line = lanes.from_template(&format!(r#"{}:{},"done":false"#, json!(field), json!(tail)));
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    if lanes.cut() {
        return;
    }
    write_rest(lanes, event, doc, &handled, edits, out);
}
