//! Errors. Each says what was wrong and where; none comes from the text being checked.

use core::fmt;

/// A dictionary, artifact or policy could not be built or loaded.
///
/// The message names the offending field, file, line or byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong; see [`Error::kind`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // fields are named for what they hold
pub enum ErrorKind {
    /// The policy JSON is malformed or a field has a bad value. `field` is the dotted path.
    Policy { field: String, message: String },
    /// More keywords than the policy's `limits.max_keywords`.
    TooManyKeywords { count: usize, limit: usize },
    /// The dictionary holds no keyword after cleaning.
    EmptyDictionary,
    /// A compiled dictionary artifact is corrupt, truncated or of another version.
    Artifact { message: String },
    /// The dictionary was compiled under a different normalization than the policy asks for.
    NormalizationMismatch { field: &'static str },
    /// The automaton outgrew its 32-bit state space.
    DictionaryTooLarge,
    /// A corpus assessment's options or shipped state are not usable ([`crate::corpus`]).
    Assessment { message: String },
    /// A segmentation lexicon's line is malformed ([`crate::segment::Lexicon::from_text`]);
    /// `line` is 1-based, 0 for the lexicon as a whole.
    Lexicon { source: String, line: usize, message: String },
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error { kind }
    }

    pub(crate) fn policy(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Policy { field: field.into(), message: message.into() })
    }

    pub(crate) fn artifact(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Artifact { message: message.into() })
    }

    /// The same error for a policy nested at `prefix` in a host's own configuration:
    /// `dictionaries[0].path` becomes `profiles.minor.dictionaries[0].path`. Other errors are
    /// returned as they are.
    pub fn within(self, prefix: &str) -> Error {
        match self.kind {
            ErrorKind::Policy { field, message } => {
                let field = if field.is_empty() { prefix.to_string() } else { format!("{prefix}.{field}") };
                Error::new(ErrorKind::Policy { field, message })
            }
            kind => Error::new(kind),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Policy { field, message } if field.is_empty() => {
                write!(f, "invalid policy: {message}")
            }
            ErrorKind::Policy { field, message } => {
                write!(f, "invalid policy field `{field}`: {message}")
            }
            ErrorKind::TooManyKeywords { count, limit } => {
                write!(f, "dictionary has {count} keywords, over the limit of {limit} (limits.max_keywords)")
            }
            ErrorKind::EmptyDictionary => f.write_str("dictionary has no usable keyword"),
            ErrorKind::Artifact { message } => write!(f, "bad dictionary artifact: {message}"),
            ErrorKind::NormalizationMismatch { field } => write!(
                f,
                "policy field `normalize.{field}` differs from the normalization the dictionary \
                 was compiled with; compile the dictionary with this policy"
            ),
            ErrorKind::DictionaryTooLarge => f.write_str("dictionary too large: automaton exceeds 2^31 states"),
            ErrorKind::Assessment { message } => write!(f, "corpus assessment: {message}"),
            ErrorKind::Lexicon { source, line: 0, message } => write!(f, "lexicon {source}: {message}"),
            ErrorKind::Lexicon { source, line, message } => write!(f, "lexicon {source} line {line}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Deserializes a configuration `T` from JSON; a failure is an [`ErrorKind::Policy`] error
    /// whose `field` is the dotted path of the value it happened in (`limits.max_carry_bytes`,
    /// `dictionaries[0].path`; a missing field by its own name). Shared with the host shells,
    /// which parse their own configuration the same way.
    ///
    /// The path is found from where serde_json stopped, by walking the text up to there:
    /// tracking it during deserialization (`serde_path_to_error`) instantiated every
    /// configuration type's visitor a second time, ~100 KB of the Envoy filter's code, which V8
    /// compiles before the first request in every worker.
    #[doc(hidden)]
    pub fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Error> {
        serde_json::from_str(json).map_err(|e| {
            let message = e.to_string();
            let mut field = path_before(json, offset_of(json, e.line(), e.column()));
            // serde_json reports a missing field at the end of its object, which the walk has
            // closed by then: name the field itself.
            if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(missing);
            }
            Error::policy(field, message)
        })
    }
}

/// The byte offset of serde_json's (1-based line, byte column) in `json`.
fn offset_of(json: &str, line: usize, column: usize) -> usize {
    let line_start = match line {
        0 | 1 => 0,
        n => json.match_indices('\n').nth(n - 2).map_or(json.len(), |(at, _)| at + 1),
    };
    (line_start + column).min(json.len())
}

/// The path of the innermost value open at byte `end` of `json`: object keys joined by `.`,
/// array indices as `[i]`. Malformed text gives the path as far as it could be followed.
fn path_before(json: &str, end: usize) -> String {
    enum Open {
        Object { key: Option<String>, expect_key: bool },
        Array { index: usize },
    }
    let bytes = &json.as_bytes()[..end];
    let mut open: Vec<Open> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'{' => open.push(Open::Object { key: None, expect_key: true }),
            b'[' => open.push(Open::Array { index: 0 }),
            b'}' | b']' => {
                open.pop();
            }
            b',' => match open.last_mut() {
                Some(Open::Array { index }) => *index += 1,
                Some(Open::Object { expect_key, .. }) => *expect_key = true,
                None => {}
            },
            b'"' => {
                let start = at;
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                if let (Some(Open::Object { key, expect_key: expect @ true }), Some(raw)) =
                    (open.last_mut(), json.get(start..(at + 1).min(end)))
                {
                    *key = Some(serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.trim_matches('"').into()));
                    *expect = false;
                }
            }
            _ => {}
        }
        at += 1;
    }
    let mut path = String::new();
    for segment in &open {
        match segment {
            Open::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Open::Object { key: None, .. } => {}
            Open::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only by serde
    struct Config {
        name: String,
        #[serde(default)]
        lists: Vec<List>,
        #[serde(default)]
        inner: Option<Box<Config>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct List {
        size: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        let cases = [
            (r#"{"name": 1}"#, "name"),
            (r#"{"name": "a", "bogus": 1}"#, "bogus"),
            (r#"{"lists": []}"#, "name"),
            (r#"{"name": "a", "lists": [{"size": 1}, {"size": "x"}]}"#, "lists[1].size"),
            (r#"{"name": "a", "lists": [{"size": 1}, {}]}"#, "lists[1].size"),
            (r#"{"name": "a", "inner": {"name": "b", "lists": [{"size": -1}]}}"#, "inner.lists[0].size"),
            (r#"{"name": "a", "inner": {"name": "b", "x\"y": 2}}"#, "inner.x\"y"),
            (r#"{"name": "a,{[", "inner": {"name": {}}}"#, "inner.name"),
            ("{\n  \"name\": \"a\",\n  \"lists\": [\n    {\"size\": true}\n  ]\n}", "lists[0].size"),
            ("{\n  \"name\": \"a\",\n  \"inner\": {\n  }\n}", "inner.name"),
            (r#"{"name": "a""#, "name"),
            ("", ""),
        ];
        for (json, field) in cases {
            let e = Error::from_json::<Config>(json).unwrap_err();
            match e.kind() {
                ErrorKind::Policy { field: got, .. } => assert_eq!(got, field, "{json}: {e}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
