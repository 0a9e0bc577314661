//! Keyword files: parsing, cleaning and the report of dirty lines.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::category::{Action, Category, CategorySet};

/// Whether a keyword forbids or allows the text it matches; `"deny"` or `"allow"` in a policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeywordKind {
    /// A hit is subject to the policy's action.
    #[default]
    Deny,
    /// A hit cancels every deny hit it covers (`三黄片` allowed covers `黄片` denied).
    Allow,
}

/// The layout of a keyword file; `"auto"`, `"native"` or `"tagged"` in a policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeywordFormat {
    /// Decide from the file: [`KeywordFormat::Tagged`] when most lines look like `word 0,4`
    /// and none has a TAB, else [`KeywordFormat::Native`].
    #[default]
    Auto,
    /// `keyword[TAB category[TAB action]]`, `#` starts a comment line. The category is a
    /// TC260 id (`A.1a`) or empty; the action is `pass`, `flag`, `mask` or `block` and
    /// overrides the policy for this keyword.
    Native,
    /// `keyword<space>tag[,tag]` as in houbb/sensitive-word's tag file; tags map to categories
    /// by [`TAG_CATEGORIES`].
    Tagged,
}

/// How the numeric tags of houbb/sensitive-word's `sensitive_word_tags.txt` map to TC260
/// categories. Tags are coarse, so each goes to the nearest Annex A risk.
///
/// | tag | meaning | category |
/// |---|---|---|
/// | 0 | politics | A.1a subversion of state power |
/// | 1 | drugs | A.1h other content prohibited by law |
/// | 2 | pornography | A.1f violence, obscenity, pornography |
/// | 3 | gambling | A.1h other content prohibited by law |
/// | 4 | other illegal | A.1h other content prohibited by law |
pub const TAG_CATEGORIES: [(u8, &str); 5] = [(0, "A.1a"), (1, "A.1h"), (2, "A.1f"), (3, "A.1h"), (4, "A.1h")];

/// One keyword as read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyword {
    /// The keyword as written (after removing control bytes and surrounding whitespace).
    pub text: String,
    /// Deny or allow.
    pub kind: KeywordKind,
    /// Risk categories; empty when the file gives none.
    pub categories: CategorySet,
    /// An action that overrides the policy for this keyword.
    pub action: Option<Action>,
    /// Where it was read: index into [`KeywordList::sources`], and 1-based line.
    pub origin: (u32, u32),
}

/// A problem with one line of a keyword file. The line is cleaned and kept where possible,
/// else skipped; either way it is reported, never silently dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (as named when added).
    pub source: String,
    /// 1-based line number.
    pub line: u32,
    /// What was wrong.
    pub problem: Problem,
}

/// What was wrong with a line; see [`Diagnostic`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // fields are named for what they hold
pub enum Problem {
    /// The line held control bytes; they were removed and the keyword kept.
    ControlBytes,
    /// A line holding only whitespace; skipped.
    Blank,
    /// Not valid UTF-8; skipped.
    InvalidUtf8,
    /// Longer than the limit in characters; skipped.
    TooLong { chars: usize, limit: usize },
    /// Nothing left to match after normalization (only separators or punctuation); skipped.
    NothingToMatch,
    /// Same canonical form as an earlier keyword (at `first`): categories merged.
    Duplicate { first: (String, u32) },
    /// An unknown category or tag; the keyword is kept without it.
    BadCategory(String),
    /// An unknown action; the keyword is kept without it.
    BadAction(String),
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.source, self.line)?;
        match &self.problem {
            Problem::ControlBytes => f.write_str("control bytes removed"),
            Problem::Blank => f.write_str("blank line skipped"),
            Problem::InvalidUtf8 => f.write_str("not valid UTF-8, line skipped"),
            Problem::TooLong { chars, limit } => {
                write!(f, "keyword of {chars} characters is over the limit of {limit}, skipped")
            }
            Problem::NothingToMatch => f.write_str("nothing left to match after normalization, skipped"),
            Problem::Duplicate { first } => {
                write!(f, "duplicate of {}:{}, categories merged", first.0, first.1)
            }
            Problem::BadCategory(c) => write!(f, "unknown category {c:?} ignored"),
            Problem::BadAction(a) => write!(f, "unknown action {a:?} ignored"),
        }
    }
}

/// Keywords gathered from one or more files, with the report of dirty lines.
///
/// ```
/// use aigc_edge::{KeywordFormat, KeywordKind, KeywordList};
/// let mut list = KeywordList::new();
/// list.add_source("demo.txt", "# demo\n赌博\tA.1h\n  \n色情\tA.1f\tmask\n".as_bytes(),
///                 KeywordFormat::Auto, KeywordKind::Deny);
/// assert_eq!(list.keywords().len(), 2);
/// assert_eq!(list.diagnostics()[0].to_string(), "demo.txt:3: blank line skipped");
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeywordList {
    keywords: Vec<Keyword>,
    sources: Vec<String>,
    diagnostics: Vec<Diagnostic>,
    max_chars: usize,
}

/// Default for the longest keyword, in characters (`limits.max_keyword_chars`).
pub const DEFAULT_MAX_KEYWORD_CHARS: usize = 64;

impl KeywordList {
    /// An empty list with the default keyword length limit.
    pub fn new() -> KeywordList {
        KeywordList { max_chars: DEFAULT_MAX_KEYWORD_CHARS, ..KeywordList::default() }
    }

    /// Sets the longest keyword kept, in characters; longer ones are reported and skipped.
    pub fn max_keyword_chars(&mut self, limit: usize) -> &mut KeywordList {
        self.max_chars = limit;
        self
    }

    /// The keywords read so far.
    pub fn keywords(&self) -> &[Keyword] {
        &self.keywords
    }

    /// The names of the sources, indexed by [`Keyword::origin`].
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Every dirty line met so far.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub(crate) fn push_diagnostic(&mut self, origin: (u32, u32), problem: Problem) {
        let source = self.sources.get(origin.0 as usize).cloned().unwrap_or_default();
        self.diagnostics.push(Diagnostic { source, line: origin.1, problem });
    }

    pub(crate) fn source_name(&self, index: u32) -> &str {
        self.sources.get(index as usize).map(String::as_str).unwrap_or("")
    }

    /// Adds one keyword given in code, e.g. an allow word from a policy.
    pub fn add(&mut self, text: &str, kind: KeywordKind, categories: CategorySet) {
        let source = self.source_index("(inline)");
        let line = self.keywords.iter().filter(|k| k.origin.0 == source).count() as u32 + 1;
        self.keywords.push(Keyword { text: text.to_string(), kind, categories, action: None, origin: (source, line) });
    }

    fn source_index(&mut self, name: &str) -> u32 {
        match self.sources.iter().position(|s| s == name) {
            Some(i) => i as u32,
            None => {
                self.sources.push(name.to_string());
                (self.sources.len() - 1) as u32
            }
        }
    }

    /// Reads a keyword file's bytes. Returns how many keywords it added.
    pub fn add_source(&mut self, name: &str, bytes: &[u8], format: KeywordFormat, kind: KeywordKind) -> usize {
        let source = self.source_index(name);
        let format = match format {
            KeywordFormat::Auto => detect_format(bytes),
            other => other,
        };
        let before = self.keywords.len();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (i, raw) in lines.into_iter().enumerate() {
            let origin = (source, i as u32 + 1);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            let Ok(line) = core::str::from_utf8(raw) else {
                self.push_diagnostic(origin, Problem::InvalidUtf8);
                continue;
            };
            if line.starts_with('#') {
                continue;
            }
            let cleaned: String;
            let line = if line.chars().any(|c| c.is_control() && c != '\t') {
                self.push_diagnostic(origin, Problem::ControlBytes);
                cleaned = line.chars().filter(|&c| !c.is_control() || c == '\t').collect();
                cleaned.as_str()
            } else {
                line
            };
            if line.trim().is_empty() {
                self.push_diagnostic(origin, Problem::Blank);
                continue;
            }
            let (text, categories, action) = match format {
                KeywordFormat::Tagged => self.parse_tagged(line, origin),
                _ => self.parse_native(line, origin),
            };
            let text = text.trim();
            if text.is_empty() {
                self.push_diagnostic(origin, Problem::Blank);
                continue;
            }
            let chars = text.chars().count();
            if chars > self.max_chars {
                self.push_diagnostic(origin, Problem::TooLong { chars, limit: self.max_chars });
                continue;
            }
            self.keywords.push(Keyword { text: text.to_string(), kind, categories, action, origin });
        }
        self.keywords.len() - before
    }

    fn parse_native<'a>(&mut self, line: &'a str, origin: (u32, u32)) -> (&'a str, CategorySet, Option<Action>) {
        let mut fields = line.split('\t');
        let text = fields.next().unwrap_or("");
        let mut categories = CategorySet::EMPTY;
        if let Some(field) = fields.next() {
            for id in field.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "-") {
                match id.parse::<Category>() {
                    Ok(c) => categories.insert(c),
                    Err(_) => self.push_diagnostic(origin, Problem::BadCategory(id.to_string())),
                }
            }
        }
        let mut action = None;
        if let Some(field) = fields.next().map(str::trim).filter(|s| !s.is_empty()) {
            match field.parse::<Action>() {
                Ok(a) => action = Some(a),
                Err(_) => self.push_diagnostic(origin, Problem::BadAction(field.to_string())),
            }
        }
        (text, categories, action)
    }

    fn parse_tagged<'a>(&mut self, line: &'a str, origin: (u32, u32)) -> (&'a str, CategorySet, Option<Action>) {
        let Some((text, tags)) = line.rsplit_once(' ').filter(|(_, t)| is_tag_list(t)) else {
            return (line, CategorySet::EMPTY, None);
        };
        let mut categories = CategorySet::EMPTY;
        for tag in tags.split(',') {
            let category = TAG_CATEGORIES
                .iter()
                .find(|(t, _)| tag.parse::<u8>().ok() == Some(*t))
                .and_then(|(_, id)| id.parse::<Category>().ok());
            match category {
                Some(c) => categories.insert(c),
                None => self.push_diagnostic(origin, Problem::BadCategory(tag.to_string())),
            }
        }
        (text, categories, None)
    }
}

fn is_tag_list(s: &str) -> bool {
    !s.is_empty() && s.split(',').all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
}

fn detect_format(bytes: &[u8]) -> KeywordFormat {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(16 * 1024)]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).take(200).collect();
    if lines.is_empty() || lines.iter().any(|l| l.contains('\t')) {
        return KeywordFormat::Native;
    }
    let tagged =
        lines.iter().filter(|l| l.rsplit_once(' ').is_some_and(|(w, t)| !w.is_empty() && is_tag_list(t))).count();
    if tagged * 10 >= lines.len() * 8 {
        KeywordFormat::Tagged
    } else {
        KeywordFormat::Native
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], format: KeywordFormat) -> KeywordList {
        let mut list = KeywordList::new();
        list.max_keyword_chars(8);
        list.add_source("t.txt", input, format, KeywordKind::Deny);
        list
    }

    #[test]
    fn dirty_lines_are_reported_with_their_line() {
        let input = b"ok\n\x07bell\x01\n   \n\xff\xfe\n123456789\n#c\n\nw\tA.9z\nv\tA.1a\tdrop\nu\tA.2b,A.1f\tmask\r\n";
        let list = read(input, KeywordFormat::Native);
        let words: Vec<&str> = list.keywords().iter().map(|k| k.text.as_str()).collect();
        assert_eq!(words, ["ok", "bell", "w", "v", "u"]);
        let report: Vec<String> = list.diagnostics().iter().map(|d| d.to_string()).collect();
        assert_eq!(
            report,
            [
                "t.txt:2: control bytes removed",
                "t.txt:3: blank line skipped",
                "t.txt:4: not valid UTF-8, line skipped",
                "t.txt:5: keyword of 9 characters is over the limit of 8, skipped",
                "t.txt:8: unknown category \"A.9z\" ignored",
                "t.txt:9: unknown action \"drop\" ignored",
            ]
        );
        let u = &list.keywords()[4];
        assert_eq!(u.action, Some(Action::Mask));
        let ids: Vec<String> = u.categories.iter().map(|c| c.to_string()).collect();
        assert_eq!(ids, ["A.1f", "A.2b"]);
    }

    #[test]
    fn tagged_format_maps_tags() {
        let input = "04式第6代军牌 0\n0售k粉qq 1,4\n色情片 2\n两个 词 3\n无标签\n坏 9\n".as_bytes();
        assert_eq!(detect_format(input), KeywordFormat::Tagged);
        let list = read(input, KeywordFormat::Auto);
        let got: Vec<(String, Vec<String>)> = list
            .keywords()
            .iter()
            .map(|k| (k.text.clone(), k.categories.iter().map(|c| c.to_string()).collect()))
            .collect();
        let want = [
            ("04式第6代军牌", vec!["A.1a"]),
            ("0售k粉qq", vec!["A.1h"]),
            ("色情片", vec!["A.1f"]),
            ("两个 词", vec!["A.1h"]),
            ("无标签", vec![]),
            ("坏", vec![]),
        ];
        assert_eq!(got.len(), want.len());
        for ((text, cats), (wt, wc)) in got.iter().zip(want) {
            assert_eq!(text, wt);
            assert_eq!(cats, &wc, "{text}");
        }
        assert_eq!(list.diagnostics().len(), 1);
        assert_eq!(list.diagnostics()[0].to_string(), "t.txt:6: unknown category \"9\" ignored");
    }

    #[test]
    fn native_detected_for_plain_lists() {
        assert_eq!(detect_format("a b\nc\nd\n".as_bytes()), KeywordFormat::Native);
        assert_eq!(detect_format("a\tA.1a\nb 1\n".as_bytes()), KeywordFormat::Native);
        assert_eq!(detect_format(b""), KeywordFormat::Native);
    }
}
