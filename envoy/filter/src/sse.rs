//! Server-sent events: the framing, parsed incrementally across body callbacks, and the text
//! lanes (one per choice, block or content part and field), each run through the core's
//! streaming matcher. What the events of one API mean is that API's module (`api/`); this file
//! knows only SSE.

use std::collections::{BTreeMap, BTreeSet};

use aigc_edge::{Block, ExplicitLabel, Filter, Hit, PiiKind, Stream};
use serde_json::Value;

use crate::api::Api;

/// One text lane: `(choice or block index, field, tool call or content index)`.
pub type Key = (u64, &'static str, u64);

#[derive(Debug)]
struct Lane {
    stream: Option<Stream>,
    /// Everything output so far (labels included), for APIs whose events repeat the whole text.
    emitted: String,
}

/// One event, as framed.
pub struct Event<'a> {
    /// The event's bytes, blank line included: what goes out when it is passed on unchanged.
    pub raw: &'a [u8],
    /// The `event:` field.
    pub name: Option<&'a str>,
    /// The `data:` lines joined by `\n`.
    pub data: Option<String>,
    /// The line end the event used, for the events written in its place.
    pub newline: &'static str,
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

/// Writes an event with `data` on one `data:` line.
pub fn write_event(out: &mut Vec<u8>, name: Option<&str>, data: &str, newline: &str) {
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
pub fn write_json_event(out: &mut Vec<u8>, name: Option<&str>, value: &Value, newline: &str) {
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

/// The text lanes of one stream, and what they decided: the state an API module's stream
/// events read and write.
#[derive(Debug)]
pub struct Lanes {
    filter: Filter,
    label: Option<ExplicitLabel>,
    lanes: BTreeMap<Key, Lane>,
    labeled: BTreeSet<u64>,
    end_labeled: BTreeSet<u64>,
    keep_emitted: bool,
    /// The first event of the stream, for events of our own (`id`, `model`, …).
    pub template: Option<Value>,
    /// Why the stream was cut, if it was.
    pub blocked: Option<Block>,
    /// The stream ended (or was cut): nothing more goes out.
    pub finished: bool,
    hits: Vec<Hit>,
    pii: Vec<PiiKind>,
}

impl Lanes {
    /// Runs `text` through `key`'s lane; returns the text that has settled.
    pub fn feed(&mut self, key: Key, text: &str) -> String {
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
        if self.keep_emitted {
            if let Some(lane) = self.lanes.get_mut(&key) {
                lane.emitted.push_str(&s);
            }
        }
        s
    }

    /// Ends a lane; returns its held-back text.
    pub fn finish(&mut self, key: Key) -> String {
        let Some(lane) = self.lanes.get_mut(&key) else { return String::new() };
        let Some(stream) = lane.stream.take() else { return String::new() };
        self.absorb(key, stream.finish())
    }

    /// Ends every open lane; returns the held-back texts that were not empty.
    pub fn finish_all(&mut self) -> Vec<(Key, String)> {
        let keys: Vec<Key> = self.lanes.iter().filter(|(_, l)| l.stream.is_some()).map(|(k, _)| *k).collect();
        keys.into_iter().map(|key| (key, self.finish(key))).filter(|(_, tail)| !tail.is_empty()).collect()
    }

    /// The explicit label's prefix for choice `index`, the first time only.
    pub fn start_label(&mut self, index: u64) -> Option<String> {
        let prefix = self.label.as_ref()?.prefix()?;
        self.labeled.insert(index).then_some(prefix)
    }

    /// The explicit label's suffix for choice `index`, the first time only.
    pub fn end_label(&mut self, index: u64) -> Option<String> {
        let suffix = self.label.as_ref()?.suffix()?;
        self.end_labeled.insert(index).then_some(suffix)
    }

    /// True when choice `index` still waits for a start label.
    pub fn awaits_start_label(&self, index: u64) -> bool {
        self.label.as_ref().is_some_and(|l| l.prefix().is_some()) && !self.labeled.contains(&index)
    }

    /// Choices that got a start label.
    pub fn labeled(&self) -> impl Iterator<Item = u64> + '_ {
        self.labeled.iter().copied()
    }

    /// Every choice or block with a lane.
    pub fn indices(&self) -> BTreeSet<u64> {
        self.lanes.keys().map(|k| k.0).collect()
    }

    /// The lanes of choice `index`.
    pub fn keys_of(&self, index: u64) -> Vec<Key> {
        self.lanes.keys().filter(|k| k.0 == index).copied().collect()
    }

    /// Everything a lane has output (APIs that repeat the whole text only).
    pub fn emitted(&self, key: Key) -> Option<&str> {
        self.lanes.get(&key).map(|l| l.emitted.as_str())
    }

    /// The same, to add a label to.
    pub fn emitted_mut(&mut self, key: Key) -> Option<&mut String> {
        self.lanes.get_mut(&key).map(|l| &mut l.emitted)
    }
}

/// Rewrites an SSE response body chunk by chunk.
#[derive(Debug)]
pub struct SseFilter {
    api: Api,
    /// Bytes of an event not yet complete.
    partial: Vec<u8>,
    lanes: Lanes,
}

impl SseFilter {
    /// A rewriter for one response of `api`.
    pub fn new(api: Api, filter: Filter, label: Option<ExplicitLabel>) -> SseFilter {
        let lanes = Lanes {
            filter,
            label,
            lanes: BTreeMap::new(),
            labeled: BTreeSet::new(),
            end_labeled: BTreeSet::new(),
            keep_emitted: api.repeats_text(),
            template: None,
            blocked: None,
            finished: false,
            hits: Vec::new(),
            pii: Vec::new(),
        };
        SseFilter { api, partial: Vec::new(), lanes }
    }

    /// Why the stream was cut, if it was.
    pub fn blocked(&self) -> Option<&Block> {
        self.lanes.blocked.as_ref()
    }

    /// Bytes held in incomplete events and undecided text.
    pub fn carry(&self) -> usize {
        self.partial.len()
            + self.lanes.lanes.values().filter_map(|l| l.stream.as_ref()).map(Stream::carry).sum::<usize>()
    }

    /// Hits decided so far and not yet taken.
    pub fn take_hits(&mut self) -> Vec<Hit> {
        std::mem::take(&mut self.lanes.hits)
    }

    /// Kinds of personal information found so far and not yet taken.
    pub fn take_pii(&mut self) -> Vec<PiiKind> {
        std::mem::take(&mut self.lanes.pii)
    }

    /// Takes a body chunk; returns the bytes to send on. After a block, everything is dropped.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.lanes.blocked.is_some() || self.lanes.finished {
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
            if self.lanes.blocked.is_some() || self.lanes.finished {
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
            if !self.lanes.finished && self.lanes.blocked.is_none() {
                self.flush_all(&mut out);
            }
        }
        out
    }

    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let event = parse_event(raw);
        let Some(data) = event.data.as_deref() else {
            out.extend_from_slice(event.raw);
            return;
        };
        if data.trim() == "[DONE]" {
            self.flush_all(out);
            if self.lanes.blocked.is_none() {
                out.extend_from_slice(event.raw);
            }
            self.lanes.finished = true;
            return;
        }
        if self.api.stream_fast(&mut self.lanes, &event, data, out) {
            return;
        }
        let Ok(mut value) = serde_json::from_str::<Value>(data) else {
            out.extend_from_slice(event.raw);
            return;
        };
        self.api.stream_event(&mut self.lanes, &event, &mut value, out);
    }

    /// At the end of the stream: every lane's held-back text, as events of the stream's kind,
    /// or the API's block events.
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        let pieces = self.lanes.finish_all();
        if self.lanes.blocked.is_some() {
            self.api.stream_block(&mut self.lanes, out, "\n");
            return;
        }
        self.api.stream_flush(&mut self.lanes, pieces, out);
    }
}
