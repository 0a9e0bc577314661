//! Server-sent events (and newline-delimited JSON): the framing, per the HTML standard — lines
//! end with CRLF, LF or a bare CR, a leading byte-order mark is dropped, `data:` lines join with
//! `\n`, events end at a blank line — parsed incrementally across body callbacks with the
//! pending event bounded. Each event's texts go through the lanes (`lanes.rs`); what the events
//! of one API mean is that API's module (`api/`).

use std::borrow::Cow;

use aigc_edge::{Action, Block, ExplicitLabel, Filter, Hit, PiiKind};

use crate::api::Api;
use crate::json::Doc;
pub use crate::lanes::{Key, Lanes};

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
        self.write_with(out, |out| out.extend_from_slice(one_line(data).as_bytes()));
    }

    /// [`Event::write`] with the data written by `data` straight into `out` (on one line: a
    /// newline it writes breaks the event), so a rewritten event is not assembled twice.
    pub fn write_with(&self, out: &mut Vec<u8>, data: impl FnOnce(&mut Vec<u8>)) {
        if self.ndjson {
            data(out);
            out.extend_from_slice(self.newline.as_bytes());
            return;
        }
        if self.only_data {
            out.extend_from_slice(b"data: ");
            data(out);
            out.extend_from_slice(self.newline.as_bytes());
            out.extend_from_slice(self.newline.as_bytes());
            return;
        }
        let mut data = Some(data);
        for line in lines(self.text) {
            let is_data = line.split_once(':').map_or(line, |(f, _)| f) == "data";
            if is_data {
                if let Some(data) = data.take() {
                    // One `data:` line: clients that parse each line on its own read it too.
                    out.extend_from_slice(b"data: ");
                    data(out);
                    out.extend_from_slice(self.newline.as_bytes());
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
pub(crate) fn one_line(json: &str) -> std::borrow::Cow<'_, str> {
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
        let lanes = Lanes::new(filter, label, api.repeats_text());
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
        self.partial.len() + self.lanes.carry()
    }

    /// Hits decided so far and not yet taken, each with the bytes it matched.
    pub fn take_hits(&mut self) -> Vec<(Hit, Vec<u8>)> {
        self.lanes.take_hits()
    }

    /// Kinds of personal information found so far and not yet taken.
    pub fn take_pii(&mut self) -> Vec<PiiKind> {
        self.lanes.take_pii()
    }

    /// Events that could not be read, with what was done with each (block or pass).
    pub fn take_unreadable(&mut self) -> Vec<Action> {
        self.lanes.take_unreadable()
    }

    /// Keeps the text released to the client for [`SseFilter::take_released`] (only a stream
    /// the guard model judges needs it).
    pub fn track_released(&mut self) {
        self.lanes.track_released();
    }

    /// The text released to the client since the last call (the guard model judges it).
    pub fn take_released(&mut self) -> String {
        self.lanes.take_released()
    }

    /// Ends the stream now, on the guard model's verdict: the API's own end (a content-filter
    /// finish and `[DONE]` for chat); everything after is dropped.
    pub fn cut_now(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        // Also after the upstream's own end: that end is what the guard layer held back.
        if !self.lanes.cut() {
            self.lanes.cut_by_guard();
            self.api.stream_block(&mut self.lanes, &mut out, "\n");
        }
        out
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
            self.lanes.note_unreadable(false);
            if self.lanes.fails_closed() {
                self.lanes.blocked = Some(Block::CarryLimit { limit: self.event_limit });
                self.api.stream_block(&mut self.lanes, &mut out, "\n");
                return out;
            }
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
        self.lanes.note_unreadable(true);
        if self.lanes.cut() {
            self.api.stream_block(&mut self.lanes, out, newline);
            self.lanes.finished = true;
        } else {
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
