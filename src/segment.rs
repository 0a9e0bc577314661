//! The segmentation check: a CJK hit stands only where a word segmentation of its
//! neighbourhood keeps the keyword whole.
//!
//! A character-wise matcher finds `法轮` in `合法轮流` and `奶子` in `牛奶子`; a reader segments
//! `合法/轮流` and sees neither. Give the dictionary a word-frequency [`Lexicon`] (the policy's
//! `segmentation`, compiled into the artifact like the keyword lists; `make lexicon` writes
//! one from jieba's `dict.txt`) and every hit whose text is Han characters is checked against
//! the most probable segmentation of it and up to [`CONTEXT_CHARS`] Han characters on each
//! side, under jieba's unigram model (a word costs `ln(total / freq)`, a character the lexicon
//! lacks `ln(total)`). How the hit is written decides what must hold:
//!
//! | the hit is written | example | it stands when |
//! |---|---|---|
//! | as listed | `合法轮流` for `法轮` | a word boundary at both ends costs nothing (the keyword is a user word, as in jieba's method): no word of the lexicon crosses an end; each character past the third weighs 0.5 nat for the keyword |
//! | in an evader's pattern: a mark in every gap, every character doubled, an invisible character inside, one line break | `赌、博`, `赌赌博博` | always: not checked |
//! | with some gaps filled | `没有《离婚》` | its characters are one word of the lexicon, kept whole |
//! | with some characters repeated | `她妈妈` for `她妈` | never |
//! | with other characters folded to the keyword's | `陆肆` for `六四`; `一夜` for `1夜` | it is not itself a word of the lexicon, and is kept whole |
//! | in Han numerals, for a keyword mixing digits and characters | `大陆` for `大6` | never |
//!
//! Hits holding letters or digits (Latin keywords, pinyin) are never checked, and clean text
//! costs nothing: the check runs only around hits. `make bench` prints the benign lines
//! flagged with the check beside jieba's segmentation method, and the evasion set's
//! detection with and without it.
//!
//! Like any segmentation method it can be steered: a character glued to a keyword so that
//! they make a common word (`学习近平`) drops the hit. It is off by default, for uses where
//! precision comes first.
//!
//! A stream holds a hit back until [`CONTEXT_CHARS`] Han characters follow it (or something
//! else does, or the stream ends): at most 16 more bytes held; the left context comes from
//! what it emitted last.
//!
//! ```
//! use aigc_edge::{Filter, Policy};
//! let policy = Policy::from_json(r#"{
//!     "dictionaries": [{"text": "法轮\n赌博\n"}],
//!     "segmentation": {"text": "合法 3000\n轮流 2000\n法 800\n轮 500\n流 600\n合 900\n网上 1000\n"}
//! }"#)?;
//! let filter = Filter::from_policy(&policy, |_| Err("no files"))?;
//! assert!(filter.check("大家合法轮流发言").hits.is_empty()); // 合法/轮流
//! assert_eq!(filter.check("网上赌博").hits.len(), 1);
//! // Written around (an invisible character inside): an evasion, not checked.
//! assert_eq!(filter.check("合法\u{200B}轮流").hits.len(), 1);
//! # Ok::<(), aigc_edge::Error>(())
//! ```

use crate::error::{Error, ErrorKind};
use crate::normalize::simplify;

/// Does this build have the check (Cargo feature `segmentation`, on by default; the standard
/// Envoy filter leaves it out and refuses a policy's `segmentation` by name)?
pub const HAS_SEGMENTATION: bool = cfg!(feature = "segmentation");

/// Han characters read on each side of a hit.
pub const CONTEXT_CHARS: usize = 4;

/// The longest word kept from a lexicon, in characters; longer words are left out (a window
/// holds at most [`CONTEXT_CHARS`] characters beyond the keyword on each side).
pub const MAX_WORD_CHARS: usize = 8;

/// The most words a lexicon holds ([`ErrorKind::Lexicon`] beyond).
pub const MAX_LEXICON_WORDS: usize = 4_000_000;

/// What each character of a hit past the third weighs for keeping it whole, in cost units
/// (0.5 nat): a long keyword is less often a coincidence of characters than its split is
/// likely. `我听说法新闻社` splits as `听|说法|新闻社` by 0.07 nat, `听说话在肉身显现` by 0.8;
/// on the benign corpora of `make bench` this weight flags no more lines (twice it: 6 more).
const LONG_KEYWORD_WEIGHT: u32 = 500;

/// Costs are natural-log units times this, rounded, in a `u16`.
const COST_SCALE: f64 = 1000.0;

/// A word-frequency lexicon for the segmentation check: Han words with their costs, sorted
/// for binary search, stored in three flat arrays (about 14 bytes a word).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lexicon {
    /// The words' UTF-8, concatenated in byte order.
    words: String,
    /// Where each word ends in `words`.
    ends: Vec<u32>,
    /// Each word's cost, `ln(total / freq)` in thousandths.
    costs: Vec<u16>,
    /// The cost of a character the lexicon lacks, `ln(total)`.
    unknown: u16,
}

/// What the check says of one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Confirmed,
    Rejected,
    /// The right context has not all arrived.
    NeedMore,
}

/// Is `c` a Han character (CJK unified ideographs, their extensions and compatibility forms)?
pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

fn cost_of(ratio: f64) -> u16 {
    (ratio.ln() * COST_SCALE).round().clamp(0.0, f64::from(u16::MAX)) as u16
}

impl Lexicon {
    /// Reads a lexicon in jieba's `dict.txt` layout: `word frequency [tag]` a line, separated
    /// by spaces or tabs; `#` lines and blank lines are skipped. Words are folded to simplified
    /// characters; words with other than Han characters, of more than [`MAX_WORD_CHARS`], or
    /// of frequency 0 are left out (they count toward the total). Fails naming the source
    /// and line of the first bad line.
    ///
    /// ```
    /// use aigc_edge::segment::Lexicon;
    /// let lex = Lexicon::from_text("dict.txt", "合法 3000 a\n輪流 2000\nQQ 10\n".as_bytes())?;
    /// assert_eq!(lex.len(), 2);
    /// let err = Lexicon::from_text("dict.txt", "合法 many\n".as_bytes()).unwrap_err();
    /// assert_eq!(err.to_string(), "lexicon dict.txt line 1: frequency `many` is not a whole number");
    /// # Ok::<(), aigc_edge::Error>(())
    /// ```
    pub fn from_text(source: &str, bytes: &[u8]) -> Result<Lexicon, Error> {
        let bad =
            |line: usize, message: String| Error::new(ErrorKind::Lexicon { source: source.to_string(), line, message });
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut entries: Vec<(String, u64)> = Vec::new();
        let mut total: u64 = 0;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = core::str::from_utf8(raw).map_err(|_| bad(i + 1, "not UTF-8".to_string()))?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(word), Some(freq)) = (fields.next(), fields.next()) else {
                return Err(bad(i + 1, "expected `word frequency [tag]`".to_string()));
            };
            let freq: u64 =
                freq.parse().map_err(|_| bad(i + 1, format!("frequency `{freq}` is not a whole number")))?;
            total = total.saturating_add(freq);
            let folded: String = word.chars().map(simplify).collect();
            let chars = folded.chars().count();
            if freq == 0 || chars > MAX_WORD_CHARS || !folded.chars().all(is_han) {
                continue;
            }
            if entries.len() >= MAX_LEXICON_WORDS {
                return Err(bad(i + 1, format!("more than {MAX_LEXICON_WORDS} words")));
            }
            entries.push((folded, freq));
        }
        if entries.is_empty() {
            return Err(bad(0, "no Han word with a frequency".to_string()));
        }
        // A traditional and a simplified spelling fold to one word: the more frequent stands.
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(b.1.cmp(&a.1)));
        entries.dedup_by(|later, first| later.0 == first.0);
        let total = total as f64;
        let mut lex = Lexicon { unknown: cost_of(total), ..Lexicon::default() };
        for (word, freq) in entries {
            lex.words.push_str(&word);
            lex.ends.push(lex.words.len() as u32);
            lex.costs.push(cost_of(total / freq as f64));
        }
        Ok(lex)
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Holds no word (never true of a loaded lexicon).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn word(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.words.as_bytes()[start..self.ends[i] as usize]
    }

    /// The first index in `lo..hi` whose word is not `before` the probe.
    fn partition(&self, mut lo: usize, mut hi: usize, before: impl Fn(&[u8]) -> bool) -> usize {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(self.word(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Every word of the lexicon in `chars` starting at its first character: `(length in
    /// characters, cost)`, shortest first. Each longer prefix is searched for only among the
    /// words that start with the shorter one, so a lookup narrows instead of starting over.
    fn words_at(&self, chars: &[char], out: &mut Vec<(usize, u16)>) {
        let (mut lo, mut hi) = (0, self.len());
        let mut buf = [0u8; 4 * MAX_WORD_CHARS];
        let mut len = 0;
        for (k, c) in chars.iter().take(MAX_WORD_CHARS).enumerate() {
            len += c.encode_utf8(&mut buf[len..]).len();
            let prefix = &buf[..len];
            lo = self.partition(lo, hi, |w| w < prefix);
            hi = self.partition(lo, hi, |w| w.starts_with(prefix));
            if lo == hi {
                return;
            }
            if self.word(lo) == prefix {
                out.push((k + 1, self.costs[lo]));
            }
        }
    }

    /// The check on one hit: `span` is its text, `before` the text before it (a stream passes
    /// what it still holds, then what it emitted last), `after` the text after it, `at_end`
    /// when nothing follows `after`; `keyword` is the keyword as listed.
    pub(crate) fn check(&self, before: [&[u8]; 2], span: &[u8], after: &[u8], at_end: bool, keyword: &str) -> Verdict {
        let Ok(span) = core::str::from_utf8(span) else { return Verdict::Confirmed };
        let Some((hit, reading)) = read_span(span, keyword) else { return Verdict::Confirmed };
        match reading {
            Reading::Evasion => return Verdict::Confirmed,
            // One character of a word doubled is a different word (`小姐姐`) or running text
            // (`她妈妈` for `她妈`); a keyword that spells a word with digits (`大6`, `3箭`)
            // names that spelling, and the word written out in characters (`大陆`, `三箭`) is
            // the word itself. Neither needs the context (a stream holds nothing back for it).
            Reading::Repeated | Reading::SpelledOut => return Verdict::Rejected,
            Reading::Plain | Reading::Gapped | Reading::Otherwise => {}
        }
        let mut right = Vec::with_capacity(CONTEXT_CHARS);
        if !han_after(after, &mut right) && !at_end {
            return Verdict::NeedMore;
        }
        let mut left = Vec::with_capacity(CONTEXT_CHARS);
        for piece in before {
            if !han_before(piece, &mut left) {
                break;
            }
        }
        left.reverse();
        let window: Vec<char> = left.iter().chain(&hit).chain(&right).copied().collect();
        let graph = WordGraph::new(self, &window);
        let (a, b) = (left.len(), left.len() + hit.len());
        // The cheapest segmentation with a word boundary at both ends of the hit, against the
        // cheapest of all: equal when no word of the lexicon crosses an end.
        let forced = graph.best(0, a) + graph.best(a, b) + graph.best(b, window.len());
        let margin = LONG_KEYWORD_WEIGHT * hit.len().saturating_sub(3) as u32;
        let kept = forced <= graph.best(0, window.len()) + margin;
        let stands = match reading {
            // The keyword is one word (a user word, as jieba's method adds it).
            Reading::Plain => kept,
            // Gaps only some evaders leave, and a writer's own spacing leaves too: the text
            // stands as one word of the lexicon kept whole, or not at all.
            Reading::Gapped => graph.has_word(a, hit.len()) && kept,
            // Another word of the lexicon written with the keyword's folded characters (`一夜`
            // for `1夜`) is that word.
            Reading::Otherwise => !graph.has_word(a, hit.len()) && kept,
            // Decided above, without the context.
            Reading::Evasion => true,
            Reading::Repeated | Reading::SpelledOut => false,
        };
        if stands {
            Verdict::Confirmed
        } else {
            Verdict::Rejected
        }
    }

    /// The lexicon as the artifact stores it.
    pub(crate) fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        out.extend_from_slice(&u32::from(self.unknown).to_le_bytes());
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        out.extend_from_slice(self.words.as_bytes());
        for end in &self.ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        for cost in &self.costs {
            out.extend_from_slice(&cost.to_le_bytes());
        }
    }

    #[cfg_attr(not(feature = "segmentation"), allow(dead_code))]
    /// Reads [`Lexicon::to_bytes`]; every offset is checked and the order too, so a lookup
    /// in a crafted artifact can neither fail nor read out of range.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Lexicon, &'static str> {
        let word = |at: usize| -> Result<u32, &'static str> {
            let b = bytes.get(at..at + 4).ok_or("lexicon truncated")?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let n = word(0)? as usize;
        let unknown = u16::try_from(word(4)?).map_err(|_| "lexicon cost out of range")?;
        let text_len = word(8)? as usize;
        let text_end = 12usize.checked_add(text_len).ok_or("lexicon truncated")?;
        let ends_end = n.checked_mul(4).and_then(|b| b.checked_add(text_end)).ok_or("lexicon truncated")?;
        let costs_end = n.checked_mul(2).and_then(|b| b.checked_add(ends_end)).ok_or("lexicon truncated")?;
        if costs_end != bytes.len() || n == 0 || n > MAX_LEXICON_WORDS {
            return Err("lexicon sizes do not add up");
        }
        let words = core::str::from_utf8(&bytes[12..text_end]).map_err(|_| "lexicon words are not UTF-8")?;
        let ends: Vec<u32> =
            bytes[text_end..ends_end].chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let costs = bytes[ends_end..costs_end].chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        let mut start = 0usize;
        for &end in &ends {
            let end = end as usize;
            if end <= start || end > words.len() || !words.is_char_boundary(end) {
                return Err("lexicon word offsets out of range");
            }
            start = end;
        }
        if start != words.len() {
            return Err("lexicon word offsets out of range");
        }
        let lex = Lexicon { words: words.to_string(), ends, costs, unknown };
        if (1..lex.len()).any(|i| lex.word(i - 1) >= lex.word(i)) {
            return Err("lexicon words not sorted");
        }
        Ok(lex)
    }
}

/// The words of the lexicon in a window of text, for the cheapest segmentation of any part.
struct WordGraph {
    /// `(start, length, cost)` of every word in the window, by start.
    words: Vec<(usize, usize, u16)>,
    unknown: u32,
}

impl WordGraph {
    fn new(lex: &Lexicon, window: &[char]) -> WordGraph {
        let mut words = Vec::new();
        let mut at = Vec::new();
        for start in 0..window.len() {
            at.clear();
            lex.words_at(&window[start..], &mut at);
            words.extend(at.iter().map(|&(len, cost)| (start, len, cost)));
        }
        WordGraph { words, unknown: u32::from(lex.unknown) }
    }

    /// Is `window[start..start + len]` one word of the lexicon?
    fn has_word(&self, start: usize, len: usize) -> bool {
        self.words.iter().any(|&(s, l, _)| s == start && l == len)
    }

    /// The cheapest segmentation of `window[from..to]`: a sum of word costs (a character
    /// that starts no word costs `unknown`).
    fn best(&self, from: usize, to: usize) -> u32 {
        // best[i - from]: the cheapest segmentation of window[i..to].
        let mut best = vec![0u32; to.saturating_sub(from) + 1];
        let mut words = self.words.iter().rev().peekable();
        for i in (from..to).rev() {
            let mut cheapest = self.unknown + best[i + 1 - from];
            while let Some(&&(start, len, cost)) = words.peek() {
                if start < i {
                    break;
                }
                words.next();
                if start == i && i + len <= to {
                    cheapest = cheapest.min(u32::from(cost) + best[i + len - from]);
                }
            }
            best[i - from] = cheapest;
        }
        best[0]
    }
}

/// How a hit on a keyword is written, for the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// As listed: its characters, nothing between them.
    Plain,
    /// In an evader's pattern: something in every gap (of two or more), every character
    /// repeated, an invisible character inside, or one line break (a wrapped line).
    Evasion,
    /// Some gaps filled (of two or more): the text may be running words that only the
    /// skipped separators made into the keyword (`没有《离婚》`).
    Gapped,
    /// Some characters repeated, not all (`她妈妈` for `她妈`).
    Repeated,
    /// Other characters than the keyword's, folded to it (`陆肆` for `六四`, homophones).
    Otherwise,
    /// Han numerals for the digits of a keyword that mixes digits and characters.
    SpelledOut,
}

/// The Han characters of a hit (folded to simplified) and how it is written; `None` when
/// it holds letters or digits (a Latin or pinyin match), which the check leaves alone.
fn read_span(span: &str, keyword: &str) -> Option<(Vec<char>, Reading)> {
    let mut han = Vec::new();
    let (mut gaps, mut filled, mut line_breaks, mut invisible) = (0usize, 0usize, 0usize, false);
    let mut in_gap = false;
    for c in span.chars() {
        let c = simplify(c);
        if is_han(c) {
            if !han.is_empty() {
                gaps += 1;
                filled += usize::from(in_gap);
            }
            in_gap = false;
            han.push(c);
        } else if c.is_alphanumeric() {
            return None;
        } else {
            in_gap = true;
            invisible |= crate::normalize::is_invisible(c);
            line_breaks += usize::from(c == '\n');
        }
    }
    if han.is_empty() {
        return None;
    }
    // The keyword's letters as listed (a list may space or punctuate them), and both
    // spellings with each run of one character as one: the dictionary merges `操操蛋` and
    // `操蛋`, and a hit on either may report the other.
    let listed: Vec<char> = keyword.chars().map(simplify).filter(|c| c.is_alphanumeric()).collect();
    let runs = |chars: &[char]| {
        let mut r = chars.to_vec();
        r.dedup();
        r
    };
    let distinct = runs(&listed).len();
    let reading = if invisible
        || (gaps >= 2 && filled == gaps)
        || (distinct >= 2 && han.len() >= 2 * distinct)
        || (filled == 1
            && line_breaks == 1
            && span.chars().filter(|c| !is_han(simplify(*c))).all(|c| c == '\n' || c == '\r'))
    {
        Reading::Evasion
    } else if runs(&han) != runs(&listed) {
        let mixed = listed.iter().any(|&c| is_han(c)) && listed.iter().any(|c| c.is_ascii_alphanumeric());
        if mixed {
            Reading::SpelledOut
        } else {
            Reading::Otherwise
        }
    } else if han.len() > listed.len() {
        Reading::Repeated
    } else if filled > 0 && gaps >= 2 {
        Reading::Gapped
    } else {
        Reading::Plain
    };
    Some((han, reading))
}

/// Pushes up to [`CONTEXT_CHARS`] (in all) Han characters from the end of `bytes`, nearest
/// first; true when `bytes` ran out before anything else stopped it (the text before may go on).
fn han_before(bytes: &[u8], out: &mut Vec<char>) -> bool {
    let mut end = bytes.len();
    while out.len() < CONTEXT_CHARS {
        if end == 0 {
            return true;
        }
        let mut start = end - 1;
        while start > 0 && end - start < 4 && bytes[start] & 0xC0 == 0x80 {
            start -= 1;
        }
        match core::str::from_utf8(&bytes[start..end]).ok().and_then(|s| s.chars().next()) {
            Some(c) if is_han(simplify(c)) => out.push(simplify(c)),
            _ => return false,
        }
        end = start;
    }
    false
}

/// Pushes up to [`CONTEXT_CHARS`] Han characters from the start of `bytes`; true when that is
/// all the right context there is (enough read, or something other than a Han character
/// met), false when `bytes` ran out first.
fn han_after(bytes: &[u8], out: &mut Vec<char>) -> bool {
    let mut at = 0;
    while out.len() < CONTEXT_CHARS {
        let Some(&b0) = bytes.get(at) else { return false };
        let width = crate::scanner::utf8_width(b0);
        let Some(piece) = bytes.get(at..at + width) else { return false };
        match core::str::from_utf8(piece).ok().and_then(|s| s.chars().next()) {
            Some(c) if is_han(simplify(c)) => out.push(simplify(c)),
            _ => return true,
        }
        at += width;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEXICON: &str = "合法 3000\n轮流 2000\n法 800\n轮 500\n流 600\n合 900\n牛奶 2000\n奶 300\n子 2000\n\
                           她 4000\n妈妈 3000\n妈 500\n大陆 3000\n大 5000\n陆 300\n没有 5000\n离婚 1000\n法轮功 50\n";

    #[test]
    fn check_table() {
        use Verdict::*;
        let lex = Lexicon::from_text("t", LEXICON.as_bytes()).unwrap();
        // (text before, hit, text after, keyword as listed, nothing follows, verdict)
        let cases: &[(&str, &str, &str, &str, bool, Verdict)] = &[
            ("大家合", "法轮", "流发言", "法轮", true, Rejected),
            ("练", "法轮", "功", "法轮", true, Rejected),
            ("练", "法轮功", "", "法轮功", true, Confirmed),
            ("", "法轮", "", "法轮", true, Confirmed),
            ("合", "法轮", "", "法轮", false, NeedMore),
            ("合", "法轮", "流", "法轮", false, NeedMore),
            ("合", "法轮", "流。", "法轮", false, Rejected),
            ("合", "法轮", "流", "法轮", true, Rejected),
            ("牛", "奶子", "", "奶子", true, Rejected),
            ("合", "fa轮", "流", "法轮", true, Confirmed),
            ("大家合", "法*轮", "流", "法轮", true, Rejected),
            ("合", "法\u{200B}轮", "流", "法轮", true, Confirmed),
            ("合", "法法轮轮", "流", "法轮", true, Confirmed),
            ("合", "法\n轮", "流", "法轮", true, Confirmed),
            ("看", "她妈妈", "说", "她妈", true, Rejected),
            ("说", "大陆", "的", "大6", true, Rejected),
            ("远远", "没有《离婚", "未遂", "没有离婚", true, Rejected),
            ("网上", "輪流", "", "轮流", true, Confirmed),
        ];
        for &(before, span, after, keyword, at_end, want) in cases {
            let got = lex.check([before.as_bytes(), b""], span.as_bytes(), after.as_bytes(), at_end, keyword);
            assert_eq!(got, want, "{before}[{span}]{after} for {keyword}");
        }
        // The left context may continue in the text a stream already emitted.
        let got = lex.check([b"", "大家合".as_bytes()], "法轮".as_bytes(), "流".as_bytes(), true, "法轮");
        assert_eq!(got, Rejected);
    }

    #[test]
    fn bytes_round_trip_and_refuse_damage() {
        let lex = Lexicon::from_text("t", LEXICON.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        lex.to_bytes(&mut bytes);
        assert_eq!(Lexicon::from_bytes(&bytes).unwrap(), lex);
        for cut in 0..bytes.len() {
            assert!(Lexicon::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let unsorted = Lexicon { words: "轮合".to_string(), ends: vec![3, 6], costs: vec![1, 1], unknown: 9 };
        let mut bytes = Vec::new();
        unsorted.to_bytes(&mut bytes);
        assert_eq!(Lexicon::from_bytes(&bytes), Err("lexicon words not sorted"));
    }
}
