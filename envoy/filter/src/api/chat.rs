//! OpenAI-compatible chat completions: `POST …/chat/completions`.

use aigc_edge::ExplicitLabel;
use serde_json::{json, Value};

use super::{openai_blocked_error, role_checked, visit_parts, Shape};
use crate::config::Roles;
use crate::fast;
use crate::sse::{write_event, write_json_event, Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Chat;

impl Shape for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/chat/completions")
    }

    fn request_texts(&self, body: &mut Value, roles: Roles, f: &mut dyn FnMut(&mut String)) {
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            for m in messages.iter_mut().filter(|m| role_checked(m, roles)) {
                if let Some(c) = m.get_mut("content") {
                    visit_parts(c, f);
                }
            }
        }
    }

    fn response_texts(&self, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
        let Some(Value::Array(choices)) = body.get_mut("choices") else { return };
        for message in choices.iter_mut().filter_map(|c| c.get_mut("message")) {
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

    fn label_response(&self, body: &mut Value, label: &ExplicitLabel) {
        if let Some(Value::Array(choices)) = body.get_mut("choices") {
            for choice in choices {
                if let Some(Value::String(s)) = choice.pointer_mut("/message/content") {
                    *s = label.apply(s);
                }
            }
        }
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}],
            "error": openai_blocked_error(message)
        })
    }

    fn stream_fast(&self, lanes: &mut Lanes, event: &Event<'_>, data: &str, out: &mut Vec<u8>) -> bool {
        // A multi-line `data:` field must go out re-serialized on one line: general path.
        if lanes.template.is_none() || data.contains('\n') {
            return false;
        }
        let Some((deltas, indexes)) = fast::scan(data) else { return false };
        let index_of = |choice: usize| indexes.iter().find(|(c, _)| *c == choice).map_or(choice as u64, |(_, i)| *i);
        if deltas.iter().any(|d| lanes.awaits_start_label(index_of(d.choice))) {
            return false;
        }
        let mut rewritten = String::with_capacity(data.len());
        let mut at = 0;
        for d in deltas {
            let settled = lanes.feed((index_of(d.choice), d.field, 0), &d.text);
            rewritten.push_str(&data[at..d.literal.start]);
            // Serializing a string to JSON cannot fail.
            rewritten.push_str(&serde_json::to_string(&settled).unwrap_or_default());
            at = d.literal.end;
        }
        rewritten.push_str(&data[at..]);
        write_event(out, event.name, &rewritten, event.newline);
        if lanes.blocked.is_some() {
            self.stream_block(lanes, out, event.newline);
        }
        true
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
        let Some(Value::Array(choices)) = value.get_mut("choices").map(std::mem::take) else {
            out.extend_from_slice(event.raw);
            return;
        };
        let mut rewritten = Vec::with_capacity(choices.len());
        for (position, mut choice) in choices.into_iter().enumerate() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
            if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                for field in ["content", "reasoning_content"] {
                    if let Some(Value::String(text)) = delta.get(field).cloned().as_ref() {
                        let settled = lanes.feed((index, field, 0), text);
                        delta.insert(field.to_string(), Value::String(settled));
                    }
                }
                if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                    for (k, call) in calls.iter_mut().enumerate() {
                        let k = call.get("index").and_then(Value::as_u64).unwrap_or(k as u64);
                        if let Some(Value::String(args)) = call.pointer("/function/arguments").cloned() {
                            let settled = lanes.feed((index, "arguments", k), &args);
                            if let Some(slot) = call.pointer_mut("/function/arguments") {
                                *slot = Value::String(settled);
                            }
                        }
                    }
                }
                if let Some(label) = lanes.start_label(index) {
                    let content = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
                    delta.insert("content".into(), Value::String(format!("{label}{content}")));
                }
            }
            let finishing = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if finishing && lanes.blocked.is_none() {
                close_choice(lanes, index, &mut choice);
            }
            rewritten.push(choice);
        }
        value["choices"] = Value::Array(rewritten);
        if lanes.template.is_none() {
            // `id`, `model`, `created` are the same in every chunk: keep the first chunk's.
            let mut template = value.clone();
            template["choices"] = Value::Array(Vec::new());
            lanes.template = Some(template);
        }
        write_json_event(out, event.name, value, event.newline);
        if lanes.blocked.is_some() {
            self.stream_block(lanes, out, event.newline);
        }
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        let mut last = chunk_template(lanes);
        let indices = lanes.indices();
        let indices = if indices.is_empty() { [0].into() } else { indices };
        last["choices"] = Value::Array(
            indices.iter().map(|i| json!({"index": i, "delta": {}, "finish_reason": "content_filter"})).collect(),
        );
        write_event(out, None, &last.to_string(), newline);
        write_event(out, None, "[DONE]", newline);
    }

    fn stream_flush(&self, lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        let indices: std::collections::BTreeSet<u64> = pieces.iter().map(|(k, _)| k.0).chain(lanes.labeled()).collect();
        for index in indices {
            let mut delta = serde_json::Map::new();
            for ((i, field, _), tail) in &pieces {
                if *i == index && *field != "arguments" {
                    delta.insert((*field).to_string(), Value::String(tail.clone()));
                }
            }
            if let Some(end) = lanes.end_label(index) {
                let before = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
                delta.insert("content".into(), Value::String(before + &end));
            }
            if delta.is_empty() {
                continue;
            }
            let mut chunk = chunk_template(lanes);
            chunk["choices"] = json!([{"index": index, "delta": delta, "finish_reason": null}]);
            write_event(out, None, &chunk.to_string(), "\n");
        }
    }
}

/// A chunk of our own, with the stream's `id`, `model` and `created`.
fn chunk_template(lanes: &Lanes) -> Value {
    lanes.template.clone().unwrap_or_else(|| json!({"object": "chat.completion.chunk"}))
}

/// Puts a choice's held-back text (and an end label) into its finishing chunk.
fn close_choice(lanes: &mut Lanes, index: u64, choice: &mut Value) {
    let mut tails = Vec::new();
    for key in lanes.keys_of(index) {
        let tail = lanes.finish(key);
        if !tail.is_empty() {
            tails.push((key, tail));
        }
    }
    let end = lanes.end_label(index);
    if tails.is_empty() && end.is_none() {
        return;
    }
    if choice.get("delta").is_none_or(|d| !d.is_object()) {
        choice["delta"] = json!({});
    }
    let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else { return };
    for ((_, field, k), tail) in tails {
        if field == "arguments" {
            let calls = delta.entry("tool_calls").or_insert_with(|| json!([]));
            if let Some(calls) = calls.as_array_mut() {
                calls.push(json!({"index": k, "function": {"arguments": tail}}));
            }
        } else {
            let before = delta.get(field).and_then(Value::as_str).unwrap_or("").to_string();
            delta.insert(field.to_string(), Value::String(before + &tail));
        }
    }
    if let Some(end) = end {
        let before = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
        delta.insert("content".into(), Value::String(before + &end));
    }
}
