//! The scanner shared by whole texts and streams: walks the automaton over normalized
//! characters and keeps only what an undecided match needs.

use std::sync::Arc;

use crate::dictionary::{class, CharClass, Dictionary, Pattern, NONE};
use crate::keywords::KeywordKind;

/// What the gap before a character held, under [`Step::Punctuation`](crate::Step): the kind of
/// clause mark in its low bits (a [`Mark`](crate::normalize::Mark) code; `MIXED` for two kinds),
/// and which line-break characters it met, so `\r\n` is one line break and a blank line ends
/// the match.
mod gap {
    pub(super) const KIND: u8 = 0b111;
    pub(super) const MIXED: u8 = 0b111;
    pub(super) const LINE: u8 = 4;
    pub(super) const RETURN: u8 = 5;
    pub(super) const SAW_RETURN: u8 = 1 << 3;
    pub(super) const SAW_NEWLINE: u8 = 1 << 4;
}

/// Do the gaps of a match form a pattern [`Step::Punctuation`](crate::Step) lets through: no
/// mark, the same mark in every gap, or a single line break? Each item is a mark kind and how
/// many of how many gaps held it (a run's inner gaps count too).
fn gaps_allowed(gaps: impl Iterator<Item = (u8, usize, usize)>) -> bool {
    let (mut kind, mut marked, mut total) = (0u8, 0usize, 0usize);
    for (g, with_mark, gaps) in gaps {
        total += gaps;
        let k = g & gap::KIND;
        if k == 0 || with_mark == 0 {
            continue;
        }
        if k == gap::MIXED || (kind != 0 && kind != k) {
            return false;
        }
        kind = k;
        marked += with_mark;
    }
    match kind {
        0 => true,
        gap::LINE => marked == 1 || marked == total,
        // One comma between two characters is running text as often as evasion (`其中，国家`
        // holds `中，国`): the pattern needs two gaps.
        _ => marked == total && total >= 2,
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
    /// The clause marks in the gap before this character (`gap::*`).
    gap: u8,
    /// How many times the character came in a row ([`Step::Repeats`](crate::Step)).
    run: u8,
    /// The mark kind in the gaps inside the run, and how many of its `run - 1` gaps held it.
    inner: u8,
    inner_marked: u8,
    /// Where the run's last repeat starts: a match may start there instead (`赌，赌博`).
    last_start: usize,
}

impl RingSlot {
    /// The gaps this character brings to a match, as [`gaps_allowed`] counts them: the one
    /// before it (unless it starts the match), and those inside its run.
    fn gaps(&self, first: bool) -> [(u8, usize, usize); 2] {
        let before = if first { (0, 0, 0) } else { (self.gap, usize::from(self.gap & gap::KIND != 0), 1) };
        let inner = (self.inner, usize::from(self.inner_marked), usize::from(self.run.saturating_sub(1)));
        [before, inner]
    }
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
    /// The clause marks met in the current gap (`gap::*`).
    gap_marks: u8,
    last_word: bool,
    /// [`CharClass::repeat_key`] of the last character stepped, while only a gap (separators,
    /// marks, invisible characters) came after it: the next one equal to it extends its run,
    /// so `妹 妹` is the `妹妹` of a keyword as `妹妹` is.
    last_repeat: u32,
    /// End of the last character stepped (or of its run).
    last_end: usize,
    /// A separator or mark came since the last character.
    spaced: bool,
    /// End of the last character seen.
    pos: usize,
    /// Hits waiting for the next character to check the word boundary after them.
    pending: Vec<Candidate>,
    /// Hits whose last letter must repeat more times (`ass` after `as`).
    short: Vec<Candidate>,
    /// Deny hits waiting to know whether an allow hit covers them.
    open: Vec<Candidate>,
    allows: Vec<(usize, usize)>,
    /// Deny hits this automaton decided, not yet merged into `found`.
    decided: Vec<Candidate>,
    /// Decided deny hits of both lanes, each once, for the owner to take.
    pub(crate) found: Vec<Candidate>,
    /// The pinyin lane's scanner, fed the same text ([`Step::Pinyin`](crate::Step)).
    lane: Option<Box<Scanner>>,
    /// Hits merged lately, so one found by both lanes is reported once.
    #[cfg_attr(not(feature = "pinyin"), allow(dead_code))]
    recent: Vec<Candidate>,
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
            gap_marks: 0,
            last_word: false,
            last_repeat: CharClass::NO_REPEAT,
            last_end: 0,
            spaced: false,
            pos: 0,
            pending: Vec::new(),
            short: Vec::new(),
            open: Vec::new(),
            allows: Vec::new(),
            decided: Vec::new(),
            found: Vec::new(),
            lane: Scanner::lane(dict, max_gap),
            recent: Vec::new(),
            utf8: [0; 4],
            utf8_len: 0,
        }
    }

    /// The pinyin lane's scanner, when the dictionary has the lane.
    #[cfg(feature = "pinyin")]
    fn lane(dict: &Arc<Dictionary>, max_gap: u8) -> Option<Box<Scanner>> {
        dict.reading_lane().map(|lane| Box::new(Scanner::new(lane, max_gap)))
    }

    #[cfg(not(feature = "pinyin"))]
    fn lane(_dict: &Arc<Dictionary>, _max_gap: u8) -> Option<Box<Scanner>> {
        None
    }

    /// Feeds bytes of a stream (UTF-8 may split anywhere) to both lanes.
    pub(crate) fn feed_bytes(&mut self, bytes: &[u8]) {
        self.scan_bytes(bytes);
        if let Some(lane) = self.lane.as_mut() {
            lane.feed_bytes(bytes);
        }
        self.merge();
    }

    /// [`Scanner::feed_bytes`] for a piece of a stream known to be UTF-8: scanned without
    /// validating it again, unless an earlier piece left a character unfinished (then these
    /// bytes decide it, as bytes).
    pub(crate) fn feed_stream_str(&mut self, text: &str) {
        match self.utf8_len {
            0 => self.feed_str(text, self.pos),
            _ => self.feed_bytes(text.as_bytes()),
        }
    }

    /// Feeds a whole text starting at byte `base` to both lanes.
    pub(crate) fn feed_str(&mut self, text: &str, base: usize) {
        self.scan_str(text, base);
        if let Some(lane) = self.lane.as_mut() {
            lane.feed_str(text, base);
        }
        self.merge();
    }

    /// Ends the text: every undecided hit is decided.
    pub(crate) fn finish(&mut self) {
        self.finish_scan();
        if let Some(lane) = self.lane.as_mut() {
            lane.finish();
        }
        self.merge();
    }

    /// Drops every undecided match (fail-open past the carry limit).
    pub(crate) fn forget(&mut self) {
        self.forget_here();
        if let Some(lane) = self.lane.as_mut() {
            lane.forget();
        }
    }

    /// Everything before this offset is decided in both lanes.
    pub(crate) fn settled(&self) -> usize {
        let here = self.settled_here();
        self.lane.as_ref().map_or(here, |lane| here.min(lane.settled()))
    }

    /// Moves what both lanes decided into `found`, a hit found by both once (the lane's
    /// patterns reported as the main automaton's).
    fn merge(&mut self) {
        #[cfg(not(feature = "pinyin"))]
        {
            self.found.append(&mut self.decided);
        }
        #[cfg(feature = "pinyin")]
        self.merge_lanes();
    }

    #[cfg(feature = "pinyin")]
    fn merge_lanes(&mut self) {
        let lane_found = match self.lane.as_mut() {
            Some(lane) => core::mem::take(&mut lane.found),
            None => {
                self.found.append(&mut self.decided);
                return;
            }
        };
        let lane_dict = self.lane.as_ref().map(|l| Arc::clone(&l.dict));
        let translated = lane_found.into_iter().filter_map(|c| {
            let pattern = lane_dict.as_ref()?.main_pattern(c.pattern);
            (pattern != NONE).then_some(Candidate { pattern, ..c })
        });
        let decided = core::mem::take(&mut self.decided);
        for c in decided.into_iter().chain(translated) {
            if !self.recent.contains(&c) {
                self.recent.push(c);
                self.found.push(c);
            }
        }
        // A later duplicate starts where its lane is still undecided.
        let settled = self.settled();
        self.recent.retain(|c| c.start >= settled);
    }

    /// Everything before this offset is decided: no match in progress can reach back to it.
    fn settled_here(&self) -> usize {
        self.open.iter().map(|c| c.start).fold(self.settled_without_open(), usize::min)
    }

    /// Drops every undecided match (fail-open past the carry limit).
    fn forget_here(&mut self) {
        self.state = 0;
        self.gap = 0;
        self.gap_marks = 0;
        self.end_run();
        self.pending.clear();
        self.open.clear();
        self.allows.clear();
    }

    fn scan_bytes(&mut self, mut bytes: &[u8]) {
        // A character split across chunks is completed first, its bytes judged as they come
        // (as one write of them all would): when they turn out not to be one, its lead byte is
        // a boundary and the rest is read again, which can leave another character open for
        // `bytes` to complete: so until none is open.
        while self.utf8_len > 0 {
            let need = utf8_width(self.utf8[0]) - self.utf8_len;
            let take = need.min(bytes.len());
            self.utf8[self.utf8_len..self.utf8_len + take].copy_from_slice(&bytes[..take]);
            self.utf8_len += take;
            bytes = &bytes[take..];
            let (held, len, start) = (self.utf8, self.utf8_len, self.pos);
            match core::str::from_utf8(&held[..len]) {
                Ok(s) => {
                    self.utf8_len = 0;
                    self.scan_str(s, start);
                }
                // Still a character's beginning (this chunk ran out): the next one continues it.
                Err(e) if e.error_len().is_none() => return,
                Err(_) => {
                    self.utf8_len = 0;
                    self.boundary(start + 1);
                    self.scan_or_hold(&held[1..len]);
                }
            }
        }
        self.scan_or_hold(bytes);
    }

    /// Scans `bytes` from `self.pos`, no character open: invalid bytes act as boundaries, and a
    /// character cut short at the end is held for the next chunk to complete.
    fn scan_or_hold(&mut self, mut bytes: &[u8]) {
        let mut base = self.pos;
        while !bytes.is_empty() {
            match core::str::from_utf8(bytes) {
                Ok(s) => {
                    self.scan_str(s, base);
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let (good, rest) = bytes.split_at(valid);
                    self.scan_str(core::str::from_utf8(good).unwrap_or(""), base);
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
                            self.pos = base;
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
        self.end_run();
        self.state = 0;
        self.gap = 0;
        self.gap_marks = 0;
        self.last_word = false;
        self.pos = end;
        self.settle_open();
    }

    fn scan_str(&mut self, text: &str, base: usize) {
        // A local handle, so the hot loop reads the dictionary without going through `self`.
        let dict = Arc::clone(&self.dict);
        let dict = &*dict;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: a plain character while nothing is undecided. The automaton state and
            // counters live in locals here; they go back to `self` before anything else runs.
            if self.pending.is_empty() && self.open.is_empty() && self.short.is_empty() {
                let (mut state, mut count, mut last_word) = (self.state, self.count, self.last_word);
                let (mut last_repeat, mut marks) = (self.last_repeat, self.gap_marks);
                let from = i;
                let mut slow = None;
                while i < bytes.len() {
                    let (c, width) = decode(bytes, i);
                    let class = dict.class(c);
                    if class.kind() != class::CHAR || class.repeats(last_repeat) {
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
                        self.ring[count & self.ring_mask] = RingSlot {
                            start: base + i,
                            word_before: last_word,
                            gap: marks,
                            run: 1,
                            inner: 0,
                            inner_marked: 0,
                            last_start: base + i,
                        };
                    }
                    marks = 0;
                    last_word = class.is_word();
                    last_repeat = class.repeat_key();
                    i += width;
                }
                (self.state, self.count, self.last_word) = (state, count, last_word);
                if i > from {
                    self.gap = 0;
                    self.gap_marks = 0;
                    self.spaced = false;
                    self.last_repeat = last_repeat;
                    self.pos = base + i;
                    self.last_end = base + i;
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
            class::CHAR if class.repeats(self.last_repeat) && self.run_continues() => self.repeat(start, end),
            class::CHAR => {
                if !self.pending.is_empty() {
                    self.resolve_pending(class.is_word());
                }
                self.step(dict, class.code(), class.is_word(), start, end);
                self.last_repeat = class.repeat_key();
            }
            class::INVISIBLE => self.skip(end),
            class::SEPARATOR => self.skip_spacing(end),
            class::MARK if self.add_mark(class.code() as u8) => self.skip_spacing(end),
            class::SYLLABLE => {
                // A syllable is a word of its own: a match may start and end at its edges,
                // never inside it.
                self.resolve_pending(false);
                self.last_word = false;
                for (k, (code, _)) in dict.multi(c).enumerate() {
                    if k > 0 {
                        self.resolve_pending(true);
                    }
                    self.step(dict, code, true, start, end);
                }
                self.resolve_pending(false);
                self.last_word = false;
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

    /// A separator or mark skipped inside a match.
    fn skip_spacing(&mut self, end: usize) {
        self.resolve_pending(false);
        self.last_word = false;
        self.spaced = true;
        self.skip(end);
    }

    /// A character skipped inside a match (separator, invisible, allowed mark).
    fn skip(&mut self, end: usize) {
        self.gap += 1;
        if self.gap > self.max_gap {
            self.state = 0;
            self.end_run();
        }
        self.pos = end;
    }

    /// Adds a clause mark to the current gap; false when the gap becomes a paragraph break.
    fn add_mark(&mut self, code: u8) -> bool {
        let marks = self.gap_marks;
        let (kind, saw) = if code == gap::LINE || code == gap::RETURN {
            let saw = if code == gap::RETURN { gap::SAW_RETURN } else { gap::SAW_NEWLINE };
            // A second line break in one gap (`\n\n`, `\r\r`, `\n\r`) is a blank line.
            if marks & saw != 0 || (saw == gap::SAW_RETURN && marks & gap::SAW_NEWLINE != 0) {
                return false;
            }
            (gap::LINE, saw)
        } else {
            (code, 0)
        };
        let held = marks & gap::KIND;
        let kind = if held == 0 || held == kind { kind } else { gap::MIXED };
        self.gap_marks = (marks & !gap::KIND) | saw | kind;
        true
    }

    /// Does a character equal to the last one continue its run? Always when adjacent; across
    /// a gap only when the last one stood alone, as in spaced-out writing (`p u s s y`,
    /// `妹 妹`): in `as soon` the second `s` starts a word, and a keyword starting there must
    /// see it.
    fn run_continues(&self) -> bool {
        let last = &self.ring[self.count & self.ring_mask];
        // Marks inside one run are all of one kind; whether they fit the match's pattern is
        // checked with its other gaps (`色、妹、妹` does, `曹操，操` does not).
        let marks = self.gap_marks & gap::KIND;
        let mark_fits = marks == 0 || last.inner == 0 || marks == last.inner;
        !self.spaced || (!last.word_before && mark_fits)
    }

    /// The run of the last character is over: a later equal character is a new one.
    fn end_run(&mut self) {
        self.last_repeat = CharClass::NO_REPEAT;
        self.short.clear();
    }

    /// The last character came again ([`Step::Repeats`](crate::Step)): its run grows, and the
    /// hits ending with it now end here.
    fn repeat(&mut self, start: usize, end: usize) {
        let at = self.count & self.ring_mask;
        let slot = &mut self.ring[at];
        slot.run = slot.run.saturating_add(1);
        slot.last_start = start;
        if self.gap_marks & gap::KIND != 0 {
            slot.inner = self.gap_marks & gap::KIND;
            slot.inner_marked = slot.inner_marked.saturating_add(1);
        }
        let last_end = self.last_end;
        // Across a gap, a CJK hit keeps its end (`赌博 博彩` keeps `赌博` to itself), while a
        // Latin one takes the run in: a Latin run crosses a gap only in spaced-out letters
        // (`x . x . x` is one run of `xxx`).
        let spaced = core::mem::take(&mut self.spaced);
        let dict = Arc::clone(&self.dict);
        let ends_word = |c: &Candidate| dict.pattern(c.pattern).is_some_and(|p| p.ends_word);
        let accepted = self.open.iter_mut().filter(|c| !spaced || ends_word(c));
        for c in accepted.chain(self.pending.iter_mut()).chain(self.short.iter_mut()) {
            if c.end == last_end {
                c.end = end;
            }
        }
        // A one-letter keyword matches only as written: `q` is not in `QQ`.
        let (dict, run) = (&self.dict, self.ring[at].run);
        self.pending.retain(|c| dict.pattern(c.pattern).is_none_or(|p| dict.most_run(p) >= run));
        let short = core::mem::take(&mut self.short);
        for c in short {
            match self.dict.pattern(c.pattern).copied() {
                Some(p) if self.runs_reached(&p) => self.found_hit(&p, c),
                Some(_) => self.short.push(c),
                None => {}
            }
        }
        // A gap inside a run is not a gap between two characters of a keyword.
        self.gap = 0;
        self.gap_marks = 0;
        self.pos = end;
        self.last_end = end;
    }

    /// The ring slots of the last `len` characters, first to last.
    fn last_slots(&self, len: u16) -> impl Iterator<Item = &RingSlot> + '_ {
        let back = usize::from(len).saturating_sub(1);
        (0..=back).map(move |k| &self.ring[self.count.wrapping_sub(back - k) & self.ring_mask])
    }

    /// Has each character of `p` (ending at the last one) come at least as many times in a
    /// row as the keyword has it?
    fn runs_reached(&self, p: &Pattern) -> bool {
        match self.dict.runs(p) {
            None => true,
            Some(runs) => self.last_slots(p.len).zip(runs).all(|(slot, &least)| slot.run >= least),
        }
    }

    /// A hit past its run check: its gaps checked (a run's inner gaps are known only now), then
    /// to the word-boundary check or accepted.
    fn found_hit(&mut self, p: &Pattern, mut c: Candidate) {
        let gaps = self.last_slots(p.len).enumerate().flat_map(|(k, slot)| slot.gaps(k == 0));
        if !gaps_allowed(gaps) {
            // A match starting inside a run may start at its last repeat instead, leaving the
            // run's gaps out (`赌，赌博` holds `赌博`, `他，他妈的` holds `他妈的`).
            let first = *self.last_slots(p.len).next().unwrap_or(&RingSlot::default());
            let needs_run = self.dict.runs(p).and_then(|r| r.first().copied()).unwrap_or(1) > 1;
            let tail = self.last_slots(p.len).skip(1).flat_map(|slot| slot.gaps(false));
            if first.run < 2 || needs_run || !gaps_allowed(tail) {
                return;
            }
            c.start = first.last_start;
        }
        if p.ends_word {
            self.pending.push(c);
        } else {
            self.accept(c);
        }
    }

    #[inline]
    fn step(&mut self, dict: &Dictionary, code: u32, word: bool, start: usize, end: usize) {
        self.short.clear();
        self.last_repeat = CharClass::NO_REPEAT;
        self.gap = 0;
        self.spaced = false;
        self.pos = end;
        self.last_end = end;
        let marks = core::mem::take(&mut self.gap_marks);
        if code == 0 {
            self.state = 0;
            self.last_word = word;
            return;
        }
        self.state = dict.next_state(self.state, code);
        self.count = self.count.wrapping_add(1);
        self.ring[self.count & self.ring_mask] = RingSlot {
            start,
            word_before: self.last_word,
            gap: marks,
            run: 1,
            inner: 0,
            inner_marked: 0,
            last_start: start,
        };
        self.last_word = word;
        let mut s = dict.first_output(self.state);
        while s != NONE {
            let (pattern, next) = dict.output(s);
            s = next;
            let Some(&p) = dict.pattern(pattern) else { continue };
            let back = usize::from(p.len).saturating_sub(1);
            let first = self.ring[self.count.wrapping_sub(back) & self.ring_mask];
            if p.starts_word && first.word_before {
                continue;
            }
            let c = Candidate { pattern, start: first.start, end };
            match dict.runs(&p) {
                Some(runs) => {
                    let (body, last) = runs.split_at(runs.len().saturating_sub(1));
                    if !self.last_slots(p.len).zip(body).all(|(slot, &least)| slot.run >= least) {
                        continue;
                    }
                    if last.first().is_some_and(|&least| least > 1) {
                        self.short.push(c);
                        continue;
                    }
                    self.found_hit(&p, c);
                }
                None => self.found_hit(&p, c),
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
        let found = &mut self.decided;
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
        for c in self.pending.iter().chain(&self.short) {
            settled = settled.min(c.start);
        }
        settled
    }

    fn finish_scan(&mut self) {
        if self.utf8_len > 0 {
            let end = self.pos + self.utf8_len;
            self.utf8_len = 0;
            self.boundary(end);
        }
        self.resolve_pending(false);
        self.end_run();
        self.state = 0;
        self.settle_open();
        let rest = core::mem::take(&mut self.open);
        self.decided.extend(rest);
    }
}
