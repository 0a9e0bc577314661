//! `aigc-edge`: the command-line tool over the aigc-edge core.
//!
//! Every command reads FILE arguments or, with none or `-`, standard input; `-o -` writes
//! standard output. Exit codes are part of the contract (see [`EXIT_CODES`]).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod assess;
mod files;
mod guard;
mod io;
mod load;
mod scan;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::io::{Failure, Input, Output};

const EXIT_CODES: &str = "\
Exit codes:
  0  done, and nothing was blocked (check, mask), rejected (scan) or not compliant (verify)
  1  check/mask: some line was blocked; scan: some source was rejected by the 5% rule;
     verify: some file is not compliant
  2  an error: a bad option, an unreadable file or policy, a refused dictionary";

/// Keeps generated content within China's rules: keyword and personal-information filtering,
/// training-data assessment, and GB 45438 labels.
#[derive(Parser)]
#[command(name = "aigc-edge", version, after_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print one JSON verdict per input line.
    #[command(after_help = EXIT_CODES)]
    Check(LineArgs),
    /// Print the text with hits and personal information masked, line by line.
    #[command(after_help = EXIT_CODES)]
    Mask(LineArgs),
    /// Write a compiled dictionary artifact (for `--dictionary`, the Envoy filter and the browser).
    Compile(CompileArgs),
    /// Assess a training corpus (JSONL) per source against the 5% rule, with a seeded spot check.
    #[command(after_help = EXIT_CODES)]
    Scan(scan::ScanArgs),
    /// Write the GB 45438 implicit label into a file (one label per file), or the platform's
    /// propagation label (article 6) with `--propagate`.
    Label(files::LabelArgs),
    /// Report the labels found in each file, the verdict and any text watermark, as JSON.
    #[command(after_help = EXIT_CODES)]
    Verify(files::VerifyArgs),
    /// Make an SM2 key pair for signing labels: NAME.key (PKCS#8 PEM, private) and NAME.pub
    /// (SubjectPublicKeyInfo PEM, to hand to platforms and regulators).
    Keygen(files::KeygenArgs),
    /// Test a service before filing (TC260-003): should-refuse questions refused >= 95%,
    /// should-answer refused <= 5%, generated outputs passing >= 90%, with 95% intervals.
    #[command(after_help = ASSESS_EXIT_CODES)]
    Assess(Box<assess::AssessArgs>),
}

const ASSESS_EXIT_CODES: &str = "\
Exit codes:
  0  every rule passes
  1  some rule fails (a rate, a sample too small, a bank short of the rules' minimums)
  2  an error: a bad option, an unreadable or malformed bank";

/// Where the keywords come from. Without any, the policy's own `dictionaries` and `allow`.
#[derive(Args)]
#[command(next_help_heading = "Dictionary")]
pub(crate) struct DictionaryArgs {
    /// Deny words: `word TAB category TAB action` or `word tag,tag` lines (repeatable).
    #[arg(short = 'k', long = "keywords", value_name = "FILE")]
    pub(crate) keywords: Vec<PathBuf>,
    /// Allow words, one a line (repeatable).
    #[arg(long = "allow", value_name = "FILE")]
    allow: Vec<PathBuf>,
    /// A compiled artifact from `aigc-edge compile` (instead of keyword files).
    #[arg(short = 'd', long = "dictionary", value_name = "FILE", conflicts_with_all = ["keywords", "allow", "lexicon"])]
    pub(crate) dictionary: Option<PathBuf>,
    /// A word-frequency lexicon (jieba's `dict.txt` layout; `make lexicon`): CJK hits stand
    /// only where a segmentation keeps the keyword whole. Overrides the policy's `segmentation`.
    #[arg(long = "lexicon", value_name = "FILE")]
    lexicon: Option<PathBuf>,
    /// The policy (JSON): categories, actions, normalization, personal information, limits.
    #[arg(short = 'p', long = "policy", value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
}

#[derive(Args)]
struct LineArgs {
    /// Text files to read, one item a line; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    files: Vec<Input>,
    #[command(flatten)]
    dictionary: DictionaryArgs,
    #[command(flatten)]
    guard: guard::GuardArgs,
}

#[derive(Args)]
struct CompileArgs {
    #[command(flatten)]
    dictionary: DictionaryArgs,
    /// Where to write the artifact; `-` writes standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Output,
}

/// What a command tells `main` to exit with when it did its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit 0.
    Clean,
    /// Exit 1: something was blocked, rejected or not compliant.
    Found,
}

impl Status {
    pub(crate) fn found_if(found: bool) -> Status {
        if found {
            Status::Found
        } else {
            Status::Clean
        }
    }
}

fn run(command: Command) -> Result<Status, Failure> {
    match command {
        Command::Check(args) => io::check(&load::filter(&args.dictionary)?, args.guard.client()?.as_ref(), &args.files),
        Command::Mask(args) => io::mask(&load::filter(&args.dictionary)?, args.guard.client()?.as_ref(), &args.files),
        Command::Compile(args) => load::compile(&args.dictionary, &args.output),
        Command::Scan(args) => scan::scan(&args),
        Command::Label(args) => files::label(&args),
        Command::Verify(args) => files::verify(&args),
        Command::Keygen(args) => files::keygen(&args),
        Command::Assess(args) => assess::assess(&args),
    }
}

fn main() -> ExitCode {
    // clap prints help and --version to stdout with exit 0, usage errors to stderr with exit 2.
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(Status::Clean) | Err(Failure::Closed) => ExitCode::SUCCESS,
        Ok(Status::Found) => ExitCode::from(1),
        Err(Failure::Error(message)) => {
            let _ = writeln!(std::io::stderr(), "aigc-edge: {message}");
            ExitCode::from(2)
        }
    }
}
