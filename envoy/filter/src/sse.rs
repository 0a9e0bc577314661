//! Server-sent events: parsed incrementally across body callbacks, each generated text run
//! through the core's streaming matcher, the events rewritten with what has settled.

use std::collections::{BTreeMap, BTreeSet};

use aigc_edge::{Block, Filter, Hit, Stream};
use serde_json::{json, Value};

use crate::api::Api;
use crate::config::LabelPosition;

/// One text lane: `(choice or block index, field, tool call or content index)`.
type Key = (u64, &'static str, u64);

#[derive(Debug)]
struct Lane {
    stream: Option<Stream>,
    /// Everything output so far (labels included), for events that repeat the whole text.
    emitted: String,
}

/// Rewrites an SSE response body chunk by chunk.
#[derive(Debug)]
pub struct SseFilter {
    api: Api,
    filter: Filter,
    label: Option<(String, LabelPosition)>,
    /// Bytes of an event not yet complete.
    partial: Vec<u8>,
    lanes: BTreeMap<Key, Lane>,
    labeled: BTreeSet<u64>,
    /// The last chat chunk, to build events of our own (`id`, `model`, …).
    template: Option<Value>,
    blocked: Option<Block>,
    finished: bool,
    end_labeled: BTreeSet<u64>,
    /// Hits decided so far and not yet taken.
    pub hits: Vec<Hit>,
    /// Kinds of personal information found so far and not yet taken.
    pub pii: Vec<aigc_edge::PiiKind>,
}

struct Event<'a> {
    raw: &'a [u8],
    name: Option<&'a str>,
    data: Option<String>,
    newline: &'static str,
}

fn parse_event(raw: &[u8]) -> Event<'_> {
    let newline = if raw.windows(2).any(|w| w == b"\r\n") { "\r\n" } else { "\n" };
    let text = std::str::from_utf8(raw).unwrap_or("");
    let mut name = None;
    let mut data: Option<String> = None;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => data = Some(v.to_string()),
            }
        } else if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim());
        }
    }
    Event { raw, name, data, newline }
}

fn write_event(out: &mut Vec<u8>, name: Option<&str>, data: &str, newline: &str) {
    write_head(out, name, newline);
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(newline.as_bytes());
    out.extend_from_slice(newline.as_bytes());
}

fn write_head(out: &mut Vec<u8>, name: Option<&str>, newline: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(newline.as_bytes());
    }
    out.extend_from_slice(b"data: ");
}

/// An event whose data is `value`, serialized straight into `out`.
fn write_json_event(out: &mut Vec<u8>, name: Option<&str>, value: &Value, newline: &str) {
    write_head(out, name, newline);
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(newline.as_bytes());
    out.extend_from_slice(newline.as_bytes());
}

/// Index one past the blank line that ends the first complete event, if any.
fn event_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let next = &bytes[i + 1..];
            if next.first() == Some(&b'\n') {
                return Some(i + 2);
            }
            if next.starts_with(b"\r\n") {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

impl SseFilter {
    /// A rewriter for one response.
    pub fn new(api: Api, filter: Filter, label: Option<(String, LabelPosition)>) -> SseFilter {
        SseFilter {
            api,
            filter,
            label: label.filter(|(_, p)| *p != LabelPosition::None),
            partial: Vec::new(),
            lanes: BTreeMap::new(),
            labeled: BTreeSet::new(),
            template: None,
            blocked: None,
            finished: false,
            end_labeled: BTreeSet::new(),
            hits: Vec::new(),
            pii: Vec::new(),
        }
    }

    /// Why the stream was cut, if it was.
    pub fn blocked(&self) -> Option<&Block> {
        self.blocked.as_ref()
    }

    /// Bytes held in incomplete events and undecided text.
    pub fn carry(&self) -> usize {
        self.partial.len() + self.lanes.values().filter_map(|l| l.stream.as_ref()).map(Stream::carry).sum::<usize>()
    }

    /// Takes a body chunk; returns the bytes to send on. After a block, everything is dropped.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.blocked.is_some() || self.finished {
            return out;
        }
        self.partial.extend_from_slice(chunk);
        // Events are taken by offset and the buffer drained once: draining per event would
        // move the rest of a large chunk once per event.
        let partial = std::mem::take(&mut self.partial);
        let mut from = 0;
        while let Some(len) = event_end(&partial[from..]) {
            self.event(&partial[from..from + len], &mut out);
            from += len;
            if self.blocked.is_some() || self.finished {
                return out;
            }
        }
        self.partial = partial;
        self.partial.drain(..from);
        if end_of_stream {
            if !self.partial.is_empty() {
                // A last event without its blank line.
                let mut raw = std::mem::take(&mut self.partial);
                raw.extend_from_slice(b"\n\n");
                self.event(&raw, &mut out);
            }
            if !self.finished && self.blocked.is_none() {
                self.flush_all(&mut out);
            }
        }
        out
    }

    fn feed(&mut self, key: Key, text: &str) -> String {
        let filter = &self.filter;
        let lane =
            self.lanes.entry(key).or_insert_with(|| Lane { stream: Some(filter.stream()), emitted: String::new() });
        let Some(stream) = lane.stream.as_mut() else { return String::new() };
        let Ok(chunk) = stream.write(text.as_bytes()) else { return String::new() };
        self.absorb(key, chunk)
    }

    /// Takes a lane's chunk: hits, personal information and a block are kept, the settled
    /// text returned.
    fn absorb(&mut self, key: Key, chunk: aigc_edge::Chunk) -> String {
        self.hits.extend(chunk.hits);
        self.pii.extend(chunk.pii.iter().map(|p| p.kind));
        if chunk.blocked.is_some() && self.blocked.is_none() {
            self.blocked = chunk.blocked;
        }
        let s = String::from_utf8_lossy(&chunk.output).into_owned();
        if self.api == Api::Responses {
            // Only the Responses API repeats the whole text in later events.
            if let Some(lane) = self.lanes.get_mut(&key) {
                lane.emitted.push_str(&s);
            }
        }
        s
    }

    /// Ends a lane; returns its held-back text.
    fn finish(&mut self, key: Key) -> String {
        let Some(lane) = self.lanes.get_mut(&key) else { return String::new() };
        let Some(stream) = lane.stream.take() else { return String::new() };
        self.absorb(key, stream.finish())
    }

    fn start_label(&mut self, index: u64) -> Option<String> {
        match &self.label {
            Some((text, LabelPosition::Start)) if self.labeled.insert(index) => Some(format!("{text}\n\n")),
            _ => None,
        }
    }

    fn end_label(&mut self, index: u64) -> Option<String> {
        match &self.label {
            Some((text, LabelPosition::End)) if self.end_labeled.insert(index) => Some(format!("\n\n{text}")),
            _ => None,
        }
    }

    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let event = parse_event(raw);
        let Some(data) = event.data.clone() else {
            out.extend_from_slice(event.raw);
            return;
        };
        if data.trim() == "[DONE]" {
            self.flush_all(out);
            if self.blocked.is_none() {
                out.extend_from_slice(event.raw);
            }
            self.finished = true;
            return;
        }
        if matches!(self.api, Api::Chat | Api::Raw) && self.chat_fast(&event, &data, out) {
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else {
            out.extend_from_slice(event.raw);
            return;
        };
        match self.api {
            Api::Anthropic => self.anthropic_event(&event, &mut value, out),
            Api::Responses => self.responses_event(&event, &mut value, out),
            _ => self.chat_event(&event, &mut value, out),
        }
    }

    // ---- OpenAI chat completions chunks ------------------------------------------------------

    fn chat_event(&mut self, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
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
                        let settled = self.feed((index, field, 0), text);
                        delta.insert(field.to_string(), Value::String(settled));
                    }
                }
                if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                    for (k, call) in calls.iter_mut().enumerate() {
                        let k = call.get("index").and_then(Value::as_u64).unwrap_or(k as u64);
                        if let Some(Value::String(args)) = call.pointer("/function/arguments").cloned() {
                            let settled = self.feed((index, "arguments", k), &args);
                            if let Some(slot) = call.pointer_mut("/function/arguments") {
                                *slot = Value::String(settled);
                            }
                        }
                    }
                }
                if let Some(label) = self.start_label(index) {
                    let content = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
                    delta.insert("content".into(), Value::String(format!("{label}{content}")));
                }
            }
            let finishing = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if finishing && self.blocked.is_none() {
                self.close_choice(index, &mut choice);
            }
            rewritten.push(choice);
        }
        value["choices"] = Value::Array(rewritten);
        if self.template.is_none() {
            // `id`, `model`, `created` are the same in every chunk: keep the first chunk's.
            let mut template = value.clone();
            template["choices"] = Value::Array(Vec::new());
            self.template = Some(template);
        }
        write_json_event(out, event.name, value, event.newline);
        if self.blocked.is_some() {
            self.chat_block(out, event.newline);
        }
    }

    /// The fast path for a plain text-delta chat chunk (see [`fast`]); false when the chunk
    /// needs the general path (first chunk, labels to insert, tool calls, a finish reason).
    fn chat_fast(&mut self, event: &Event<'_>, data: &str, out: &mut Vec<u8>) -> bool {
        // A multi-line `data:` field must go out re-serialized on one line: general path.
        if self.template.is_none() || data.contains('\n') {
            return false;
        }
        let Some((deltas, indexes)) = fast::scan(data) else { return false };
        let index_of = |choice: usize| indexes.iter().find(|(c, _)| *c == choice).map_or(choice as u64, |(_, i)| *i);
        if matches!(self.label, Some((_, LabelPosition::Start)))
            && deltas.iter().any(|d| !self.labeled.contains(&index_of(d.choice)))
        {
            return false;
        }
        let mut rewritten = String::with_capacity(data.len());
        let mut at = 0;
        for d in deltas {
            let settled = self.feed((index_of(d.choice), d.field, 0), &d.text);
            rewritten.push_str(&data[at..d.literal.start]);
            // Serializing a string to JSON cannot fail.
            rewritten.push_str(&serde_json::to_string(&settled).unwrap_or_default());
            at = d.literal.end;
        }
        rewritten.push_str(&data[at..]);
        write_event(out, event.name, &rewritten, event.newline);
        if self.blocked.is_some() {
            self.chat_block(out, event.newline);
        }
        true
    }

    /// Puts a choice's held-back text (and an end label) into its finishing chunk.
    fn close_choice(&mut self, index: u64, choice: &mut Value) {
        let keys: Vec<Key> = self.lanes.keys().filter(|k| k.0 == index).copied().collect();
        let mut tails = Vec::new();
        for key in keys {
            let tail = self.finish(key);
            if !tail.is_empty() {
                tails.push((key, tail));
            }
        }
        let end = self.end_label(index);
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

    fn chat_block(&mut self, out: &mut Vec<u8>, newline: &str) {
        let mut last = self.template.clone().unwrap_or_else(|| json!({"object": "chat.completion.chunk"}));
        let indices: BTreeSet<u64> = self.lanes.keys().map(|k| k.0).collect();
        let indices = if indices.is_empty() { BTreeSet::from([0]) } else { indices };
        last["choices"] = Value::Array(
            indices.iter().map(|i| json!({"index": i, "delta": {}, "finish_reason": "content_filter"})).collect(),
        );
        write_event(out, None, &last.to_string(), newline);
        write_event(out, None, "[DONE]", newline);
    }

    /// At the end of the stream: every lane's held-back text, as events of the stream's kind.
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        let keys: Vec<Key> = self.lanes.iter().filter(|(_, l)| l.stream.is_some()).map(|(k, _)| *k).collect();
        let mut pieces: Vec<(Key, String)> = Vec::new();
        for key in keys {
            let tail = self.finish(key);
            if !tail.is_empty() {
                pieces.push((key, tail));
            }
        }
        if self.blocked.is_some() {
            match self.api {
                Api::Anthropic => self.anthropic_block(out, "\n"),
                Api::Responses => self.responses_block(out, "\n"),
                _ => self.chat_block(out, "\n"),
            }
            return;
        }
        if self.api == Api::Chat || self.api == Api::Raw {
            let indices: BTreeSet<u64> = pieces.iter().map(|(k, _)| k.0).chain(self.labeled.iter().copied()).collect();
            for index in indices {
                let mut delta = serde_json::Map::new();
                for ((i, field, _), tail) in &pieces {
                    if *i == index && *field != "arguments" {
                        delta.insert((*field).to_string(), Value::String(tail.clone()));
                    }
                }
                if let Some(end) = self.end_label(index) {
                    let before = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
                    delta.insert("content".into(), Value::String(before + &end));
                }
                if delta.is_empty() {
                    continue;
                }
                let mut chunk = self.template.clone().unwrap_or_else(|| json!({"object": "chat.completion.chunk"}));
                chunk["choices"] = json!([{"index": index, "delta": delta, "finish_reason": null}]);
                write_event(out, None, &chunk.to_string(), "\n");
            }
        } else {
            for ((index, field, sub), tail) in pieces {
                self.write_delta(out, (index, field, sub), &tail, "\n");
            }
        }
    }

    // ---- Anthropic messages events -----------------------------------------------------------

    fn anthropic_event(&mut self, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "content_block_delta" => {
                for field in ["text", "thinking"] {
                    if let Some(Value::String(text)) = value.pointer(&format!("/delta/{field}")).cloned() {
                        let mut settled = self.feed((index, field, 0), &text);
                        if field == "text" {
                            if let Some(label) = self.start_label(0) {
                                settled = label + &settled;
                            }
                        }
                        if let Some(slot) = value.pointer_mut(&format!("/delta/{field}")) {
                            *slot = Value::String(settled);
                        }
                    }
                }
                write_json_event(out, event.name, value, event.newline);
                if self.blocked.is_some() {
                    self.anthropic_block(out, event.newline);
                }
            }
            "content_block_stop" => {
                for field in ["text", "thinking"] {
                    let tail = self.finish((index, field, 0));
                    if !tail.is_empty() {
                        self.write_delta(out, (index, field, 0), &tail, event.newline);
                    }
                }
                if self.blocked.is_some() {
                    self.anthropic_block(out, event.newline);
                } else {
                    out.extend_from_slice(event.raw);
                }
            }
            _ => out.extend_from_slice(event.raw),
        }
    }

    fn anthropic_block(&mut self, out: &mut Vec<u8>, newline: &str) {
        let open: BTreeSet<u64> = self.lanes.keys().map(|k| k.0).collect();
        for index in open {
            write_event(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}).to_string(),
                newline,
            );
        }
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": null}, "usage": {"output_tokens": 0}});
        write_event(out, Some("message_delta"), &delta.to_string(), newline);
        write_event(out, Some("message_stop"), &json!({"type": "message_stop"}).to_string(), newline);
        self.finished = true;
    }

    // ---- OpenAI responses events -------------------------------------------------------------

    fn responses_key(value: &Value) -> Key {
        let output = value.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let content = value.get("content_index").and_then(Value::as_u64).unwrap_or(0);
        (output, "text", content)
    }

    fn responses_event(&mut self, event: &Event<'_>, value: &mut Value, out: &mut Vec<u8>) {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        match kind.as_str() {
            "response.output_text.delta" => {
                let key = Self::responses_key(value);
                let text = value.get("delta").and_then(Value::as_str).unwrap_or("").to_string();
                let mut settled = self.feed(key, &text);
                if let Some(label) = self.start_label(0) {
                    settled = label.clone() + &settled;
                    if let Some(lane) = self.lanes.get_mut(&key) {
                        lane.emitted.insert_str(0, &label);
                    }
                }
                value["delta"] = Value::String(settled);
                write_json_event(out, event.name, value, event.newline);
                if self.blocked.is_some() {
                    self.responses_block(out, event.newline);
                }
            }
            "response.output_text.done" => {
                let key = Self::responses_key(value);
                let tail = self.finish(key);
                if self.blocked.is_some() {
                    self.responses_block(out, event.newline);
                    return;
                }
                if !tail.is_empty() {
                    self.write_delta(out, key, &tail, event.newline);
                }
                if let Some(end) = self.end_label(key.0) {
                    self.write_delta(out, key, &end, event.newline);
                    if let Some(lane) = self.lanes.get_mut(&key) {
                        lane.emitted.push_str(&end);
                    }
                }
                if let Some(lane) = self.lanes.get(&key) {
                    value["text"] = Value::String(lane.emitted.clone());
                }
                write_json_event(out, event.name, value, event.newline);
            }
            // Events that repeat the whole text carry the rewritten text too.
            "response.content_part.done" | "response.output_item.done" | "response.completed" => {
                self.replace_full_texts(value);
                write_json_event(out, event.name, value, event.newline);
            }
            _ => out.extend_from_slice(event.raw),
        }
    }

    fn replace_full_texts(&self, value: &mut Value) {
        let emitted = |o: u64, c: u64| self.lanes.get(&(o, "text", c)).map(|l| l.emitted.clone());
        let output = value.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let content = value.get("content_index").and_then(Value::as_u64).unwrap_or(0);
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

    fn responses_block(&mut self, out: &mut Vec<u8>, newline: &str) {
        let error = json!({"type": "error", "code": "content_filter", "message": "output blocked by content policy", "param": null});
        write_event(out, Some("error"), &error.to_string(), newline);
        self.finished = true;
    }

    /// A delta event of the stream's kind carrying `text` for `key`.
    fn write_delta(&self, out: &mut Vec<u8>, key: Key, text: &str, newline: &str) {
        match self.api {
            Api::Anthropic => {
                let kind = if key.1 == "thinking" { "thinking_delta" } else { "text_delta" };
                let v = json!({"type": "content_block_delta", "index": key.0, "delta": {"type": kind, key.1: text}});
                write_event(out, Some("content_block_delta"), &v.to_string(), newline);
            }
            Api::Responses => {
                let v = json!({"type": "response.output_text.delta", "output_index": key.0, "content_index": key.2, "delta": text});
                write_event(out, Some("response.output_text.delta"), &v.to_string(), newline);
            }
            _ => {}
        }
    }
}

/// The fast path for the common chat chunk — text deltas only — without building a
/// `serde_json::Value`: the event's JSON is scanned once, the delta strings located and
/// decoded, and the settled text spliced back in. Anything else (tool calls, a finish reason,
/// unusual JSON) is left to the general path.
mod fast {
    use core::ops::Range;

    /// A delta text: choice position, field, byte range of the string literal, decoded text.
    pub(super) struct Delta {
        pub(super) choice: usize,
        pub(super) field: &'static str,
        pub(super) literal: Range<usize>,
        pub(super) text: String,
    }

    /// `(choice position, its "index")` pairs.
    pub(super) type Indexes = Vec<(usize, u64)>;

    /// The chunk's deltas and each choice's `index`, or `None` when the chunk is not a plain
    /// text-delta chunk.
    pub(super) fn scan(data: &str) -> Option<(Vec<Delta>, Indexes)> {
        let mut p = Parser { s: data, b: data.as_bytes(), at: 0, deltas: Vec::new(), indexes: Vec::new() };
        p.ws();
        p.value(&mut Vec::new(), 0)?;
        p.ws();
        (p.at == p.b.len()).then_some((p.deltas, p.indexes))
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }

    struct Parser<'a> {
        /// The text; positions are always at ASCII delimiters, so slicing it cannot split a
        /// character.
        s: &'a str,
        b: &'a [u8],
        at: usize,
        deltas: Vec<Delta>,
        indexes: Indexes,
    }

    impl<'a> Parser<'a> {
        fn ws(&mut self) {
            while self.b.get(self.at).is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
                self.at += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            self.ws();
            (self.b.get(self.at) == Some(&c)).then(|| self.at += 1)
        }

        /// Where a value at `path` sits, by the chat chunk layout.
        fn role(path: &[Seg<'_>]) -> Option<(&'static str, usize)> {
            match path {
                [Seg::Key("choices"), Seg::Index(i), Seg::Key("delta"), Seg::Key("content")] => Some(("content", *i)),
                [Seg::Key("choices"), Seg::Index(i), Seg::Key("delta"), Seg::Key("reasoning_content")] => {
                    Some(("reasoning_content", *i))
                }
                _ => None,
            }
        }

        fn value(&mut self, path: &mut Vec<Seg<'a>>, depth: usize) -> Option<()> {
            if depth > 32 {
                return None;
            }
            self.ws();
            match *self.b.get(self.at)? {
                b'{' => {
                    self.at += 1;
                    if self.eat(b'}').is_some() {
                        return Some(());
                    }
                    loop {
                        self.ws();
                        let (raw, escaped) = self.literal()?;
                        if escaped {
                            return None; // escaped keys: not a chunk we rewrite here
                        }
                        let key = self.s.get(raw.start + 1..raw.end - 1)?;
                        self.eat(b':')?;
                        path.push(Seg::Key(key));
                        match path.as_slice() {
                            [Seg::Key("choices"), Seg::Index(_), Seg::Key("delta"), Seg::Key("tool_calls" | "function_call")] => {
                                return None
                            }
                            [Seg::Key("choices"), Seg::Index(_), Seg::Key("finish_reason")] => {
                                self.ws();
                                if !self.b.get(self.at..)?.starts_with(b"null") {
                                    return None;
                                }
                            }
                            _ => {}
                        }
                        self.value(path, depth + 1)?;
                        path.pop();
                        if self.eat(b',').is_none() {
                            return self.eat(b'}');
                        }
                    }
                }
                b'[' => {
                    self.at += 1;
                    if self.eat(b']').is_some() {
                        return Some(());
                    }
                    let mut i = 0;
                    loop {
                        path.push(Seg::Index(i));
                        self.value(path, depth + 1)?;
                        path.pop();
                        i += 1;
                        if self.eat(b',').is_none() {
                            return self.eat(b']');
                        }
                    }
                }
                b'"' => {
                    let (literal, escaped) = self.literal()?;
                    if let Some((field, choice)) = Self::role(path) {
                        let body = self.s.get(literal.start + 1..literal.end - 1)?;
                        let text = if escaped { unescape(body)? } else { body.to_string() };
                        self.deltas.push(Delta { choice, field, literal, text });
                    }
                    Some(())
                }
                _ => {
                    let start = self.at;
                    while self
                        .b
                        .get(self.at)
                        .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                    {
                        self.at += 1;
                    }
                    let token = self.s.get(start..self.at)?;
                    if let [Seg::Key("choices"), Seg::Index(i), Seg::Key("index")] = path.as_slice() {
                        self.indexes.push((*i, token.parse().ok()?));
                    } else if !matches!(token, "null" | "true" | "false") && token.parse::<f64>().is_err() {
                        return None;
                    }
                    Some(())
                }
            }
        }

        /// The byte range of the string literal at `at` (quotes included), and whether it
        /// holds escapes.
        fn literal(&mut self) -> Option<(Range<usize>, bool)> {
            if self.b.get(self.at) != Some(&b'"') {
                return None;
            }
            let start = self.at;
            self.at += 1;
            let mut escaped = false;
            loop {
                match *self.b.get(self.at)? {
                    b'"' => {
                        self.at += 1;
                        return Some((start..self.at, escaped));
                    }
                    b'\\' => {
                        escaped = true;
                        self.at += 2;
                    }
                    c if c < 0x20 => return None, // a raw control character
                    _ => self.at += 1,
                }
            }
        }
    }

    fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
        let h: String = chars.take(4).collect();
        (h.len() == 4).then_some(()).and_then(|_| u32::from_str_radix(&h, 16).ok())
    }

    /// The text of a JSON string body with escapes.
    fn unescape(body: &str) -> Option<String> {
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let unit = hex4(&mut chars)?;
                    let c = if (0xD800..0xDC00).contains(&unit) {
                        if chars.next()? != '\\' || chars.next()? != 'u' {
                            return None;
                        }
                        let low = hex4(&mut chars)?.checked_sub(0xDC00).filter(|l| *l < 0x400)?;
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + low)?
                    } else {
                        char::from_u32(unit)?
                    };
                    out.push(c);
                }
                _ => return None,
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::fast::scan;

    #[test]
    fn fast_scan_table() {
        let cases: [(&str, Option<Vec<(&str, &str)>>); 8] = [
            (
                r#"{"id":"c","choices":[{"index":0,"delta":{"content":"你好"},"finish_reason":null}]}"#,
                Some(vec![("content", "你好")]),
            ),
            (
                r#"{"choices":[{"delta":{"content":"a\"b\\c\n\u4e2d\ud83d\ude00"}}]}"#,
                Some(vec![("content", "a\"b\\c\n中😀")]),
            ),
            (
                r#"{"choices":[{"index":1,"delta":{"reasoning_content":"想","content":"答"}}],"usage":null}"#,
                Some(vec![("reasoning_content", "想"), ("content", "答")]),
            ),
            (r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#, None),
            (r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#, None),
            (r#"{"choices":[{"delta":{"content":"x"}}]} trailing"#, None),
            (r#"{"choices":[{"delta":{"content":"x"#, None),
            (r#"{"choices":[],"created":1.5e3,"flag":true}"#, Some(vec![])),
        ];
        for (json, want) in cases {
            let got = scan(json).map(|(d, _)| d.into_iter().map(|d| (d.field, d.text)).collect::<Vec<_>>());
            let want = want.map(|w| w.into_iter().map(|(f, t)| (f, t.to_string())).collect::<Vec<_>>());
            assert_eq!(got, want, "{json}");
        }
        let (deltas, indexes) = scan(r#"{"choices":[{"delta":{"content":"a"},"index":3}]}"#).unwrap();
        assert_eq!((deltas[0].choice, indexes), (0, vec![(0, 3)]));
    }
}
