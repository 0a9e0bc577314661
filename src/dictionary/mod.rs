//! The compiled dictionary: a character-wise double-array Aho-Corasick automaton over the
//! canonical forms of the keywords, and its binary artifact.
//!
//! Characters are mapped to dense codes (most frequent first) and each state's children sit at
//! `base[state] + code`, owned when `check[slot] == state`: one lookup per character, whatever
//! the script. The artifact stores these arrays as they are, so loading is a copy and a check.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

mod artifact;
mod build;

pub use artifact::ARTIFACT_VERSION;
pub use build::DictionaryBuilder;

use crate::category::{Action, CategorySet};
use crate::error::{Error, ErrorKind};
use crate::keywords::{Diagnostic, KeywordKind, KeywordList, Problem};
use crate::normalize::{canonical_runs, fold, is_word_char, repeats, Folded, Normalization};
#[cfg(feature = "pinyin")]
use crate::normalize::{fold_reading, reading_forms};
use crate::segment::Lexicon;

pub(crate) const NONE: u32 = u32::MAX;
const ROOT: u32 = 0;

/// Default for the most keywords a dictionary may hold (`limits.max_keywords`).
pub const DEFAULT_MAX_KEYWORDS: usize = 2_000_000;

/// What the automaton knows about one keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(crate) categories: CategorySet,
    pub(crate) action: Option<Action>,
    pub(crate) kind: KeywordKind,
    /// Length of the canonical form, in characters.
    pub(crate) len: u16,
    /// The canonical form starts with a word character (needs a boundary before it).
    pub(crate) starts_word: bool,
    /// The canonical form ends with a word character (needs a boundary after it).
    pub(crate) ends_word: bool,
    /// Where the keyword's least run lengths start in [`Dictionary::runs`] (one per character,
    /// under [`Step::Repeats`](crate::Step::Repeats); a one-letter keyword has its longest run
    /// after it), or `NONE` when every run is 1.
    pub(crate) runs: u32,
}

/// How the matcher treats one text character; one entry per BMP character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CharClass(u32);

const CODE_MASK: u32 = 0x00FF_FFFF;
const WORD_BIT: u32 = 1 << 24;
/// A run of this character counts once ([`Step::Repeats`](crate::Step::Repeats)).
const REPEAT_BIT: u32 = 1 << 25;
const KIND_SHIFT: u32 = 28;

/// The kinds of [`CharClass`].
pub(crate) mod class {
    /// One character, with its code (0 when no keyword has it).
    pub(crate) const CHAR: u32 = 0;
    pub(crate) const SEPARATOR: u32 = 1;
    pub(crate) const INVISIBLE: u32 = 2;
    pub(crate) const BOUNDARY: u32 = 3;
    /// Folds into several characters (`⑩`): see [`super::Dictionary::multi`].
    pub(crate) const MULTI: u32 = 4;
    /// A clause mark or line break, with its [`Mark`](crate::normalize::Mark) code.
    pub(crate) const MARK: u32 = 5;
    /// A CJK character read as its syllable (pinyin lane): see [`super::Dictionary::multi`].
    pub(crate) const SYLLABLE: u32 = 6;
}
use class::{BOUNDARY as KIND_BOUNDARY, CHAR as KIND_CHAR, INVISIBLE as KIND_INVISIBLE};
use class::{MARK as KIND_MARK, MULTI as KIND_MULTI, SEPARATOR as KIND_SEPARATOR, SYLLABLE as KIND_SYLLABLE};

impl CharClass {
    fn new(kind: u32, code: u32, word: bool) -> CharClass {
        CharClass((kind << KIND_SHIFT) | (code & CODE_MASK) | if word { WORD_BIT } else { 0 })
    }
    pub(crate) fn kind(self) -> u32 {
        self.0 >> KIND_SHIFT
    }
    pub(crate) fn code(self) -> u32 {
        self.0 & CODE_MASK
    }
    pub(crate) fn is_word(self) -> bool {
        self.0 & WORD_BIT != 0
    }
    /// Does this character continue the run whose [`CharClass::repeat_key`] is `last`? Only
    /// when both fold to the same repeatable letter.
    #[inline(always)]
    pub(crate) fn repeats(self, last: u32) -> bool {
        self.0 == last
    }
    /// What a later character compares with [`CharClass::repeats`]: [`CharClass::NO_REPEAT`],
    /// which no class equals, unless a run of this character counts once.
    #[inline(always)]
    pub(crate) fn repeat_key(self) -> u32 {
        if self.0 & REPEAT_BIT != 0 {
            self.0
        } else {
            Self::NO_REPEAT
        }
    }
    pub(crate) const NO_REPEAT: u32 = u32::MAX;
}

/// A compiled keyword dictionary.
///
/// Build one from a [`KeywordList`] with [`DictionaryBuilder`] (or [`Dictionary::new`]), or
/// load a compiled artifact with [`Dictionary::from_artifact`]. It is immutable and cheap to
/// share; every [`Filter`](crate::Filter) over it borrows it through an `Arc`.
///
/// ```
/// use aigc_edge::{Dictionary, KeywordFormat, KeywordKind, KeywordList};
/// let mut list = KeywordList::new();
/// list.add_source("k.txt", "赌博\tA.1h\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
/// let dict = Dictionary::new(&list).unwrap();
/// let bytes = dict.to_artifact();
/// let loaded = Dictionary::from_artifact(&bytes).unwrap();
/// assert_eq!(loaded.len(), 1);
/// assert!(Dictionary::from_artifact(&bytes[..bytes.len() - 1]).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Dictionary {
    norm: Normalization,
    /// `(char, code)` sorted by char.
    codes: Vec<(u32, u32)>,
    /// What one transition reads, 8 bytes a state so more of the automaton stays in cache.
    nodes: Vec<Node>,
    fail: Vec<u32>,
    /// Pattern ending exactly at this state, or `NONE`.
    out: Vec<u32>,
    /// Nearest state on the failure chain with an output, or `NONE`.
    link: Vec<u32>,
    depth: Vec<u16>,
    patterns: Vec<Pattern>,
    /// Least run lengths of the keywords that have a repeated letter ([`Pattern::runs`]).
    runs: Vec<u8>,
    /// Keyword texts concatenated; pattern `i` is `text[text_end[i-1]..text_end[i]]`.
    text: String,
    text_end: Vec<u32>,
    max_len: u16,
    classes: LazyClasses,
    diagnostics: Vec<Diagnostic>,
    /// This automaton is a pinyin lane: it reads text by [`fold_reading`].
    lane: bool,
    /// In a lane, the main automaton's pattern for each of its own (what a hit reports).
    origin: Vec<u32>,
    /// The pinyin lane, when [`Step::Pinyin`](crate::Step::Pinyin) is on.
    reading_lane: Option<Arc<Dictionary>>,
    /// The segmentation check's lexicon ([`crate::segment`]), when the policy gives one.
    lexicon: Option<Arc<Lexicon>>,
}

/// The hot part of a state: its children's base (top bit: the state has something to report)
/// and its parent (`check`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Node {
    base: u32,
    check: u32,
}

const REPORT_BIT: u32 = 1 << 31;

/// Sets `REPORT_BIT` on every state that has an output or an output on its failure chain.
fn mark_reports(nodes: &mut [Node], out: &[u32], link: &[u32]) {
    for ((node, &o), &l) in nodes.iter_mut().zip(out).zip(link) {
        if o != NONE || l != NONE {
            node.base |= REPORT_BIT;
        }
    }
}

/// The class of every BMP character, computed on first sight: a dictionary loads without
/// classifying 65,536 characters, and each VM pays only for the characters it meets.
/// Relaxed atomics make the table shareable across threads; a race computes the same value twice.
#[derive(Debug)]
struct LazyClasses(Vec<AtomicU32>);

const UNCLASSIFIED: u32 = u32::MAX;

impl LazyClasses {
    fn new() -> LazyClasses {
        LazyClasses((0..0x10000).map(|_| AtomicU32::new(UNCLASSIFIED)).collect())
    }
}

impl Clone for LazyClasses {
    fn clone(&self) -> Self {
        LazyClasses::new()
    }
}

impl Dictionary {
    /// Builds a dictionary with default settings: `DictionaryBuilder::new().build(list)`.
    pub fn new(list: &KeywordList) -> Result<Dictionary, Error> {
        DictionaryBuilder::new().build(list)
    }

    /// Number of distinct keywords (after merging duplicates).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when the dictionary holds no keyword (never, for a built one).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The normalization the keywords were compiled under.
    pub fn normalization(&self) -> &Normalization {
        &self.norm
    }

    /// The longest keyword, in characters after normalization: the most a stream holds back.
    pub fn max_keyword_chars(&self) -> usize {
        usize::from(self.max_len)
    }

    /// Every dirty line of the source files and every duplicate met while building; empty for
    /// a dictionary loaded from an artifact.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The segmentation check's lexicon, when the dictionary was built with one
    /// ([`DictionaryBuilder::lexicon`]): with it, every [`Filter`](crate::Filter) over this
    /// dictionary checks its CJK hits ([`crate::segment`]).
    pub fn lexicon(&self) -> Option<&Lexicon> {
        // Without the feature no lexicon can be loaded, and the check compiles away.
        #[cfg(not(feature = "segmentation"))]
        return None;
        #[cfg(feature = "segmentation")]
        self.lexicon.as_deref()
    }

    /// Number of automaton states (double-array slots).
    pub fn states(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn pattern(&self, id: u32) -> Option<&Pattern> {
        self.patterns.get(id as usize)
    }

    /// The longest run a one-letter keyword matches (`q` only as `q`, not in `QQ`; `xx` and
    /// `xxx` merged up to `xxx`); no limit for longer keywords.
    pub(crate) fn most_run(&self, pattern: &Pattern) -> u8 {
        if pattern.len != 1 || pattern.runs == NONE {
            return u8::MAX;
        }
        self.runs.get(pattern.runs as usize + 1).copied().unwrap_or(u8::MAX)
    }

    /// The least run length of each character of `pattern`, when any is over 1 (and for every
    /// one-letter keyword, which stores its longest run after it).
    pub(crate) fn runs(&self, pattern: &Pattern) -> Option<&[u8]> {
        if pattern.runs == NONE {
            return None;
        }
        let at = pattern.runs as usize;
        self.runs.get(at..at + usize::from(pattern.len))
    }

    /// The keyword text of pattern `id`, as written in its file.
    pub(crate) fn keyword(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.text_end.get(i - 1).copied().unwrap_or(0) };
        let end = self.text_end.get(i).copied().unwrap_or(start);
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    #[inline(always)]
    fn child(&self, state: u32, code: u32) -> Option<u32> {
        let slot = (self.nodes.get(state as usize)?.base & !REPORT_BIT).wrapping_add(code);
        (self.nodes.get(slot as usize).map(|n| n.check) == Some(state)).then_some(slot)
    }

    /// The state after reading `code` from `state`.
    #[inline(always)]
    pub(crate) fn next_state(&self, state: u32, code: u32) -> u32 {
        if code == 0 {
            return ROOT;
        }
        self.step(state, code).0
    }

    /// [`Dictionary::next_state`], and whether the new state has something to report: both
    /// from the one node load the transition makes anyway (the matcher's hot path).
    #[inline(always)]
    pub(crate) fn step(&self, mut state: u32, code: u32) -> (u32, bool) {
        loop {
            let base = self.nodes.get(state as usize).map_or(0, |n| n.base & !REPORT_BIT);
            let slot = base.wrapping_add(code);
            if let Some(n) = self.nodes.get(slot as usize).filter(|n| n.check == state) {
                return (slot, n.base & REPORT_BIT != 0);
            }
            if state == ROOT {
                return (ROOT, false);
            }
            state = self.fail.get(state as usize).copied().unwrap_or(ROOT);
        }
    }

    /// Characters of the longest keyword prefix that ends at `state`.
    #[inline]
    pub(crate) fn depth(&self, state: u32) -> usize {
        usize::from(self.depth.get(state as usize).copied().unwrap_or(0))
    }

    /// First output state at or after `state` on the failure chain.
    #[inline(always)]
    pub(crate) fn first_output(&self, state: u32) -> u32 {
        match self.nodes.get(state as usize) {
            Some(n) if n.base & REPORT_BIT != 0 => match self.out.get(state as usize) {
                Some(&p) if p != NONE => state,
                _ => self.link.get(state as usize).copied().unwrap_or(NONE),
            },
            _ => NONE,
        }
    }

    /// `(pattern at output state, next output state)`.
    #[inline]
    pub(crate) fn output(&self, state: u32) -> (u32, u32) {
        let p = self.out.get(state as usize).copied().unwrap_or(NONE);
        (p, self.link.get(state as usize).copied().unwrap_or(NONE))
    }

    pub(crate) fn code(&self, c: char) -> u32 {
        match self.codes.binary_search_by_key(&(c as u32), |&(ch, _)| ch) {
            Ok(i) => self.codes.get(i).map_or(0, |&(_, code)| code),
            Err(_) => 0,
        }
    }

    /// How the matcher treats `c`.
    #[inline(always)]
    pub(crate) fn class(&self, c: char) -> CharClass {
        let Some(cell) = self.classes.0.get(c as usize) else {
            return self.classify(c);
        };
        match cell.load(Ordering::Relaxed) {
            UNCLASSIFIED => {
                let class = self.classify(c);
                cell.store(class.0, Ordering::Relaxed);
                class
            }
            bits => CharClass(bits),
        }
    }

    pub(crate) fn classify(&self, c: char) -> CharClass {
        match self.fold(c) {
            Folded::Syllable(_) => CharClass::new(KIND_SYLLABLE, 0, false),
            Folded::Chars(cs, 1) => {
                let class = CharClass::new(KIND_CHAR, self.code(cs[0]), is_word_char(cs[0]));
                if repeats(cs[0], &self.norm) && class.code() != 0 {
                    CharClass(class.0 | REPEAT_BIT)
                } else {
                    class
                }
            }
            Folded::Chars(cs, _) => CharClass::new(KIND_MULTI, 0, is_word_char(cs[0])),
            Folded::Separator => CharClass::new(KIND_SEPARATOR, 0, false),
            Folded::Mark(mark) => CharClass::new(KIND_MARK, mark.code(), false),
            Folded::Invisible => CharClass::new(KIND_INVISIBLE, 0, false),
            Folded::Boundary => CharClass::new(KIND_BOUNDARY, 0, false),
        }
    }

    /// Codes of the characters `c` folds into (for [`class::MULTI`]), with their word flags.
    pub(crate) fn multi(&self, c: char) -> impl Iterator<Item = (u32, bool)> + '_ {
        let folded = self.fold(c);
        let letters: Vec<char> = folded.letters().collect();
        letters.into_iter().map(move |l| (self.code(l), is_word_char(l)))
    }

    /// How this automaton reads `c`: as written after folding, or in a pinyin lane by its
    /// reading.
    fn fold(&self, c: char) -> Folded {
        #[cfg(feature = "pinyin")]
        if self.lane {
            return fold_reading(c, &self.norm);
        }
        fold(c, &self.norm)
    }

    /// The pinyin lane, when there is one.
    #[cfg_attr(not(feature = "pinyin"), allow(dead_code))]
    pub(crate) fn reading_lane(&self) -> Option<&Arc<Dictionary>> {
        self.reading_lane.as_ref()
    }

    /// The main automaton's pattern for pattern `id` of this one (itself outside a lane).
    #[cfg_attr(not(feature = "pinyin"), allow(dead_code))]
    pub(crate) fn main_pattern(&self, id: u32) -> u32 {
        if self.lane {
            self.origin.get(id as usize).copied().unwrap_or(NONE)
        } else {
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::keywords::KeywordFormat;

    fn dict(words: &str) -> Dictionary {
        let mut list = KeywordList::new();
        list.add_source("t", words.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
        Dictionary::new(&list).unwrap()
    }

    /// All `(end_char_index, keyword)` pairs by walking the automaton over `text`'s codes.
    fn walk(d: &Dictionary, text: &str) -> Vec<(usize, String)> {
        let mut state = ROOT;
        let mut hits = Vec::new();
        for (i, c) in text.chars().enumerate() {
            state = d.next_state(state, d.code(c));
            let mut s = d.first_output(state);
            while s != NONE {
                let (p, next) = d.output(s);
                hits.push((i, d.keyword(p).to_string()));
                s = next;
            }
        }
        hits
    }

    #[test]
    fn automaton_finds_overlapping_keywords() {
        let d = dict("he\nshe\nhis\nhers\n我的\n我的世界\n世界\n");
        assert_eq!(walk(&d, "ushers"), [(3, "she".to_string()), (3, "he".into()), (5, "hers".into())]);
        assert_eq!(walk(&d, "我的世界"), [(1, "我的".to_string()), (3, "我的世界".into()), (3, "世界".into())]);
        assert_eq!(d.max_keyword_chars(), 4);
    }

    #[test]
    fn artifact_round_trip_and_corruption() {
        let d = dict("he\nshe\nhis\nhers\n我的\n我的世界\n世界\t\t\n赌博\tA.1h\tblock\n");
        let bytes = d.to_artifact();
        let loaded = Dictionary::from_artifact(&bytes).unwrap();
        assert_eq!(loaded.to_artifact(), bytes);
        assert_eq!(walk(&loaded, "ushers我的世界赌博"), walk(&d, "ushers我的世界赌博"));
        // Every prefix is refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(Dictionary::from_artifact(&bytes[..cut]).is_err(), "prefix {cut}");
        }
        // Every single-byte flip is refused.
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            let err = Dictionary::from_artifact(&bad).unwrap_err().to_string();
            // Past the header, the checksum decides the error, not what the damage broke first.
            if at >= 24 {
                assert!(err.contains("checksum mismatch"), "flip at {at}: {err}");
            }
        }
        // Read piece by piece, each piece a copy (as from a host's buffer): the same dictionary.
        let owned = |at: usize, n: usize| bytes.get(at..at + n).map(|p| Cow::Owned(p.to_vec()));
        let pieces = Dictionary::from_artifact_pieces(bytes.len(), owned).unwrap();
        assert_eq!(pieces.to_artifact(), bytes);
        // A source that gives out after `served` bytes, or hands back short pieces: an error
        // naming the truncation, never a panic.
        for served in (0..bytes.len()).step_by(7) {
            let mut given = 0;
            let failing = |at: usize, n: usize| {
                given += n;
                (given <= served).then(|| Cow::Borrowed(&bytes[at..at + n]))
            };
            let err = Dictionary::from_artifact_pieces(bytes.len(), failing).unwrap_err().to_string();
            assert!(err.contains("truncated") || err.contains("bad magic"), "served {served}: {err}");
        }
        let short = |at: usize, n: usize| Some(Cow::Borrowed(&bytes[at..at + n - 1]));
        let err = Dictionary::from_artifact_pieces(bytes.len(), short).unwrap_err().to_string();
        assert!(err.contains("bad magic"), "{err}");
        let mut other = bytes.clone();
        other[8] = 9;
        let err = Dictionary::from_artifact(&other).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("bad dictionary artifact: format version 9, this build reads version {ARTIFACT_VERSION}")
        );
    }
}
