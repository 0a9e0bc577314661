//! Push streams: text arriving in chunks, matched with bounded state.

use crate::category::Action;
use crate::filter::Filter;
use crate::filter::Hit;
use crate::mask::{MaskWriter, Span};
use crate::pii::{find_pii, HoldBack, PiiHit, Redactor};
use crate::policy::OnLimit;
use crate::report;
use crate::scanner::{utf8_width, Candidate, Scanner};
use crate::segment::{Verdict, CONTEXT_CHARS};

/// Why a stream stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A keyword whose action is `block`. Output stops before its first byte.
    Keyword(Hit),
    /// Personal information whose policy action is `block`. Output stops before its first byte.
    PersonalInformation(PiiHit),
    /// More than `limits.max_carry_bytes` were held back and the policy fails closed.
    CarryLimit {
        /// The limit in force.
        limit: usize,
    },
}

impl Block {
    /// Offset of the first byte the block withholds; `None` for the carry limit.
    pub fn start(&self) -> Option<usize> {
        match self {
            Block::Keyword(hit) => Some(hit.start),
            Block::PersonalInformation(p) => Some(p.start),
            Block::CarryLimit { .. } => None,
        }
    }
}

/// What one [`Stream::write`] or [`Stream::finish`] settled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes that can go out now: input that no pending match can touch, with masks applied.
    pub output: Vec<u8>,
    /// Hits decided during this call (`flag` ones included).
    pub hits: Vec<Hit>,
    /// Personal information decided during this call (redacted in `output` when the policy
    /// says `mask`).
    pub pii: Vec<PiiHit>,
    /// Set when the stream must stop; nothing more will be output.
    pub blocked: Option<Block>,
    /// The carry limit was exceeded under fail-open: held bytes were flushed unchecked.
    pub limit_exceeded: bool,
}

impl core::fmt::Display for Block {
    /// Why the stream stopped, for people: `keyword 法轮功 (A.1a)`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Block::Keyword(h) => match h.category {
                Some(c) => write!(f, "keyword {} ({c})", h.keyword),
                None => write!(f, "keyword {} (uncategorized)", h.keyword),
            },
            Block::PersonalInformation(p) => write!(f, "personal information ({})", p.kind.as_str()),
            Block::CarryLimit { limit } => write!(f, "held-back text exceeded {limit} bytes"),
        }
    }
}

impl Chunk {
    /// The chunk as JSON, every offset mapped by `offset`: `output` as text, then `hits`, `pii`,
    /// `blocked` (the reason, [`Block`]'s `Display`) and `limit_exceeded` in the one
    /// [report format](crate#json-reports).
    pub fn to_json_with(&self, offset: &dyn Fn(usize) -> usize) -> String {
        let mut out = report::open("output");
        report::push_str(&mut out, &String::from_utf8_lossy(&self.output));
        report::push_hits(&mut out, &self.hits, offset);
        report::push_pii(&mut out, &self.pii, offset);
        report::push_optional_str(&mut out, "blocked", self.blocked.as_ref().map(|b| b.to_string()).as_deref());
        report::push_limit(&mut out, self.limit_exceeded);
        report::finish(out)
    }
}

/// The error for writing to a stream that has already blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamBlocked;

impl core::fmt::Display for StreamBlocked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("stream already blocked; no further input is accepted")
    }
}

impl std::error::Error for StreamBlocked {}

/// A push-style filter over text arriving in chunks (UTF-8, split anywhere, even inside a
/// character).
///
/// Every keyword is found even when split across chunks. Output is held back only while it
/// could still be part of a match: at most the longest keyword (plus the separators skipped
/// inside it), never the whole stream; `limits.max_carry_bytes` caps it, with the policy's
/// `on_limit` action past the cap. Personal information is found the same way: a run of the
/// characters it is made of is held until it ends (at most `HoldBack::MAX_RUN`, 318 bytes),
/// then checked whole and redacted, flagged or blocked by the policy's `pii.action`.
///
/// ```
/// use std::sync::Arc;
/// use aigc_edge::{Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};
///
/// let mut list = KeywordList::new();
/// list.add_source("k", "法轮功\tA.1a\tmask\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
/// let filter = Filter::new(Arc::new(Dictionary::new(&list)?), &Policy::default())?;
///
/// let mut stream = filter.stream();
/// let mut out = Vec::new();
/// for piece in ["今天说说法", "轮", "功的事"] {
///     out.extend(stream.write(piece.as_bytes()).unwrap().output);
/// }
/// out.extend(stream.finish().output);
/// assert_eq!(String::from_utf8(out).unwrap(), "今天说说***的事");
/// # Ok::<(), aigc_edge::Error>(())
/// ```
#[derive(Debug)]
pub struct Stream {
    filter: Filter,
    scanner: Scanner,
    buf: Vec<u8>,
    buf_start: usize,
    writer: MaskWriter,
    blocked: Option<Block>,
    peak_carry: usize,
    pii: Option<PiiStream>,
    /// Hits waiting for the right context of the segmentation check ([`crate::segment`]).
    confirming: Vec<Candidate>,
    /// The last bytes emitted, as they came in: the check's left context of a hit at the start
    /// of what is held (kept only when the dictionary has a lexicon).
    emitted_tail: Vec<u8>,
}

/// Bytes of [`Stream::emitted_tail`]: [`CONTEXT_CHARS`] characters of up to 4 bytes.
const TAIL_BYTES: usize = 4 * CONTEXT_CHARS;

/// Personal information in a stream: runs of the characters it is made of
/// ([`HoldBack`]) are held back until they end, then checked whole, so a value split across
/// chunks is still found.
#[derive(Debug)]
struct PiiStream {
    run_start: Option<usize>,
    /// Offset of the next byte to classify, and the character before it.
    scanned: usize,
    prev: char,
    redactor: Redactor,
    found: Vec<PiiHit>,
}

/// The character starting `bytes` and its width; `None` when it is cut short (the bytes so far
/// begin a character). Invalid bytes read as one replacement character each, as soon as they
/// are seen to be invalid, however the stream is cut.
fn first_char(bytes: &[u8]) -> Option<(char, usize)> {
    let b0 = *bytes.first()?;
    if b0 < 0x80 {
        return Some((char::from(b0), 1));
    }
    let width = utf8_width(b0);
    let head = bytes.get(..width.min(bytes.len()))?;
    match core::str::from_utf8(head) {
        Ok(s) => s.chars().next().map(|c| (c, width)),
        Err(e) if e.error_len().is_none() => None,
        Err(_) => Some((char::REPLACEMENT_CHARACTER, 1)),
    }
}

impl Stream {
    pub(crate) fn new(filter: Filter) -> Stream {
        let policy = filter.policy();
        let pii = (policy.pii.action != Action::Pass && !policy.pii.kinds.is_empty()).then(|| PiiStream {
            run_start: None,
            scanned: 0,
            prev: ' ',
            redactor: Redactor::new(policy.pii.style),
            found: Vec::new(),
        });
        Stream {
            scanner: Scanner::new(filter.dictionary_arc(), policy.normalize.max_gap),
            buf: Vec::new(),
            buf_start: 0,
            writer: MaskWriter::default(),
            blocked: None,
            peak_carry: 0,
            pii,
            confirming: Vec::new(),
            emitted_tail: Vec::new(),
            filter,
        }
    }

    /// Pushes a chunk; returns what is settled. After a block every call is refused.
    pub fn write(&mut self, bytes: &[u8]) -> Result<Chunk, StreamBlocked> {
        self.push(bytes, |scanner| scanner.feed_bytes(bytes))
    }

    /// [`Stream::write`] for a piece that is already a `&str` (a decoded JSON string, a
    /// JavaScript string): the same chunk, without validating its UTF-8 again.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use aigc_edge::{Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};
    /// # let mut list = KeywordList::new();
    /// # list.add_source("k", "赌博\tA.1h\tmask\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    /// # let filter = Filter::new(Arc::new(Dictionary::new(&list)?), &Policy::default())?;
    /// let mut stream = filter.stream();
    /// let mut out = stream.write_str("网上赌").unwrap().output;
    /// out.extend(stream.write_str("博").unwrap().output);
    /// out.extend(stream.finish().output);
    /// assert_eq!(String::from_utf8(out).unwrap(), "网上**");
    /// # Ok::<(), aigc_edge::Error>(())
    /// ```
    pub fn write_str(&mut self, text: &str) -> Result<Chunk, StreamBlocked> {
        self.push(text.as_bytes(), |scanner| scanner.feed_stream_str(text))
    }

    fn push(&mut self, bytes: &[u8], feed: impl FnOnce(&mut Scanner)) -> Result<Chunk, StreamBlocked> {
        if self.blocked.is_some() {
            return Err(StreamBlocked);
        }
        self.buf.extend_from_slice(bytes);
        feed(&mut self.scanner);
        self.scan_pii(false);
        Ok(self.drain(false))
    }

    /// Classifies the new bytes for personal information; checks every run that ended (all
    /// of them at the end of the stream).
    fn scan_pii(&mut self, end: bool) {
        let Some(pii) = self.pii.as_mut() else { return };
        let buf_end = self.buf_start + self.buf.len();
        let mut runs = Vec::new();
        let mut at = pii.scanned.max(self.buf_start);
        while at < buf_end {
            let rest = self.buf.get(at - self.buf_start..).unwrap_or(&[]);
            let (c, width) = match first_char(rest) {
                Some(decoded) => decoded,
                // A character split across chunks: classified when the rest arrives.
                None if !end => break,
                None => (char::REPLACEMENT_CHARACTER, rest.len().max(1)),
            };
            if HoldBack::holds(c, pii.prev) {
                match pii.run_start {
                    Some(start) if at - start >= HoldBack::MAX_RUN => {
                        runs.push((start, at));
                        pii.run_start = Some(at);
                    }
                    None => pii.run_start = Some(at),
                    _ => {}
                }
            } else if let Some(start) = pii.run_start.take() {
                runs.push((start, at));
            }
            pii.prev = c;
            at += width;
        }
        pii.scanned = at;
        if end {
            if let Some(start) = pii.run_start.take() {
                runs.push((start, buf_end));
            }
        }
        let policy = &self.filter.policy().pii;
        for (start, stop) in runs {
            let Some(bytes) = self.buf.get(start.saturating_sub(self.buf_start)..stop.saturating_sub(self.buf_start))
            else {
                continue;
            };
            let start = start.max(self.buf_start);
            let text = core::str::from_utf8(bytes).unwrap_or("");
            for mut hit in find_pii(text, &policy.kinds) {
                let value = text.get(hit.start..hit.end).unwrap_or("");
                hit.start += start;
                hit.end += start;
                match policy.action {
                    Action::Mask => {
                        let with = pii.redactor.replacement(hit.kind, value);
                        self.writer.add(Span { start: hit.start, end: hit.end, with: Some(with) });
                    }
                    Action::Block if self.blocked.is_none() => {
                        self.blocked = Some(Block::PersonalInformation(hit.clone()));
                    }
                    _ => {}
                }
                pii.found.push(hit);
            }
        }
    }

    /// Ends the stream and returns the rest.
    pub fn finish(mut self) -> Chunk {
        if self.blocked.is_some() {
            return Chunk { blocked: self.blocked.take(), ..Chunk::default() };
        }
        self.scanner.finish();
        self.scan_pii(true);
        self.drain(true)
    }

    /// The most bytes held back at once so far.
    pub fn peak_carry(&self) -> usize {
        self.peak_carry
    }

    /// Bytes held back now.
    pub fn carry(&self) -> usize {
        self.buf.len()
    }

    /// The segmentation check on a hit, over what the stream holds and emitted last.
    fn segmentation(&self, c: &Candidate, at_end: bool) -> Verdict {
        let (Some(start), Some(end)) = (c.start.checked_sub(self.buf_start), c.end.checked_sub(self.buf_start)) else {
            return Verdict::Confirmed;
        };
        let (Some(before), Some(span), Some(after)) =
            (self.buf.get(..start), self.buf.get(start..end), self.buf.get(end..))
        else {
            return Verdict::Confirmed;
        };
        self.filter.segmentation(c, [before, &self.emitted_tail], span, after, at_end)
    }

    fn drain(&mut self, at_end: bool) -> Chunk {
        let mut chunk = Chunk::default();
        let mut found: Vec<Candidate> = core::mem::take(&mut self.confirming);
        found.append(&mut self.scanner.found);
        if self.filter.dictionary().lexicon().is_some() {
            let mut confirmed = Vec::with_capacity(found.len());
            for c in found {
                match self.segmentation(&c, at_end) {
                    Verdict::Confirmed => confirmed.push(c),
                    Verdict::Rejected => {}
                    Verdict::NeedMore => self.confirming.push(c),
                }
            }
            found = confirmed;
        }
        for hit in found.into_iter().filter_map(|c| self.filter.hit(c)) {
            if hit.action >= Action::Mask {
                self.writer.add(Span::masked(hit.start, hit.end));
            }
            if hit.action == Action::Block {
                let earlier = match &self.blocked {
                    Some(b) => b.start().is_some_and(|s| hit.start < s),
                    None => true,
                };
                if earlier {
                    self.blocked = Some(Block::Keyword(hit.clone()));
                }
            }
            chunk.hits.push(hit);
        }
        chunk.hits.sort_by_key(|h| (h.start, h.end));
        let mut upto = self.scanner.settled().max(self.buf_start);
        if let Some(first) = self.confirming.iter().map(|c| c.start).min() {
            upto = upto.min(first.max(self.buf_start));
        }
        if let Some(pii) = self.pii.as_mut() {
            chunk.pii = core::mem::take(&mut pii.found);
            // Nothing past a run that may be personal information, nor past a character not
            // yet classified.
            upto = upto.min(pii.run_start.unwrap_or(pii.scanned));
        }
        if let Some(start) = self.blocked.as_ref().and_then(Block::start) {
            upto = upto.min(start);
        }
        self.emit(&mut chunk.output, upto);
        self.peak_carry = self.peak_carry.max(self.buf.len());
        let limit = self.filter.policy().limits.max_carry_bytes;
        if self.blocked.is_none() && self.buf.len() > limit {
            match self.filter.policy().on_limit {
                OnLimit::FailClosed => self.blocked = Some(Block::CarryLimit { limit }),
                OnLimit::FailOpen => {
                    self.scanner.forget();
                    self.confirming.clear();
                    if let Some(pii) = self.pii.as_mut() {
                        pii.run_start = None;
                    }
                    let end = self.buf_start + self.buf.len();
                    self.emit(&mut chunk.output, end);
                    chunk.limit_exceeded = true;
                }
            }
        }
        chunk.blocked = self.blocked.clone();
        chunk
    }

    fn emit(&mut self, out: &mut Vec<u8>, upto: usize) {
        let n = upto.saturating_sub(self.buf_start).min(self.buf.len());
        if n == 0 {
            return;
        }
        let mask = &self.filter.policy().mask;
        self.writer.write(out, &self.buf[..n], self.buf_start, mask);
        if self.filter.dictionary().lexicon().is_some() {
            self.emitted_tail.extend_from_slice(&self.buf[n.saturating_sub(TAIL_BYTES)..n]);
            let extra = self.emitted_tail.len().saturating_sub(TAIL_BYTES);
            self.emitted_tail.drain(..extra);
        }
        self.buf.drain(..n);
        self.buf_start += n;
    }
}
