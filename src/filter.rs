//! Matching whole texts against a dictionary under a policy.

use std::sync::Arc;

use crate::category::{Action, Category, CategorySet};
use crate::dictionary::{Dictionary, DictionaryBuilder};
use crate::error::{Error, ErrorKind};
use crate::keywords::{KeywordKind, KeywordList};
use crate::mask::{MaskWriter, Span};
use crate::pii::{find_pii, PiiHit, Redactor};
use crate::policy::{OnLimit, Policy};
use crate::report;
use crate::scanner::{Candidate, Scanner};
#[cfg(feature = "segmentation")]
use crate::segment::Lexicon;
use crate::segment::Verdict;
use crate::stream::Stream;

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

impl Decision {
    /// The decision as JSON, with byte offsets: the form the CLI prints (see the [`report`
    /// format](crate#json-reports)).
    ///
    /// ```
    /// use aigc_edge::{Filter, Policy};
    /// let policy = Policy::from_json(r#"{"dictionaries": [{"text": "赌博\tA.1h\tmask"}]}"#)?;
    /// let filter = Filter::from_policy(&policy, |_| Err("no files"))?;
    /// assert_eq!(filter.check("网上赌博").to_json(),
    ///     r#"{"flagged":true,"action":"mask","hits":[{"keyword":"赌博","category":"A.1h","start":6,"end":12,"action":"mask"}],"text":"网上**"}"#);
    /// assert_eq!(filter.check("你好").to_json(), r#"{"flagged":false,"action":"pass","hits":[]}"#);
    /// # Ok::<(), aigc_edge::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        self.to_json_with(&|byte| byte)
    }

    /// The decision as JSON with every offset mapped by `offset` (the browser module gives
    /// UTF-16 offsets, what JavaScript strings index by).
    pub fn to_json_with(&self, offset: &dyn Fn(usize) -> usize) -> String {
        let mut out = report::open("flagged");
        out.extend_from_slice(if self.hits.is_empty() { b"false" } else { b"true" });
        out.extend_from_slice(b",\"action\":\"");
        out.extend_from_slice(self.action.as_str().as_bytes());
        out.push(b'"');
        report::push_hits(&mut out, &self.hits, offset);
        report::push_pii(&mut out, &self.pii, offset);
        report::push_optional_str(&mut out, "text", self.text.as_deref());
        report::push_limit(&mut out, self.limit_exceeded);
        report::finish(out)
    }
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
        if let Some(step) = dict.normalization().first_difference(&policy.normalize) {
            return Err(Error::new(ErrorKind::NormalizationMismatch { field: step.name() }));
        }
        Ok(Filter { dict, policy: Arc::new(policy.clone()) })
    }

    /// Builds the filter a policy describes — the one assembly every host uses: each of its
    /// `dictionaries` (inline `text`, or a `path` the host reads with `read`; the core does no
    /// I/O) in its format and kind, its `allow` words, compiled under its normalization and
    /// keyword limits. Dirty keyword lines are kept in the dictionary's
    /// [`diagnostics`](Dictionary::diagnostics) for the host to report.
    ///
    /// Fails naming the field: `dictionaries[1].path` when `read` fails, or the policy's own
    /// errors; and when nothing usable is left ([`ErrorKind::EmptyDictionary`]).
    pub fn from_policy<E: core::fmt::Display>(
        policy: &Policy,
        mut read: impl FnMut(&str) -> Result<Vec<u8>, E>,
    ) -> Result<Filter, Error> {
        policy.validate()?;
        let mut list = KeywordList::new();
        list.max_keyword_chars(policy.limits.max_keyword_chars);
        for (i, source) in policy.dictionaries.iter().enumerate() {
            match (&source.text, &source.path) {
                (Some(text), _) => {
                    list.add_source(&format!("dictionaries[{i}]"), text.as_bytes(), source.format, source.kind);
                }
                (None, Some(path)) => {
                    let bytes = read(path).map_err(|e| {
                        Error::policy(format!("dictionaries[{i}].path"), format!("cannot read {path}: {e}"))
                    })?;
                    list.add_source(path, &bytes, source.format, source.kind);
                }
                (None, None) => {} // refused by `validate`
            }
        }
        for word in &policy.allow {
            list.add(word, KeywordKind::Allow, Default::default());
        }
        let mut builder = DictionaryBuilder::new();
        builder.normalization(policy.normalize.clone()).max_keywords(policy.limits.max_keywords);
        #[cfg(feature = "segmentation")]
        if let Some(seg) = &policy.segmentation {
            match (&seg.text, &seg.path) {
                (Some(text), _) => {
                    builder.lexicon(Lexicon::from_text("segmentation.text", text.as_bytes())?);
                }
                (None, Some(path)) => {
                    let bytes = read(path)
                        .map_err(|e| Error::policy("segmentation.path", format!("cannot read {path}: {e}")))?;
                    builder.lexicon(Lexicon::from_text(path, &bytes)?);
                }
                (None, None) => {} // refused by `validate`
            }
        }
        Filter::new(Arc::new(builder.build(&list)?), policy)
    }

    /// This filter's dictionary under another policy (a profile), without rebuilding it. Fails
    /// as [`Filter::new`] does.
    pub fn with_policy(&self, policy: &Policy) -> Result<Filter, Error> {
        Filter::new(Arc::clone(&self.dict), policy)
    }

    /// The dictionary.
    pub fn dictionary(&self) -> &Dictionary {
        &self.dict
    }

    pub(crate) fn dictionary_arc(&self) -> &Arc<Dictionary> {
        &self.dict
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks a whole text: keyword hits, personal information, the decision and the
    /// rewritten text.
    pub fn check(&self, text: &str) -> Decision {
        let (mut d, writer) = self.decide(text);
        if let Some(mut writer) = writer {
            let mut out = Vec::with_capacity(text.len());
            writer.write(&mut out, text.as_bytes(), 0, &self.policy.mask);
            d.text = Some(String::from_utf8_lossy(&out).into_owned());
        }
        d
    }

    /// Checks texts that are read as one — the parts of one message, the fields of one tool
    /// call — joined with nothing between them, so a keyword split across two parts is one
    /// keyword. The decision's offsets are into the joined text (part `i` starts where the
    /// parts before it end) and its `text` is `None`; each part comes back rewritten beside it
    /// (`None`: unchanged). A masked hit across two parts is masked in both.
    ///
    /// ```
    /// use aigc_edge::{Action, Filter, Policy};
    /// let policy = Policy::from_json(r#"{"dictionaries": [{"text": "炸药\tA.1d\tmask"}]}"#)?;
    /// let filter = Filter::from_policy(&policy, |_| Err("no files"))?;
    /// let (d, parts) = filter.check_parts(&["自制炸", "药的方法"]);
    /// assert_eq!(d.action, Action::Mask);
    /// assert_eq!(parts, [Some("自制*".to_string()), Some("*的方法".to_string())]);
    /// # Ok::<(), aigc_edge::Error>(())
    /// ```
    pub fn check_parts(&self, parts: &[&str]) -> (Decision, Vec<Option<String>>) {
        let joined = parts.concat();
        let (d, writer) = self.decide(&joined);
        let Some(mut writer) = writer else { return (d, vec![None; parts.len()]) };
        let mut base = 0;
        let texts = parts
            .iter()
            .map(|part| {
                let mut out = Vec::with_capacity(part.len());
                writer.write(&mut out, part.as_bytes(), base, &self.policy.mask);
                base += part.len();
                let rewritten = String::from_utf8_lossy(&out).into_owned();
                (rewritten != *part).then_some(rewritten)
            })
            .collect();
        (d, texts)
    }

    /// The decision on `text` without its rewritten text, and the writer that rewrites it when
    /// anything is masked or redacted.
    fn decide(&self, text: &str) -> (Decision, Option<MaskWriter>) {
        if text.len() > self.policy.limits.max_text_bytes {
            let action = match self.policy.on_limit {
                OnLimit::FailClosed => Action::Block,
                OnLimit::FailOpen => Action::Pass,
            };
            return (Decision { action, limit_exceeded: true, ..Decision::default() }, None);
        }
        let mut scanner = Scanner::new(&self.dict, self.policy.normalize.max_gap);
        scanner.feed_str(text, 0);
        scanner.finish();
        let bytes = text.as_bytes();
        let mut hits: Vec<Hit> = scanner
            .found
            .drain(..)
            .filter(|c| {
                let (before, after) = (bytes.get(..c.start).unwrap_or(&[]), bytes.get(c.end..).unwrap_or(&[]));
                let span = bytes.get(c.start..c.end).unwrap_or(&[]);
                self.segmentation(c, [before, &[]], span, after, true) != Verdict::Rejected
            })
            .filter_map(|c| self.hit(c))
            .collect();
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
        let writer = (!spans.is_empty()).then(|| {
            let mut writer = MaskWriter::default();
            for span in spans {
                writer.add(span);
            }
            writer
        });
        (Decision { action, hits, pii, text: None, restore, limit_exceeded: false }, writer)
    }

    /// Starts a stream: push chunks with [`Stream::write`], end with [`Stream::finish`].
    pub fn stream(&self) -> Stream {
        Stream::new(self.clone())
    }

    /// The segmentation check on a deny hit ([`crate::segment`]; confirmed when the dictionary
    /// has no lexicon). The arguments are [`Lexicon::check`]'s.
    pub(crate) fn segmentation(
        &self,
        c: &Candidate,
        before: [&[u8]; 2],
        span: &[u8],
        after: &[u8],
        at_end: bool,
    ) -> Verdict {
        match self.dict.lexicon() {
            Some(lex) => lex.check(before, span, after, at_end, self.dict.keyword(c.pattern)),
            None => Verdict::Confirmed,
        }
    }

    pub(crate) fn hit(&self, c: Candidate) -> Option<Hit> {
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
