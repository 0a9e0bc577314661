//! Training-data assessment (TC260-003 §5.1): per source, the share of harmful documents and
//! whether the source may be collected (not above 5%), plus a seeded spot check.
//!
//! One [`Assessment`] takes documents in any order, from any number of workers: each worker
//! fills its own, [`Assessment::merge`] adds them up, and the report is the same as one pass
//! over everything — the CLI's `scan`, the Python package and Ray all produce it here. A
//! document's spot-check draw depends only on the seed, its file name and its line, so the
//! sample does not depend on read order or partitioning either.
//!
//! ```
//! use aigc_edge::corpus::{Assessment, Options};
//! use aigc_edge::{Filter, Policy};
//! let policy = Policy::from_json(r#"{"dictionaries": [{"text": "赌博\tA.1h"}]}"#)?;
//! let filter = Filter::from_policy(&policy, |_| Err("no files"))?;
//! let options = Options { sample: 2, ..Options::default() };
//! let files = vec!["a.jsonl".to_string()];
//! let (mut first, mut second) = (Assessment::new(options.clone(), files.clone()), Assessment::new(options, files));
//! first.line(&filter, "a.jsonl", 1, r#"{"text": "网上赌博", "source": "web"}"#.as_bytes());
//! second.line(&filter, "a.jsonl", 2, r#"{"text": "今天很好", "source": "web"}"#.as_bytes());
//! second.line(&filter, "a.jsonl", 3, b"not json");
//! first.merge(second);
//! let report = first.report();
//! assert_eq!(report["sources"]["web"]["harmful_ratio"], 0.5);
//! assert_eq!(report["rejected_sources"][0], "web");
//! assert_eq!(report["bad_lines"][0]["line"], 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::Filter;

/// What to read and how to judge a corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The JSON field holding a document's text.
    pub text_field: String,
    /// The JSON field naming its source (documents without one count under `(none)`).
    pub source_field: String,
    /// Documents in the spot check (the rules ask for at least 4,000).
    pub sample: usize,
    /// Seed of the spot check.
    pub seed: u64,
    /// A source with a larger share of harmful documents is rejected (TC260-003: 0.05).
    pub threshold: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { text_field: "text".into(), source_field: "source".into(), sample: 4000, seed: 0, threshold: 0.05 }
    }
}

impl Options {
    /// Refuses a threshold outside 0..=1, naming it.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if !(0.0..=1.0).contains(&self.threshold) {
            let message = format!("threshold {} is not a share between 0 and 1", self.threshold);
            return Err(crate::Error::new(crate::ErrorKind::Assessment { message }));
        }
        Ok(())
    }
}

/// Counts for one source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SourceStats {
    documents: u64,
    flagged: u64,
    categories: BTreeMap<String, u64>,
    /// Documents the guard model found harmful (with a guard).
    #[serde(default)]
    guard_flagged: u64,
    /// Documents harmful by keywords or by the guard (with a guard).
    #[serde(default)]
    combined_flagged: u64,
}

/// A classification model's verdict on one document: `true` when harmful.
pub type Judge<'a> = &'a mut dyn FnMut(&str) -> bool;

/// A document in the spot check.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Drawn {
    draw: u64,
    file: String,
    line: u64,
    flagged: bool,
}

/// A line that is not a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct BadLine {
    file: String,
    line: u64,
    error: String,
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash of a 64-bit value (also the draw of
/// [`crate::assess::sample`]).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a name (a file, a question id).
pub(crate) fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The running assessment of a corpus (or of one worker's share of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    options: Options,
    files: Vec<String>,
    documents: u64,
    sources: BTreeMap<String, SourceStats>,
    /// The `options.sample` smallest draws so far, unordered.
    sample: Vec<Drawn>,
    bad_lines: Vec<BadLine>,
    /// A guard model judged the documents too.
    #[serde(default)]
    guarded: bool,
}

impl Assessment {
    /// An empty assessment of `files` (their names as the report lists them). Options are
    /// taken as given; [`Options::validate`] says what is wrong with them.
    pub fn new(options: Options, files: Vec<String>) -> Assessment {
        Assessment {
            options,
            files,
            documents: 0,
            sources: BTreeMap::new(),
            sample: Vec::new(),
            bad_lines: Vec::new(),
            guarded: false,
        }
    }

    /// The options it judges by.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// One JSONL line of `file` (1-based `line`): a document when it parses as a JSON object
    /// with a string text field, else a bad line with the parser's message. Blank lines are
    /// skipped.
    pub fn line(&mut self, filter: &Filter, file: &str, line: u64, bytes: &[u8]) {
        self.line_judged(filter, file, line, bytes, None);
    }

    /// [`Assessment::line`], with a guard model's verdict on each document too: the report
    /// then gives per source the share harmful by keywords, by the guard and combined, and the
    /// 5% rule applies to the combined share.
    pub fn line_judged(&mut self, filter: &Filter, file: &str, line: u64, bytes: &[u8], judge: Option<Judge<'_>>) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let record: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return self.bad(file, line, e.to_string()),
        };
        let Some(text) = record.get(&self.options.text_field).and_then(Value::as_str) else {
            let error = format!("no string field `{}`", self.options.text_field);
            return self.bad(file, line, error);
        };
        let source = record.get(&self.options.source_field).and_then(Value::as_str).unwrap_or("(none)");
        self.document_judged(filter, file, line, text, source, judge);
    }

    /// One document already read (from Parquet, a data frame): its text and source.
    pub fn document(&mut self, filter: &Filter, file: &str, line: u64, text: &str, source: &str) {
        self.document_judged(filter, file, line, text, source, None);
    }

    /// [`Assessment::document`] with a guard model's verdict too.
    pub fn document_judged(
        &mut self,
        filter: &Filter,
        file: &str,
        line: u64,
        text: &str,
        source: &str,
        judge: Option<Judge<'_>>,
    ) {
        let decision = filter.check(text);
        let keyword_flagged = !decision.hits.is_empty();
        let guard_flagged = judge.map(|j| j(text));
        self.guarded |= guard_flagged.is_some();
        let flagged = keyword_flagged || guard_flagged == Some(true);
        let stats = self.sources.entry(source.to_string()).or_default();
        stats.documents += 1;
        if guard_flagged == Some(true) {
            stats.guard_flagged += 1;
        }
        if flagged {
            stats.combined_flagged += 1;
        }
        if keyword_flagged {
            stats.flagged += 1;
            for h in &decision.hits {
                let c = h.category.map_or("uncategorized".to_string(), |c| c.to_string());
                *stats.categories.entry(c).or_default() += 1;
            }
        }
        self.documents += 1;
        let draw = mix(self.options.seed ^ mix(name_hash(file) ^ mix(line)));
        self.offer(Drawn { draw, file: file.to_string(), line, flagged });
    }

    fn bad(&mut self, file: &str, line: u64, error: String) {
        self.bad_lines.push(BadLine { file: file.to_string(), line, error });
    }

    fn offer(&mut self, drawn: Drawn) {
        self.sample.push(drawn);
        // Trimmed in batches: amortized O(1) per document, at most twice the sample held.
        if self.sample.len() >= 2 * self.options.sample.max(1) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let keep = self.options.sample;
        if self.sample.len() > keep {
            self.sample.select_nth_unstable(keep);
            self.sample.truncate(keep);
        }
    }

    /// Documents counted so far.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Adds another worker's assessment of the same corpus (same options and files).
    pub fn merge(&mut self, other: Assessment) {
        self.documents += other.documents;
        self.guarded |= other.guarded;
        for (name, s) in other.sources {
            let mine = self.sources.entry(name).or_default();
            mine.documents += s.documents;
            mine.flagged += s.flagged;
            mine.guard_flagged += s.guard_flagged;
            mine.combined_flagged += s.combined_flagged;
            for (c, n) in s.categories {
                *mine.categories.entry(c).or_default() += n;
            }
        }
        self.bad_lines.extend(other.bad_lines);
        for drawn in other.sample {
            self.offer(drawn);
        }
    }

    fn ratio(n: u64, of: u64) -> f64 {
        if of > 0 {
            n as f64 / of as f64
        } else {
            0.0
        }
    }

    /// The share the 5% rule judges: by keywords, or combined when a guard judged too.
    fn share(&self, s: &SourceStats) -> f64 {
        Self::ratio(if self.guarded { s.combined_flagged } else { s.flagged }, s.documents)
    }

    /// The sources over the threshold, by name.
    pub fn rejected_sources(&self) -> Vec<&str> {
        let threshold = self.options.threshold;
        self.sources.iter().filter(|(_, s)| self.share(s) > threshold).map(|(n, _)| n.as_str()).collect()
    }

    /// The report `aigc-edge scan` prints: files, documents, per source (documents, flagged,
    /// harmful_ratio, collect, categories), rejected sources, the spot check (size, seed,
    /// flagged, harmful_ratio, items by file and line) and the bad lines (by file and line).
    pub fn report(&self) -> Value {
        let threshold = self.options.threshold;
        let per_source: BTreeMap<&String, Value> = self
            .sources
            .iter()
            .map(|(name, s)| {
                let share = self.share(s);
                let mut report = json!({
                    "documents": s.documents,
                    "flagged": s.flagged,
                    "harmful_ratio": Self::ratio(s.flagged, s.documents),
                    "collect": share <= threshold,
                    "categories": s.categories,
                });
                if self.guarded {
                    report["guard_flagged"] = json!(s.guard_flagged);
                    report["guard_harmful_ratio"] = json!(Self::ratio(s.guard_flagged, s.documents));
                    report["combined_flagged"] = json!(s.combined_flagged);
                    report["combined_harmful_ratio"] = json!(share);
                }
                (name, report)
            })
            .collect();
        let mut picked = self.sample.clone();
        picked.sort();
        picked.truncate(self.options.sample);
        let order: std::collections::HashMap<&str, usize> =
            self.files.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
        let position = |file: &str| order.get(file).copied().unwrap_or(usize::MAX);
        picked.sort_by_key(|d| (position(&d.file), d.line));
        let flagged = picked.iter().filter(|d| d.flagged).count();
        let mut bad_lines = self.bad_lines.clone();
        bad_lines.sort_by_key(|b| (position(&b.file), b.line));
        json!({
            "files": self.files,
            "documents": self.documents,
            "threshold": threshold,
            "sources": per_source,
            "rejected_sources": self.rejected_sources(),
            "sample": {
                "size": picked.len(),
                "seed": self.options.seed,
                "flagged": flagged,
                "harmful_ratio": if picked.is_empty() { 0.0 } else { flagged as f64 / picked.len() as f64 },
                "items": picked.iter().map(|d| json!({"file": d.file, "line": d.line})).collect::<Vec<_>>(),
            },
            "bad_lines": bad_lines.iter().map(|b| json!({"file": b.file, "line": b.line, "error": b.error})).collect::<Vec<_>>(),
        })
    }

    /// The state as bytes, to ship a worker's assessment to whoever merges.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut state = self.clone();
        state.trim();
        serde_json::to_vec(&state).unwrap_or_default()
    }

    /// A state from [`Assessment::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Assessment, crate::Error> {
        serde_json::from_slice(bytes)
            .map_err(|e| crate::Error::new(crate::ErrorKind::Assessment { message: format!("bad state: {e}") }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn filter() -> Filter {
        let policy = Policy::from_json(r#"{"dictionaries": [{"text": "赌博\tA.1h\n色情\tA.1f"}]}"#).unwrap();
        Filter::from_policy(&policy, |_| Err("no files")).unwrap()
    }

    fn lines() -> Vec<(String, u64, Vec<u8>)> {
        (0..300u64)
            .map(|i| {
                let file = format!("part-{}.jsonl", i % 3);
                let text = if i % 7 == 0 {
                    "网上赌博"
                } else if i % 50 == 1 {
                    "not json"
                } else {
                    "今天很好"
                };
                let body = if text == "not json" {
                    text.to_string()
                } else {
                    format!(r#"{{"text": "{text}", "source": "s{}"}}"#, i % 4)
                };
                (file, i / 3 + 1, body.into_bytes())
            })
            .collect()
    }

    #[test]
    fn any_split_and_order_gives_the_same_report() {
        let f = filter();
        let options = Options { sample: 17, seed: 9, ..Options::default() };
        let files: Vec<String> = (0..3).map(|i| format!("part-{i}.jsonl")).collect();
        let mut whole = Assessment::new(options.clone(), files.clone());
        for (file, line, bytes) in lines() {
            whole.line(&f, &file, line, &bytes);
        }
        let expected = whole.report();
        assert_eq!(expected["sample"]["size"], 17);
        for workers in [2, 3, 7] {
            let mut parts: Vec<Assessment> =
                (0..workers).map(|_| Assessment::new(options.clone(), files.clone())).collect();
            for (i, (file, line, bytes)) in lines().into_iter().rev().enumerate() {
                parts[i % workers].line(&f, &file, line, &bytes);
            }
            let mut merged = Assessment::new(options.clone(), files.clone());
            for part in parts {
                merged.merge(Assessment::from_bytes(&part.to_bytes()).unwrap());
            }
            assert_eq!(merged.report(), expected, "{workers} workers");
        }
    }

    #[test]
    fn bad_state_is_an_error() {
        assert!(Assessment::from_bytes(b"{}").is_err());
    }
}
