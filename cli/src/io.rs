//! Inputs, outputs and the line commands (`check`, `mask`): FILE or `-`, a closed pipe that
//! ends quietly, and a progress bar on a terminal only.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use aigc_edge::policy::OnLimit;
use aigc_edge::{Action, Filter};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::guard::GuardClient;
use crate::Status;

/// Why a command stopped early.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The reader of standard output went away (`| head`): not an error, stop quietly.
    Closed,
    /// Anything else, with what was wrong and where.
    Error(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Error(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Failure::Error(message.to_string())
    }
}

/// An I/O error on `what` (a file name, `stdin`, `stdout`); a broken pipe is [`Failure::Closed`].
pub(crate) fn io_failure(what: impl fmt::Display, e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::Closed
    } else {
        Failure::Error(format!("{what}: {e}"))
    }
}

/// A file argument: a path, or `-` for standard input.
#[derive(Clone, Debug)]
pub(crate) enum Input {
    Stdin,
    Path(PathBuf),
}

impl std::str::FromStr for Input {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" { Input::Stdin } else { Input::Path(s.into()) })
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("stdin"),
            Input::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Input {
    /// The inputs a command reads: standard input when none were given.
    pub(crate) fn or_stdin(inputs: &[Input]) -> Vec<Input> {
        if inputs.is_empty() {
            vec![Input::Stdin]
        } else {
            inputs.to_vec()
        }
    }

    /// The size in bytes when it is known (a regular file).
    fn len(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::Path(p) => std::fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len()),
        }
    }

    /// Opens it for reading, counting bytes on `progress`.
    pub(crate) fn open(&self, progress: &Progress) -> Result<Box<dyn BufRead>, Failure> {
        let reader: Box<dyn Read> = match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::Path(p) => Box::new(File::open(p).map_err(|e| io_failure(p.display(), e))?),
        };
        Ok(Box::new(BufReader::with_capacity(1 << 16, progress.bar.wrap_read(reader))))
    }

    /// Reads it whole.
    pub(crate) fn read_all(&self) -> Result<Vec<u8>, Failure> {
        let mut bytes = Vec::new();
        self.open(&Progress::hidden())?.read_to_end(&mut bytes).map_err(|e| io_failure(self, e))?;
        Ok(bytes)
    }
}

/// An output argument: a path, or `-` for standard output.
#[derive(Clone, Debug)]
pub(crate) enum Output {
    Stdout,
    Path(PathBuf),
}

impl std::str::FromStr for Output {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" { Output::Stdout } else { Output::Path(s.into()) })
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Stdout => f.write_str("stdout"),
            Output::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Output {
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<(), Failure> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| io_failure(self, e))
            }
            Output::Path(p) => std::fs::write(p, bytes).map_err(|e| io_failure(p.display(), e)),
        }
    }
}

/// Reads a file named on the command line or in a policy.
pub(crate) fn read_path(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| io_failure(path.display(), e))
}

/// Writes `text` and a newline to standard output.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| io_failure("stdout", e))
}

/// A byte-count progress bar over the inputs: drawn on stderr, only when stderr is a terminal
/// (and, for commands that print their results, stdout is not), throttled by indicatif.
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(crate) fn hidden() -> Progress {
        Progress { bar: ProgressBar::hidden() }
    }

    /// A bar for reading `inputs`; `results_on_stdout` hides it when stdout is the same terminal.
    pub(crate) fn over(inputs: &[Input], results_on_stdout: bool) -> Progress {
        let shown = io::stderr().is_terminal() && !(results_on_stdout && io::stdout().is_terminal());
        if !shown {
            return Progress::hidden();
        }
        let total: Option<u64> = inputs.iter().map(Input::len).sum();
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{bar:30} {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
        } else {
            "{spinner} {bytes} {binary_bytes_per_sec} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    pub(crate) fn message(&self, text: String) {
        self.bar.set_message(text);
    }

    /// Fills the bar (a file that grew or shrank while read still ends at 100%).
    pub(crate) fn finish(&self) {
        if let Some(total) = self.bar.length() {
            self.bar.set_position(total.max(self.bar.position()));
        }
        self.bar.finish();
    }
}

/// One input line: its text (`Err` when not UTF-8) and its line ending (`\n`, `\r\n` or none).
struct Line<'a> {
    text: Result<&'a str, &'a [u8]>,
    ending: &'a [u8],
}

/// Runs `each` over the lines of every input in turn.
fn for_each_line(
    inputs: &[Input],
    mut each: impl FnMut(Line<'_>, &mut dyn Write) -> io::Result<()>,
) -> Result<(), Failure> {
    let inputs = Input::or_stdin(inputs);
    let progress = Progress::over(&inputs, true);
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    for input in &inputs {
        let mut reader = input.open(&progress)?;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(|e| io_failure(input, e))? == 0 {
                break;
            }
            let body_len = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(&line).len();
            let (body, ending) = line.split_at(body_len);
            let text = std::str::from_utf8(body).map_err(|_| body);
            each(Line { text, ending }, &mut out).map_err(|e| io_failure("stdout", e))?;
        }
    }
    progress.finish();
    out.flush().map_err(|e| io_failure("stdout", e))
}

/// The action for a line that cannot be read: refused under fail_closed, as the edge refuses it.
fn unreadable_action(filter: &Filter) -> Action {
    match filter.policy().on_limit {
        OnLimit::FailClosed => Action::Block,
        OnLimit::FailOpen => Action::Pass,
    }
}

/// The decision on one line as the report prints it, the guard's verdict added when asked
/// (the keywords stay first: a line they block is not sent), and the action that stands.
struct Decided {
    action: Action,
    report: String,
    /// The masked text, when the keywords changed anything.
    masked: Option<String>,
    /// The guard blocked it: there is no span to mask, the line is withheld.
    guard_blocked: bool,
}

fn decide(filter: &Filter, guard: Option<&GuardClient>, text: &str) -> Decided {
    let decision = filter.check(text);
    let Some(guard) = guard.filter(|_| decision.action < Action::Block) else {
        let report = decision.to_json();
        return Decided { action: decision.action, report, masked: decision.text, guard_blocked: false };
    };
    let verdict = guard.judge(text, filter.policy());
    let action = decision.action.max(verdict.action());
    let mut report: serde_json::Value = serde_json::from_str(&decision.to_json()).unwrap_or_default();
    report["flagged"] = json!(report["flagged"].as_bool().unwrap_or(false) || verdict.action() > Action::Pass);
    report["action"] = json!(action.as_str());
    report["guard"] = verdict.to_json();
    let guard_blocked = verdict.action() == Action::Block;
    Decided { action, report: report.to_string(), masked: decision.text, guard_blocked }
}

/// `check`: one JSON verdict per line; [`Status::Found`] when any line is blocked.
pub(crate) fn check(filter: &Filter, guard: Option<&GuardClient>, inputs: &[Input]) -> Result<Status, Failure> {
    let mut blocked = false;
    let unreadable = unreadable_action(filter);
    for_each_line(inputs, |line, out| {
        let verdict = match line.text {
            Ok(text) => {
                let decided = decide(filter, guard, text);
                blocked |= decided.action == Action::Block;
                decided.report
            }
            Err(_) => {
                blocked |= unreadable == Action::Block;
                json!({"flagged": false, "action": unreadable.as_str(), "hits": [], "error": "input line is not valid UTF-8"})
                    .to_string()
            }
        };
        writeln!(out, "{verdict}")
    })?;
    Ok(Status::found_if(blocked))
}

/// `mask`: each line masked, with its own line ending (a last line without one stays without);
/// [`Status::Found`] when any line is blocked. A line that is not UTF-8 is withheld (an empty
/// line) under fail_closed and passed as it is under fail_open; a line the guard blocks is
/// withheld too (a verdict has no span to mask).
pub(crate) fn mask(filter: &Filter, guard: Option<&GuardClient>, inputs: &[Input]) -> Result<Status, Failure> {
    let mut blocked = false;
    let unreadable = unreadable_action(filter);
    for_each_line(inputs, |line, out| {
        match line.text {
            Ok(text) => {
                let decided = decide(filter, guard, text);
                blocked |= decided.action == Action::Block;
                if !decided.guard_blocked {
                    out.write_all(decided.masked.as_deref().unwrap_or(text).as_bytes())?;
                }
            }
            Err(raw) if unreadable == Action::Pass => out.write_all(raw)?,
            Err(_) => blocked = true,
        }
        out.write_all(line.ending)
    })?;
    Ok(Status::found_if(blocked))
}
