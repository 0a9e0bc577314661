//! The scanner shared by whole texts and streams: walks the automaton over normalized
//! characters and keeps only what an undecided match needs.

use std::sync::Arc;

use crate::dictionary::{class, Dictionary, NONE};
use crate::keywords::KeywordKind;

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

pub(crate) fn utf8_width(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct RingSlot {
    start: usize,
    word_before: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) pattern: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Walks the automaton over normalized characters, keeping only what an undecided match
/// needs: the current state, the start offsets of the last `max_keyword_chars` characters, and
/// hits whose boundary or allow-list cover is not yet known.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
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
    pub(crate) found: Vec<Candidate>,
    /// An incomplete UTF-8 sequence from the end of the last chunk.
    utf8: [u8; 4],
    utf8_len: usize,
}

impl Scanner {
    pub(crate) fn new(dict: &Arc<Dictionary>, max_gap: u8) -> Scanner {
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
    pub(crate) fn settled(&self) -> usize {
        self.open.iter().map(|c| c.start).fold(self.settled_without_open(), usize::min)
    }

    /// Drops every undecided match (fail-open past the carry limit).
    pub(crate) fn forget(&mut self) {
        self.state = 0;
        self.gap = 0;
        self.pending.clear();
        self.open.clear();
        self.allows.clear();
    }

    pub(crate) fn feed_bytes(&mut self, mut bytes: &[u8]) {
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

    pub(crate) fn feed_str(&mut self, text: &str, base: usize) {
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

    pub(crate) fn finish(&mut self) {
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
