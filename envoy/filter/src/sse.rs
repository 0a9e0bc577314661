//! Server-sent events: the framing (per the HTML standard: lines end with CRLF, LF or a bare
//! CR, a leading byte-order mark is dropped, `data:` lines join with `\n`, events end at a
//! blank line), parsed incrementally across body callbacks with the pending event bounded;
//! and the text lanes (one per choice, block or part and field), each run through the core's
//! streaming matcher. What the events of one API mean is that API's module (`api/`); this file
//! knows only SSE and lanes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use aigc_edge::policy::OnLimit;
use aigc_edge::{Action, Block, ExplicitLabel, Filter, Hit, PiiKind, Stream};

use crate::api::Api;
use crate::config::Roles;
use crate::inspect::inspect_except;
use crate::json::{quote, Doc};

/// One text lane: `(choice or block index, field, tool call or content index)`.
pub type Key = (u64, String, u64);

#[derive(Debug)]
struct Lane {
    stream: Option<Stream>,
    /// Everything output so far (labels included), for APIs whose events repeat the whole text.
    emitted: String,
    /// The last input bytes and the stream offset of the first, so a hit's bytes can be hashed.
    window: Vec<u8>,
    window_start: usize,
}

/// The lanes of a stream in order of first appearance, found by a borrowed key: a stream has a
/// handful, and a lookup then allocates nothing.
#[derive(Debug, Default)]
struct LaneMap(Vec<(Key, Lane)>);

impl LaneMap {
    fn position(&self, index: u64, field: &str, sub: u64) -> Option<usize> {
        self.0.iter().position(|((i, f, s), _)| *i == index && f == field && *s == sub)
    }

    fn get(&self, key: &Key) -> Option<&Lane> {
        self.position(key.0, &key.1, key.2).and_then(|p| self.0.get(p)).map(|(_, l)| l)
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Lane> {
        self.position(key.0, &key.1, key.2).and_then(|p| self.0.get_mut(p)).map(|(_, l)| l)
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &Lane)> {
        self.0.iter().map(|(k, l)| (k, l))
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.0.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &Lane> {
        self.0.iter().map(|(_, l)| l)
    }
}

/// One event, as framed.
#[derive(Debug)]
pub struct Event<'a> {
    /// The event's bytes, blank line included: what goes out when nothing changes.
    pub raw: &'a [u8],
    /// The same, as text.
    text: &'a str,
    /// The `event` field.
    pub name: Option<&'a str>,
    /// The `data` lines joined by `\n` (borrowed when there is one).
    pub data: Option<Cow<'a, str>>,
    /// Every line is a `data` line: a rewrite is one line and the blank one.
    only_data: bool,
    /// The line end the event used, for what is written in its place.
    pub newline: &'static str,
    /// A line of newline-delimited JSON rather than an event.
    ndjson: bool,
}

/// How a stream frames its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Server-sent events.
    Sse,
    /// Newline-delimited JSON (Ollama): each line one JSON object.
    Ndjson,
}

/// A line of newline-delimited JSON, or `None` when it is not UTF-8.
fn parse_line(raw: &[u8]) -> Option<Event<'_>> {
    let text = std::str::from_utf8(raw).ok()?;
    let line = text.trim_end_matches(['\r', '\n']);
    let newline = if text[line.len()..].starts_with("\r\n") { "\r\n" } else { "\n" };
    let data = (!line.trim().is_empty()).then_some(Cow::Borrowed(line));
    Some(Event { raw, text: line, name: None, data, newline, ndjson: true, only_data: true })
}

/// The lines of an event, without line ends, up to its blank line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr2(b'\r', b'\n', rest.as_bytes()).unwrap_or(rest.len());
        let line = rest.get(..end).unwrap_or("");
        let skip = if rest.as_bytes().get(end..end + 2) == Some(b"\r\n") { 2 } else { usize::from(end < rest.len()) };
        rest = rest.get(end + skip..).unwrap_or("");
        (!line.is_empty()).then_some(line)
    })
}

/// An event's fields, or `None` when its bytes are not UTF-8 (unreadable).
fn parse_event(raw: &[u8]) -> Option<Event<'_>> {
    let text = std::str::from_utf8(raw).ok()?;
    let newline = match memchr::memchr2(b'\r', b'\n', raw) {
        Some(i) if raw.get(i..i + 2) == Some(b"\r\n") => "\r\n",
        Some(i) if raw.get(i) == Some(&b'\r') => "\r",
        _ => "\n",
    };
    let mut name = None;
    let mut data: Option<Cow<'_, str>> = None;
    let mut only_data = true;
    for line in lines(text) {
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut data {
                Some(d) => {
                    let d = d.to_mut();
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(Cow::Borrowed(value)),
            },
            "event" => {
                name = Some(value);
                only_data = false;
            }
            _ => only_data = false,
        }
    }
    Some(Event { raw, text, name, data, newline, ndjson: false, only_data })
}

impl Event<'_> {
    /// Writes the event with `data` in place of its `data:` lines; every other line (`id:`,
    /// `retry:`, `event:`, comments) is kept where it was.
    pub fn write(&self, out: &mut Vec<u8>, data: &str) {
        if self.ndjson {
            out.extend_from_slice(data.replace('\n', " ").as_bytes());
            out.extend_from_slice(self.newline.as_bytes());
            return;
        }
        if self.only_data {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(one_line(data).as_bytes());
            out.extend_from_slice(self.newline.as_bytes());
            out.extend_from_slice(self.newline.as_bytes());
            return;
        }
        let mut wrote = false;
        for line in lines(self.text) {
            let is_data = line.split_once(':').map_or(line, |(f, _)| f) == "data";
            if is_data {
                if !wrote {
                    // One `data:` line: clients that parse each line on its own read it too.
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(one_line(data).as_bytes());
                    out.extend_from_slice(self.newline.as_bytes());
                    wrote = true;
                }
                continue;
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(self.newline.as_bytes());
        }
        out.extend_from_slice(self.newline.as_bytes());
    }
}

/// JSON text on one line: a line end between tokens becomes a space, one inside a string (read
/// leniently) its escape; the value is the same.
fn one_line(json: &str) -> std::borrow::Cow<'_, str> {
    if memchr::memchr2(b'\n', b'\r', json.as_bytes()).is_none() {
        return json.into();
    }
    let mut out = String::with_capacity(json.len() + 8);
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        match c {
            '\n' | '\r' if in_string => out.push_str(if c == '\n' { "\\n" } else { "\\r" }),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
        if in_string && !escaped && c == '"' {
            in_string = false;
        } else if !in_string && c == '"' {
            in_string = true;
        }
        escaped = in_string && !escaped && c == '\\';
    }
    out.into()
}

/// Writes an event of our own, `data` on one line.
pub fn write_event(out: &mut Vec<u8>, name: Option<&str>, data: &str, newline: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(newline.as_bytes());
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(newline.as_bytes());
    out.extend_from_slice(newline.as_bytes());
}

/// Where framing stands in the pending bytes: the next byte to look at and where its line
/// began, so each byte is scanned once however the event arrives.
#[derive(Debug, Default)]
struct Framing {
    at: usize,
    line_start: usize,
    /// Every line is a message (newline-delimited JSON).
    lines: bool,
}

impl Framing {
    /// One past the blank line that ends the first complete event of `bytes`, if any. A CR
    /// at the very end waits for the next byte (it may start a CRLF) unless `end`.
    fn event_end(&mut self, bytes: &[u8], end: bool) -> Option<usize> {
        while self.at < bytes.len() {
            let Some(found) = memchr::memchr2(b'\n', b'\r', bytes.get(self.at..).unwrap_or(&[])) else {
                self.at = bytes.len();
                return None;
            };
            self.at += found;
            let b = bytes.get(self.at).copied().unwrap_or(b'\n');
            let mut next = self.at + 1;
            if b == b'\r' {
                if next == bytes.len() && !end {
                    return None;
                }
                if bytes.get(next) == Some(&b'\n') {
                    next += 1;
                }
            }
            let blank = self.at == self.line_start;
            self.at = next;
            self.line_start = next;
            if blank || self.lines {
                *self = Framing { lines: self.lines, ..Framing::default() };
                return Some(next);
            }
        }
        None
    }
}

/// The text lanes of one stream, and what they decided: the state an API module's stream
/// events read and write.
#[derive(Debug)]
pub struct Lanes {
    filter: Filter,
    label: Option<ExplicitLabel>,
    lanes: LaneMap,
    /// Tool-call arguments and other JSON arriving in pieces, held until whole (apps parse it).
    held: BTreeMap<Key, String>,
    labeled: Vec<u64>,
    end_labeled: Vec<u64>,
    keep_emitted: bool,
    /// Members of the stream's first event (`id`, `model`, …) as raw JSON, for events of our own.
    pub template: Option<Vec<(String, String)>>,
    /// Why the stream was cut, if a keyword, personal information or a limit cut it.
    pub blocked: Option<Block>,
    /// The stream was cut at an event that could not be read.
    unreadable_cut: bool,
    /// The stream ended (or was cut): nothing more goes out.
    pub finished: bool,
    hits: Vec<(Hit, Vec<u8>)>,
    pii: Vec<PiiKind>,
    unreadable: Vec<Action>,
}

impl Lanes {
    /// Runs `text` through `key`'s lane; returns the text that has settled. A lane that was
    /// finished starts again: content after a finish is inspected like any other.
    pub fn feed(&mut self, key: &Key, text: &str) -> String {
        self.feed_at(key.0, &key.1, key.2, text)
    }

    /// [`Lanes::feed`] by the key's parts: nothing is allocated for a lane that exists.
    pub fn feed_at(&mut self, index: u64, field: &str, sub: u64, text: &str) -> String {
        let filter = &self.filter;
        let keep = filter.policy().limits.max_carry_bytes + 4096;
        let at = match self.lanes.position(index, field, sub) {
            Some(at) => at,
            None => {
                let lane = Lane { stream: None, emitted: String::new(), window: Vec::new(), window_start: 0 };
                self.lanes.0.push(((index, field.to_string(), sub), lane));
                self.lanes.0.len() - 1
            }
        };
        let Some((_, lane)) = self.lanes.0.get_mut(at) else { return String::new() };
        if lane.stream.is_none() {
            lane.stream = Some(filter.stream());
            lane.window.clear();
            lane.window_start = 0;
        }
        lane.window.extend_from_slice(text.as_bytes());
        if lane.window.len() > 2 * keep {
            let drop = lane.window.len() - keep;
            lane.window.drain(..drop);
            lane.window_start += drop;
        }
        let Some(stream) = lane.stream.as_mut() else { return String::new() };
        let Ok(chunk) = stream.write(text.as_bytes()) else { return String::new() };
        self.absorb(at, chunk)
    }

    /// Takes the chunk of the lane at `at`: hits (with their bytes), personal information and
    /// a block are kept, the settled text returned.
    fn absorb(&mut self, at: usize, chunk: aigc_edge::Chunk) -> String {
        let lane = self.lanes.0.get_mut(at).map(|(_, l)| l);
        for hit in chunk.hits {
            let matched = lane
                .as_ref()
                .and_then(|l| {
                    l.window.get(hit.start.checked_sub(l.window_start)?..hit.end.checked_sub(l.window_start)?)
                })
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            self.hits.push((hit, matched));
        }
        self.pii.extend(chunk.pii.iter().map(|p| p.kind));
        if chunk.blocked.is_some() && self.blocked.is_none() {
            self.blocked = chunk.blocked;
        }
        let s = String::from_utf8_lossy(&chunk.output).into_owned();
        if self.keep_emitted {
            if let Some(lane) = lane {
                lane.emitted.push_str(&s);
            }
        }
        s
    }

    /// Ends a lane; returns its held-back text.
    pub fn finish(&mut self, key: &Key) -> String {
        let Some(at) = self.lanes.position(key.0, &key.1, key.2) else { return String::new() };
        let Some(stream) = self.lanes.0.get_mut(at).and_then(|(_, l)| l.stream.take()) else { return String::new() };
        self.absorb(at, stream.finish())
    }

    /// Ends every open lane and releases every held JSON; returns what they held that was not
    /// empty, lanes first.
    pub fn finish_all(&mut self) -> Vec<(Key, String)> {
        let keys: Vec<Key> = self.lanes.iter().filter(|(_, l)| l.stream.is_some()).map(|(k, _)| k.clone()).collect();
        let mut out: Vec<(Key, String)> = keys.into_iter().map(|k| (k.clone(), self.finish(&k))).collect();
        let held: Vec<Key> = self.held.keys().cloned().collect();
        out.extend(held.into_iter().map(|k| (k.clone(), self.release(&k))));
        out.retain(|(_, tail)| !tail.is_empty());
        out
    }

    /// Holds a piece of JSON text (tool-call arguments) until the whole parses; then inspects
    /// the strings inside, decoded, and returns the text to send. Past the carry limit the
    /// policy's `on_limit` decides.
    pub fn hold(&mut self, key: &Key, piece: &str) -> Option<String> {
        let text = self.held.entry(key.clone()).or_default();
        text.push_str(piece);
        let limit = self.filter.policy().limits.max_carry_bytes;
        if text.trim().is_empty() {
            return None;
        }
        if let Ok(doc) = Doc::parse_str(text) {
            self.held.remove(key);
            return Some(self.inspect_whole(&doc));
        }
        if text.len() > limit {
            return match self.filter.policy().on_limit {
                OnLimit::FailClosed => {
                    self.blocked.get_or_insert(Block::CarryLimit { limit });
                    self.held.remove(key);
                    None
                }
                OnLimit::FailOpen => Some(self.release(key)),
            };
        }
        None
    }

    /// A held JSON text that never completed: checked as the text it is.
    pub fn release(&mut self, key: &Key) -> String {
        let Some(text) = self.held.remove(key) else { return String::new() };
        match Doc::parse_str(&text) {
            Ok(doc) => self.inspect_whole(&doc),
            Err(_) => {
                let d = self.filter.check(&text);
                self.take_decision(&text, d.clone());
                d.text.unwrap_or(text)
            }
        }
    }

    /// A whole JSON value, inspected decoded; returns its text with any masks.
    fn inspect_whole(&mut self, doc: &Doc) -> String {
        let ins = inspect_except(&self.filter, doc, Roles::All, &|_| false);
        for (text, d) in &ins.decisions {
            self.take_decision(text, d.clone());
        }
        doc.rewrite_text(&mut ins.edits(doc))
    }

    fn take_decision(&mut self, text: &str, d: aigc_edge::Decision) {
        for hit in d.hits {
            let matched = text.as_bytes().get(hit.start..hit.end).unwrap_or(&[]).to_vec();
            if hit.action == Action::Block && self.blocked.is_none() {
                self.blocked = Some(Block::Keyword(hit.clone()));
            }
            self.hits.push((hit, matched));
        }
        for p in &d.pii {
            if self.filter.policy().pii.action == Action::Block && self.blocked.is_none() {
                self.blocked = Some(Block::PersonalInformation(p.clone()));
            }
        }
        self.pii.extend(d.pii.iter().map(|p| p.kind));
        if d.limit_exceeded && d.action == Action::Block && self.blocked.is_none() {
            self.blocked = Some(Block::CarryLimit { limit: self.filter.policy().limits.max_text_bytes });
        }
    }

    /// Inspects every string of an event that `handled` does not name (deny by default: the
    /// next field of the next API version is covered); returns the edits that mask them.
    pub fn inspect_rest(&mut self, doc: &Doc, handled: &[usize]) -> Vec<(core::ops::Range<usize>, String)> {
        let ins = inspect_except(&self.filter, doc, Roles::All, &|i| handled.contains(&i));
        for (text, d) in &ins.decisions {
            self.take_decision(text, d.clone());
        }
        ins.edits(doc)
    }

    /// True when choice `index` still waits for its start label.
    pub fn awaits_start_label(&self, index: u64) -> bool {
        self.label.as_ref().is_some_and(|l| l.prefix().is_some()) && !self.labeled.contains(&index)
    }

    /// True once the stream must be cut: blocked, or unreadable under fail-closed.
    pub fn cut(&self) -> bool {
        self.blocked.is_some() || self.unreadable_cut
    }

    /// The explicit label's prefix for choice `index`, the first time only.
    pub fn start_label(&mut self, index: u64) -> Option<String> {
        let prefix = self.label.as_ref()?.prefix()?;
        if self.labeled.contains(&index) {
            return None;
        }
        self.labeled.push(index);
        Some(prefix)
    }

    /// The explicit label's suffix for choice `index`, the first time only.
    pub fn end_label(&mut self, index: u64) -> Option<String> {
        let suffix = self.label.as_ref()?.suffix()?;
        if self.end_labeled.contains(&index) {
            return None;
        }
        self.end_labeled.push(index);
        Some(suffix)
    }

    /// Choices that got a start label.
    pub fn labeled(&self) -> Vec<u64> {
        self.labeled.clone()
    }

    /// Every choice or block with a lane or held JSON.
    pub fn indices(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.lanes.keys().chain(self.held.keys()).map(|k| k.0).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The open lanes and held JSON of choice `index`.
    pub fn keys_of(&self, index: u64) -> Vec<Key> {
        let open = self.lanes.iter().filter(|(k, l)| k.0 == index && l.stream.is_some()).map(|(k, _)| k.clone());
        open.chain(self.held.keys().filter(|k| k.0 == index).cloned()).collect()
    }

    /// True when `key` is held JSON rather than a text lane.
    pub fn is_held(&self, key: &Key) -> bool {
        self.held.contains_key(key)
    }

    /// Everything a lane has output (APIs that repeat the whole text only).
    pub fn emitted(&self, key: &Key) -> Option<&str> {
        self.lanes.get(key).map(|l| l.emitted.as_str())
    }

    /// The same, to add a label to.
    pub fn emitted_mut(&mut self, key: &Key) -> Option<&mut String> {
        self.lanes.get_mut(key).map(|l| &mut l.emitted)
    }

    /// Keeps the first event's identifying members (`id`, `object`, `created`, `model`, …) for
    /// events of our own.
    pub fn keep_template(&mut self, doc: &Doc, keys: &[&str]) {
        if self.template.is_some() {
            return;
        }
        let members = keys
            .iter()
            .filter_map(|k| doc.root.get(doc, k).map(|v| (quote(k), doc.scalar(&v.range(doc)).to_string())))
            .collect();
        self.template = Some(members);
    }

    /// A JSON object of the template's members and `rest` (raw `"key":value` members).
    pub fn from_template(&self, rest: &str) -> String {
        let mut members: Vec<String> = self.template.iter().flatten().map(|(k, v)| format!("{k}:{v}")).collect();
        if !rest.is_empty() {
            members.push(rest.to_string());
        }
        format!("{{{}}}", members.join(","))
    }
}

/// Rewrites an SSE response body chunk by chunk.
#[derive(Debug)]
pub struct SseFilter {
    api: Api,
    format: Format,
    /// Bytes of an event not yet complete.
    partial: Vec<u8>,
    framing: Framing,
    /// The stream's first bytes were looked at for a byte-order mark.
    started: bool,
    /// The most bytes one pending event may hold.
    event_limit: usize,
    lanes: Lanes,
}

impl SseFilter {
    /// A rewriter for one response of `api`; one event may hold at most `event_limit` bytes.
    pub fn new(
        api: Api,
        format: Format,
        filter: Filter,
        label: Option<ExplicitLabel>,
        event_limit: usize,
    ) -> SseFilter {
        let lanes = Lanes {
            filter,
            label,
            lanes: LaneMap::default(),
            held: BTreeMap::new(),
            labeled: Vec::new(),
            end_labeled: Vec::new(),
            keep_emitted: api.repeats_text(),
            template: None,
            blocked: None,
            unreadable_cut: false,
            finished: false,
            hits: Vec::new(),
            pii: Vec::new(),
            unreadable: Vec::new(),
        };
        let framing = Framing { lines: format == Format::Ndjson, ..Framing::default() };
        SseFilter { api, format, partial: Vec::new(), framing, started: false, event_limit, lanes }
    }

    /// Why the stream was cut, if a keyword, personal information or a limit cut it.
    pub fn blocked(&self) -> Option<&Block> {
        self.lanes.blocked.as_ref()
    }

    /// True once the stream was cut, for any reason.
    pub fn cut(&self) -> bool {
        self.lanes.cut()
    }

    /// Bytes held in incomplete events, undecided text and held JSON.
    pub fn carry(&self) -> usize {
        self.partial.len()
            + self.lanes.lanes.values().filter_map(|l| l.stream.as_ref()).map(Stream::carry).sum::<usize>()
            + self.lanes.held.values().map(String::len).sum::<usize>()
    }

    /// Hits decided so far and not yet taken, each with the bytes it matched.
    pub fn take_hits(&mut self) -> Vec<(Hit, Vec<u8>)> {
        std::mem::take(&mut self.lanes.hits)
    }

    /// Kinds of personal information found so far and not yet taken.
    pub fn take_pii(&mut self) -> Vec<PiiKind> {
        std::mem::take(&mut self.lanes.pii)
    }

    /// Events that could not be read, with what was done with each (block or pass).
    pub fn take_unreadable(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.lanes.unreadable)
    }

    fn fail_closed(&self) -> bool {
        self.lanes.filter.policy().on_limit == OnLimit::FailClosed
    }

    /// Takes a body chunk; returns the bytes to send on. After a block, everything is dropped.
    pub fn push(&mut self, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.lanes.cut() || self.lanes.finished {
            return out;
        }
        self.partial.extend_from_slice(chunk);
        if !self.started {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.partial.len() < BOM.len() && BOM.starts_with(&self.partial) && !end_of_stream {
                return out;
            }
            self.started = true;
            if self.partial.starts_with(BOM) {
                out.extend_from_slice(BOM);
                self.partial.drain(..BOM.len());
            }
        }
        // Events are taken by offset and the buffer drained once: draining per event would
        // move the rest of a large chunk once per event.
        let partial = std::mem::take(&mut self.partial);
        let mut from = 0;
        while let Some(len) = self.framing.event_end(&partial[from..], end_of_stream) {
            self.event(&partial[from..from + len], &mut out);
            from += len;
            if self.lanes.cut() || self.lanes.finished {
                return out;
            }
        }
        self.partial = partial;
        self.partial.drain(..from);
        if self.partial.len() > self.event_limit {
            // An event that does not end: cut (fail-closed) or passed unread (fail-open).
            if self.fail_closed() {
                self.lanes.unreadable.push(Action::Block);
                self.lanes.blocked = Some(Block::CarryLimit { limit: self.event_limit });
                self.api.stream_block(&mut self.lanes, &mut out, "\n");
                return out;
            }
            self.lanes.unreadable.push(Action::Pass);
            out.append(&mut self.partial);
            self.framing = Framing { lines: self.format == Format::Ndjson, ..Framing::default() };
        }
        if end_of_stream {
            if !self.partial.is_empty() {
                // A last event without its blank line (a last line without its line end).
                let mut raw = std::mem::take(&mut self.partial);
                let missing = raw.len();
                raw.extend_from_slice(if self.format == Format::Sse { b"\n\n" } else { b"\n" });
                let mut last = Vec::new();
                self.event(&raw, &mut last);
                if last.ends_with(&raw) {
                    // Passed unchanged: without the line ends it never had.
                    last.truncate(last.len() - raw.len() + missing);
                }
                out.append(&mut last);
            }
            if !self.lanes.finished && self.lanes.blocked.is_none() {
                self.flush_all(&mut out);
            }
        }
        out
    }

    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let mut parsed = match self.format {
            Format::Sse => parse_event(raw),
            Format::Ndjson => parse_line(raw),
        };
        let Some(event) = parsed.as_mut() else {
            self.unreadable(raw, out, "\n");
            return;
        };
        let Some(data) = event.data.take() else {
            out.extend_from_slice(event.raw);
            return;
        };
        let event = &*event;
        if data.trim() == "[DONE]" && self.format == Format::Sse {
            self.flush_all(out);
            if self.lanes.blocked.is_none() {
                out.extend_from_slice(event.raw);
            }
            self.lanes.finished = true;
            return;
        }
        if self.api.stream_fast(&mut self.lanes, event, &data, out) {
            if self.lanes.cut() && !self.lanes.finished {
                self.api.stream_block(&mut self.lanes, out, event.newline);
                self.lanes.finished = true;
            }
            return;
        }
        match Doc::parse_string(data.into_owned()) {
            Ok(doc) => {
                self.api.stream_event(&mut self.lanes, event, &doc, out);
                if self.lanes.cut() && !self.lanes.finished {
                    self.api.stream_block(&mut self.lanes, out, event.newline);
                    self.lanes.finished = true;
                }
            }
            Err(_) => self.unreadable(raw, out, event.newline),
        }
    }

    /// An event that cannot be read: the stream is cut (fail-closed) or it passes unread.
    fn unreadable(&mut self, raw: &[u8], out: &mut Vec<u8>, newline: &str) {
        if self.fail_closed() {
            self.lanes.unreadable.push(Action::Block);
            self.lanes.unreadable_cut = true;
            self.api.stream_block(&mut self.lanes, out, newline);
            self.lanes.finished = true;
        } else {
            self.lanes.unreadable.push(Action::Pass);
            out.extend_from_slice(raw);
        }
    }

    /// At the end of the stream: every lane's held-back text, as events of the stream's kind,
    /// or the API's block events.
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        let pieces = self.lanes.finish_all();
        if self.lanes.cut() {
            self.api.stream_block(&mut self.lanes, out, "\n");
            self.lanes.finished = true;
            return;
        }
        self.api.stream_flush(&mut self.lanes, pieces, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_a_blank_line_whatever_the_line_ends() {
        let cases: [(&[u8], &[&[u8]]); 7] = [
            (b"data: a\n\ndata: b\n\n", &[b"data: a\n\n", b"data: b\n\n"]),
            (b"data: a\r\n\r\ndata: b\r\n\r\n", &[b"data: a\r\n\r\n", b"data: b\r\n\r\n"]),
            // The last CR waits: it may be the first half of a CRLF.
            (b"data: a\r\rdata: b\r\r", &[b"data: a\r\r"]),
            (b"data: a\r\rdata: b\r\rx", &[b"data: a\r\r", b"data: b\r\r"]),
            (b"id: 1\ndata: a\ndata: b\n\n", &[b"id: 1\ndata: a\ndata: b\n\n"]),
            (b"data: a\r\n\ndata: b\n\r\n", &[b"data: a\r\n\n", b"data: b\n\r\n"]),
            (b"data: a\n", &[]),
        ];
        for (bytes, want) in cases {
            let mut f = Framing::default();
            let mut got: Vec<&[u8]> = Vec::new();
            let mut from = 0;
            while let Some(len) = f.event_end(&bytes[from..], false) {
                got.push(&bytes[from..from + len]);
                from += len;
            }
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(bytes));
        }
        // A CR at the end waits: it may be the start of a CRLF.
        assert_eq!(Framing::default().event_end(b"data: a\r\n\r", false), None);
        assert_eq!(Framing::default().event_end(b"data: a\r\n\r", true), Some(10));
    }

    #[test]
    fn a_rewritten_event_keeps_its_other_lines() {
        let e = parse_event(b"id: 7\r\nevent: x\r\ndata: {\"a\":\r\ndata: 1}\r\nretry: 5\r\n\r\n").unwrap();
        assert_eq!(lines(e.text).count(), 5);
        assert_eq!((e.name, e.data.as_deref(), e.newline), (Some("x"), Some("{\"a\":\n1}"), "\r\n"));
        let mut out = Vec::new();
        e.write(&mut out, "{\"a\":2}");
        assert_eq!(String::from_utf8(out).unwrap(), "id: 7\r\nevent: x\r\ndata: {\"a\":2}\r\nretry: 5\r\n\r\n");
        assert!(parse_event(b"data: \xff\n\n").is_none());
    }
}
