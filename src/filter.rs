//! Matching whole texts against a dictionary under a policy.

use std::sync::Arc;

use crate::category::{Action, Category, CategorySet};
use crate::dictionary::Dictionary;
use crate::error::{Error, ErrorKind};
use crate::mask::{MaskWriter, Span};
use crate::pii::{find_pii, PiiHit, Redactor};
use crate::policy::{OnLimit, Policy};
use crate::scanner::{Candidate, Scanner};
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
        if text.len() > self.policy.limits.max_text_bytes {
            let action = match self.policy.on_limit {
                OnLimit::FailClosed => Action::Block,
                OnLimit::FailOpen => Action::Pass,
            };
            return Decision { action, limit_exceeded: true, ..Decision::default() };
        }
        let mut scanner = Scanner::new(&self.dict, self.policy.normalize.max_gap);
        scanner.feed_str(text, 0);
        scanner.finish();
        let mut hits: Vec<Hit> = scanner.found.drain(..).filter_map(|c| self.hit(c)).collect();
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
        let rewritten = (!spans.is_empty()).then(|| {
            let mut writer = MaskWriter::default();
            for span in spans {
                writer.add(span);
            }
            let mut out = Vec::with_capacity(text.len());
            writer.write(&mut out, text.as_bytes(), 0, &self.policy.mask);
            String::from_utf8_lossy(&out).into_owned()
        });
        Decision { action, hits, pii, text: rewritten, restore, limit_exceeded: false }
    }

    /// Starts a stream: push chunks with [`Stream::write`], end with [`Stream::finish`].
    pub fn stream(&self) -> Stream {
        Stream::new(self.clone())
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
