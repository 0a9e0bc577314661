//! The compiled dictionary: a character-wise double-array Aho-Corasick automaton over the
//! canonical forms of the keywords, and its binary artifact.
//!
//! Characters are mapped to dense codes (most frequent first) and each state's children sit at
//! `base[state] + code`, owned when `check[slot] == state`: one lookup per character, whatever
//! the script. The artifact stores these arrays as they are, so loading is a copy and a check.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::category::{Action, CategorySet};
use crate::error::{Error, ErrorKind};
use crate::keywords::{Diagnostic, KeywordKind, KeywordList, Problem};
use crate::normalize::{canonical, fold, is_word_char, Folded, Normalization};

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
}

/// How the matcher treats one text character; one entry per BMP character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CharClass(u32);

const CODE_MASK: u32 = 0x00FF_FFFF;
const WORD_BIT: u32 = 1 << 24;
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
}
use class::{BOUNDARY as KIND_BOUNDARY, CHAR as KIND_CHAR, INVISIBLE as KIND_INVISIBLE};
use class::{MULTI as KIND_MULTI, SEPARATOR as KIND_SEPARATOR};

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
    /// Keyword texts concatenated; pattern `i` is `text[text_end[i-1]..text_end[i]]`.
    text: String,
    text_end: Vec<u32>,
    max_len: u16,
    classes: LazyClasses,
    diagnostics: Vec<Diagnostic>,
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
    for (s, node) in nodes.iter_mut().enumerate() {
        if out.get(s).is_some_and(|&o| o != NONE) || link.get(s).is_some_and(|&l| l != NONE) {
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

/// Builds a [`Dictionary`].
///
/// Quick advice: the defaults are right. Set [`DictionaryBuilder::normalization`] to the
/// policy's `normalize` object when the policy changes any step, since keywords are stored in
/// the form the policy's normalization sees.
#[derive(Clone, Debug)]
pub struct DictionaryBuilder {
    norm: Normalization,
    max_keywords: usize,
}

impl Default for DictionaryBuilder {
    fn default() -> Self {
        DictionaryBuilder { norm: Normalization::default(), max_keywords: DEFAULT_MAX_KEYWORDS }
    }
}

struct TrieNode {
    children: Vec<(u32, u32)>,
    pattern: u32,
}

impl DictionaryBuilder {
    /// A builder with default settings.
    pub fn new() -> DictionaryBuilder {
        DictionaryBuilder::default()
    }

    /// The normalization keywords are stored under; must match the policy's.
    pub fn normalization(&mut self, norm: Normalization) -> &mut DictionaryBuilder {
        self.norm = norm;
        self
    }

    /// The most keywords accepted; more is an error ([`ErrorKind::TooManyKeywords`]).
    pub fn max_keywords(&mut self, limit: usize) -> &mut DictionaryBuilder {
        self.max_keywords = limit;
        self
    }

    /// Compiles the keywords. Duplicates and keywords with nothing to match are reported in
    /// [`Dictionary::diagnostics`], after the list's own.
    pub fn build(&self, list: &KeywordList) -> Result<Dictionary, Error> {
        if list.keywords().len() > self.max_keywords {
            return Err(Error::new(ErrorKind::TooManyKeywords {
                count: list.keywords().len(),
                limit: self.max_keywords,
            }));
        }
        let mut report = list.clone();
        // Canonical form -> index into `entries`.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut entries: Vec<(Vec<char>, Pattern, usize)> = Vec::new();
        for (index, keyword) in list.keywords().iter().enumerate() {
            let form: Vec<char> = canonical(&keyword.text, &self.norm).chars().collect();
            let (Some(&first), Some(&last)) = (form.first(), form.last()) else {
                report.push_diagnostic(keyword.origin, Problem::NothingToMatch);
                continue;
            };
            let pattern = Pattern {
                categories: keyword.categories,
                action: keyword.action,
                kind: keyword.kind,
                len: form.len() as u16,
                starts_word: is_word_char(first),
                ends_word: is_word_char(last),
            };
            let key: String = form.iter().collect();
            if let Some(&at) = seen.get(&key) {
                let (_, earlier, first_index) = &mut entries[at];
                let origin = list.keywords()[*first_index].origin;
                let first_at = (report.source_name(origin.0).to_string(), origin.1);
                report.push_diagnostic(keyword.origin, Problem::Duplicate { first: first_at });
                earlier.categories = earlier.categories.union(pattern.categories);
                earlier.action = earlier.action.max(pattern.action);
                if pattern.kind == KeywordKind::Allow {
                    earlier.kind = KeywordKind::Allow;
                }
                continue;
            }
            seen.insert(key, entries.len());
            entries.push((form, pattern, index));
        }
        if entries.is_empty() {
            return Err(Error::new(ErrorKind::EmptyDictionary));
        }

        // Dense codes, most frequent character first, so the arrays stay compact.
        let mut freq: HashMap<char, u64> = HashMap::new();
        for (form, _, _) in &entries {
            for &c in form {
                *freq.entry(c).or_default() += 1;
            }
        }
        let mut by_freq: Vec<(char, u64)> = freq.into_iter().collect();
        by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let code_of: HashMap<char, u32> = by_freq.iter().enumerate().map(|(i, &(c, _))| (c, i as u32 + 1)).collect();
        let mut codes: Vec<(u32, u32)> = code_of.iter().map(|(&c, &code)| (c as u32, code)).collect();
        codes.sort_unstable();

        let mut trie = vec![TrieNode { children: Vec::new(), pattern: NONE }];
        let mut patterns = Vec::with_capacity(entries.len());
        let mut text = String::new();
        let mut text_end = Vec::with_capacity(entries.len());
        for (form, pattern, index) in &entries {
            let mut node = 0usize;
            for c in form {
                let code = code_of.get(c).copied().unwrap_or(0);
                node = match trie[node].children.iter().find(|(k, _)| *k == code) {
                    Some(&(_, child)) => child as usize,
                    None => {
                        trie.push(TrieNode { children: Vec::new(), pattern: NONE });
                        let child = trie.len() - 1;
                        trie[node].children.push((code, child as u32));
                        child
                    }
                };
            }
            trie[node].pattern = patterns.len() as u32;
            patterns.push(*pattern);
            text.push_str(&list.keywords()[*index].text);
            text_end.push(text.len() as u32);
        }
        let max_len = patterns.iter().map(|p| p.len).max().unwrap_or(0);
        let mut dict = place(&mut trie, self.norm)?;
        dict.codes = codes;
        dict.patterns = patterns;
        dict.text = text;
        dict.text_end = text_end;
        dict.max_len = max_len;
        dict.diagnostics = report.diagnostics().to_vec();
        Ok(dict)
    }
}

/// Lays the trie out as a double array and computes failure links.
fn place(trie: &mut [TrieNode], norm: Normalization) -> Result<Dictionary, Error> {
    let mut placer = Placer::default();
    let mut slot_of = vec![NONE; trie.len()];
    slot_of[0] = ROOT;
    placer.reserve(ROOT);
    let mut base: Vec<u32> = Vec::new();
    let mut check: Vec<u32> = Vec::new();
    let mut queue = VecDeque::from([0usize]);
    while let Some(node) = queue.pop_front() {
        let slot = slot_of[node] as usize;
        let children = &mut trie[node].children;
        children.sort_unstable();
        if children.is_empty() {
            continue;
        }
        let codes: Vec<u32> = children.iter().map(|&(c, _)| c).collect();
        let b = placer.find_base(&codes)?;
        grow(&mut base, slot + 1, 0);
        base[slot] = b;
        for &(code, child) in children.iter() {
            let child_slot = b + code;
            placer.reserve(child_slot);
            grow(&mut check, child_slot as usize + 1, NONE);
            check[child_slot as usize] = slot as u32;
            slot_of[child as usize] = child_slot;
            queue.push_back(child as usize);
        }
    }
    let slots = placer.len().max(1);
    grow(&mut base, slots, 0);
    grow(&mut check, slots, NONE);
    let mut dict = Dictionary {
        norm,
        codes: Vec::new(),
        nodes: Vec::new(),
        fail: vec![ROOT; slots],

        out: vec![NONE; slots],
        link: vec![NONE; slots],
        depth: vec![0; slots],
        patterns: Vec::new(),
        text: String::new(),
        text_end: Vec::new(),
        max_len: 0,
        classes: LazyClasses::new(),
        diagnostics: Vec::new(),
    };
    for (node, t) in trie.iter().enumerate() {
        dict.out[slot_of[node] as usize] = t.pattern;
    }
    dict.nodes = base.iter().zip(&check).map(|(&base, &check)| Node { base, check }).collect();
    // Failure links, breadth first so a parent's link is known before its children's.
    let mut queue = VecDeque::from([0usize]);
    while let Some(node) = queue.pop_front() {
        let slot = slot_of[node];
        for &(code, child) in &trie[node].children {
            let child_slot = slot_of[child as usize];
            dict.depth[child_slot as usize] = dict.depth[slot as usize].saturating_add(1);
            let fail = if slot == ROOT {
                ROOT
            } else {
                let mut f = dict.fail[slot as usize];
                loop {
                    if let Some(next) = dict.child(f, code) {
                        break next;
                    }
                    if f == ROOT {
                        break ROOT;
                    }
                    f = dict.fail[f as usize];
                }
            };
            dict.fail[child_slot as usize] = fail;
            dict.link[child_slot as usize] =
                if dict.out[fail as usize] != NONE { fail } else { dict.link[fail as usize] };
            queue.push_back(child as usize);
        }
    }
    mark_reports(&mut dict.nodes, &dict.out, &dict.link);
    Ok(dict)
}

fn grow<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    if v.len() < len {
        v.resize(len, fill);
    }
}

/// Free-slot bookkeeping for double-array placement: a doubly linked list of free slots so
/// the search for a base visits only free slots.
#[derive(Default)]
struct Placer {
    used: Vec<bool>,
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
    initialized: bool,
}

impl Placer {
    fn len(&self) -> usize {
        self.used.iter().rposition(|&u| u).map_or(0, |i| i + 1)
    }

    fn extend_to(&mut self, len: usize) {
        if !self.initialized {
            self.head = NONE;
            self.initialized = true;
        }
        let old = self.used.len();
        if len <= old {
            return;
        }
        let len = len.max(old + 1024);
        self.used.resize(len, false);
        self.next.resize(len, NONE);
        self.prev.resize(len, NONE);
        // Append the new slots to the list, after the last free slot.
        let mut last = NONE;
        let mut p = self.head;
        // Free slots are appended in order, so the tail is the largest free index below `old`.
        if p != NONE {
            while p != NONE {
                last = p;
                p = self.next[p as usize];
            }
        }
        for i in old..len {
            self.prev[i] = last;
            if last == NONE {
                self.head = i as u32;
            } else {
                self.next[last as usize] = i as u32;
            }
            last = i as u32;
        }
    }

    fn reserve(&mut self, slot: u32) {
        self.extend_to(slot as usize + 1);
        let i = slot as usize;
        if self.used[i] {
            return;
        }
        self.used[i] = true;
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NONE {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    fn find_base(&mut self, codes: &[u32]) -> Result<u32, Error> {
        let (first, last) = match (codes.first(), codes.last()) {
            (Some(&f), Some(&l)) => (f, l),
            _ => return Ok(0),
        };
        self.extend_to(1);
        let mut p = self.head;
        loop {
            if p == NONE {
                let len = self.used.len();
                self.extend_to(len + 1);
                p = len as u32;
                continue;
            }
            if p >= first {
                let b = p - first;
                let needed = b as u64 + u64::from(last) + 1;
                if needed > u64::from(i32::MAX as u32) {
                    return Err(Error::new(ErrorKind::DictionaryTooLarge));
                }
                self.extend_to(needed as usize);
                if codes.iter().all(|&c| !self.used[(b + c) as usize]) {
                    return Ok(b);
                }
            }
            p = self.next[p as usize];
        }
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

    /// Number of automaton states (double-array slots).
    pub fn states(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn pattern(&self, id: u32) -> Option<&Pattern> {
        self.patterns.get(id as usize)
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
        match fold(c, &self.norm) {
            Folded::Chars(cs, 1) => CharClass::new(KIND_CHAR, self.code(cs[0]), is_word_char(cs[0])),
            Folded::Chars(cs, _) => CharClass::new(KIND_MULTI, 0, is_word_char(cs[0])),
            Folded::Separator => CharClass::new(KIND_SEPARATOR, 0, false),
            Folded::Invisible => CharClass::new(KIND_INVISIBLE, 0, false),
            Folded::Boundary => CharClass::new(KIND_BOUNDARY, 0, false),
        }
    }

    /// Codes of the characters `c` folds into (for [`class::MULTI`]), with their word flags.
    pub(crate) fn multi(&self, c: char) -> impl Iterator<Item = (u32, bool)> + '_ {
        let folded = fold(c, &self.norm);
        let (chars, n) = match folded {
            Folded::Chars(cs, n) => (cs, usize::from(n)),
            _ => (['\0'; 3], 0),
        };
        (0..n).map(move |i| (self.code(chars[i]), is_word_char(chars[i])))
    }
}

// ---------------------------------------------------------------------------------------------
// Artifact.

/// Depth of every state (from the parent links in `check`) and output links (from the failure
/// links), validating on the way that parents form a tree no deeper than the longest keyword
/// and that failure links lead to shallower states, so no crafted artifact can make matching
/// loop.
fn derive_depth_and_links(
    nodes: &[Node],
    fail: &[u32],
    out: &[u32],
    max_len: u16,
) -> Result<(Vec<u16>, Vec<u32>), &'static str> {
    const UNKNOWN: u16 = u16::MAX;
    let check = |s: usize| nodes.get(s).map_or(NONE, |n| n.check);
    let n = nodes.len();
    let mut depth = vec![UNKNOWN; n];
    let mut path = Vec::new();
    for s in 0..n {
        if s == 0 || check(s) == NONE {
            depth[s] = 0;
            continue;
        }
        let mut t = s;
        while depth[t] == UNKNOWN {
            path.push(t);
            if path.len() > usize::from(max_len) {
                return Err("parent links deeper than the longest keyword, or a cycle");
            }
            t = check(t) as usize;
            if t != 0 && (t >= n || check(t) == NONE) {
                return Err("state whose parent is not a state");
            }
        }
        let mut d = depth[t];
        while let Some(u) = path.pop() {
            d += 1;
            depth[u] = d;
        }
    }
    if depth.iter().any(|&d| d > max_len) {
        return Err("state depth exceeds the longest keyword");
    }
    // Failure links must lead to a strictly shallower state (or the root).
    let shallower = |s: usize, to: u32| {
        let d = depth.get(to as usize).copied().unwrap_or(UNKNOWN);
        d < depth[s] || (to == ROOT && depth[s] == 0)
    };
    if fail.iter().enumerate().any(|(s, &f)| s != 0 && !shallower(s, f)) {
        return Err("failure link does not shorten the match");
    }
    // Output links in order of depth, so each state's failure target is done before it.
    let mut by_depth: Vec<Vec<u32>> = vec![Vec::new(); usize::from(max_len) + 1];
    for (s, &d) in depth.iter().enumerate() {
        if s != 0 && check(s) != NONE {
            by_depth[usize::from(d)].push(s as u32);
        }
    }
    let mut link = vec![NONE; n];
    for s in by_depth.into_iter().flatten() {
        let f = fail[s as usize] as usize;
        link[s as usize] = if out[f] != NONE { f as u32 } else { link[f] };
    }
    Ok((depth, link))
}

const MAGIC: &[u8; 8] = b"AIGCDICT";
/// Version of the artifact layout; bumped on any change.
pub const ARTIFACT_VERSION: u32 = 2;
const HEADER: usize = 24;

fn norm_bits(n: &Normalization) -> u32 {
    n.step_bits() | (u32::from(n.max_gap) << 8)
}

fn norm_from_bits(bits: u32) -> Normalization {
    Normalization::from_step_bits(bits & 0xFF, (bits >> 8) as u8)
}

fn action_byte(a: Option<Action>) -> u8 {
    match a {
        None => 0xFF,
        Some(Action::Pass) => 0,
        Some(Action::Flag) => 1,
        Some(Action::Mask) => 2,
        Some(Action::Block) => 3,
    }
}

fn action_from_byte(b: u8) -> Result<Option<Action>, Error> {
    Ok(match b {
        0xFF => None,
        0 => Some(Action::Pass),
        1 => Some(Action::Flag),
        2 => Some(Action::Mask),
        3 => Some(Action::Block),
        _ => return Err(Error::artifact(format!("bad action byte {b}"))),
    })
}

/// CRC-32 (IEEE 802.3), the checksum the artifact ends with. Slicing-by-8, so checking a
/// multi-megabyte artifact stays within the start-up budget.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLES: [[u32; 256]; 8] = {
        let mut t = [[0u32; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[0][i] = c;
            i += 1;
        }
        let mut i = 0;
        while i < 256 {
            let mut k = 1;
            while k < 8 {
                t[k][i] = (t[k - 1][i] >> 8) ^ t[0][(t[k - 1][i] & 0xFF) as usize];
                k += 1;
            }
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xFF) as usize]
            ^ TABLES[6][((lo >> 8) & 0xFF) as usize]
            ^ TABLES[5][((lo >> 16) & 0xFF) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xFF) as usize]
            ^ TABLES[2][((hi >> 8) & 0xFF) as usize]
            ^ TABLES[1][((hi >> 16) & 0xFF) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| Error::artifact(format!("truncated in {what} at byte {}", self.at + HEADER)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32s(&mut self, n: usize, what: &str) -> Result<Vec<u32>, Error> {
        let bytes = self.take(n.saturating_mul(4), what)?;
        Ok(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
    fn count(&mut self, what: &str, max: usize) -> Result<usize, Error> {
        let n = self.u32(what)? as usize;
        if n > max {
            return Err(Error::artifact(format!("{what} count {n} exceeds the artifact size")));
        }
        Ok(n)
    }
}

fn put_u32s(out: &mut Vec<u8>, values: &[u32]) {
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

impl Dictionary {
    /// Serializes the compiled dictionary: magic, version, normalization, the automaton arrays,
    /// keyword metadata and texts, and a CRC-32 over everything.
    pub fn to_artifact(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        let flat: Vec<u32> = self.codes.iter().flat_map(|&(c, k)| [c, k]).collect();
        put_u32s(&mut payload, &flat);
        let field = |f: fn(&Node) -> u32| self.nodes.iter().map(f).collect::<Vec<u32>>();
        // Depths and output links are derived at load (`derive_depth_and_links`): a smaller
        // artifact is faster to fetch, check and parse, and its copy costs each VM less memory.
        for array in [&field(|n| n.base & !REPORT_BIT), &field(|n| n.check), &self.fail, &self.out] {
            put_u32s(&mut payload, array);
        }
        let meta: Vec<u32> = self
            .patterns
            .iter()
            .flat_map(|p| {
                let kind = u32::from(p.kind == KeywordKind::Allow);
                let flags = kind | u32::from(p.starts_word) << 1 | u32::from(p.ends_word) << 2;
                let packed = u32::from(action_byte(p.action)) | flags << 8 | u32::from(p.len) << 16;
                [p.categories.bits(), packed]
            })
            .collect();
        put_u32s(&mut payload, &meta);
        put_u32s(&mut payload, &self.text_end);
        payload.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        payload.extend_from_slice(self.text.as_bytes());

        let mut out = Vec::with_capacity(HEADER + payload.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&ARTIFACT_VERSION.to_le_bytes());
        out.extend_from_slice(&norm_bits(&self.norm).to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Loads an artifact made by [`Dictionary::to_artifact`]. A wrong magic or version, a
    /// length or checksum mismatch, or any index out of range is refused with an error saying
    /// which; nothing in a bad artifact can make matching panic or read out of bounds.
    pub fn from_artifact(bytes: &[u8]) -> Result<Dictionary, Error> {
        if bytes.len() < HEADER + 4 || &bytes[..8] != MAGIC {
            return Err(Error::artifact("not an aigc-edge dictionary (bad magic)"));
        }
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let version = word(8);
        if version != ARTIFACT_VERSION {
            return Err(Error::artifact(format!(
                "format version {version}, this build reads version {ARTIFACT_VERSION}"
            )));
        }
        let norm = norm_from_bits(word(12));
        let declared = u64::from(word(16)) | u64::from(word(20)) << 32;
        let actual = (bytes.len() - HEADER - 4) as u64;
        if declared != actual {
            return Err(Error::artifact(format!(
                "payload is {actual} bytes, header says {declared} (truncated or padded)"
            )));
        }
        let body = &bytes[..bytes.len() - 4];
        let stored = word(bytes.len() - 4);
        let computed = crc32(body);
        if stored != computed {
            return Err(Error::artifact(format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})")));
        }
        let mut r = Reader { bytes: &body[HEADER..], at: 0 };
        let max = body.len() / 4;
        let n = r.count("code map", max)?;
        let flat = r.u32s(n, "code map")?;
        let codes: Vec<(u32, u32)> = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        if n % 2 != 0 {
            return Err(Error::artifact("code map has an odd length"));
        }
        // `base` and `check` go straight into the nodes: no intermediate copies, so a VM's
        // memory peak while loading stays near the artifact plus the dictionary.
        let n = r.count("base", max)?;
        let base_raw = r.take(n.saturating_mul(4), "base")?;
        let n = r.count("check", max)?;
        let check_raw = r.take(n.saturating_mul(4), "check")?;
        if base_raw.len() != check_raw.len() {
            return Err(Error::artifact("state arrays differ in length"));
        }
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut nodes: Vec<Node> = base_raw
            .chunks_exact(4)
            .zip(check_raw.chunks_exact(4))
            .map(|(b, c)| Node { base: word(b), check: word(c) })
            .collect();
        let n = r.count("fail", max)?;
        let fail = r.u32s(n, "fail")?;
        let n = r.count("out", max)?;
        let out = r.u32s(n, "out")?;
        let n = r.count("keyword metadata", max)?;
        let meta = r.u32s(n, "keyword metadata")?;
        let n = r.count("keyword offsets", max)?;
        let text_end = r.u32s(n, "keyword offsets")?;
        let n = r.count("keyword text", body.len())?;
        let text = core::str::from_utf8(r.take(n, "keyword text")?)
            .map_err(|e| Error::artifact(format!("keyword text is not UTF-8: {e}")))?
            .to_string();
        if r.at != r.bytes.len() {
            return Err(Error::artifact("trailing bytes after keyword text"));
        }

        let mut patterns = Vec::with_capacity(meta.len() / 2);
        for m in meta.chunks_exact(2) {
            let packed = m[1];
            let flags = (packed >> 8) & 0xFF;
            patterns.push(Pattern {
                categories: CategorySet::from_bits(m[0]),
                action: action_from_byte(packed as u8)?,
                kind: if flags & 1 != 0 { KeywordKind::Allow } else { KeywordKind::Deny },
                starts_word: flags & 2 != 0,
                ends_word: flags & 4 != 0,
                len: (packed >> 16) as u16,
            });
        }
        let slots = nodes.len();
        let max_len = patterns.iter().map(|p| p.len).max().unwrap_or(0);
        // Validate every index so matching never needs to trust the file.
        let in_slots = |v: u32| (v as usize) < slots;
        let problem = if slots == 0 {
            Some("no states")
        } else if [fail.len(), out.len()].iter().any(|&l| l != slots) {
            Some("state arrays differ in length")
        } else if nodes.iter().any(|n| n.base & REPORT_BIT != 0) {
            Some("base entry out of range")
        } else if nodes.iter().any(|n| n.check != NONE && !in_slots(n.check)) {
            Some("check entry out of range")
        } else if fail.iter().any(|&f| !in_slots(f)) {
            Some("failure link out of range")
        } else if out.iter().any(|&o| o != NONE && o as usize >= patterns.len()) {
            Some("output pattern out of range")
        } else if text_end.len() != patterns.len()
            || text_end.windows(2).any(|w| w[0] > w[1])
            || text_end.iter().any(|&e| e as usize > text.len() || !text.is_char_boundary(e as usize))
        {
            Some("keyword offsets out of range")
        } else if codes.windows(2).any(|w| w[0].0 >= w[1].0)
            || codes.iter().any(|&(c, k)| char::from_u32(c).is_none() || k == 0 || k > CODE_MASK)
        {
            Some("code map not sorted or out of range")
        } else if patterns.is_empty() {
            Some("no keywords")
        } else if patterns.iter().any(|p| p.len == 0) {
            Some("keyword of length 0")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::artifact(problem));
        }
        let (depth, link) = derive_depth_and_links(&nodes, &fail, &out, max_len).map_err(Error::artifact)?;
        mark_reports(&mut nodes, &out, &link);
        Ok(Dictionary {
            norm,
            codes,
            nodes,
            fail,
            out,
            link,
            depth,
            patterns,
            text,
            text_end,
            max_len,
            classes: LazyClasses::new(),
            diagnostics: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
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
            assert!(Dictionary::from_artifact(&bad).is_err(), "flip at {at}");
        }
        let mut other = bytes.clone();
        other[8] = 9;
        let err = Dictionary::from_artifact(&other).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("bad dictionary artifact: format version 9, this build reads version {ARTIFACT_VERSION}")
        );
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
