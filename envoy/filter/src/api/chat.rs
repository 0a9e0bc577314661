//! OpenAI-compatible chat completions: `POST …/chat/completions`.

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use super::{index_of, openai_blocked_error, set_string, string_of, write_rest, Edit, Shape};
use crate::fast;
use crate::inspect::is_structural;
use crate::json::{quote, walk, write_quoted, Doc, Node, Seg};
use crate::sse::{one_line, write_event, Event, Key, Lanes};

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

    fn stream_fast(&self, lanes: &mut Lanes, event: &Event<'_>, data: &str, out: &mut Vec<u8>) -> bool {
        // The first chunk goes the general way (it gives the template); so does a chunk that
        // needs a start label.
        if lanes.template.is_none() {
            return false;
        }
        // A chunk shaped like the last one is read without parsing it again; the shape is
        // taken out while its delta borrows the chunk and the lanes take the text.
        let shape = lanes.shape.take();
        if let Some((delta, indexes)) = shape.as_ref().and_then(|shape| Some((shape.read(data)?, shape.indexes()))) {
            let handled = fast_rewrite(lanes, event, data, &[delta], indexes, out);
            lanes.shape = shape;
            return handled;
        }
        let Some((deltas, indexes)) = fast::scan(data) else {
            lanes.shape = shape;
            return false;
        };
        let handled = fast_rewrite(lanes, event, data, &deltas, &indexes, out);
        lanes.shape = fast::Shape::of(data, &deltas, &indexes);
        handled
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        lanes.keep_template(doc, &TEMPLATE);
        let mut edits: Vec<Edit> = Vec::new();
        let mut handled = Vec::new();
        let choices = doc.root.get(doc, "choices").map_or(&[][..], Node::items);
        for (position, choice) in choices.iter().enumerate() {
            let index = index_of(doc, choice, position);
            let delta = choice.get(doc, "delta");
            // The settled text of each delta string, by lane.
            let mut texts: Vec<(Key, usize, String)> = Vec::new();
            let mut extra: Vec<(Key, String)> = Vec::new();
            if let Some(label) = delta.and_then(|d| delta_texts(lanes, doc, d, index, &mut texts)) {
                add(&mut extra, (index, "content".into(), 0), &label);
            }
            let finish = choice.get(doc, "finish_reason").filter(|f| !f.is_null(doc));
            if let Some(reason) = finish {
                // A choice that finishes is settled first: its held-back text and the end
                // label go out in the finishing chunk, and a block found now replaces the
                // finish (a client never sees `stop` and then `content_filter`).
                let end = lanes.end_label(index).map(|end| ((index, "content".to_string(), 0), end));
                for (key, tail) in close_choice(lanes, index).into_iter().chain(end) {
                    match texts.iter_mut().find(|(k, _, _)| *k == key) {
                        Some((_, _, text)) => text.push_str(&tail),
                        None => add(&mut extra, key, &tail),
                    }
                }
                if lanes.cut() {
                    edits.push((reason.range(doc), "null".into()));
                }
            }
            let mut changed = false;
            for (_, i, text) in &texts {
                handled.push(*i);
                if let Some(edit) = set_string(doc, *i, text) {
                    edits.push(edit);
                    changed = true;
                }
            }
            if !extra.is_empty() {
                if let Some(edit) = delta.and_then(|d| insert_members(d, &extra)) {
                    edits.push(edit);
                    changed = true;
                }
            }
            if changed {
                // Log-probabilities would show the text as it was.
                if let Some(lp) = choice.get(doc, "logprobs").filter(|l| !l.is_null(doc)) {
                    edits.push((lp.range(doc), "null".into()));
                }
            }
        }
        write_rest(lanes, event, doc, &handled, edits, out);
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

/// Writes a fast-path chunk: each delta's text through its lane, the chunk as it came when
/// no text changed, else with the settled texts spliced in. False when a delta's choice still
/// awaits its start label (the general path writes that).
fn fast_rewrite(
    lanes: &mut Lanes,
    event: &Event<'_>,
    data: &str,
    deltas: &[fast::Delta<'_>],
    indexes: &fast::Indexes,
    out: &mut Vec<u8>,
) -> bool {
    let index_of = |choice: usize| indexes.iter().find(|(c, _)| *c == choice).map_or(choice as u64, |(_, i)| *i);
    if deltas.iter().any(|d| lanes.awaits_start_label(index_of(d.choice))) {
        return false;
    }
    // The settled text of each delta that changed; most events pass as they came.
    let mut changed: Vec<(&fast::Delta<'_>, String)> = Vec::new();
    for d in deltas {
        let settled = lanes.feed_at(index_of(d.choice), d.field, 0, &d.text);
        if settled != d.text {
            changed.push((d, settled));
        }
    }
    if changed.is_empty() {
        out.extend_from_slice(event.raw);
        return true;
    }
    // Spliced straight into the output. The pieces between the strings begin and end outside
    // a string, so putting each on one line is putting the whole on one line.
    event.write_with(out, |out| {
        let mut at = 0;
        for (d, settled) in &changed {
            out.extend_from_slice(one_line(data.get(at..d.literal.start).unwrap_or("")).as_bytes());
            write_quoted(out, settled);
            at = d.literal.end;
        }
        out.extend_from_slice(one_line(data.get(at..).unwrap_or("")).as_bytes());
    });
    true
}

/// Runs the texts of one choice's delta through the lanes: every string member is text
/// (`content`, `reasoning_content`, `refusal`, the next one) except `role`; tool-call and
/// function-call arguments are held until they are whole JSON, then inspected decoded. The
/// start label goes before the first content (a member of its own when the delta has none).
///
/// Returns the start label when the delta has no content string to carry it.
fn delta_texts(
    lanes: &mut Lanes,
    doc: &Doc,
    delta: &Node,
    index: u64,
    texts: &mut Vec<(Key, usize, String)>,
) -> Option<String> {
    let Node::Object(members, _) = delta else { return None };
    for (k, value) in members {
        match (doc.str(*k), value) {
            ("role", _) => {}
            ("tool_calls", Node::Array(calls, _)) => {
                for (position, call) in calls.iter().enumerate() {
                    let k = index_of(doc, call, position);
                    if let Some(i) = string_of(call.get(doc, "function").and_then(|f| f.get(doc, "arguments"))) {
                        let key = (index, "arguments".to_string(), k);
                        let settled = lanes.hold(&key, doc.str(i)).unwrap_or_default();
                        texts.push((key, i, settled));
                    }
                }
            }
            ("function_call", call) => {
                if let Some(i) = string_of(call.get(doc, "arguments")) {
                    let key = (index, "function_call".to_string(), 0);
                    let settled = lanes.hold(&key, doc.str(i)).unwrap_or_default();
                    texts.push((key, i, settled));
                }
            }
            (field, Node::Str(i)) => {
                let key = (index, field.to_string(), 0);
                let mut settled = lanes.feed(&key, doc.str(*i));
                if field == "content" {
                    if let Some(label) = lanes.start_label(index) {
                        settled = label + &settled;
                    }
                }
                texts.push((key, *i, settled));
            }
            (field, object @ Node::Object(..)) => {
                // Text nested in the delta (`audio.transcript`): a lane per path of keys.
                let mut nested = Vec::new();
                walk(doc, object, |path, i, is_key| {
                    let keys: Option<Vec<&str>> = path
                        .iter()
                        .map(|s| match s {
                            Seg::Key(k) => Some(*k),
                            Seg::Index(_) => None,
                        })
                        .collect();
                    if let (false, Some(keys)) = (is_key, keys) {
                        if keys.last().is_some_and(|k| !is_structural(k)) {
                            nested.push((format!("{field}.{}", keys.join(".")), i));
                        }
                    }
                });
                for (name, i) in nested {
                    let key = (index, name, 0);
                    let settled = lanes.feed(&key, doc.str(i));
                    texts.push((key, i, settled));
                }
            }
            _ => {}
        }
    }
    if texts.iter().any(|(k, _, _)| k.1 == "content") {
        return None;
    }
    lanes.start_label(index)
}

/// Adds `text` to the member of `key` among `extra`, or as a member of its own.
fn add(extra: &mut Vec<(Key, String)>, key: Key, text: &str) {
    match extra.iter_mut().find(|(k, _)| *k == key) {
        Some((_, existing)) => existing.push_str(text),
        None => extra.push((key, text.to_string())),
    }
}

/// The edit that adds `extra` texts to a delta object as members of their own.
fn insert_members(delta: &Node, extra: &[(Key, String)]) -> Option<Edit> {
    let Node::Object(members, range) = delta else { return None };
    let added: Vec<String> = delta_members(extra.to_vec()).iter().map(|(k, v)| format!("{}:{v}", quote(k))).collect();
    let comma = if members.is_empty() { "" } else { "," };
    let at = range.start + 1;
    Some((at..at, format!("{}{comma}", added.join(","))))
}

/// Texts by lane as the members of a delta: tool-call arguments under `tool_calls`, a nested
/// lane (`audio.transcript`) as nested objects.
fn delta_members(texts: Vec<(Key, String)>) -> serde_json::Map<String, Value> {
    let mut delta = serde_json::Map::new();
    let mut calls = Vec::new();
    for ((_, field, k), text) in texts {
        match field.as_str() {
            "arguments" => calls.push(json!({"index": k, "function": {"arguments": text}})),
            "function_call" => {
                delta.insert("function_call".into(), json!({"arguments": text}));
            }
            _ => {
                let mut keys = field.split('.').rev();
                let mut value = Value::String(text);
                let last = keys.next_back();
                for k in keys {
                    value = json!({ k: value });
                }
                match (last, value) {
                    (Some(top), Value::Object(inner)) => {
                        if let Some(Value::Object(existing)) = delta.get_mut(top) {
                            existing.extend(inner);
                        } else {
                            delta.insert(top.to_string(), Value::Object(inner));
                        }
                    }
                    (Some(top), value) => {
                        delta.insert(top.to_string(), value);
                    }
                    (None, _) => {}
                }
            }
        }
    }
    if !calls.is_empty() {
        delta.insert("tool_calls".into(), Value::Array(calls));
    }
    delta
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
    let mut delta = delta_members(tails);
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
