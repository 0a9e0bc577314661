//! The policy and dictionary a command works with, and `compile`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use aigc_edge::policy::{DictionarySource, Segmentation};
use aigc_edge::{Dictionary, ErrorKind, Filter, KeywordFormat, KeywordKind, Policy};

use crate::io::{read_path, Failure, Output};
use crate::{DictionaryArgs, Status};

/// Loads the policy and dictionary; reports dirty keyword lines on stderr.
pub(crate) fn filter(args: &DictionaryArgs) -> Result<Filter, Failure> {
    let (mut policy, policy_dir) = match &args.policy {
        Some(p) => {
            let text = String::from_utf8(read_path(p)?).map_err(|_| format!("{}: not UTF-8", p.display()))?;
            let policy = Policy::from_json(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            (policy, p.parent().map(Path::to_path_buf).unwrap_or_default())
        }
        None => (Policy::default(), PathBuf::new()),
    };
    if let Some(path) = &args.dictionary {
        let dict = Dictionary::from_artifact(&read_path(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        return Filter::new(Arc::new(dict), &policy).map_err(|e| Failure::Error(e.to_string()));
    }
    // The policy's files are relative to it; the command line's are read here, so a missing
    // one is reported by its own name.
    let paths = policy.dictionaries.iter_mut().filter_map(|s| s.path.as_mut());
    for path in paths.chain(policy.segmentation.as_mut().and_then(|s| s.path.as_mut())) {
        *path = policy_dir.join(&*path).display().to_string();
    }
    if let Some(path) = &args.lexicon {
        policy.segmentation = Some(Segmentation { path: Some(path.display().to_string()), text: None });
    }
    let mut given = HashMap::new();
    let flags =
        args.keywords.iter().map(|p| (p, KeywordKind::Deny)).chain(args.allow.iter().map(|p| (p, KeywordKind::Allow)));
    for (path, kind) in flags {
        let name = path.display().to_string();
        given.insert(name.clone(), read_path(path)?);
        policy.dictionaries.push(DictionarySource::file(name, KeywordFormat::Auto, kind));
    }
    let filter = Filter::from_policy(&policy, |path| match given.remove(path) {
        Some(bytes) => Ok(bytes),
        None => std::fs::read(path).map_err(|e| format!("{path}: {e}")),
    });
    let filter = match filter {
        Err(e) if *e.kind() == ErrorKind::EmptyDictionary && policy.dictionaries.is_empty() => {
            return Err("no keywords: give --keywords FILE, --dictionary FILE or a policy with dictionaries".into())
        }
        other => other.map_err(|e| Failure::Error(e.to_string()))?,
    };
    report_diagnostics(filter.dictionary());
    Ok(filter)
}

fn report_diagnostics(dict: &Dictionary) {
    let diagnostics = dict.diagnostics();
    const SHOWN: usize = 20;
    let mut err = std::io::stderr().lock();
    for d in diagnostics.iter().take(SHOWN) {
        let _ = writeln!(err, "warning: {d}");
    }
    if diagnostics.len() > SHOWN {
        let _ = writeln!(err, "warning: … and {} more dirty keyword lines", diagnostics.len() - SHOWN);
    }
}

/// `compile`: the dictionary as an artifact, with a summary on stderr.
pub(crate) fn compile(args: &DictionaryArgs, output: &Output) -> Result<Status, Failure> {
    let started = Instant::now();
    let filter = filter(args)?;
    let built = started.elapsed();
    let dict = filter.dictionary();
    let bytes = dict.to_artifact();
    output.write(&bytes)?;
    let lexicon = dict.lexicon().map(|l| format!(", a lexicon of {} words", l.len())).unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "compiled {} keywords ({} states, longest {} chars{lexicon}) into {output} ({} bytes, built in {:.0} ms)",
        dict.len(),
        dict.states(),
        dict.max_keyword_chars(),
        bytes.len(),
        built.as_secs_f64() * 1000.0
    );
    Ok(Status::Clean)
}
