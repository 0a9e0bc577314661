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
