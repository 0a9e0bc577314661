//! `scan`: a training corpus assessed per source (TC260-003 §5.1) with a seeded spot check.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::BufRead;

use clap::Args;
use serde_json::{json, Value};

use crate::io::{io_failure, print, Failure, Input, Progress};
use crate::{DictionaryArgs, Status};

#[derive(Args)]
pub(crate) struct ScanArgs {
    /// JSONL files, one document a line; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    files: Vec<Input>,
    /// The field that holds a document's text.
    #[arg(long, value_name = "NAME", default_value = "text")]
    text_field: String,
    /// The field that names a document's source.
    #[arg(long, value_name = "NAME", default_value = "source")]
    source_field: String,
    /// Documents in the spot check (the rules ask for at least 4,000).
    #[arg(long, value_name = "N", default_value_t = 4000)]
    sample: usize,
    /// Seed of the spot check: the same seed picks the same documents.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// A source with a larger share of harmful documents is rejected (TC260-003: 5%).
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, value_parser = share)]
    threshold: f64,
    #[command(flatten)]
    dictionary: DictionaryArgs,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a file name, so a document's draw depends on where it is, not on read order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The spot check: the `size` documents with the smallest seeded draw. Each draw depends only
/// on the seed, the file name and the line, so the sample is the same whatever order (or how
/// many workers) the documents are read in.
struct Sample {
    size: usize,
    seed: u64,
    /// Max-heap of (draw, file index, line, flagged): the largest draw leaves first.
    kept: BinaryHeap<(u64, usize, u64, bool)>,
}

impl Sample {
    fn offer(&mut self, file: usize, file_hash: u64, line: u64, flagged: bool) {
        let draw = mix(self.seed ^ mix(file_hash ^ mix(line)));
        if self.kept.len() < self.size {
            self.kept.push((draw, file, line, flagged));
        } else if self.kept.peek().is_some_and(|top| draw < top.0) {
            self.kept.pop();
            self.kept.push((draw, file, line, flagged));
        }
    }
}

#[derive(Default)]
struct SourceStats {
    documents: u64,
    flagged: u64,
    categories: BTreeMap<String, u64>,
}

pub(crate) fn scan(args: &ScanArgs) -> Result<Status, Failure> {
    let filter = crate::load::filter(&args.dictionary)?;
    let inputs = Input::or_stdin(&args.files);
    let names: Vec<String> = inputs.iter().map(ToString::to_string).collect();
    let progress = Progress::over(&inputs, false);
    let mut sources: BTreeMap<String, SourceStats> = BTreeMap::new();
    let mut sample = Sample { size: args.sample, seed: args.seed, kept: BinaryHeap::new() };
    let mut bad_lines = Vec::new();
    let mut documents = 0u64;
    for (file, input) in inputs.iter().enumerate() {
        let file_hash = name_hash(&names[file]);
        let reader = input.open(&progress)?;
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(|e| io_failure(input, e))?;
            let number = i as u64 + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut bad = |error: String| bad_lines.push(json!({"file": names[file], "line": number, "error": error}));
            let record: Value = match serde_json::from_slice(&line) {
                Ok(v) => v,
                Err(e) => {
                    bad(e.to_string());
                    continue;
                }
            };
            let Some(text) = record.get(&args.text_field).and_then(Value::as_str) else {
                bad(format!("no string field `{}`", args.text_field));
                continue;
            };
            let source = record.get(&args.source_field).and_then(Value::as_str).unwrap_or("(none)");
            let decision = filter.check(text);
            let flagged = !decision.hits.is_empty();
            let stats = sources.entry(source.to_string()).or_default();
            stats.documents += 1;
            if flagged {
                stats.flagged += 1;
                for h in &decision.hits {
                    let c = h.category.map_or("uncategorized".to_string(), |c| c.to_string());
                    *stats.categories.entry(c).or_default() += 1;
                }
            }
            documents += 1;
            sample.offer(file, file_hash, number, flagged);
            if documents % 4096 == 0 {
                progress.message(format!("{documents} documents"));
            }
        }
    }
    progress.message(format!("{documents} documents"));
    progress.finish();

    let ratio = |s: &SourceStats| if s.documents > 0 { s.flagged as f64 / s.documents as f64 } else { 0.0 };
    let rejected: Vec<&String> = sources.iter().filter(|(_, s)| ratio(s) > args.threshold).map(|(n, _)| n).collect();
    let per_source: BTreeMap<&String, Value> = sources
        .iter()
        .map(|(name, s)| {
            let share = ratio(s);
            let report = json!({
                "documents": s.documents,
                "flagged": s.flagged,
                "harmful_ratio": share,
                "collect": share <= args.threshold,
                "categories": s.categories,
            });
            (name, report)
        })
        .collect();
    let mut picked = sample.kept.into_vec();
    picked.sort_by_key(|&(_, file, line, _)| (file, line));
    let sample_flagged = picked.iter().filter(|p| p.3).count();
    let report = json!({
        "files": names,
        "documents": documents,
        "threshold": args.threshold,
        "sources": per_source,
        "rejected_sources": rejected,
        "sample": {
            "size": picked.len(),
            "seed": args.seed,
            "flagged": sample_flagged,
            "harmful_ratio": if picked.is_empty() { 0.0 } else { sample_flagged as f64 / picked.len() as f64 },
            "items": picked.iter().map(|&(_, file, line, _)| json!({"file": names[file], "line": line})).collect::<Vec<_>>(),
        },
        "bad_lines": bad_lines,
    });
    print(&serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)?;
    Ok(Status::found_if(!rejected.is_empty()))
}
