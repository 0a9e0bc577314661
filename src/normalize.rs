//! Normalization against evasion: how one character of text is seen by the matcher.
//!
//! Normalization works a character at a time and never moves text: every character the matcher
//! sees carries the byte range of the original character it came from, so hits are reported in
//! the original text.

use serde::{Deserialize, Serialize};

use crate::category::CategorySet;

use crate::confusables_table::{CONFUSABLE_AS, CONFUSABLE_FROM};
#[cfg(feature = "pinyin")]
use crate::pinyin_table::{FIRST_READING, MORE_READINGS, READING_BASE, SYLLABLES};
use crate::t2s_table::T2S;

/// One normalization step. Each can be switched off in the policy
/// (`"normalize": {"traditional": false}`).
///
/// A new step is one variant here, its policy name in [`Step::name`], its place in
/// [`Step::ALL`] and its work in `fold`; the policy schema, the artifact's header and the
/// dictionary/policy agreement check all follow from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Case folding: `FuCK` matches `fuck`.
    Case,
    /// Full-width to half-width: `ｆｕｃｋ` matches `fuck`, `１２３` matches `123`.
    Width,
    /// Number and letter styles and Unicode compatibility forms: `①⑴⒈❶⁹₉㈠` and CJK or
    /// financial numerals (`三`, `叁`) to digits; `ⓐⒶ⒜` and mathematical alphanumerics to letters.
    Styles,
    /// Traditional to simplified Chinese, one character at a time (Unihan `kSimplifiedVariant`).
    Traditional,
    /// Zero-width and other invisible characters are removed.
    Invisible,
    /// Separators (spaces, symbols, brackets, emoji) between the characters of a keyword are
    /// skipped, at most `max_gap` in a row. Punctuation is not a separator: sentence ends
    /// (`。！？!?…`) always end a match, clause marks only as [`Step::Punctuation`] says.
    Separators,
    /// Clause marks (`、，,；;：:`) and line breaks between the characters of a keyword are
    /// skipped when the gaps of the match form an evader's pattern rather than running text:
    /// the same mark in every gap (`赌、博`, `自\n制\n炸\n药`), or a single line break and no
    /// other mark (`自制\n炸药`, a hard-wrapped line). Any other mix, and a blank line, ends the
    /// match. Off, every clause mark and line break ends a match.
    Punctuation,
    /// Letters of other scripts that look like Latin ones (UTS #39 confusables: Cyrillic `а`
    /// `е` `о` `р` `с`, Greek `ο` `ν`, Cherokee, Armenian, …) are read as the Latin letter, so
    /// `fuсk` with a Cyrillic `с` matches `fuck`. CJK characters are never touched.
    Confusables,
    /// A run of the same letter (after the other steps) matches that letter once, or as many
    /// times as the keyword has it: `ffffuuuck` and `ⒻⒻⒻfⓤuⓤ⒰cⓒ⒦` match `fuck`, `asss` matches
    /// `ass` but `as` does not; `自自制制炸炸药药` matches `自制炸药`. Applies to letters and CJK
    /// characters, not to digits (`88964` is not `8964`); a one-letter Latin keyword matches
    /// only as written (`q` is not in `QQ`).
    Repeats,
    /// Keywords are matched by their Mandarin readings too: written in pinyin (`dubo`, `Du Bo`,
    /// `dǔ bó`), partly in pinyin (`赌bo`), or with characters of the same sound (`堵博`). Off by
    /// default: on short keywords it costs precision (`make bench` measures it by keyword
    /// length). Readings are plain (no tones, `ü` as `v`); a character with several readings
    /// matches by any of them in a keyword, by its first in text.
    Pinyin,
}

impl Step {
    /// Every step, in the order of the artifact's step bits (append new steps at the end).
    pub const ALL: [Step; 10] = [
        Step::Case,
        Step::Width,
        Step::Styles,
        Step::Traditional,
        Step::Invisible,
        Step::Separators,
        Step::Punctuation,
        Step::Confusables,
        Step::Repeats,
        Step::Pinyin,
    ];

    /// The step's key in a policy's `normalize` object.
    pub fn name(self) -> &'static str {
        match self {
            Step::Case => "case",
            Step::Width => "width",
            Step::Styles => "styles",
            Step::Traditional => "traditional",
            Step::Invisible => "invisible",
            Step::Separators => "separators",
            Step::Punctuation => "punctuation",
            Step::Confusables => "confusables",
            Step::Repeats => "repeats",
            Step::Pinyin => "pinyin",
        }
    }

    fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The step's bit in [`Normalization::step_bits`]: its position in [`Step::ALL`].
    fn bit(self) -> u32 {
        let at = Step::ALL.iter().position(|&s| s == self).unwrap_or(0);
        1 << at
    }
}

/// Which normalization steps apply to text, as read from a policy's `normalize` object:
/// `{"case": true, …, "max_gap": 3}`, one boolean per [`Step`] by its [`Step::name`].
///
/// Every step but [`Step::Pinyin`] is on by default.
///
/// ```
/// use aigc_edge::{Normalization, Step};
/// let n = Normalization::default().with(Step::Traditional, false);
/// assert!(n.has(Step::Case) && !n.has(Step::Traditional));
/// assert_eq!(serde_json::to_string(&n).unwrap(),
///     r#"{"case":true,"width":true,"styles":true,"traditional":false,"invisible":true,"separators":true,"punctuation":true,"confusables":true,"repeats":true,"pinyin":false,"max_gap":3}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalization {
    steps: u32,
    /// Most separators or invisible characters skipped in a row inside one match (1–16).
    pub max_gap: u8,
    /// Which keywords [`Step::Pinyin`] applies to, when it is on.
    pub pinyin_scope: PinyinScope,
}

/// Which keywords [`Step::Pinyin`] matches by their readings: `"pinyin": true` is every
/// keyword; `"pinyin": {"min_chars": 4, "categories": ["A.1a"], "keywords": ["赌博"]}` only
/// those that meet every field given (each optional): at least 4 characters, one of the
/// categories, one of the keywords (as listed). Sound costs precision on short keywords (`make
/// bench` measures it by length), so a scope keeps it where it pays: by length, by category,
/// or keyword by keyword.
///
/// ```
/// use aigc_edge::{Normalization, Policy, Step};
/// let p = Policy::from_json(r#"{"normalize": {"pinyin": {"min_chars": 4}}}"#).unwrap();
/// assert!(p.normalize.has(Step::Pinyin));
/// assert_eq!(p.normalize.pinyin_scope.min_chars, 4);
/// let p = Policy::from_json(r#"{"normalize": {"pinyin": {"keywords": ["赌博", "法轮功"]}}}"#).unwrap();
/// assert_eq!(p.normalize.pinyin_scope.keywords, ["赌博", "法轮功"]);
/// let e = Policy::from_json(r#"{"normalize": {"pinyin": {"min_char": 4}}}"#).unwrap_err();
/// assert!(e.to_string().contains("normalize.pinyin"), "{e}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinyinScope {
    /// The fewest characters a keyword needs (0: any).
    pub min_chars: u8,
    /// The categories a keyword must have one of (empty: any keyword, uncategorized too).
    pub categories: CategorySet,
    /// The keywords it takes, as listed (empty: any keyword).
    pub keywords: Vec<String>,
}

impl PinyinScope {
    /// Does the scope take `keyword`?
    #[cfg_attr(not(feature = "pinyin"), allow(dead_code))]
    pub(crate) fn takes(&self, keyword: &crate::keywords::Keyword) -> bool {
        keyword.text.chars().count() >= usize::from(self.min_chars)
            && (self.categories.is_empty() || keyword.categories.bits() & self.categories.bits() != 0)
            && (self.keywords.is_empty() || self.keywords.contains(&keyword.text))
    }
}

impl Default for Normalization {
    fn default() -> Self {
        Step::ALL.into_iter().fold(Normalization::none(), |n, step| n.with(step, step != Step::Pinyin))
    }
}

impl Normalization {
    /// Every step off: text and keywords are matched as written.
    pub fn none() -> Self {
        Normalization { steps: 0, max_gap: 3, pinyin_scope: PinyinScope::default() }
    }

    /// Is `step` on?
    pub fn has(&self, step: Step) -> bool {
        self.steps & step.bit() != 0
    }

    /// This normalization with `step` switched on or off.
    pub fn with(&self, step: Step, on: bool) -> Self {
        let mut n = self.clone();
        if on {
            n.steps |= step.bit();
        } else {
            n.steps &= !step.bit();
        }
        n
    }

    /// The steps as bits (bit `i` is `Step::ALL[i]`), as the dictionary artifact stores them.
    pub(crate) fn step_bits(&self) -> u32 {
        self.steps
    }

    /// The normalization with these step bits; unknown bits are ignored.
    pub(crate) fn from_step_bits(bits: u32, max_gap: u8) -> Self {
        let none = Normalization { max_gap, ..Normalization::none() };
        Step::ALL.into_iter().fold(none, |n, step| n.with(step, bits & step.bit() != 0))
    }

    /// The first step on which `self` and `other` differ.
    pub(crate) fn first_difference(&self, other: &Normalization) -> Option<Step> {
        let scope = self.has(Step::Pinyin) && self.pinyin_scope != other.pinyin_scope;
        Step::ALL.into_iter().find(|&s| self.has(s) != other.has(s)).or(scope.then_some(Step::Pinyin))
    }
}

impl Serialize for Normalization {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(Step::ALL.len() + 1))?;
        for step in Step::ALL {
            #[cfg(feature = "pinyin")]
            if step == Step::Pinyin && self.has(step) && self.pinyin_scope != PinyinScope::default() {
                let categories: Vec<String> = self.pinyin_scope.categories.iter().map(|c| c.to_string()).collect();
                let scope = &self.pinyin_scope;
                let scope = serde_json::json!({"min_chars": scope.min_chars, "categories": categories, "keywords": scope.keywords});
                map.serialize_entry(step.name(), &scope)?;
                continue;
            }
            map.serialize_entry(step.name(), &self.has(step))?;
        }
        map.serialize_entry("max_gap", &self.max_gap)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Normalization {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Normalization;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("an object of normalization steps")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Normalization, A::Error> {
                use serde::de::Error;
                let mut n = Normalization::default();
                let mut seen: Vec<String> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(A::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    if key == "max_gap" {
                        n.max_gap = map.next_value()?;
                    } else if key == Step::Pinyin.name() {
                        // Without the reading table only `true`/`false` is read (and `true`
                        // refused by the policy check, naming the field).
                        #[cfg(feature = "pinyin")]
                        {
                            let setting: PinyinSetting = map.next_value()?;
                            n = n.with(Step::Pinyin, setting.0.is_some());
                            n.pinyin_scope = setting.0.unwrap_or_default();
                        }
                        #[cfg(not(feature = "pinyin"))]
                        {
                            n = n.with(Step::Pinyin, map.next_value()?);
                        }
                    } else if let Some(step) = Step::from_name(&key) {
                        n = n.with(step, map.next_value()?);
                    } else {
                        let names: Vec<String> = Step::ALL.iter().map(|s| format!("`{}`", s.name())).collect();
                        return Err(A::Error::custom(format_args!(
                            "unknown field `{key}`, expected one of {}, `max_gap`",
                            names.join(", ")
                        )));
                    }
                    seen.push(key);
                }
                Ok(n)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// `"pinyin"`: a boolean, or the object of a [`PinyinScope`] (which switches the step on).
#[cfg(feature = "pinyin")]
struct PinyinSetting(Option<PinyinScope>);

#[cfg(feature = "pinyin")]
impl<'de> Deserialize<'de> for PinyinSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Scope {
            #[serde(default)]
            min_chars: u8,
            #[serde(default)]
            categories: Vec<crate::category::Category>,
            #[serde(default)]
            keywords: Vec<String>,
        }
        struct Setting;
        impl<'de> serde::de::Visitor<'de> for Setting {
            type Value = PinyinSetting;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("true, false or {\"min_chars\": n, \"categories\": [...], \"keywords\": [...]}")
            }

            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<PinyinSetting, E> {
                Ok(PinyinSetting(on.then(PinyinScope::default)))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<PinyinSetting, A::Error> {
                let scope = Scope::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                let mut categories = CategorySet::EMPTY;
                scope.categories.into_iter().for_each(|c| categories.insert(c));
                let keywords = scope.keywords;
                Ok(PinyinSetting(Some(PinyinScope { min_chars: scope.min_chars, categories, keywords })))
            }
        }
        deserializer.deserialize_any(Setting)
    }
}

/// How the matcher sees one character of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Folded {
    /// Up to three characters to match (`⑩` becomes `1`, `0`).
    Chars([char; 3], u8),
    /// A separator: skipped inside a match when [`Step::Separators`] is on, else a boundary.
    Separator,
    /// A clause mark or line break under [`Step::Punctuation`]: skipped, and the gap's
    /// pattern checked when a match is found.
    Mark(Mark),
    /// An invisible character: ignored entirely.
    Invisible,
    /// A CJK character as the pinyin lane reads it: its first reading, an index into the
    /// reading table ([`Step::Pinyin`]).
    #[cfg_attr(not(feature = "pinyin"), allow(dead_code))]
    Syllable(u16),
    /// Ends any match in progress (sentence punctuation, line breaks, controls).
    Boundary,
}

impl Folded {
    fn one(c: char) -> Folded {
        Folded::Chars([c, '\0', '\0'], 1)
    }

    fn number(n: u32) -> Folded {
        if n < 10 {
            Folded::one(digit(n))
        } else {
            Folded::Chars([digit(n / 10), digit(n % 10), '\0'], 2)
        }
    }

    pub(crate) fn chars(&self) -> &[char] {
        match self {
            Folded::Chars(cs, n) => &cs[..usize::from(*n)],
            _ => &[],
        }
    }

    /// The characters the matcher sees: [`Folded::chars`], or a syllable's letters.
    pub(crate) fn letters(&self) -> impl Iterator<Item = char> + '_ {
        let syllable = match self {
            Folded::Syllable(s) => syllable(*s),
            _ => "",
        };
        self.chars().iter().copied().chain(syllable.chars())
    }
}

fn digit(n: u32) -> char {
    char::from_digit(n % 10, 10).unwrap_or('0')
}

/// Characters that never show but can split a word: zero-width, joiners, direction marks,
/// soft hyphen, variation selectors, tag characters, fillers.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// The kinds of clause mark [`Step::Punctuation`] tells apart: a gap pattern holds one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// `,` `，` `、` `､`
    Comma,
    /// `;` `；`
    Semicolon,
    /// `:` `：`
    Colon,
    /// `\n` and the other line and paragraph separators.
    LineBreak,
    /// `\r`: a line break, and one with a `\n` right after it.
    Return,
}

impl Mark {
    /// The mark's code in a character class (never 0).
    pub(crate) fn code(self) -> u32 {
        match self {
            Mark::Comma => 1,
            Mark::Semicolon => 2,
            Mark::Colon => 3,
            Mark::LineBreak => 4,
            Mark::Return => 5,
        }
    }
}

/// A clause mark or line break: ends a match unless [`Step::Punctuation`] finds a pattern.
fn clause_mark(c: char) -> Option<Mark> {
    Some(match c {
        ',' | '，' | '、' | '､' => Mark::Comma,
        ';' | '；' => Mark::Semicolon,
        ':' | '：' => Mark::Colon,
        '\r' => Mark::Return,
        '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => Mark::LineBreak,
        _ => return None,
    })
}

/// Punctuation that ends a sentence; a match never spans it.
fn is_sentence_end(c: char) -> bool {
    matches!(c, '!' | '?' | '。' | '！' | '？' | '…' | '‥' | '｡')
}

/// Letters and digits outside the CJK blocks: Latin-script keywords must not start or end
/// inside a run of these (`sb` does not match in `usb`).
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    (c as u32) < 0x2E80 && c.is_alphanumeric()
}

/// Number and letter styles, and compatibility forms, to plain digits and letters.
fn fold_style(c: char) -> Option<Folded> {
    let u = c as u32;
    let from = |base: u32| u - base;
    let letter = |base: char, off: u32| char::from_u32(base as u32 + off).map(Folded::one);
    Some(match u {
        0x2460..=0x2473 => Folded::number(from(0x2460) + 1), // ①..⑳
        0x2474..=0x2487 => Folded::number(from(0x2474) + 1), // ⑴..⒇
        0x2488..=0x249B => Folded::number(from(0x2488) + 1), // ⒈..⒛
        0x249C..=0x24B5 => return letter('a', from(0x249C)), // ⒜..⒵
        0x24B6..=0x24CF => return letter('a', from(0x24B6)), // Ⓐ..Ⓩ
        0x24D0..=0x24E9 => return letter('a', from(0x24D0)), // ⓐ..ⓩ
        0x24EA | 0x24FF | 0x1F100 | 0x1F10B | 0x1F10C => Folded::one('0'),
        0x24EB..=0x24F4 => Folded::number(from(0x24EB) + 11), // ⓫..⓴
        0x24F5..=0x24FE => Folded::number(from(0x24F5) + 1),  // ⓵..⓾
        0x2776..=0x277F => Folded::number(from(0x2776) + 1),  // ❶..❿
        0x2780..=0x2789 => Folded::number(from(0x2780) + 1),  // ➀..➉
        0x278A..=0x2793 => Folded::number(from(0x278A) + 1),  // ➊..➓
        0x2070 => Folded::one('0'),
        0x00B9 => Folded::one('1'),
        0x00B2 => Folded::one('2'),
        0x00B3 => Folded::one('3'),
        0x2074..=0x2079 => Folded::number(from(0x2074) + 4), // ⁴..⁹
        0x2080..=0x2089 => Folded::number(from(0x2080)),     // ₀..₉
        0x3220..=0x3229 => Folded::number(from(0x3220) + 1), // ㈠..㈩
        0x3280..=0x3289 => Folded::number(from(0x3280) + 1), // ㊀..㊉
        0x1F101..=0x1F10A => Folded::number(from(0x1F101)),  // 🄁..🄊 digit comma
        0x1F110..=0x1F129 => return letter('a', from(0x1F110)), // 🄐..🄩
        0x1F130..=0x1F149 => return letter('a', from(0x1F130)), // 🄰..🅉
        0x1F150..=0x1F169 => return letter('a', from(0x1F150)), // 🅐..🅩
        0x1F170..=0x1F189 => return letter('a', from(0x1F170)), // 🅰..🆉
        0x1F1E6..=0x1F1FF => return letter('a', from(0x1F1E6)), // regional indicators
        // Mathematical alphanumeric symbols: 13 alphabets of 52 letters, then digits.
        0x1D400..=0x1D6A3 => {
            let k = from(0x1D400) % 52;
            return if k < 26 { letter('a', k) } else { letter('a', k - 26) };
        }
        0x1D7CE..=0x1D7FF => Folded::number(from(0x1D7CE) % 10),
        _ => return fold_cjk_numeral(c).map(Folded::one),
    })
}

/// CJK and financial numerals to digits. Applied to keywords too, so `下三滥` matches
/// `下3滥` and `下叁滥`.
fn fold_cjk_numeral(c: char) -> Option<char> {
    Some(match c {
        '〇' | '零' => '0',
        '一' | '壹' | '弌' => '1',
        '二' | '贰' | '貳' | '弍' | '两' | '兩' => '2',
        '三' | '叁' | '參' | '弎' => '3',
        '四' | '肆' => '4',
        '五' | '伍' => '5',
        '六' | '陆' | '陸' => '6',
        '七' | '柒' => '7',
        '八' | '捌' => '8',
        '九' | '玖' => '9',
        '拾' => '十',
        _ => return None,
    })
}

fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        0xFF61 => '。',
        0xFF64 => '、',
        _ => c,
    }
}

fn fold_case(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The Latin letter or digit a look-alike from another script stands for.
fn fold_confusable(c: char) -> Option<char> {
    let i = CONFUSABLE_FROM.binary_search(&u16::try_from(c as u32).ok()?).ok()?;
    CONFUSABLE_AS.get(i).map(|&to| char::from(to))
}

/// The simplified form of a traditional character, or the character itself.
pub fn simplify(c: char) -> char {
    let code = |b0: u8, b1: u8, b2: u8| u32::from_le_bytes([b0, b1, b2, 0]);
    match T2S.binary_search_by_key(&(c as u32), |&[t0, t1, t2, ..]| code(t0, t1, t2)) {
        Ok(i) => T2S.get(i).and_then(|&[.., s0, s1, s2]| char::from_u32(code(s0, s1, s2))).unwrap_or(c),
        Err(_) => c,
    }
}

/// How `c` is seen under `norm`.
pub(crate) fn fold(c: char, norm: &Normalization) -> Folded {
    if is_invisible(c) {
        return if norm.has(Step::Invisible) { Folded::Invisible } else { Folded::one(c) };
    }
    let mut c = c;
    if norm.has(Step::Width) {
        c = fold_width(c);
    }
    if let Some(mark) = clause_mark(c) {
        return if norm.has(Step::Punctuation) { Folded::Mark(mark) } else { Folded::Boundary };
    }
    if is_sentence_end(c) || (c.is_control() && c != '\t') {
        return Folded::Boundary;
    }
    if norm.has(Step::Styles) {
        if let Some(folded) = fold_style(c) {
            return folded;
        }
    }
    if norm.has(Step::Confusables) && !c.is_ascii() {
        if let Some(latin) = fold_confusable(c) {
            c = latin;
        }
    }
    if norm.has(Step::Case) {
        c = fold_case(c);
    }
    if norm.has(Step::Traditional) {
        c = simplify(c);
    }
    if c.is_alphanumeric() || !norm.has(Step::Separators) {
        Folded::one(c)
    } else {
        Folded::Separator
    }
}

/// Does this build carry the reading table [`Step::Pinyin`] needs (cargo feature `pinyin`, on by
/// default)? Without it a policy that switches pinyin on is refused, naming `normalize.pinyin`.
pub const HAS_READINGS: bool = cfg!(feature = "pinyin");

/// The letters of reading `index` (one-based; `""` for none).
#[cfg(not(feature = "pinyin"))]
fn syllable(_index: u16) -> &'static str {
    ""
}

/// Every reading of `c`: none in a build without the table.
#[cfg(not(feature = "pinyin"))]
fn readings(_c: char) -> impl Iterator<Item = u16> {
    core::iter::empty()
}

/// The letters of reading `index` (one-based; `""` for none).
#[cfg(feature = "pinyin")]
fn syllable(index: u16) -> &'static str {
    usize::from(index).checked_sub(1).and_then(|i| SYLLABLES.get(i)).copied().unwrap_or("")
}

/// The first Mandarin reading of a CJK character, plain (no tone, `ü` as `v`), as
/// [`Step::Pinyin`] reads it in text.
///
/// ```
/// # if !aigc_edge::normalize::HAS_READINGS { return; }
/// assert_eq!(aigc_edge::normalize::reading('赌'), Some("du"));
/// assert_eq!(aigc_edge::normalize::reading('绿'), Some("lv"));
/// assert_eq!(aigc_edge::normalize::reading('a'), None);
/// ```
pub fn reading(c: char) -> Option<&'static str> {
    readings(c).next().map(syllable)
}

/// Every reading of `c`, first the commonest; none for a character without one.
#[cfg(feature = "pinyin")]
fn readings(c: char) -> impl Iterator<Item = u16> {
    let first =
        (c as u32).checked_sub(READING_BASE).and_then(|i| FIRST_READING.get(i as usize)).copied().filter(|&r| r != 0);
    // Offsets from READING_BASE fit in 16 bits (the table ends at U+9FFF); others match none.
    let offset = (c as u32).checked_sub(READING_BASE).and_then(|o| u16::try_from(o).ok());
    let from = offset.map_or(MORE_READINGS.len(), |o| MORE_READINGS.partition_point(|&(cp, _)| cp < o));
    let more = MORE_READINGS[from..].iter().take_while(move |&&(cp, _)| Some(cp) == offset).map(|&(_, r)| r);
    first.into_iter().chain(more)
}

#[cfg(feature = "pinyin")]
/// A pinyin vowel with a tone mark, or `ü`, as a plain letter (`ü` is `v`, as keyboards take it).
fn plain_letter(c: char) -> Option<char> {
    Some(match c {
        'ā' | 'á' | 'ǎ' | 'à' | 'Ā' | 'Á' | 'Ǎ' | 'À' => 'a',
        'ē' | 'é' | 'ě' | 'è' | 'Ē' | 'É' | 'Ě' | 'È' | 'ê' | 'Ê' => 'e',
        'ī' | 'í' | 'ǐ' | 'ì' | 'Ī' | 'Í' | 'Ǐ' | 'Ì' => 'i',
        'ō' | 'ó' | 'ǒ' | 'ò' | 'Ō' | 'Ó' | 'Ǒ' | 'Ò' => 'o',
        'ū' | 'ú' | 'ǔ' | 'ù' | 'Ū' | 'Ú' | 'Ǔ' | 'Ù' => 'u',
        'ü' | 'ǖ' | 'ǘ' | 'ǚ' | 'ǜ' | 'Ü' | 'Ǖ' | 'Ǘ' | 'Ǚ' | 'Ǜ' => 'v',
        'ń' | 'ň' | 'ǹ' | 'Ń' | 'Ň' | 'Ǹ' => 'n',
        'ḿ' | 'Ḿ' => 'm',
        _ => return None,
    })
}

#[cfg(feature = "pinyin")]
/// How the pinyin lane sees `c`: as [`fold`] does, but a CJK character with a reading is its
/// syllable, a toned vowel its plain letter, and a digit (a tone number, `du4`) is skipped.
/// Runs are not collapsed in this lane, so [`Step::Repeats`] is left out of `norm`.
pub(crate) fn fold_reading(c: char, norm: &Normalization) -> Folded {
    let c = plain_letter(c).unwrap_or(c);
    match fold(c, norm) {
        Folded::Chars([f, _, _], 1) if f.is_ascii_digit() => Folded::Invisible,
        Folded::Chars([f, _, _], 1) => match readings(f).next() {
            Some(reading) => Folded::Syllable(reading),
            None => Folded::one(f),
        },
        Folded::Chars(cs, n) if cs.iter().take(usize::from(n)).all(char::is_ascii_digit) => Folded::Invisible,
        other => other,
    }
}

#[cfg(feature = "pinyin")]
/// The forms a keyword takes in the pinyin lane: its characters' readings, every combination of
/// them (the first `limit`), as letters. Empty with fewer than two CJK characters that have a
/// reading (one syllable matches by sound nearly anywhere: `※色※` would be `se`), or with a
/// digit (the lane skips digits in text as tone numbers: `2020年` would be `nian`).
pub(crate) fn reading_forms(keyword: &str, norm: &Normalization, limit: usize) -> Vec<Vec<char>> {
    let mut forms: Vec<Vec<char>> = vec![Vec::new()];
    let mut syllables = 0usize;
    for c in keyword.chars() {
        let c = plain_letter(c).unwrap_or(c);
        let folded = fold(c, norm);
        let options: Vec<&'static str> = match folded {
            Folded::Chars([f, _, _], 1) if !f.is_ascii_digit() => {
                let rs: Vec<&'static str> = readings(f).map(syllable).collect();
                if rs.is_empty() {
                    forms.iter_mut().for_each(|form| form.push(f));
                    continue;
                }
                syllables += 1;
                rs
            }
            _ => {
                let letters: Vec<char> = fold_reading(c, norm).letters().collect();
                forms.iter_mut().for_each(|form| form.extend(&letters));
                continue;
            }
        };
        let mut next = Vec::with_capacity((forms.len() * options.len()).min(limit));
        for form in &forms {
            for option in &options {
                if next.len() < limit {
                    let mut f = form.clone();
                    f.extend(option.chars());
                    next.push(f);
                }
            }
        }
        forms = next;
    }
    let digit = keyword.chars().any(|c| fold(c, norm).chars().iter().any(char::is_ascii_digit));
    if syllables >= 2 && !digit {
        forms
    } else {
        Vec::new()
    }
}

/// Does a run of `c` (as folded) count once under [`Step::Repeats`]? Letters and CJK
/// characters; digits are numbers, read as written.
pub(crate) fn repeats(c: char, norm: &Normalization) -> bool {
    norm.has(Step::Repeats) && c.is_alphabetic()
}

/// The canonical form of a keyword under `norm`: what the matcher must see for it to match.
/// Separators, invisible characters and punctuation are dropped (`6？4` is stored as `64`),
/// since in text they are skipped or end the match. Under [`Step::Repeats`] a run of a letter
/// is stored once (`ass` as `as`), and the dictionary keeps the least run each letter needs.
pub fn canonical(keyword: &str, norm: &Normalization) -> String {
    canonical_runs(keyword, norm).0.into_iter().collect()
}

/// [`canonical`] as characters, with the length of the run each stands for (1 unless
/// [`Step::Repeats`] collapsed a run): the least run the text must have there.
pub(crate) fn canonical_runs(keyword: &str, norm: &Normalization) -> (Vec<char>, Vec<u8>) {
    let mut chars: Vec<char> = Vec::with_capacity(keyword.len());
    let mut runs: Vec<u8> = Vec::with_capacity(keyword.len());
    for c in keyword.chars() {
        for &f in fold(c, norm).chars() {
            match (chars.last(), runs.last_mut()) {
                (Some(&last), Some(run)) if last == f && repeats(f, norm) => *run = run.saturating_add(1),
                _ => {
                    chars.push(f);
                    runs.push(1);
                }
            }
        }
    }
    (chars, runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("FuCK", "fuck"),
            ("ｆｕｃｋ", "fuck"),
            ("Ⓕⓤc⒦", "fuck"),
            ("𝐟𝐮𝐜𝐤", "fuck"),
            ("五星紅旗", "5星红旗"),
            ("9⓿二肆⁹₈③⑸⒋➃㈤㊄", "902498354455"),
            ("⑩", "10"),
            ("下三滥", "下3滥"),
            ("傻@冒", "傻冒"),
            ("a\u{200B}b", "ab"),
            ("two girls", "twogirls"),
            ("习　近平", "习近平"),
            ("fuсk", "fuck"),   // Cyrillic с
            ("ΡΟRΝ", "porn"),   // Greek capitals
            ("SHІT", "shit"),   // Cyrillic І stands for I, not l
            ("ffuuck", "fuck"), // repeats
            ("自自制", "自制"), // CJK runs too
            ("1100", "1100"),   // and digit runs
            ("赌、博", "赌博"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input, &Normalization::default()), want, "canonical({input:?})");
        }
    }

    #[test]
    fn boundaries_and_separators() {
        let all = Normalization::default();
        for c in ['。', '!', '?', '！', '？', '…', '\u{7}'] {
            assert_eq!(fold(c, &all), Folded::Boundary, "{c:?}");
        }
        let marks = [('，', Mark::Comma), ('、', Mark::Comma), (',', Mark::Comma), ('；', Mark::Semicolon)];
        let marks = marks.into_iter().chain([(':', Mark::Colon), ('\n', Mark::LineBreak), ('\r', Mark::Return)]);
        for (c, mark) in marks {
            assert_eq!(fold(c, &all), Folded::Mark(mark), "{c:?}");
            assert_eq!(fold(c, &all.with(Step::Punctuation, false)), Folded::Boundary, "{c:?} without punctuation");
        }
        for c in [' ', '@', '+', '【', ']', '✨', '*', '.', '\t', '　'] {
            assert_eq!(fold(c, &all), Folded::Separator, "{c:?}");
        }
        for c in ['\u{200B}', '\u{200D}', '\u{FEFF}', '\u{00AD}', '\u{FE0F}'] {
            assert_eq!(fold(c, &all), Folded::Invisible, "{c:?}");
        }
    }

    #[test]
    fn steps_switch_off() {
        let cases: [(Step, char, char); 5] = [
            (Step::Case, 'A', 'a'),
            (Step::Width, 'ａ', 'a'),
            (Step::Styles, 'ⓐ', 'a'),
            (Step::Traditional, '紅', '红'),
            (Step::Confusables, 'с', 'c'),
        ];
        for (step, input, folded) in cases {
            let on = Normalization::default();
            assert_eq!(fold(input, &on).chars(), &[folded]);
            let off = Normalization::none().with(step, true);
            assert_eq!(fold(input, &off).chars(), &[folded], "{step:?} alone");
            let without = on.with(step, false);
            assert_ne!(fold(input, &without).chars(), &[folded], "{step:?} off");
        }
    }

    #[test]
    fn word_chars() {
        for c in ['a', 'Z', '7', 'é', 'ж'] {
            assert!(is_word_char(c), "{c:?}");
        }
        for c in ['中', ' ', '@', 'の', '한'] {
            assert!(!is_word_char(c), "{c:?}");
        }
    }
}
