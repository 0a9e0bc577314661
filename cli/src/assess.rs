//! `assess`: the refusal-rate and output tests a provider must pass before filing, against any
//! OpenAI-compatible endpoint (the model alone, or behind the aigc-edge filter). The banks, the
//! refusal detector and the rules are the core's (`aigc_edge::assess`); here: asking, with
//! retries, a cache and a progress bar, and the reports.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aigc_edge::assess::{self, BankKind, Outcome, Question};
use aigc_edge::{Action, Filter};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::guard::{GuardArgs, GuardClient};
use crate::io::{print, read_path, Failure};
use crate::Status;

#[derive(Args)]
pub(crate) struct AssessArgs {
    /// The service: an OpenAI-compatible base URL (`/v1/chat/completions` is added when no path
    /// is given), e.g. the model server, or the Envoy with the filter in front of it.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// The model name to ask for.
    #[arg(long, value_name = "M", default_value = "default")]
    model: String,
    /// An environment variable holding the endpoint's API key (sent as a bearer token).
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// The should-refuse bank (JSONL: id, question, category).
    #[arg(long, value_name = "BANK")]
    refuse: PathBuf,
    /// The should-answer bank.
    #[arg(long, value_name = "BANK")]
    answer: PathBuf,
    /// The generated-content bank (outputs judged by keywords and the guard).
    #[arg(long, value_name = "BANK")]
    content: Option<PathBuf>,
    /// Questions sampled from each of the refuse and answer banks (the rules: at least 300).
    #[arg(long, value_name = "N", default_value_t = 300)]
    sample: usize,
    /// Questions sampled from the content bank (the rules: at least 1,000 outputs).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    content_sample: usize,
    /// Seed of the samples.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Questions asked at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Attempts after the first for a failed call (429, 5xx, no connection), with backoff.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Most milliseconds one answer may take.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    timeout_ms: u64,
    /// The answer cache: a rerun asks only what it lacks.
    #[arg(long, value_name = "FILE", default_value = ".aigc-edge-assess-cache.jsonl")]
    cache: PathBuf,
    /// Ask everything again (the cache is neither read nor written).
    #[arg(long)]
    no_cache: bool,
    /// A readable report: Markdown, or HTML when the name ends in .html.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Put the failed questions' text and answers in the readable report (ids only by default).
    #[arg(long)]
    show_text: bool,
    #[command(flatten)]
    guard: GuardArgs,
    /// Keywords for judging outputs (optional: without them, outputs are judged by the guard
    /// and the filter's own blocks).
    #[command(flatten)]
    dictionary: crate::DictionaryArgs,
}

/// What the endpoint said to one question.
#[derive(Clone, Debug)]
struct Answer {
    /// The answer's text (empty when blocked).
    text: String,
    /// The filter (or the model's own content filter) refused it.
    filtered: bool,
}

struct Endpoint {
    url: String,
    model: String,
    token: Option<String>,
    agent: ureq::Agent,
    retries: u32,
    cache: Option<Mutex<(HashMap<String, Value>, std::fs::File)>>,
}

impl Endpoint {
    fn key(&self, question: &str) -> String {
        let text = format!("{}\n{}\n{question}", self.url, self.model);
        text.bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
            .to_string()
            + &format!("-{}", question.chars().count())
    }

    /// The answer, from the cache or asked (with retries and backoff).
    fn ask(&self, question: &str) -> Result<Answer, String> {
        let key = self.key(question);
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.lock().map_err(|_| "cache lock")?.0.get(&key) {
                return read_answer(hit["status"].as_u64().unwrap_or(0) as u16, hit["body"].as_str().unwrap_or(""));
            }
        }
        let body = json!({"model": self.model, "messages": [{"role": "user", "content": question}]}).to_string();
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << attempt.min(6)));
            }
            let mut request = self.agent.post(&self.url).header("content-type", "application/json");
            if let Some(token) = &self.token {
                request = request.header("authorization", &format!("Bearer {token}"));
            }
            match request.send(body.as_bytes()) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    if status == 429 || status >= 500 {
                        last = format!("status {status}");
                        continue;
                    }
                    if let Some(cache) = &self.cache {
                        let mut cache = cache.lock().map_err(|_| "cache lock")?;
                        let line = json!({"key": key, "status": status, "body": text});
                        let _ = writeln!(cache.1, "{line}");
                        cache.0.insert(key.clone(), line);
                    }
                    return read_answer(status, &text);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("{}: {last} (after {} attempts)", self.url, self.retries + 1))
    }
}

/// An OpenAI-style answer: the text, or a content-filter refusal (HTTP 400 `content_filter`,
/// or `finish_reason: content_filter`).
fn read_answer(status: u16, body: &str) -> Result<Answer, String> {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error_is_filter = ["code", "type"].iter().any(|k| value["error"][k] == "content_filter");
    if status == 400 && error_is_filter {
        return Ok(Answer { text: String::new(), filtered: true });
    }
    if !(200..300).contains(&status) {
        return Err(format!("status {status}: {}", body.chars().take(200).collect::<String>()));
    }
    let choice = &value["choices"][0];
    let text = choice["message"]["content"].as_str().ok_or("the answer has no choices[0].message.content")?.to_string();
    Ok(Answer { filtered: choice["finish_reason"] == "content_filter", text })
}

fn open_cache(args: &AssessArgs) -> Result<Option<Mutex<(HashMap<String, Value>, std::fs::File)>>, Failure> {
    if args.no_cache {
        return Ok(None);
    }
    let mut known = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&args.cache) {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                if let Some(k) = v["key"].as_str() {
                    known.insert(k.to_string(), v.clone());
                }
            }
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.cache)
        .map_err(|e| format!("{}: {e}", args.cache.display()))?;
    Ok(Some(Mutex::new((known, file))))
}

fn load_bank(path: &Path, kind: BankKind) -> Result<(Vec<Question>, Vec<String>), Failure> {
    let text = String::from_utf8(read_path(path)?).map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let (questions, errors) = assess::read_bank(&text);
    if !errors.is_empty() {
        let shown: Vec<String> = errors.iter().take(20).map(|e| format!("{}: {e}", path.display())).collect();
        return Err(format!("{} bad lines in the {} bank:\n{}", errors.len(), kind.as_str(), shown.join("\n")).into());
    }
    let short = assess::shortfalls(kind, &questions);
    for s in &short {
        eprintln!("warning: {}: {s}", path.display());
    }
    Ok((questions, short))
}

/// Judges one answer to `q` from `kind`'s bank.
fn judge(
    q: &Question,
    answer: Result<Answer, String>,
    kind: BankKind,
    guard: Option<&GuardClient>,
    filter: Option<&Filter>,
) -> (Outcome, String) {
    let mut outcome = Outcome {
        id: q.id.clone(),
        category: q.category.clone(),
        refused: false,
        refused_by: String::new(),
        passes: true,
        error: None,
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            outcome.error = Some(e);
            // Not asked is not refused, not answered and not passed: it counts against every rule.
            outcome.refused = kind == BankKind::Answer;
            outcome.passes = false;
            return (outcome, String::new());
        }
    };
    if answer.filtered {
        (outcome.refused, outcome.refused_by) = (true, "filter".into());
        return (outcome, answer.text);
    }
    let guard_verdict = guard.map(|g| g.judge_answer(&q.question, &answer.text, filter.map(Filter::policy)));
    let guard_refusal = guard_verdict.as_ref().and_then(crate::guard::Verdict::refusal);
    match guard_refusal {
        Some(true) => (outcome.refused, outcome.refused_by) = (true, "guard".into()),
        Some(false) => {}
        None if assess::refused_by_phrase(&answer.text) => {
            (outcome.refused, outcome.refused_by) = (true, "phrase".into())
        }
        None => {}
    }
    if kind == BankKind::Content {
        let keywords_pass = filter.is_none_or(|f| f.check(&answer.text).action < Action::Mask);
        let guard_pass = guard_verdict.as_ref().is_none_or(|v| !v.harmful());
        outcome.passes = keywords_pass && guard_pass;
    }
    (outcome, answer.text)
}

pub(crate) fn assess(args: &AssessArgs) -> Result<Status, Failure> {
    let url = crate::guard::with_default_path("--endpoint", &args.endpoint, "/v1/chat/completions")?;
    let token = match &args.api_key_env {
        Some(var) => Some(std::env::var(var).map_err(|_| format!("--api-key-env: ${var} is not set"))?),
        None => None,
    };
    let wants_keywords = !args.dictionary.keywords.is_empty()
        || args.dictionary.dictionary.is_some()
        || args.dictionary.policy.is_some();
    let filter = if wants_keywords { Some(crate::load::filter(&args.dictionary)?) } else { None };
    let guard = args.guard.client()?;
    let mut banks = vec![(BankKind::Refuse, &args.refuse, args.sample), (BankKind::Answer, &args.answer, args.sample)];
    if let Some(content) = &args.content {
        banks.push((BankKind::Content, content, args.content_sample));
    }
    let mut work: Vec<(BankKind, Question)> = Vec::new();
    let mut problems: HashMap<BankKind, Vec<String>> = HashMap::new();
    for (kind, path, n) in &banks {
        let (questions, short) = load_bank(path, *kind)?;
        problems.insert(*kind, short);
        work.extend(assess::sample(&questions, *n, args.seed).into_iter().map(|q| (*kind, q)));
    }
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(args.timeout_ms)))
        .http_status_as_error(false)
        .build();
    let endpoint = Endpoint {
        url,
        model: args.model.clone(),
        token,
        agent: config.into(),
        retries: args.retries,
        cache: open_cache(args)?,
    };

    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = ProgressBar::with_draw_target(Some(work.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} questions {per_sec} ETA {eta}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let queue = Mutex::new(work.iter().enumerate().collect::<Vec<_>>());
    let results: Mutex<Vec<(usize, Outcome, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency {
            scope.spawn(|| loop {
                let Some((i, (kind, q))) = queue.lock().ok().and_then(|mut q| q.pop()) else { return };
                let (outcome, text) = judge(q, endpoint.ask(&q.question), *kind, guard.as_ref(), filter.as_ref());
                if let Ok(mut r) = results.lock() {
                    r.push((i, outcome, text));
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().map_err(|_| "a worker panicked")?;
    results.sort_by_key(|(i, _, _)| *i);
    let mut runs: Vec<(BankKind, Vec<Outcome>, Vec<String>)> = Vec::new();
    let mut texts: HashMap<(BankKind, String), String> = HashMap::new();
    for (kind, _, _) in &banks {
        let outcomes: Vec<Outcome> =
            results.iter().filter(|(i, _, _)| work[*i].0 == *kind).map(|(_, o, _)| o.clone()).collect();
        runs.push((*kind, outcomes, problems.remove(kind).unwrap_or_default()));
    }
    for (i, o, text) in &results {
        texts.insert((work[*i].0, o.id.clone()), text.clone());
    }
    let mut report = assess::report(&runs);
    report["endpoint"] = json!(endpoint.url);
    report["model"] = json!(args.model);
    report["seed"] = json!(args.seed);
    report["guard"] = json!(guard.is_some());
    if let Some(path) = &args.report {
        let questions: HashMap<(BankKind, String), &Question> =
            work.iter().map(|(k, q)| ((*k, q.id.clone()), q)).collect();
        let readable = readable(&report, path.extension().is_some_and(|e| e == "html"), args.show_text, &|kind, id| {
            let q = questions.get(&(kind, id.to_string()));
            (
                q.map(|q| q.question.clone()).unwrap_or_default(),
                texts.get(&(kind, id.to_string())).cloned().unwrap_or_default(),
            )
        });
        std::fs::write(path, readable).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print(&serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)?;
    Ok(Status::found_if(report["pass"] != true))
}

fn kind_of(name: &str) -> BankKind {
    match name {
        "refuse" => BankKind::Refuse,
        "answer" => BankKind::Answer,
        _ => BankKind::Content,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|")
}

/// The report for people: Markdown (or the same as an HTML page).
fn readable(
    report: &Value,
    html: bool,
    show_text: bool,
    text_of: &dyn Fn(BankKind, &str) -> (String, String),
) -> String {
    let mut md = String::new();
    let verdict = if report["pass"] == true { "PASS" } else { "FAIL" };
    md += &format!(
        "# aigc-edge assess: {verdict}\n\nEndpoint `{}`, model `{}`, seed {}{}.\n\n",
        report["endpoint"].as_str().unwrap_or(""),
        report["model"].as_str().unwrap_or(""),
        report["seed"],
        if report["guard"] == true { ", refusals also judged by the guard model" } else { "" }
    );
    md += "| rule | sampled | rate | 95% interval | threshold | result |\n|---|---|---|---|---|---|\n";
    for r in report["rules"].as_array().into_iter().flatten() {
        let ci = &r["ci95"];
        md += &format!(
            "| {} | {} | {:.1}% | {:.1}–{:.1}% | {} {:.0}% | {} |\n",
            r["rule"].as_str().unwrap_or(""),
            r["sampled"],
            r["rate"].as_f64().unwrap_or(0.0) * 100.0,
            ci[0].as_f64().unwrap_or(0.0) * 100.0,
            ci[1].as_f64().unwrap_or(0.0) * 100.0,
            r["comparison"].as_str().unwrap_or(""),
            r["threshold"].as_f64().unwrap_or(0.0) * 100.0,
            if r["pass"] == true { "pass" } else { "**fail**" }
        );
    }
    for r in report["rules"].as_array().into_iter().flatten() {
        let kind = kind_of(r["bank"].as_str().unwrap_or(""));
        md += &format!("\n## {}\n\n", r["rule"].as_str().unwrap_or(""));
        for p in r["problems"].as_array().into_iter().flatten() {
            md += &format!("- {}\n", p.as_str().unwrap_or(""));
        }
        md += "\n| category | count | of | rate |\n|---|---|---|---|\n";
        for (c, v) in r["per_category"].as_object().into_iter().flatten() {
            md += &format!(
                "| {c} | {} | {} | {:.1}% |\n",
                v["count"],
                v["of"],
                v["rate"].as_f64().unwrap_or(0.0) * 100.0
            );
        }
        let failed: Vec<&str> = r["failed_ids"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !failed.is_empty() {
            md += &format!("\nFailed ({}): ", failed.len());
            if show_text {
                md += "\n\n| id | question | answer |\n|---|---|---|\n";
                for id in &failed {
                    let (q, a) = text_of(kind, id);
                    md +=
                        &format!("| {id} | {} | {} |\n", escape(&q), escape(&a.chars().take(200).collect::<String>()));
                }
            } else {
                md += &format!("{}\n", failed.join(", "));
            }
        }
    }
    if !html {
        return md;
    }
    let mut body = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if let Some(cells) = line.strip_prefix('|') {
            if line.starts_with("|---") {
                continue;
            }
            if !in_table {
                body += "<table>\n";
                in_table = true;
            }
            let cells: Vec<&str> = cells.trim_end_matches('|').split(" | ").map(str::trim).collect();
            body +=
                &format!("<tr>{}</tr>\n", cells.iter().map(|c| format!("<td>{}</td>", escape(c))).collect::<String>());
            continue;
        }
        if in_table {
            body += "</table>\n";
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("# ") {
            body += &format!("<h1>{}</h1>\n", escape(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            body += &format!("<h2>{}</h2>\n", escape(h));
        } else if let Some(item) = line.strip_prefix("- ") {
            body += &format!("<p>• {}</p>\n", escape(item));
        } else if !line.is_empty() {
            body += &format!("<p>{}</p>\n", escape(line));
        }
    }
    if in_table {
        body += "</table>\n";
    }
    format!("<!doctype html>\n<meta charset=\"utf-8\">\n<title>aigc-edge assess</title>\n<style>table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:2px 6px}}</style>\n{body}")
}
