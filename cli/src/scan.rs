//! `scan`: a training corpus assessed per source (TC260-003 §5.1) with a seeded spot check;
//! the assessment itself is the core's ([`aigc_edge::corpus`]), shared with the Python package.

use std::io::BufRead;

use aigc_edge::corpus::{Assessment, Options};
use clap::Args;

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
    #[command(flatten)]
    guard: crate::guard::GuardArgs,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

pub(crate) fn scan(args: &ScanArgs) -> Result<Status, Failure> {
    let options = Options {
        text_field: args.text_field.clone(),
        source_field: args.source_field.clone(),
        sample: args.sample,
        seed: args.seed,
        threshold: args.threshold,
    };
    let filter = crate::load::filter(&args.dictionary)?;
    let guard = args.guard.client()?;
    let mut guard_errors = 0u64;
    let inputs = Input::or_stdin(&args.files);
    let names: Vec<String> = inputs.iter().map(ToString::to_string).collect();
    let progress = Progress::over(&inputs, false);
    let mut assessment = Assessment::new(options, names.clone());
    for (input, name) in inputs.iter().zip(&names) {
        for (i, line) in input.open(&progress)?.split(b'\n').enumerate() {
            let line = line.map_err(|e| io_failure(input, e))?;
            match &guard {
                None => assessment.line(&filter, name, i as u64 + 1, &line),
                Some(g) => {
                    let mut judge = |text: &str| {
                        let verdict = g.judge(text, filter.policy());
                        guard_errors += u64::from(matches!(verdict, crate::guard::Verdict::Failed(..)));
                        verdict.harmful()
                    };
                    assessment.line_judged(&filter, name, i as u64 + 1, &line, Some(&mut judge));
                }
            }
            if i % 4096 == 0 {
                progress.message(format!("{} documents", assessment.documents()));
            }
        }
    }
    progress.message(format!("{} documents", assessment.documents()));
    progress.finish();
    let mut report = assessment.report();
    if guard.is_some() {
        // Documents the guard could not judge count as harmful under fail_closed.
        report["guard_errors"] = serde_json::json!(guard_errors);
    }
    print(&serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)?;
    Ok(Status::found_if(!assessment.rejected_sources().is_empty()))
}
