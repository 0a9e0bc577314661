//! Matching text against a dictionary under a policy: whole texts and push streams.

use std::sync::Arc;

use crate::category::{Action, Category, CategorySet};
use crate::dictionary::{class, Dictionary, NONE};
use crate::error::{Error, ErrorKind};
use crate::keywords::KeywordKind;
use crate::pii::{find_pii, PiiHit, Redactor};
use crate::policy::{Mask, MaskStyle, OnLimit, Policy};

/// One keyword found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The keyword as written in its dictionary file.
    pub keyword: String,
    /// The category that decided the action (the keyword's first, when its own action rules).
    pub category: Option<Category>,
    /// Every category of the keyword.
    pub categories: CategorySet,
    /// What the policy does with it (never [`Action::Pass`]: passed hits are not reported).
    pub action: Action,
    /// Byte offset of the first byte of the match in the original text (or stream).
    pub start: usize,
    /// Byte offset one past the match.
    pub end: usize,
}

/// The verdict on a whole text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The most severe action among the hits; [`Action::Pass`] when nothing was found.
    pub action: Action,
    /// Keyword hits in text order.
    pub hits: Vec<Hit>,
    /// Personal information found (empty when the policy's `pii.action` is `pass`).
    pub pii: Vec<PiiHit>,
    /// The text with masked hits and redacted personal information, when anything changed.
    pub text: Option<String>,
    /// `(placeholder, value)` pairs to undo placeholder redaction of personal information.
    pub restore: Vec<(String, String)>,
    /// The text exceeded `limits.max_text_bytes`; it was not inspected and `action` is the
    /// policy's `on_limit` answer (`block` for fail-closed, `pass` for fail-open).
    pub limit_exceeded: bool,
}

/// A dictionary and a policy, ready to check text. Cheap to clone (reference counted); build
/// one per policy at configuration time and share it.
///
/// ```
/// use std::sync::Arc;
/// use aigc_edge::{Action, Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};
///
/// let mut list = KeywordList::new();
/// list.add_source("demo.txt", "赌博\tA.1h\nfuck\tA.1f\tmask\n".as_bytes(),
///                 KeywordFormat::Native, KeywordKind::Deny);
/// let filter = Filter::new(Arc::new(Dictionary::new(&list)?), &Policy::default())?;
///
/// let d = filter.check("网上赌-博，ＦＵＣＫ");
/// assert_eq!(d.action, Action::Block);
/// assert_eq!(d.hits[0].keyword, "赌博");
/// assert_eq!(&"网上赌-博，ＦＵＣＫ"[d.hits[0].start..d.hits[0].end], "赌-博");
/// assert_eq!(d.hits[1].action, Action::Mask);
/// assert_eq!(d.text.as_deref(), Some("网上***，****"));
/// # Ok::<(), aigc_edge::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Filter {
    dict: Arc<Dictionary>,
    policy: Arc<Policy>,
}

impl Filter {
    /// Combines a dictionary with a policy. Fails when the policy is invalid or its
    /// normalization differs from the one the dictionary was compiled with.
    pub fn new(dict: Arc<Dictionary>, policy: &Policy) -> Result<Filter, Error> {
        policy.validate()?;
        let (have, want) = (dict.normalization(), &policy.normalize);
        let fields = [
            ("case", have.case == want.case),
            ("width", have.width == want.width),
            ("styles", have.styles == want.styles),
            ("traditional", have.traditional == want.traditional),
            ("invisible", have.invisible == want.invisible),
            ("separators", have.separators == want.separators),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, same)| !same) {
            return Err(Error::new(ErrorKind::NormalizationMismatch { field }));
        }
        Ok(Filter { dict, policy: Arc::new(policy.clone()) })
    }

    /// The dictionary.
    pub fn dictionary(&self) -> &Dictionary {
        &self.dict
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks a whole text: keyword hits, personal information, the decision and the
    /// rewritten text.
    pub fn check(&self, text: &str) -> Decision {
        if text.len() > self.policy.limits.max_text_bytes {
            let action = match self.policy.on_limit {
                OnLimit::FailClosed => Action::Block,
                OnLimit::FailOpen => Action::Pass,
            };
            return Decision { action, limit_exceeded: true, ..Decision::default() };
        }
        let mut scanner = Scanner::new(&self.dict, self.policy.normalize.max_gap);
        scanner.feed_str(text, 0);
        scanner.finish();
        let mut hits: Vec<Hit> = scanner.found.drain(..).filter_map(|c| self.hit(c)).collect();
        hits.sort_by_key(|h| (h.start, h.end));
        let pii_action = self.policy.pii.action;
        let pii = if pii_action == Action::Pass || self.policy.pii.kinds.is_empty() {
            Vec::new()
        } else {
            find_pii(text, &self.policy.pii.kinds)
        };
        let mut action = hits.iter().map(|h| h.action).max().unwrap_or(Action::Pass);
        if !pii.is_empty() {
            action = action.max(pii_action);
        }
        let mut spans: Vec<Span> =
            hits.iter().filter(|h| h.action >= Action::Mask).map(|h| Span::masked(h.start, h.end)).collect();
        let mut restore = Vec::new();
        if pii_action >= Action::Mask && !pii.is_empty() {
            let mut redactor = Redactor::new(self.policy.pii.style);
            for p in &pii {
                let value = text.get(p.start..p.end).unwrap_or("");
                let with = redactor.replacement(p.kind, value);
                spans.push(Span { start: p.start, end: p.end, with: Some(with) });
            }
            restore = redactor.restore_table().to_vec();
        }
        let rewritten = (!spans.is_empty()).then(|| {
            let mut writer = MaskWriter::default();
            for span in spans {
                writer.add(span);
            }
            let mut out = Vec::with_capacity(text.len());
            writer.write(&mut out, text.as_bytes(), 0, &self.policy.mask);
            String::from_utf8_lossy(&out).into_owned()
        });
        Decision { action, hits, pii, text: rewritten, restore, limit_exceeded: false }
    }

    /// Starts a stream: push chunks with [`Stream::write`], end with [`Stream::finish`].
    pub fn stream(&self) -> Stream {
        Stream {
            scanner: Scanner::new(&self.dict, self.policy.normalize.max_gap),
            filter: self.clone(),
            buf: Vec::new(),
            buf_start: 0,
            writer: MaskWriter::default(),
            blocked: None,
            peak_carry: 0,
            pii: (self.policy.pii.action != Action::Pass && !self.policy.pii.kinds.is_empty()).then(|| PiiStream {
                run_start: None,
                scanned: 0,
                prev: 0,
                redactor: Redactor::new(self.policy.pii.style),
                found: Vec::new(),
            }),
        }
    }

    fn hit(&self, c: Candidate) -> Option<Hit> {
        let pattern = self.dict.pattern(c.pattern)?;
        let (action, category) = self.policy.actions.resolve(pattern.categories, pattern.action);
        (action != Action::Pass).then(|| Hit {
            keyword: self.dict.keyword(c.pattern).to_string(),
            category,
            categories: pattern.categories,
            action,
            start: c.start,
            end: c.end,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming.

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
/// ASCII characters it is made of is held until it ends (at most 320 bytes), then checked whole
/// and redacted, flagged or blocked by the policy's `pii.action`.
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
}

/// Personal information in a stream: runs of the ASCII characters it is made of are held back
/// until they end, then checked whole, so a number split across chunks is still found.
#[derive(Debug)]
struct PiiStream {
    run_start: Option<usize>,
    /// Offset of the next byte to classify, and the byte before it.
    scanned: usize,
    prev: u8,
    redactor: Redactor,
    found: Vec<PiiHit>,
}

/// The longest run held back for personal information; no kind is longer (e-mail: 254).
const MAX_PII_RUN: usize = 320;

fn is_pii_byte(b: u8, prev: u8) -> bool {
    b.is_ascii_alphanumeric() || b"@.+-_%:".contains(&b) || (b == b' ' && prev.is_ascii_digit())
}

impl Stream {
    /// Pushes a chunk; returns what is settled. After a block every call is refused.
    pub fn write(&mut self, bytes: &[u8]) -> Result<Chunk, StreamBlocked> {
        if self.blocked.is_some() {
            return Err(StreamBlocked);
        }
        self.buf.extend_from_slice(bytes);
        self.scanner.feed_bytes(bytes);
        self.scan_pii(false);
        Ok(self.drain())
    }

    /// Classifies the new bytes for personal information; checks every run that ended (all
    /// of them at the end of the stream).
    fn scan_pii(&mut self, end: bool) {
        let Some(pii) = self.pii.as_mut() else { return };
        let buf_end = self.buf_start + self.buf.len();
        let mut runs = Vec::new();
        for at in pii.scanned.max(self.buf_start)..buf_end {
            let Some(&b) = self.buf.get(at - self.buf_start) else { break };
            if is_pii_byte(b, pii.prev) {
                match pii.run_start {
                    Some(start) if at - start >= MAX_PII_RUN => {
                        runs.push((start, at));
                        pii.run_start = Some(at);
                    }
                    None => pii.run_start = Some(at),
                    _ => {}
                }
            } else if let Some(start) = pii.run_start.take() {
                runs.push((start, at));
            }
            pii.prev = b;
        }
        pii.scanned = buf_end;
        if end {
            if let Some(start) = pii.run_start.take() {
                runs.push((start, buf_end));
            }
        }
        let policy = &self.filter.policy.pii;
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
        self.drain()
    }

    /// The most bytes held back at once so far.
    pub fn peak_carry(&self) -> usize {
        self.peak_carry
    }

    /// Bytes held back now.
    pub fn carry(&self) -> usize {
        self.buf.len()
    }

    fn drain(&mut self) -> Chunk {
        let mut chunk = Chunk::default();
        let found: Vec<Candidate> = self.scanner.found.drain(..).collect();
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
        if let Some(pii) = self.pii.as_mut() {
            chunk.pii = core::mem::take(&mut pii.found);
            if let Some(start) = pii.run_start {
                upto = upto.min(start);
            }
        }
        if let Some(start) = self.blocked.as_ref().and_then(Block::start) {
            upto = upto.min(start);
        }
        self.emit(&mut chunk.output, upto);
        self.peak_carry = self.peak_carry.max(self.buf.len());
        let limit = self.filter.policy.limits.max_carry_bytes;
        if self.blocked.is_none() && self.buf.len() > limit {
            match self.filter.policy.on_limit {
                OnLimit::FailClosed => self.blocked = Some(Block::CarryLimit { limit }),
                OnLimit::FailOpen => {
                    self.scanner.forget();
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
        let mask = &self.filter.policy.mask;
        self.writer.write(out, &self.buf[..n], self.buf_start, mask);
        self.buf.drain(..n);
        self.buf_start += n;
    }
}

// ---------------------------------------------------------------------------------------------
// Masking.

#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    /// A fixed replacement (a PII placeholder); `None` for the policy's mask.
    with: Option<String>,
}

impl Span {
    fn masked(start: usize, end: usize) -> Span {
        Span { start, end, with: None }
    }
}

/// Rewrites spans of a byte sequence that arrives in order, possibly in pieces.
#[derive(Clone, Debug, Default)]
struct MaskWriter {
    /// Spans not yet fully written, sorted by start. They mostly arrive in order, so an insert
    /// lands at the back and the front is taken in O(1), even for a text with many hits.
    spans: std::collections::VecDeque<Span>,
    /// Bytes before this offset are dropped (a replacement was written for them).
    skip_until: usize,
    /// Characters before this offset become the mask character.
    char_until: usize,
}

impl MaskWriter {
    fn add(&mut self, span: Span) {
        let at = self.spans.partition_point(|s| s.start <= span.start);
        self.spans.insert(at, span);
    }

    /// Writes `bytes` (which start at offset `base`) to `out`, rewriting spans.
    fn write(&mut self, out: &mut Vec<u8>, bytes: &[u8], base: usize, mask: &Mask) {
        let end = base + bytes.len();
        let mut at = base;
        while at < end {
            let i = at - base;
            if at < self.skip_until {
                at = self.skip_until.min(end);
                continue;
            }
            if let Some(span) = self.spans.front().filter(|s| s.start <= at) {
                let inside = at > span.start;
                let Some(span) = self.spans.pop_front() else { break };
                if span.end <= at {
                    continue;
                }
                match (&span.with, mask.style) {
                    (Some(with), _) => {
                        if !inside {
                            out.extend_from_slice(with.as_bytes());
                        }
                        self.skip_until = span.end;
                    }
                    (None, MaskStyle::Replace) => {
                        if !inside {
                            out.extend_from_slice(mask.with.as_bytes());
                        }
                        self.skip_until = span.end;
                    }
                    (None, MaskStyle::Char) => self.char_until = self.char_until.max(span.end),
                }
                continue;
            }
            if at < self.char_until {
                let width = utf8_width(bytes[i]).max(1);
                let mut buf = [0u8; 4];
                out.extend_from_slice(mask.char.encode_utf8(&mut buf).as_bytes());
                at += width;
                continue;
            }
            let next = self.spans.front().map_or(end, |s| s.start.min(end));
            out.extend_from_slice(&bytes[i..next - base]);
            at = next;
        }
    }
}

/// The character starting at `bytes[i]` of a valid UTF-8 text, and its width.
#[inline(always)]
fn decode(bytes: &[u8], i: usize) -> (char, usize) {
    let b0 = bytes[i];
    if b0 < 0x80 {
        return (char::from(b0), 1);
    }
    let width = utf8_width(b0);
    let cont = |k: usize| u32::from(bytes.get(i + k).copied().unwrap_or(0x80) & 0x3F);
    let u = match width {
        2 => (u32::from(b0 & 0x1F) << 6) | cont(1),
        3 => (u32::from(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2),
        _ => (u32::from(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
    };
    (char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER), width)
}

fn utf8_width(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner shared by whole texts and streams.

#[derive(Clone, Copy, Debug, Default)]
struct RingSlot {
    start: usize,
    word_before: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    pattern: u32,
    start: usize,
    end: usize,
}

/// Walks the automaton over normalized characters, keeping only what an undecided match
/// needs: the current state, the start offsets of the last `max_keyword_chars` characters, and
/// hits whose boundary or allow-list cover is not yet known.
#[derive(Clone, Debug)]
struct Scanner {
    dict: Arc<Dictionary>,
    state: u32,
    ring: Vec<RingSlot>,
    ring_mask: usize,
    count: usize,
    gap: u32,
    max_gap: u32,
    last_word: bool,
    /// End of the last character seen.
    pos: usize,
    /// Hits waiting for the next character to check the word boundary after them.
    pending: Vec<Candidate>,
    /// Deny hits waiting to know whether an allow hit covers them.
    open: Vec<Candidate>,
    allows: Vec<(usize, usize)>,
    /// Decided deny hits, for the owner to take.
    found: Vec<Candidate>,
    /// An incomplete UTF-8 sequence from the end of the last chunk.
    utf8: [u8; 4],
    utf8_len: usize,
}

impl Scanner {
    fn new(dict: &Arc<Dictionary>, max_gap: u8) -> Scanner {
        let size = (dict.max_keyword_chars() + 1).next_power_of_two();
        Scanner {
            dict: Arc::clone(dict),
            state: 0,
            ring: vec![RingSlot::default(); size],
            ring_mask: size - 1,
            count: 0,
            gap: 0,
            max_gap: u32::from(max_gap),
            last_word: false,
            pos: 0,
            pending: Vec::new(),
            open: Vec::new(),
            allows: Vec::new(),
            found: Vec::new(),
            utf8: [0; 4],
            utf8_len: 0,
        }
    }

    /// Everything before this offset is decided: no match in progress can reach back to it.
    fn settled(&self) -> usize {
        self.open.iter().map(|c| c.start).fold(self.settled_without_open(), usize::min)
    }

    /// Drops every undecided match (fail-open past the carry limit).
    fn forget(&mut self) {
        self.state = 0;
        self.gap = 0;
        self.pending.clear();
        self.open.clear();
        self.allows.clear();
    }

    fn feed_bytes(&mut self, mut bytes: &[u8]) {
        let mut base = self.pos + self.utf8_len;
        if self.utf8_len > 0 {
            // Complete the character split across chunks.
            let need = utf8_width(self.utf8[0]) - self.utf8_len;
            let take = need.min(bytes.len());
            self.utf8[self.utf8_len..self.utf8_len + take].copy_from_slice(&bytes[..take]);
            self.utf8_len += take;
            bytes = &bytes[take..];
            base += take;
            if take < need {
                return;
            }
            let held = self.utf8;
            let len = self.utf8_len;
            self.utf8_len = 0;
            let start = base - len;
            match core::str::from_utf8(&held[..len]) {
                Ok(s) => self.feed_str(s, start),
                Err(_) => {
                    // Not a character after all: the lead byte is invalid, the rest re-read.
                    self.boundary(start + 1);
                    let rest = held[1..len].to_vec();
                    self.pos = start + 1;
                    self.feed_bytes(&rest);
                    base = self.pos + self.utf8_len;
                }
            }
        }
        while !bytes.is_empty() {
            match core::str::from_utf8(bytes) {
                Ok(s) => {
                    self.feed_str(s, base);
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let (good, rest) = bytes.split_at(valid);
                    self.feed_str(core::str::from_utf8(good).unwrap_or(""), base);
                    base += valid;
                    match e.error_len() {
                        Some(bad) => {
                            self.boundary(base + bad);
                            base += bad;
                            bytes = &rest[bad.min(rest.len())..];
                        }
                        None => {
                            self.utf8[..rest.len()].copy_from_slice(rest);
                            self.utf8_len = rest.len();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Invalid bytes ending at `end` act as a boundary.
    fn boundary(&mut self, end: usize) {
        self.resolve_pending(false);
        self.state = 0;
        self.gap = 0;
        self.last_word = false;
        self.pos = end;
        self.settle_open();
    }

    fn feed_str(&mut self, text: &str, base: usize) {
        // A local handle, so the hot loop reads the dictionary without going through `self`.
        let dict = Arc::clone(&self.dict);
        let dict = &*dict;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: a plain character while nothing is undecided. The automaton state and
            // counters live in locals here; they go back to `self` before anything else runs.
            if self.pending.is_empty() && self.open.is_empty() {
                let (mut state, mut count, mut last_word) = (self.state, self.count, self.last_word);
                let from = i;
                let mut slow = None;
                while i < bytes.len() {
                    let (c, width) = decode(bytes, i);
                    let class = dict.class(c);
                    if class.kind() != class::CHAR {
                        slow = Some((c, width));
                        break;
                    }
                    let code = class.code();
                    if code == 0 {
                        state = 0;
                    } else {
                        let (next, reports) = dict.step(state, code);
                        if reports {
                            slow = Some((c, width));
                            break;
                        }
                        state = next;
                        count = count.wrapping_add(1);
                        self.ring[count & self.ring_mask] = RingSlot { start: base + i, word_before: last_word };
                    }
                    last_word = class.is_word();
                    i += width;
                }
                (self.state, self.count, self.last_word) = (state, count, last_word);
                if i > from {
                    self.gap = 0;
                    self.pos = base + i;
                }
                let Some((c, width)) = slow else { return };
                self.feed_char(dict, c, base + i, base + i + width);
                i += width;
                continue;
            }
            let (c, width) = decode(bytes, i);
            self.feed_char(dict, c, base + i, base + i + width);
            i += width;
        }
    }

    fn feed_char(&mut self, dict: &Dictionary, c: char, start: usize, end: usize) {
        let class = dict.class(c);
        match class.kind() {
            class::CHAR => {
                if !self.pending.is_empty() {
                    self.resolve_pending(class.is_word());
                }
                self.step(dict, class.code(), class.is_word(), start, end);
            }
            class::INVISIBLE => {
                self.gap += 1;
                if self.gap > self.max_gap {
                    self.state = 0;
                }
                self.pos = end;
            }
            class::SEPARATOR => {
                self.resolve_pending(false);
                self.last_word = false;
                self.gap += 1;
                if self.gap > self.max_gap {
                    self.state = 0;
                }
                self.pos = end;
            }
            class::MULTI => {
                for (code, word) in dict.multi(c) {
                    self.resolve_pending(word);
                    self.step(dict, code, word, start, end);
                }
            }
            _ => self.boundary(end),
        }
        if !self.open.is_empty() {
            self.settle_open();
        }
    }

    #[inline]
    fn step(&mut self, dict: &Dictionary, code: u32, word: bool, start: usize, end: usize) {
        self.gap = 0;
        self.pos = end;
        if code == 0 {
            self.state = 0;
            self.last_word = word;
            return;
        }
        self.state = dict.next_state(self.state, code);
        self.count = self.count.wrapping_add(1);
        self.ring[self.count & self.ring_mask] = RingSlot { start, word_before: self.last_word };
        self.last_word = word;
        let mut s = dict.first_output(self.state);
        while s != NONE {
            let (pattern, next) = dict.output(s);
            s = next;
            let Some(p) = dict.pattern(pattern) else { continue };
            let back = usize::from(p.len).saturating_sub(1);
            let first = self.ring[self.count.wrapping_sub(back) & self.ring_mask];
            if p.starts_word && first.word_before {
                continue;
            }
            let c = Candidate { pattern, start: first.start, end };
            if p.ends_word {
                self.pending.push(c);
            } else {
                self.accept(c);
            }
        }
    }

    fn accept(&mut self, c: Candidate) {
        match self.dict.pattern(c.pattern).map(|p| p.kind) {
            Some(KeywordKind::Allow) => self.allows.push((c.start, c.end)),
            Some(KeywordKind::Deny) => self.open.push(c),
            None => {}
        }
    }

    fn resolve_pending(&mut self, next_is_word: bool) {
        if self.pending.is_empty() {
            return;
        }
        let pending = core::mem::take(&mut self.pending);
        if !next_is_word {
            for c in pending {
                self.accept(c);
            }
        }
    }

    /// Moves deny hits that no later allow hit can cover to `found`.
    fn settle_open(&mut self) {
        let settled = self.settled_without_open();
        let allows = &self.allows;
        let found = &mut self.found;
        self.open.retain(|c| {
            if c.start >= settled {
                return true;
            }
            if !allows.iter().any(|&(s, e)| s <= c.start && c.end <= e) {
                found.push(*c);
            }
            false
        });
        if self.open.is_empty() && self.pending.is_empty() {
            self.allows.clear();
        }
    }

    fn settled_without_open(&self) -> usize {
        let mut settled = self.pos;
        let depth = self.dict.depth(self.state);
        if depth > 0 {
            settled = self.ring[self.count.wrapping_sub(depth - 1) & self.ring_mask].start;
        }
        for c in &self.pending {
            settled = settled.min(c.start);
        }
        settled
    }

    fn finish(&mut self) {
        if self.utf8_len > 0 {
            let end = self.pos + self.utf8_len;
            self.utf8_len = 0;
            self.boundary(end);
        }
        self.resolve_pending(false);
        self.state = 0;
        self.settle_open();
        let rest = core::mem::take(&mut self.open);
        self.found.extend(rest);
    }
}
