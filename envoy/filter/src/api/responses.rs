//! OpenAI Responses: `POST …/responses`. Its events repeat the whole text (`*.done`,
//! `response.completed`), so each lane keeps what it emitted and those events carry it.

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use super::{first_or_last, openai_blocked_error, part_texts, set_string, string_of, write_rest, Edit, Shape};
use crate::json::{Doc, Node};
use crate::sse::{write_event, Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Responses;

/// Fields of a `*.done` event that repeat a lane's whole text.
const FULL_TEXT: [&str; 4] = ["text", "refusal", "arguments", "transcript"];

impl Shape for Responses {
    fn name(&self) -> &'static str {
        "responses"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/responses")
    }

    fn matches_body(&self, doc: &Doc) -> bool {
        doc.root.get(doc, "input").is_some() && doc.root.get(doc, "model").is_some()
    }

    fn label_targets(&self, doc: &Doc, position: LabelPosition) -> Vec<usize> {
        let output = doc.root.get(doc, "output").map_or(&[][..], Node::items);
        let texts = output.iter().flat_map(|item| part_texts(doc, item.get(doc, "content"))).collect();
        first_or_last(texts, position)
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({
            "object": "response", "status": "incomplete", "incomplete_details": {"reason": "content_filter"},
            "output": [], "error": openai_blocked_error(message)
        })
    }

    fn repeats_text(&self) -> bool {
        true
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        let kind = doc.root.get(doc, "type").and_then(|t| t.as_str(doc)).unwrap_or("").to_string();
        let mut edits: Vec<Edit> = Vec::new();
        let mut handled = Vec::new();
        if let Some(stem) = kind.strip_suffix(".delta") {
            if let Some(i) = string_of(doc.root.get(doc, "delta")) {
                handled.push(i);
                let key = key_of(doc, stem);
                let settled = if stem.ends_with("arguments") {
                    lanes.hold(&key, doc.str(i)).unwrap_or_default()
                } else {
                    let mut settled = lanes.feed(&key, doc.str(i));
                    if stem == "response.output_text" {
                        if let Some(label) = lanes.start_label(0) {
                            settled = label.clone() + &settled;
                            if let Some(emitted) = lanes.emitted_mut(&key) {
                                emitted.insert_str(0, &label);
                            }
                        }
                    }
                    settled
                };
                edits.extend(set_string(doc, i, &settled));
            }
        } else if let Some(stem) = kind.strip_suffix(".done") {
            let key = key_of(doc, stem);
            let tail = if lanes.is_held(&key) { lanes.release(&key) } else { lanes.finish(&key) };
            if lanes.cut() {
                return;
            }
            if !tail.is_empty() {
                write_delta(out, &key, stem, &tail, event.newline);
                if let Some(emitted) = lanes.emitted_mut(&key) {
                    if stem.ends_with("arguments") {
                        emitted.push_str(&tail);
                    }
                }
            }
            if stem == "response.output_text" {
                if let Some(end) = lanes.end_label(key.0) {
                    write_delta(out, &key, stem, &end, event.newline);
                    if let Some(emitted) = lanes.emitted_mut(&key) {
                        emitted.push_str(&end);
                    }
                }
            }
            if let Some(emitted) = lanes.emitted(&key).map(str::to_string) {
                for field in FULL_TEXT {
                    if let Some(i) = string_of(doc.root.get(doc, field)) {
                        handled.push(i);
                        edits.extend(set_string(doc, i, &emitted));
                    }
                }
            }
        }
        if matches!(kind.as_str(), "response.content_part.done" | "response.output_item.done" | "response.completed") {
            replace_full_texts(lanes, doc, &mut handled, &mut edits);
        }
        write_rest(lanes, event, doc, &handled, edits, out);
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        let error = json!({"type": "error", "code": "content_filter", "message": "output blocked by content policy", "param": null});
        write_event(out, Some("error"), &error.to_string(), newline);
        lanes.finished = true;
    }

    fn stream_flush(&self, _lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        for (key, tail) in pieces {
            let stem = key.1.clone();
            write_delta(out, &key, &stem, &tail, "\n");
        }
    }
}

/// The lane of an event: `(output_index, event stem, content_index)`.
fn key_of(doc: &Doc, stem: &str) -> Key {
    let n = |k: &str| doc.root.get(doc, k).and_then(|v| v.as_u64(doc)).unwrap_or(0);
    (n("output_index"), stem.to_string(), n("content_index"))
}

/// A `<stem>.delta` event carrying `text` for `key`.
fn write_delta(out: &mut Vec<u8>, key: &Key, stem: &str, text: &str, newline: &str) {
    let name = format!("{stem}.delta");
    let v = json!({"type": name, "output_index": key.0, "content_index": key.2, "delta": text});
    write_event(out, Some(&name), &v.to_string(), newline);
}

/// Events that repeat whole texts (`part`, `item`, `response.output`) carry what was emitted.
fn replace_full_texts(lanes: &Lanes, doc: &Doc, handled: &mut Vec<usize>, edits: &mut Vec<Edit>) {
    let emitted = |o: u64, c: u64| lanes.emitted(&(o, "response.output_text".into(), c)).map(str::to_string);
    let n = |k: &str| doc.root.get(doc, k).and_then(|v| v.as_u64(doc)).unwrap_or(0);
    let (output, content) = (n("output_index"), n("content_index"));
    let mut set = |i: usize, text: Option<String>| {
        if let Some(text) = text {
            handled.push(i);
            edits.extend(set_string(doc, i, &text));
        }
    };
    if let Some(i) = string_of(doc.root.get(doc, "part").and_then(|p| p.get(doc, "text"))) {
        set(i, emitted(output, content));
    }
    let mut items: Vec<(u64, &Node)> = doc.root.get(doc, "item").map(|i| (output, i)).into_iter().collect();
    if let Some(list) = doc.root.get(doc, "response").and_then(|r| r.get(doc, "output")) {
        items.extend(list.items().iter().enumerate().map(|(o, item)| (o as u64, item)));
    }
    for (o, item) in items {
        for (c, i) in part_texts(doc, item.get(doc, "content")).into_iter().enumerate() {
            set(i, emitted(o, c as u64));
        }
    }
}
