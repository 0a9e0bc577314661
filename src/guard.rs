//! The classification-model layer: what a guard model is asked and what its answer means.
//!
//! The rules name two filtering methods, keywords and classification models
//! (TC260-003 / GB 45654). A guard model is any operator-run classifier behind one of two
//! common contracts ([`Protocol`]); this module writes the request body, reads the answer into a
//! [`Judgement`], and maps it onto the policy's categories and actions ([`Guard::decide`]), so
//! per-category actions, profiles, audit records and metrics apply as they do to keywords. No
//! I/O here: the hosts (the Envoy filter's `dispatch_http_call`, the CLI's HTTP client) send.
//!
//! ```
//! use aigc_edge::guard::{Guard, Severity};
//! use aigc_edge::{Action, Policy};
//! let guard = Guard::from_json(r#"{"protocol": "qwen3guard", "model": "Qwen3Guard-Gen-0.6B"}"#)?;
//! let request = guard.request("教我做炸弹", None);
//! assert!(String::from_utf8(request)?.contains("Qwen3Guard-Gen-0.6B"));
//! let answer = r#"{"choices":[{"message":{"content":"Safety: Unsafe\nCategories: Violent"}}]}"#;
//! let judgement = guard.read(answer.as_bytes())?;
//! assert_eq!(judgement.severity, Severity::Unsafe);
//! let decided = guard.decide(&judgement, &Policy::default()).unwrap();
//! assert_eq!((decided.category.map(|c| c.to_string()), decided.action), (Some("A.1f".into()), Action::Block));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::category::CategorySet;
use crate::{Action, Category, Policy};

/// The contract the guard model speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// A chat-completions endpoint serving a Qwen3Guard-Gen-style model (vLLM, SGLang): the text
    /// goes as the user message (an answer as the assistant message after its prompt); the model
    /// answers `Safety: Safe|Unsafe|Controversial`, `Categories: …` and, for answers,
    /// `Refusal: Yes|No`.
    #[default]
    Qwen3guard,
    /// The OpenAI moderation contract: `POST /v1/moderations {"input": …}` →
    /// `results[].flagged`, `categories`, `category_scores`.
    OpenaiModeration,
}

impl Protocol {
    /// The path it is served at by default.
    pub fn default_path(self) -> &'static str {
        match self {
            Protocol::Qwen3guard => "/v1/chat/completions",
            Protocol::OpenaiModeration => "/v1/moderations",
        }
    }
}

/// How harmful the guard finds a text, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing wrong.
    Safe,
    /// Borderline (Qwen3Guard's `Controversial`).
    Controversial,
    /// Harmful.
    #[default]
    Unsafe,
}

impl Severity {
    /// `safe`, `controversial`, `unsafe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Safe => "safe",
            Severity::Controversial => "controversial",
            Severity::Unsafe => "unsafe",
        }
    }
}

/// What the guard said about one text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgement {
    /// Its verdict.
    pub severity: Severity,
    /// The guard's own category names (`Violent`, `sexual`, …), `None` excluded.
    pub categories: Vec<String>,
    /// For an answer judged with its prompt: did the model refuse (Qwen3Guard's `Refusal`)?
    pub refusal: Option<bool>,
}

/// What the policy does about a judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decided {
    /// The TC260 category the guard's categories map to (`None`: uncategorized).
    pub category: Option<Category>,
    /// The policy's action for it.
    pub action: Action,
}

/// An answer the guard layer cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardError(pub String);

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guard answer unreadable: {}", self.0)
    }
}

impl std::error::Error for GuardError {}

/// Guard categories to TC260 categories, by default; `Guard::categories` adds or overrides.
pub const DEFAULT_CATEGORIES: [(&str, &str); 20] = [
    // Qwen3Guard-Gen
    ("Violent", "A.1f"),
    ("Non-violent Illegal Acts", "A.1h"),
    ("Sexual Content or Sexual Acts", "A.1f"),
    ("PII", "A.4f"),
    ("Suicide & Self-Harm", "A.4a"),
    ("Unethical Acts", "A.4g"),
    ("Politically Sensitive Topics", "A.1b"),
    ("Copyright Violation", "A.3a"),
    ("Jailbreak", "A.1h"),
    // OpenAI moderation
    ("harassment", "A.4c"),
    ("harassment/threatening", "A.4c"),
    ("hate", "A.1e"),
    ("hate/threatening", "A.1e"),
    ("illicit", "A.1h"),
    ("illicit/violent", "A.1d"),
    ("self-harm", "A.4a"),
    ("self-harm/intent", "A.4a"),
    ("self-harm/instructions", "A.4a"),
    ("sexual", "A.1f"),
    ("violence", "A.1f"),
];

/// A guard model: its contract and how its verdicts act.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guard {
    /// The contract.
    pub protocol: Protocol,
    /// The model name sent in the request (`model`); omitted when empty.
    pub model: String,
    /// The lowest severity that acts: `unsafe` (default) or `controversial`.
    pub severity: Severity,
    /// Guard category → TC260 id (`A.1d`) or `uncategorized`, over [`DEFAULT_CATEGORIES`].
    pub categories: BTreeMap<String, String>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            protocol: Protocol::Qwen3guard,
            model: String::new(),
            severity: Severity::Unsafe,
            categories: BTreeMap::new(),
        }
    }
}

impl Guard {
    /// From JSON; an unknown field or a bad value is refused naming it (`guard.severity`).
    pub fn from_json(json: &str) -> Result<Guard, crate::Error> {
        let guard: Guard = crate::Error::from_json(json)?;
        guard.validate()?;
        Ok(guard)
    }

    /// Refuses a severity of `safe` (everything would act) and category targets that are not
    /// TC260 ids, naming the field.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if self.severity == Severity::Safe {
            return Err(crate::Error::policy("severity", "must be `unsafe` or `controversial`"));
        }
        for (name, target) in &self.categories {
            if target != "uncategorized" && target.parse::<Category>().is_err() {
                return Err(crate::Error::policy(
                    format!("categories.{name}"),
                    format!("{target:?} is not a TC260 category (A.1a … A.5b) or `uncategorized`"),
                ));
            }
        }
        Ok(())
    }

    /// The request body asking about `text`; `prompt` is the context of an answer.
    pub fn request(&self, text: &str, prompt: Option<&str>) -> Vec<u8> {
        let mut body = match self.protocol {
            Protocol::Qwen3guard => {
                let messages = match prompt {
                    Some(p) => json!([{"role": "user", "content": p}, {"role": "assistant", "content": text}]),
                    None => json!([{"role": "user", "content": text}]),
                };
                json!({"messages": messages, "temperature": 0, "max_tokens": 64})
            }
            Protocol::OpenaiModeration => json!({"input": text}),
        };
        if !self.model.is_empty() {
            body["model"] = json!(self.model);
        }
        body.to_string().into_bytes()
    }

    /// Reads the guard's answer.
    pub fn read(&self, body: &[u8]) -> Result<Judgement, GuardError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| GuardError(format!("not JSON ({e})")))?;
        match self.protocol {
            Protocol::Qwen3guard => {
                let content = value
                    .pointer("/choices/0/message/content")
                    .and_then(Value::as_str)
                    .ok_or_else(|| GuardError("no choices[0].message.content".into()))?;
                read_qwen3guard(content)
            }
            Protocol::OpenaiModeration => {
                let result = value.pointer("/results/0").ok_or_else(|| GuardError("no results[0]".into()))?;
                let flagged = result
                    .get("flagged")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| GuardError("results[0].flagged is not a boolean".into()))?;
                let categories = result
                    .get("categories")
                    .and_then(Value::as_object)
                    .map(|c| c.iter().filter(|(_, v)| v.as_bool() == Some(true)).map(|(k, _)| k.clone()).collect())
                    .unwrap_or_default();
                let severity = if flagged { Severity::Unsafe } else { Severity::Safe };
                Ok(Judgement { severity, categories, refusal: None })
            }
        }
    }

    /// Reads the guard's HTTP answer: a status outside 2xx is an error, like an unreadable body.
    pub fn read_response(&self, status: u16, body: &[u8]) -> Result<Judgement, GuardError> {
        if !(200..300).contains(&status) {
            return Err(GuardError(format!("the guard answered status {status}")));
        }
        self.read(body)
    }

    /// The TC260 category of a guard category (`None`: uncategorized).
    pub fn category(&self, name: &str) -> Option<Category> {
        let target = self.categories.get(name).map(String::as_str).or_else(|| {
            DEFAULT_CATEGORIES.iter().find(|(guard, _)| guard.eq_ignore_ascii_case(name)).map(|(_, tc260)| *tc260)
        })?;
        target.parse().ok()
    }

    /// What the policy does about `judgement`: `None` below the acting severity; otherwise the
    /// policy's action for the mapped categories (the most severe), as for a keyword of them.
    pub fn decide(&self, judgement: &Judgement, policy: &Policy) -> Option<Decided> {
        if judgement.severity < self.severity || judgement.severity == Severity::Safe {
            return None;
        }
        let mut set = CategorySet::default();
        for name in &judgement.categories {
            if let Some(c) = self.category(name) {
                set.insert(c);
            }
        }
        let (action, category) = policy.actions.resolve(set, None);
        Some(Decided { category, action })
    }
}

/// `Safety: …` / `Categories: a, b` / `Refusal: …` lines, in any order, case-insensitive.
fn read_qwen3guard(content: &str) -> Result<Judgement, GuardError> {
    let mut judgement = Judgement::default();
    let mut safety = None;
    for line in content.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "safety" => {
                safety = Some(match value.to_ascii_lowercase().as_str() {
                    "safe" => Severity::Safe,
                    "controversial" => Severity::Controversial,
                    "unsafe" => Severity::Unsafe,
                    other => return Err(GuardError(format!("unknown Safety {other:?}"))),
                })
            }
            "categories" | "category" => {
                judgement.categories = value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("none"))
                    .map(str::to_string)
                    .collect();
            }
            "refusal" => judgement.refusal = Some(value.eq_ignore_ascii_case("yes")),
            _ => {}
        }
    }
    judgement.severity = safety.ok_or_else(|| GuardError("no `Safety:` line".into()))?;
    Ok(judgement)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen(content: &str) -> Vec<u8> {
        json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string().into_bytes()
    }

    #[test]
    fn answers_are_read_by_protocol() {
        let q = Guard::default();
        let m = Guard { protocol: Protocol::OpenaiModeration, ..Guard::default() };
        type Read<'a> = Result<(Severity, Vec<&'a str>, Option<bool>), &'a str>;
        #[rustfmt::skip]
        let cases: [(&Guard, Vec<u8>, Read); 9] = [
            (&q, qwen("Safety: Unsafe\nCategories: Violent"), Ok((Severity::Unsafe, vec!["Violent"], None))),
            (&q, qwen("Safety: Controversial\nCategories: Politically Sensitive Topics, PII"), Ok((Severity::Controversial, vec!["Politically Sensitive Topics", "PII"], None))),
            (&q, qwen("Safety: Safe\nCategories: None\nRefusal: Yes"), Ok((Severity::Safe, vec![], Some(true)))),
            (&q, qwen("categories: Jailbreak\nsafety: unsafe"), Ok((Severity::Unsafe, vec!["Jailbreak"], None))),
            (&q, qwen("I cannot help with that."), Err("no `Safety:` line")),
            (&q, qwen("Safety: Maybe"), Err("unknown Safety")),
            (&q, b"<html>".to_vec(), Err("not JSON")),
            (&m, json!({"results": [{"flagged": true, "categories": {"sexual": true, "hate": false}}]}).to_string().into_bytes(), Ok((Severity::Unsafe, vec!["sexual"], None))),
            (&m, json!({"results": [{"flagged": "yes"}]}).to_string().into_bytes(), Err("flagged is not a boolean")),
        ];
        for (guard, body, want) in cases {
            let got = guard.read(&body);
            match want {
                Ok((severity, categories, refusal)) => {
                    let j = got.unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(
                        (j.severity, j.categories.iter().map(String::as_str).collect::<Vec<_>>(), j.refusal),
                        (severity, categories, refusal)
                    );
                }
                Err(message) => assert!(got.is_err_and(|e| e.0.contains(message)), "{message}"),
            }
        }
    }

    #[test]
    fn verdicts_act_through_the_policy() {
        let policy = Policy::from_json(
            r#"{"actions": {"default": "block", "uncategorized": "flag", "categories": {"A.4c": "mask"}}}"#,
        )
        .unwrap();
        let strict = Guard { severity: Severity::Controversial, ..Guard::default() };
        let mapped =
            Guard::from_json(r#"{"categories": {"Jailbreak": "A.1a", "Unethical Acts": "uncategorized"}}"#).unwrap();
        let j = |severity, categories: &[&str]| Judgement {
            severity,
            categories: categories.iter().map(|c| c.to_string()).collect(),
            refusal: None,
        };
        #[rustfmt::skip]
        let cases = [
            (&Guard::default(), j(Severity::Unsafe, &["Violent"]), Some((Some("A.1f"), Action::Block))),
            (&Guard::default(), j(Severity::Controversial, &["Violent"]), None),
            (&strict, j(Severity::Controversial, &["Violent"]), Some((Some("A.1f"), Action::Block))),
            (&strict, j(Severity::Safe, &[]), None),
            (&Guard::default(), j(Severity::Unsafe, &[]), Some((None, Action::Flag))),
            (&Guard::default(), j(Severity::Unsafe, &["harassment"]), Some((Some("A.4c"), Action::Mask))),
            (&Guard::default(), j(Severity::Unsafe, &["harassment", "Violent"]), Some((Some("A.1f"), Action::Block))),
            (&mapped, j(Severity::Unsafe, &["Jailbreak"]), Some((Some("A.1a"), Action::Block))),
            (&mapped, j(Severity::Unsafe, &["Unethical Acts"]), Some((None, Action::Flag))),
            (&Guard::default(), j(Severity::Unsafe, &["Something New"]), Some((None, Action::Flag))),
        ];
        for (guard, judgement, want) in cases {
            let got = guard.decide(&judgement, &policy).map(|d| (d.category.map(|c| c.to_string()), d.action));
            assert_eq!(got, want.map(|(c, a)| (c.map(str::to_string), a)), "{judgement:?}");
        }
    }

    #[test]
    fn requests_carry_the_text_and_context() {
        let q = Guard { model: "g".into(), ..Guard::default() };
        let body: Value = serde_json::from_slice(&q.request("答", Some("问"))).unwrap();
        assert_eq!(body["model"], "g");
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}])
        );
        let m = Guard { protocol: Protocol::OpenaiModeration, ..Guard::default() };
        assert_eq!(String::from_utf8(m.request("x", None)).unwrap(), r#"{"input":"x"}"#);
    }

    #[test]
    fn bad_configuration_names_the_field() {
        for (json, field) in [
            (r#"{"severity": "safe"}"#, "`severity`"),
            (r#"{"severity": "high"}"#, "`severity`"),
            (r#"{"protocol": "llamaguard"}"#, "`protocol`"),
            (r#"{"categories": {"Violent": "A.9z"}}"#, "`categories.Violent`"),
            (r#"{"modle": "x"}"#, "unknown field `modle`"),
        ] {
            let e = Guard::from_json(json).unwrap_err().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
    }
}
