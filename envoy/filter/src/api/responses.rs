//! OpenAI Responses: `POST …/responses`. Its events repeat the whole text (`*.done`,
//! `response.completed`), so each lane keeps what it emitted and those events carry it.

use aigc_edge::ExplicitLabel;
use serde_json::{json, Value};

use super::{label_first_or_last, openai_blocked_error, part_texts, role_checked, visit_parts, Shape};
use crate::config::Roles;
use crate::sse::{write_event, write_json_event, Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Responses;

impl Shape for Responses {
    fn name(&self) -> &'static str {
        "responses"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/responses")
    }

    fn request_texts(&self, body: &mut Value, roles: Roles, f: &mut dyn FnMut(&mut String)) {
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

    fn response_texts(&self, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
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

    fn label_response(&self, body: &mut Value, label: &ExplicitLabel) {
        let Some(Value::Array(output)) = body.get_mut("output") else { return };
        let mut texts: Vec<&mut String> = Vec::new();
        for item in output {
            if let Some(Value::Array(parts)) = item.get_mut("content") {
                texts.extend(part_texts(parts));
            }
        }
        label_first_or_last(texts, label);
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

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        match kind.as_str() {
            "response.output_text.delta" => {
                let key = key_of(value);
                let text = value.get("delta").and_then(Value::as_str).unwrap_or("").to_string();
                let mut settled = lanes.feed(key, &text);
                if let Some(label) = lanes.start_label(0) {
                    settled = label.clone() + &settled;
                    if let Some(emitted) = lanes.emitted_mut(key) {
                        emitted.insert_str(0, &label);
                    }
                }
                value["delta"] = Value::String(settled);
                write_json_event(out, event.name, value, event.newline);
                if lanes.blocked.is_some() {
                    self.stream_block(lanes, out, event.newline);
                }
            }
            "response.output_text.done" => {
                let key = key_of(value);
                let tail = lanes.finish(key);
                if lanes.blocked.is_some() {
                    self.stream_block(lanes, out, event.newline);
                    return;
                }
                if !tail.is_empty() {
                    write_delta(out, key, &tail, event.newline);
                }
                if let Some(end) = lanes.end_label(key.0) {
                    write_delta(out, key, &end, event.newline);
                    if let Some(emitted) = lanes.emitted_mut(key) {
                        emitted.push_str(&end);
                    }
                }
                if let Some(emitted) = lanes.emitted(key) {
                    value["text"] = Value::String(emitted.to_string());
                }
                write_json_event(out, event.name, value, event.newline);
            }
            // Events that repeat the whole text carry the rewritten text too.
            "response.content_part.done" | "response.output_item.done" | "response.completed" => {
                replace_full_texts(lanes, value);
                write_json_event(out, event.name, value, event.newline);
            }
            _ => out.extend_from_slice(event.raw),
        }
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        let error = json!({"type": "error", "code": "content_filter", "message": "output blocked by content policy", "param": null});
        write_event(out, Some("error"), &error.to_string(), newline);
        lanes.finished = true;
    }

    fn stream_flush(&self, _lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        for (key, tail) in pieces {
            write_delta(out, key, &tail, "\n");
        }
    }
}

fn key_of(value: &Value) -> Key {
    let output = value.get("output_index").and_then(Value::as_u64).unwrap_or(0);
    let content = value.get("content_index").and_then(Value::as_u64).unwrap_or(0);
    (output, "text", content)
}

/// A delta event carrying `text` for `key`.
fn write_delta(out: &mut Vec<u8>, key: Key, text: &str, newline: &str) {
    let v = json!({"type": "response.output_text.delta", "output_index": key.0, "content_index": key.2, "delta": text});
    write_event(out, Some("response.output_text.delta"), &v.to_string(), newline);
}

fn replace_full_texts(lanes: &Lanes, value: &mut Value) {
    let emitted = |o: u64, c: u64| lanes.emitted((o, "text", c)).map(str::to_string);
    let (output, _, content) = key_of(value);
    if let Some(Value::String(text)) = value.pointer_mut("/part/text") {
        if let Some(e) = emitted(output, content) {
            *text = e;
        }
    }
    let fix_item = |o: u64, item: &mut Value| {
        if let Some(Value::Array(parts)) = item.get_mut("content") {
            for (c, part) in parts.iter_mut().enumerate() {
                if let (Some(Value::String(text)), Some(e)) = (part.get_mut("text"), emitted(o, c as u64)) {
                    *text = e;
                }
            }
        }
    };
    if let Some(item) = value.get_mut("item") {
        fix_item(output, item);
    }
    if let Some(Value::Array(items)) = value.pointer_mut("/response/output") {
        for (o, item) in items.iter_mut().enumerate() {
            fix_item(o as u64, item);
        }
    }
}
