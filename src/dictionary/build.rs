//! Building the automaton: keywords to a trie in canonical form, then placed into the double
//! array, failure links by breadth-first search.

use std::collections::{HashMap, VecDeque};

use super::*;
#[cfg(feature = "pinyin")]
use crate::Step;

/// Builds a [`Dictionary`].
///
/// Quick advice: the defaults are right. Set [`DictionaryBuilder::normalization`] to the
/// policy's `normalize` object when the policy changes any step, since keywords are stored in
/// the form the policy's normalization sees.
#[derive(Clone, Debug)]
pub struct DictionaryBuilder {
    norm: Normalization,
    max_keywords: usize,
    lexicon: Option<Arc<Lexicon>>,
}

impl Default for DictionaryBuilder {
    fn default() -> Self {
        DictionaryBuilder { norm: Normalization::default(), max_keywords: DEFAULT_MAX_KEYWORDS, lexicon: None }
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

    /// The lexicon of the segmentation check ([`crate::segment`]); it travels in the artifact.
    pub fn lexicon(&mut self, lexicon: Lexicon) -> &mut DictionaryBuilder {
        self.lexicon = Some(Arc::new(lexicon));
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
        let mut entries: Vec<(Vec<char>, Vec<u8>, Pattern, usize)> = Vec::new();
        for (index, keyword) in list.keywords().iter().enumerate() {
            let (form, runs) = canonical_runs(&keyword.text, &self.norm);
            let (Some(&first), Some(&last)) = (form.first(), form.last()) else {
                report.push_diagnostic(keyword.origin, Problem::NothingToMatch);
                continue;
            };
            let pattern = Pattern::of(keyword, form.len(), first, last);
            let key: String = form.iter().collect();
            if let Some(&at) = seen.get(&key) {
                let (_, earlier_runs, earlier, first_index) = &mut entries[at];
                // `as` and `ass` share the form `as`: the looser runs serve both. A one-letter
                // form also keeps its longest run (`xx` and `xxx` match up to `xxx`).
                if let ([least, most], [run]) = (earlier_runs.as_mut_slice(), runs.as_slice()) {
                    (*least, *most) = ((*least).min(*run), (*most).max(*run));
                }
                for (e, &r) in earlier_runs.iter_mut().zip(&runs) {
                    *e = (*e).min(r);
                }
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
            // A one-letter form matches only runs it was written with: `[least, most]`.
            let runs = if let [run] = runs.as_slice() { vec![*run, *run] } else { runs };
            entries.push((form, runs, pattern, index));
        }
        if entries.is_empty() {
            return Err(Error::new(ErrorKind::EmptyDictionary));
        }

        let mut dict = assemble(&entries, list, self.norm.clone())?;
        dict.diagnostics = report.diagnostics().to_vec();
        dict.lexicon = self.lexicon.clone();
        #[cfg(feature = "pinyin")]
        if self.norm.has(Step::Pinyin) {
            // Pattern `i` of the main automaton is `entries[i]`.
            let mut main_id = vec![None; list.keywords().len()];
            for (index, keyword) in list.keywords().iter().enumerate() {
                let (form, _) = canonical_runs(&keyword.text, &self.norm);
                main_id[index] = seen.get(&form.iter().collect::<String>()).map(|&at| at as u32);
            }
            dict.reading_lane = build_lane(list, &main_id, &self.norm)?.map(Arc::new);
        }
        Ok(dict)
    }
}

#[cfg(feature = "pinyin")]
/// The most pinyin forms one keyword adds (the combinations of its characters' readings).
const MAX_READING_FORMS: usize = 8;

#[cfg(feature = "pinyin")]
/// The pinyin lane ([`Step::Pinyin`]): every keyword by its readings, over text read as
/// syllables. `main_id[i]` is keyword `i`'s pattern in the main automaton, which its hits report.
fn build_lane(list: &KeywordList, main_id: &[Option<u32>], norm: &Normalization) -> Result<Option<Dictionary>, Error> {
    let lane_norm = norm.clone().with(Step::Repeats, false);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut entries: Vec<(Vec<char>, Vec<u8>, Pattern, usize)> = Vec::new();
    let mut origin: Vec<u32> = Vec::new();
    for (index, keyword) in list.keywords().iter().enumerate() {
        let Some(id) = main_id.get(index).copied().flatten() else { continue };
        // Allow words always: they only cancel what they cover.
        if keyword.kind == KeywordKind::Deny && !norm.pinyin_scope.takes(keyword) {
            continue;
        }
        for form in reading_forms(&keyword.text, &lane_norm, MAX_READING_FORMS) {
            let (Some(&first), Some(&last)) = (form.first(), form.last()) else { continue };
            let key: String = form.iter().collect();
            if let Some(&at) = seen.get(&key) {
                let earlier = &mut entries[at].2;
                earlier.categories = earlier.categories.union(keyword.categories);
                earlier.action = earlier.action.max(keyword.action);
                continue;
            }
            let pattern = Pattern::of(keyword, form.len(), first, last);
            seen.insert(key, entries.len());
            // No runs in this lane; a one-letter form still stores its `[least, most]`.
            let runs = vec![1; form.len().max(2)];
            entries.push((form, runs, pattern, index));
            origin.push(id);
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mut lane = assemble(&entries, list, lane_norm)?;
    lane.lane = true;
    lane.origin = origin;
    Ok(Some(lane))
}

/// The automaton over `entries` (canonical form, least runs, pattern, keyword index in `list`).
fn assemble(
    entries: &[(Vec<char>, Vec<u8>, Pattern, usize)],
    list: &KeywordList,
    norm: Normalization,
) -> Result<Dictionary, Error> {
    // Dense codes, most frequent character first, so the arrays stay compact.
    let mut freq: HashMap<char, u64> = HashMap::new();
    for (form, _, _, _) in entries {
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
    let mut runs_table: Vec<u8> = Vec::new();
    for (form, runs, pattern, index) in entries {
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
        let mut pattern = *pattern;
        if form.len() == 1 || runs.iter().any(|&r| r > 1) {
            pattern.runs = runs_table.len() as u32;
            runs_table.extend_from_slice(runs);
        }
        patterns.push(pattern);
        text.push_str(&list.keywords()[*index].text);
        text_end.push(text.len() as u32);
    }
    let max_len = patterns.iter().map(|p| p.len).max().unwrap_or(0);
    let mut dict = place(&mut trie, norm)?;
    dict.codes = codes;
    dict.patterns = patterns;
    dict.runs = runs_table;
    dict.text = text;
    dict.text_end = text_end;
    dict.max_len = max_len;
    Ok(dict)
}

impl Pattern {
    /// What the automaton knows of `keyword` in a form of `len` characters from `first` to
    /// `last` (runs filled in when the automaton is assembled).
    fn of(keyword: &crate::keywords::Keyword, len: usize, first: char, last: char) -> Pattern {
        Pattern {
            categories: keyword.categories,
            action: keyword.action,
            kind: keyword.kind,
            len: len as u16,
            starts_word: is_word_char(first),
            ends_word: is_word_char(last),
            runs: NONE,
        }
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
        runs: Vec::new(),
        text: String::new(),
        text_end: Vec::new(),
        max_len: 0,
        classes: LazyClasses::new(),
        diagnostics: Vec::new(),
        lane: false,
        origin: Vec::new(),
        reading_lane: None,
        lexicon: None,
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
