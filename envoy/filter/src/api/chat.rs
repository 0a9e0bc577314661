//! OpenAI-compatible chat completions: `POST …/chat/completions`.

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use super::{index_of, openai_blocked_error, set_string, string_of, write_rest, Edit, Shape};
use crate::json::{quote, Doc, Node};
use crate::sse::{write_event, Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Chat;

/// Members of the first chunk every chunk of ours repeats.
const TEMPLATE: [&str; 5] = ["id", "object", "created", "model", "system_fingerprint"];

impl Shape for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/chat/completions")
    }

    fn matches_body(&self, doc: &Doc) -> bool {
        matches!(doc.root.get(doc, "messages"), Some(Node::Array(..)))
    }

    fn label_targets(&self, doc: &Doc, _position: LabelPosition) -> Vec<usize> {
        let choices = doc.root.get(doc, "choices").map_or(&[][..], Node::items);
        choices.iter().filter_map(|c| string_of(c.get(doc, "message").and_then(|m| m.get(doc, "content")))).collect()
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}],
            "error": openai_blocked_error(message)
        })
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        lanes.keep_template(doc, &TEMPLATE);
        let mut edits: Vec<Edit> = Vec::new();
        let mut handled = Vec::new();
        let choices = doc.root.get(doc, "choices").map_or(&[][..], Node::items);
        let mut finishing = Vec::new();
        for (position, choice) in choices.iter().enumerate() {
            let index = index_of(doc, choice, position);
            let before = edits.len();
            if let Some(delta) = choice.get(doc, "delta") {
                delta_texts(lanes, doc, delta, index, &mut handled, &mut edits);
            }
            if edits.len() > before {
                // Log-probabilities would show the text as it was.
                if let Some(lp) = choice.get(doc, "logprobs").filter(|l| !l.is_null(doc)) {
                    edits.push((lp.range(doc), "null".into()));
                }
            }
            if let Some(reason) = choice.get(doc, "finish_reason").filter(|f| !f.is_null(doc)) {
                finishing.push((index, reason.range(doc)));
            }
        }
        // A choice that finishes is settled first: its held-back text goes out before its
        // finish reason, and a block found now replaces the finish (a client never sees
        // `stop` and then `content_filter`).
        let mut closing = Vec::new();
        for (index, reason) in finishing {
            let tails = close_choice(lanes, index);
            let end = if lanes.cut() { None } else { lanes.end_label(index) };
            if lanes.cut() || !tails.is_empty() || end.is_some() {
                edits.push((reason.clone(), "null".into()));
            }
            if !tails.is_empty() || end.is_some() {
                closing.push((index, tails, end, doc.scalar(&reason).to_string()));
            }
        }
        write_rest(lanes, event, doc, &handled, edits, out);
        if lanes.cut() {
            return;
        }
        for (index, tails, end, reason) in closing {
            write_tails(lanes, index, tails, end, out);
            let choice = format!(r#"{{"index":{index},"delta":{{}},"finish_reason":{reason}}}"#);
            write_event(out, None, &lanes.from_template(&format!(r#""choices":[{choice}]"#)), event.newline);
        }
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        let indices = lanes.indices();
        let indices = if indices.is_empty() { vec![0] } else { indices };
        let choices: Vec<String> = indices
            .iter()
            .map(|i| format!(r#"{{"index":{i},"delta":{{}},"finish_reason":"content_filter"}}"#))
            .collect();
        let chunk = lanes.from_template(&format!(r#""choices":[{}]"#, choices.join(",")));
        write_event(out, None, &chunk, newline);
        write_event(out, None, "[DONE]", newline);
    }

    fn stream_flush(&self, lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        let mut indices: Vec<u64> = pieces.iter().map(|(k, _)| k.0).chain(lanes.labeled()).collect();
        indices.sort_unstable();
        indices.dedup();
        for index in indices {
            let mine: Vec<(Key, String)> = pieces.iter().filter(|(k, _)| k.0 == index).cloned().collect();
            let end = lanes.end_label(index);
            write_tails(lanes, index, mine, end, out);
        }
    }
}

/// Runs the texts of one choice's delta through the lanes: every string member is text
/// (`content`, `reasoning_content`, `refusal`, the next one) except `role`; tool-call and
/// function-call arguments are held until they are whole JSON, then inspected decoded.
fn delta_texts(
    lanes: &mut Lanes,
    doc: &Doc,
    delta: &Node,
    index: u64,
    handled: &mut Vec<usize>,
    edits: &mut Vec<Edit>,
) {
    let Node::Object(members, _) = delta else { return };
    let mut has_content = false;
    for (k, value) in members {
        match (doc.str(*k), value) {
            ("role", _) => {}
            ("tool_calls", Node::Array(calls, _)) => {
                for (position, call) in calls.iter().enumerate() {
                    let k = index_of(doc, call, position);
                    if let Some(i) = string_of(call.get(doc, "function").and_then(|f| f.get(doc, "arguments"))) {
                        handled.push(i);
                        let settled = lanes.hold(&(index, "arguments".into(), k), doc.str(i)).unwrap_or_default();
                        edits.extend(set_string(doc, i, &settled));
                    }
                }
            }
            ("function_call", call) => {
                if let Some(i) = string_of(call.get(doc, "arguments")) {
                    handled.push(i);
                    let settled = lanes.hold(&(index, "function_call".into(), 0), doc.str(i)).unwrap_or_default();
                    edits.extend(set_string(doc, i, &settled));
                }
            }
            (field, Node::Str(i)) => {
                handled.push(*i);
                let mut settled = lanes.feed(&(index, field.to_string(), 0), doc.str(*i));
                if field == "content" {
                    has_content = true;
                    if let Some(label) = lanes.start_label(index) {
                        settled = label + &settled;
                    }
                }
                edits.extend(set_string(doc, *i, &settled));
            }
            _ => {}
        }
    }
    if !has_content {
        if let Some(label) = lanes.start_label(index) {
            edits.extend(delta.insert_first(doc, "content", &quote(&label)));
        }
    }
}

/// Ends a choice's lanes and held JSON; returns what they held back.
fn close_choice(lanes: &mut Lanes, index: u64) -> Vec<(Key, String)> {
    let mut tails = Vec::new();
    for key in lanes.keys_of(index) {
        let tail = if lanes.is_held(&key) { lanes.release(&key) } else { lanes.finish(&key) };
        if !tail.is_empty() {
            tails.push((key, tail));
        }
    }
    tails
}

/// A chunk carrying `tails` and the `end` label for choice `index`, if there is anything.
fn write_tails(lanes: &Lanes, index: u64, tails: Vec<(Key, String)>, end: Option<String>, out: &mut Vec<u8>) {
    let mut delta = serde_json::Map::new();
    let mut calls = Vec::new();
    for ((_, field, k), tail) in tails {
        match field.as_str() {
            "arguments" => calls.push(json!({"index": k, "function": {"arguments": tail}})),
            "function_call" => {
                delta.insert("function_call".into(), json!({"arguments": tail}));
            }
            _ => {
                delta.insert(field, Value::String(tail));
            }
        }
    }
    if !calls.is_empty() {
        delta.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(end) = end {
        let before = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
        delta.insert("content".into(), Value::String(before + &end));
    }
    if delta.is_empty() {
        return;
    }
    let choice = json!([{"index": index, "delta": delta, "finish_reason": null}]);
    write_event(out, None, &lanes.from_template(&format!(r#""choices":{choice}"#)), "\n");
}
