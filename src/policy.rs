//! The policy: one serde schema shared by the CLI, the Envoy filter and the browser module.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::category::{Action, Category, CategorySet};
use crate::dictionary::DEFAULT_MAX_KEYWORDS;
use crate::error::Error;
use crate::keywords::{KeywordFormat, KeywordKind, DEFAULT_MAX_KEYWORD_CHARS};
use crate::normalize::Normalization;
use crate::pii::{PiiKind, RedactionStyle};

/// What to do with text, read from JSON. Every field has a default, unknown fields are refused,
/// and an error names the field (`limits.max_carry_bytes`).
///
/// ```
/// use aigc_edge::{Action, Policy};
/// let policy = Policy::from_json(r#"{
///     "actions": {"default": "block", "categories": {"A.2e": "mask"}},
///     "mask": {"style": "char", "char": "*"},
///     "pii": {"kinds": ["mobile", "id_card"], "action": "mask"}
/// }"#).unwrap();
/// assert_eq!(policy.actions.default, Action::Block);
///
/// let err = Policy::from_json(r#"{"limits": {"max_carry_bytes": -1}}"#).unwrap_err();
/// assert!(err.to_string().starts_with("invalid policy field `limits.max_carry_bytes`"));
/// let err = Policy::from_json(r#"{"actions": {"defualt": "block"}}"#).unwrap_err();
/// assert!(err.to_string().starts_with("invalid policy field `actions.defualt`: unknown field"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// A name for logs and audit records.
    pub name: String,
    /// Keyword files, resolved by the host (the core does no I/O).
    pub dictionaries: Vec<DictionarySource>,
    /// Allow words given inline; they win over a deny match they cover.
    pub allow: Vec<String>,
    /// Which action each category gets.
    pub actions: Actions,
    /// Normalization against evasion.
    pub normalize: Normalization,
    /// The segmentation check's word-frequency lexicon ([`crate::segment`]): with one, a CJK
    /// hit stands only where a segmentation of its neighbourhood keeps the keyword whole.
    /// Compiled into the dictionary like `dictionaries` (and, like them, taken from the
    /// artifact when the host loads one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Segmentation>,
    /// How masked text reads.
    pub mask: Mask,
    /// Personal information handling.
    pub pii: Pii,
    /// Explicit limits.
    pub limits: Limits,
    /// What happens when a limit is exceeded.
    pub on_limit: OnLimit,
}

/// A keyword list named by a policy: a file the host reads (`path`), or the list itself
/// (`text`), exactly one of the two.
///
/// ```
/// use aigc_edge::{Action, Filter, Policy};
/// let policy = Policy::from_json(r#"{"dictionaries": [
///     {"text": "赌博\tA.1h\n"},
///     {"text": "三黄片\n", "kind": "allow"},
///     {"path": "more.txt", "format": "tagged"}
/// ]}"#)?;
/// // The core does no I/O: the host reads every `path`.
/// let filter = Filter::from_policy(&policy, |path| match path {
///     "more.txt" => Ok("黄片 2\n".as_bytes().to_vec()),
///     _ => Err("no such file"),
/// })?;
/// assert_eq!(filter.check("网上赌博").action, Action::Block);
/// assert_eq!(filter.check("三黄片").action, Action::Pass);
/// assert_eq!(filter.check("黄片").hits[0].category.map(|c| c.to_string()).as_deref(), Some("A.1f"));
/// # Ok::<(), aigc_edge::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictionarySource {
    /// Path of the file, relative to the policy file; the host reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The list itself, for hosts that read no files (the Envoy filter, the browser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Layout of the list.
    #[serde(default)]
    pub format: KeywordFormat,
    /// Deny words or allow words.
    #[serde(default)]
    pub kind: KeywordKind,
}

impl DictionarySource {
    /// A list given inline.
    pub fn inline(text: impl Into<String>, format: KeywordFormat, kind: KeywordKind) -> DictionarySource {
        DictionarySource { path: None, text: Some(text.into()), format, kind }
    }

    /// A file for the host to read.
    pub fn file(path: impl Into<String>, format: KeywordFormat, kind: KeywordKind) -> DictionarySource {
        DictionarySource { path: Some(path.into()), text: None, format, kind }
    }
}

/// Where the segmentation lexicon comes from: a file the host reads (`path`) or the lexicon
/// itself (`text`), exactly one of the two, in jieba's `dict.txt` layout
/// ([`Lexicon::from_text`](crate::segment::Lexicon::from_text)).
///
/// ```
/// use aigc_edge::Policy;
/// let e = Policy::from_json(r#"{"segmentation": {}}"#).unwrap_err();
/// assert!(e.to_string().starts_with("invalid policy field `segmentation`"), "{e}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segmentation {
    /// Path of the lexicon, relative to the policy file; the host reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The lexicon itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Checks that exactly one of `path` and `text` is given, and a path is not empty.
fn one_source(field: &str, path: &Option<String>, text: &Option<String>) -> Result<(), Error> {
    match (path, text) {
        (Some(path), None) if path.trim().is_empty() => {
            Err(Error::policy(format!("{field}.path"), "must not be empty"))
        }
        (Some(_), None) | (None, Some(_)) => Ok(()),
        _ => Err(Error::policy(field, "give exactly one of `path` and `text`")),
    }
}

/// Actions by category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Actions {
    /// For a category not listed in `categories`.
    pub default: Action,
    /// For a keyword with no category.
    pub uncategorized: Action,
    /// Per category, e.g. `{"A.2e": "mask"}`.
    pub categories: BTreeMap<Category, Action>,
}

impl Default for Actions {
    fn default() -> Self {
        Actions { default: Action::Block, uncategorized: Action::Block, categories: BTreeMap::new() }
    }
}

impl Actions {
    /// The action for a keyword in `categories`: the most severe of its categories' actions,
    /// unless the keyword carries its own.
    pub fn resolve(&self, categories: CategorySet, own: Option<Action>) -> (Action, Option<Category>) {
        if let Some(action) = own {
            return (action, categories.iter().next());
        }
        if categories.is_empty() {
            return (self.uncategorized, None);
        }
        let mut best: Option<(Action, Category)> = None;
        for c in categories.iter() {
            let action = self.categories.get(&c).copied().unwrap_or(self.default);
            if best.is_none_or(|(a, _)| action > a) {
                best = Some((action, c));
            }
        }
        match best {
            Some((a, c)) => (a, Some(c)),
            None => (self.uncategorized, None),
        }
    }
}

/// How a masked hit reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mask {
    /// Per character or one replacement per hit.
    pub style: MaskStyle,
    /// The character for [`MaskStyle::Char`].
    pub char: char,
    /// The text for [`MaskStyle::Replace`].
    pub with: String,
}

impl Default for Mask {
    fn default() -> Self {
        Mask { style: MaskStyle::Char, char: '*', with: "[已屏蔽]".to_string() }
    }
}

/// See [`Mask`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskStyle {
    /// Every character of the hit becomes `mask.char` (lengths in characters are kept).
    #[default]
    Char,
    /// The whole hit becomes `mask.with`.
    Replace,
}

/// Personal information handling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pii {
    /// Kinds to detect.
    pub kinds: Vec<PiiKind>,
    /// `pass` ignores them, `flag` reports, `mask` redacts, `block` refuses the text.
    pub action: Action,
    /// How redacted values read.
    pub style: RedactionStyle,
}

impl Default for Pii {
    fn default() -> Self {
        Pii { kinds: PiiKind::ALL.to_vec(), action: Action::Mask, style: RedactionStyle::Placeholder }
    }
}

/// Explicit limits; exceeding one triggers [`Policy::on_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest text [`crate::Filter::check`] inspects, in bytes.
    pub max_text_bytes: usize,
    /// Most bytes a stream may hold back while a match is undecided.
    pub max_carry_bytes: usize,
    /// Most keywords a dictionary may hold.
    pub max_keywords: usize,
    /// Longest keyword, in characters; longer lines are reported and skipped.
    pub max_keyword_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_bytes: 1 << 20,
            max_carry_bytes: 16 << 10,
            max_keywords: DEFAULT_MAX_KEYWORDS,
            max_keyword_chars: DEFAULT_MAX_KEYWORD_CHARS,
        }
    }
}

/// What happens when a limit is exceeded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// Refuse: the text is blocked, the stream is ended.
    #[default]
    FailClosed,
    /// Let it through: a text is passed unchecked, a stream flushes what it held and goes on
    /// (a match spanning that point can be missed). The result says the limit was hit.
    FailOpen,
}

impl Policy {
    /// Parses and validates a policy from JSON.
    pub fn from_json(json: &str) -> Result<Policy, Error> {
        let policy: Policy = Error::from_json(json)?;
        policy.validate()?;
        Ok(policy)
    }

    /// True when `other` compiles to the same dictionary: the same lists, allow words,
    /// normalization and keyword limits. Hosts share one dictionary between such profiles.
    pub fn same_dictionary(&self, other: &Policy) -> bool {
        self.dictionaries == other.dictionaries
            && self.allow == other.allow
            && self.normalize == other.normalize
            && self.limits.max_keywords == other.limits.max_keywords
            && self.limits.max_keyword_chars == other.limits.max_keyword_chars
    }

    /// Checks values serde cannot: ranges and non-empty strings.
    pub fn validate(&self) -> Result<(), Error> {
        if self.normalize.has(crate::Step::Pinyin) && !crate::normalize::HAS_READINGS {
            // The CLI, the browser module and the filter's visible build have them.
            return Err(Error::policy("normalize.pinyin", "not in this build (no reading table)"));
        }
        let positive = [
            ("limits.max_text_bytes", self.limits.max_text_bytes),
            ("limits.max_carry_bytes", self.limits.max_carry_bytes),
            ("limits.max_keywords", self.limits.max_keywords),
            ("limits.max_keyword_chars", self.limits.max_keyword_chars),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(Error::policy(field, "must be greater than 0"));
            }
        }
        if self.limits.max_keyword_chars > 1024 {
            return Err(Error::policy("limits.max_keyword_chars", "must be at most 1024"));
        }
        let scoped = &self.normalize.pinyin_scope.keywords;
        if let Some(i) = scoped.iter().position(|k| k.trim().is_empty() || k.contains(['\n', '\r'])) {
            return Err(Error::policy(format!("normalize.pinyin.keywords[{i}]"), "must be one keyword as listed"));
        }
        if !(1..=16).contains(&self.normalize.max_gap) {
            return Err(Error::policy("normalize.max_gap", "must be between 1 and 16"));
        }
        if self.mask.style == MaskStyle::Replace && self.mask.with.is_empty() {
            return Err(Error::policy("mask.with", "must not be empty for style \"replace\""));
        }
        for (i, source) in self.dictionaries.iter().enumerate() {
            one_source(&format!("dictionaries[{i}]"), &source.path, &source.text)?;
        }
        if let Some(seg) = &self.segmentation {
            if !cfg!(feature = "segmentation") {
                // The CLI, the browser module and the filter's visible build have it.
                return Err(Error::policy("segmentation", "not in this build (no segmentation check)"));
            }
            one_source("segmentation", &seg.path, &seg.text)?;
        }
        for (i, word) in self.allow.iter().enumerate() {
            if word.trim().is_empty() {
                return Err(Error::policy(format!("allow[{i}]"), "must not be empty"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_from_empty_object() {
        let p = Policy::from_json("{}").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.on_limit, OnLimit::FailClosed);
        assert!(p.normalize.has(crate::Step::Traditional));
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (r#"{"nmae": "x"}"#, "invalid policy field `nmae`: unknown field `nmae`"),
            (r#"{"actions": {"default": "drop"}}"#, "invalid policy field `actions.default`: unknown variant `drop`"),
            (
                r#"{"actions": {"categories": {"A.9a": "mask"}}}"#,
                "invalid policy field `actions.categories.A.9a`: unknown risk category \"A.9a\"",
            ),
            (r#"{"normalize": {"case": "yes"}}"#, "invalid policy field `normalize.case`: invalid type"),
            (r#"{"normalize": {"max_gap": 0}}"#, "invalid policy field `normalize.max_gap`: must be between 1 and 16"),
            (
                r#"{"limits": {"max_carry_bytes": 0}}"#,
                "invalid policy field `limits.max_carry_bytes`: must be greater than 0",
            ),
            (
                r#"{"limits": {"max_text_byte": 10}}"#,
                "invalid policy field `limits.max_text_byte`: unknown field `max_text_byte`",
            ),
            (r#"{"mask": {"style": "replace", "with": ""}}"#, "invalid policy field `mask.with`: must not be empty"),
            (r#"{"pii": {"kinds": ["phone"]}}"#, "invalid policy field `pii.kinds[0]`: unknown variant `phone`"),
            (r#"{"on_limit": "fail_sometimes"}"#, "invalid policy field `on_limit`: unknown variant"),
            (r#"{"dictionaries": [{"path": ""}]}"#, "invalid policy field `dictionaries[0].path`: must not be empty"),
            (
                r#"{"dictionaries": [{"path": "a", "text": "b"}]}"#,
                "invalid policy field `dictionaries[0]`: give exactly one",
            ),
            (r#"{"dictionaries": [{}]}"#, "invalid policy field `dictionaries[0]`: give exactly one"),
            (
                r#"{"dictionaries": [{"text": "x", "format": "csv"}]}"#,
                "invalid policy field `dictionaries[0].format`: unknown variant `csv`",
            ),
            (r#"{"allow": ["ok", " "]}"#, "invalid policy field `allow[1]`: must not be empty"),
            ("{", "invalid policy: EOF while parsing"),
        ];
        for (json, want) in cases {
            let got = Policy::from_json(json).unwrap_err().to_string();
            assert!(got.starts_with(want), "{json}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn category_actions_resolve_to_most_severe() {
        let p = Policy::from_json(
            r#"{"actions": {"default": "flag", "uncategorized": "mask",
            "categories": {"A.1f": "block", "A.2e": "pass"}}}"#,
        )
        .unwrap();
        let set = |ids: &[&str]| {
            let mut s = CategorySet::EMPTY;
            for id in ids {
                s.insert(id.parse().unwrap());
            }
            s
        };
        let cases: [(&[&str], Option<Action>, Action, Option<&str>); 6] = [
            (&[], None, Action::Mask, None),
            (&["A.2e"], None, Action::Pass, Some("A.2e")),
            (&["A.1a"], None, Action::Flag, Some("A.1a")),
            (&["A.1a", "A.1f"], None, Action::Block, Some("A.1f")),
            (&["A.1f"], Some(Action::Flag), Action::Flag, Some("A.1f")),
            (&[], Some(Action::Block), Action::Block, None),
        ];
        for (ids, own, action, category) in cases {
            let (a, c) = p.actions.resolve(set(ids), own);
            assert_eq!(a, action, "{ids:?}");
            assert_eq!(c.map(|c| c.to_string()).as_deref(), category, "{ids:?}");
        }
    }
}
