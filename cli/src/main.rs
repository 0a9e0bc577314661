//! `aigc-edge`: the command-line tool over the aigc-edge core.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use aigc_edge::policy::DictionarySource;
use aigc_edge::{Dictionary, ErrorKind, Filter, KeywordFormat, KeywordKind, Policy};
use serde_json::{json, Value};

const USAGE: &str = "\
usage:
  aigc-edge check   [DICTIONARY] [--policy FILE]   < text     one JSON verdict per input line
  aigc-edge mask    [DICTIONARY] [--policy FILE]   < text     text with hits and personal data masked
  aigc-edge compile [DICTIONARY] [--policy FILE] -o OUT      write a compiled dictionary artifact
  aigc-edge scan    [DICTIONARY] [--policy FILE] FILE.jsonl  assess a training corpus per source
        [--text-field text] [--source-field source] [--sample N] [--seed S] [--threshold 0.05]
  aigc-edge label   FILE -o OUT --producer CODE [--produce-id ID] [--key-file K] [--watermark]
                    [--visible TEXT] [--corner bottom-right]
                                              write the GB 45438 implicit label (one per file);
                                              --visible also draws TEXT on a PNG/JPEG (>= 5% high)
  aigc-edge label   FILE -o OUT --propagate --platform CODE [--propagate-id ID]
                    [--declared | --detected] [--key-file K]   the platform's version (art. 6)
  aigc-edge verify  FILE... [--key-file K]    labels found, verdict and text watermark, as JSON;
                                              exit 0 all compliant, 1 some not, 2 unreadable

DICTIONARY is any of:
  --keywords FILE     deny words (repeatable); `word TAB category TAB action` or `word tag,tag`
  --allow FILE        allow words (repeatable)
  --dictionary FILE   a compiled artifact from `aigc-edge compile`
and the policy's own `dictionaries` and `allow` entries.";

struct Args {
    command: String,
    keywords: Vec<PathBuf>,
    allow: Vec<PathBuf>,
    artifact: Option<PathBuf>,
    policy: Option<PathBuf>,
    output: Option<PathBuf>,
    inputs: Vec<PathBuf>,
    options: BTreeMap<String, String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("missing command")?;
    if command == "-h" || command == "--help" {
        return Err(String::new());
    }
    let mut args = Args {
        command,
        keywords: Vec::new(),
        allow: Vec::new(),
        artifact: None,
        policy: None,
        output: None,
        inputs: Vec::new(),
        options: BTreeMap::new(),
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--keywords" | "-k" => args.keywords.push(value()?.into()),
            "--allow" => args.allow.push(value()?.into()),
            "--dictionary" | "-d" => args.artifact = Some(value()?.into()),
            "--policy" | "-p" => args.policy = Some(value()?.into()),
            "-o" | "--output" => args.output = Some(value()?.into()),
            "--text-field" | "--source-field" | "--sample" | "--seed" | "--threshold" | "--producer"
            | "--produce-id" | "--platform" | "--propagate-id" | "--key-file" | "--visible" | "--corner" => {
                let v = value()?;
                args.options.insert(arg.trim_start_matches('-').to_string(), v);
            }
            "--propagate" | "--declared" | "--detected" | "--watermark" => {
                args.options.insert(arg.trim_start_matches('-').to_string(), "true".into());
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => args.inputs.push(arg.into()),
        }
    }
    Ok(args)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads the policy and dictionary; reports dirty keyword lines on stderr.
fn load(args: &Args) -> Result<Filter, String> {
    let (mut policy, policy_dir) = match &args.policy {
        Some(p) => {
            let text = String::from_utf8(read(p)?).map_err(|_| format!("{}: not UTF-8", p.display()))?;
            let policy = Policy::from_json(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            (policy, p.parent().map(Path::to_path_buf).unwrap_or_default())
        }
        None => (Policy::default(), PathBuf::new()),
    };
    let filter = if let Some(path) = &args.artifact {
        let dict = Dictionary::from_artifact(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        Filter::new(Arc::new(dict), &policy).map_err(|e| e.to_string())?
    } else {
        // The policy's files are relative to it; the command line's are read here, so a
        // missing one is reported by its own name.
        for source in &mut policy.dictionaries {
            if let Some(path) = &mut source.path {
                *path = policy_dir.join(&*path).display().to_string();
            }
        }
        let mut given = HashMap::new();
        let flags = args
            .keywords
            .iter()
            .map(|p| (p, KeywordKind::Deny))
            .chain(args.allow.iter().map(|p| (p, KeywordKind::Allow)));
        for (path, kind) in flags {
            let name = path.display().to_string();
            given.insert(name.clone(), read(path)?);
            policy.dictionaries.push(DictionarySource::file(name, KeywordFormat::Auto, kind));
        }
        let filter = Filter::from_policy(&policy, |path| match given.remove(path) {
            Some(bytes) => Ok(bytes),
            None => read(Path::new(path)),
        });
        let filter = match filter {
            Err(e) if *e.kind() == ErrorKind::EmptyDictionary && policy.dictionaries.is_empty() => {
                return Err("no keywords: give --keywords FILE, --dictionary FILE or a policy with dictionaries".into())
            }
            other => other.map_err(|e| e.to_string())?,
        };
        report_diagnostics(filter.dictionary());
        filter
    };
    Ok(filter)
}

fn report_diagnostics(dict: &Dictionary) {
    let diagnostics = dict.diagnostics();
    if diagnostics.is_empty() {
        return;
    }
    const SHOWN: usize = 20;
    let mut err = io::stderr().lock();
    for d in diagnostics.iter().take(SHOWN) {
        let _ = writeln!(err, "warning: {d}");
    }
    if diagnostics.len() > SHOWN {
        let _ = writeln!(err, "warning: … and {} more dirty keyword lines", diagnostics.len() - SHOWN);
    }
}

/// Runs `each` over stdin lines (without the line ending); invalid UTF-8 gets `bad`.
fn for_each_line(mut each: impl FnMut(Result<&str, ()>, &mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(|e| format!("stdin: {e}"))?;
        if n == 0 {
            break;
        }
        let mut body = line.as_slice();
        body = body.strip_suffix(b"\n").unwrap_or(body);
        body = body.strip_suffix(b"\r").unwrap_or(body);
        let text = std::str::from_utf8(body).map_err(|_| ());
        each(text, &mut out).map_err(|e| format!("stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))
}

fn check(args: &Args) -> Result<(), String> {
    let filter = load(args)?;
    // A line that cannot be read is not clean: refused under fail_closed, as the edge refuses it.
    let unreadable = match filter.policy().on_limit {
        aigc_edge::policy::OnLimit::FailClosed => "block",
        aigc_edge::policy::OnLimit::FailOpen => "pass",
    };
    for_each_line(|text, out| {
        let v = match text {
            Ok(text) => filter.check(text).to_json(),
            Err(()) => {
                json!({"flagged": false, "action": unreadable, "hits": [], "error": "input line is not valid UTF-8"})
                    .to_string()
            }
        };
        writeln!(out, "{v}")
    })
}

fn mask(args: &Args) -> Result<(), String> {
    let filter = load(args)?;
    for_each_line(|text, out| match text {
        Ok(text) => {
            let d = filter.check(text);
            writeln!(out, "{}", d.text.as_deref().unwrap_or(text))
        }
        Err(()) => writeln!(out),
    })
}

fn compile(args: &Args) -> Result<(), String> {
    let output = args.output.as_ref().ok_or("compile needs -o OUT")?;
    let started = Instant::now();
    let filter = load(args)?;
    let built = started.elapsed();
    let bytes = filter.dictionary().to_artifact();
    std::fs::write(output, &bytes).map_err(|e| format!("{}: {e}", output.display()))?;
    eprintln!(
        "compiled {} keywords ({} states, longest {} chars) into {} ({} bytes, built in {:.0} ms)",
        filter.dictionary().len(),
        filter.dictionary().states(),
        filter.dictionary().max_keyword_chars(),
        output.display(),
        bytes.len(),
        built.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// SplitMix64: a small seeded generator for reproducible samples.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct SourceStats {
    documents: u64,
    flagged: u64,
    categories: BTreeMap<String, u64>,
}

fn scan(args: &Args) -> Result<(), String> {
    let filter = load(args)?;
    let opt = |k: &str| args.options.get(k).map(String::as_str);
    let text_field = opt("text-field").unwrap_or("text");
    let source_field = opt("source-field").unwrap_or("source");
    let sample: usize = opt("sample").unwrap_or("4000").parse().map_err(|_| "--sample needs a number")?;
    let seed: u64 = opt("seed").unwrap_or("0").parse().map_err(|_| "--seed needs a number")?;
    // TC260-003 §5.1: a source with more than 5% illegal or harmful content is not collected.
    let threshold: f64 = opt("threshold").unwrap_or("0.05").parse().map_err(|_| "--threshold needs a number")?;
    let [path] = args.inputs.as_slice() else {
        return Err("scan needs exactly one JSONL file".into());
    };
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = io::BufReader::new(file);
    let progress = io::stderr().is_terminal();
    let mut rng = SplitMix(seed);
    let mut sources: BTreeMap<String, SourceStats> = BTreeMap::new();
    // Reservoir sample of (line number, flagged).
    let mut reservoir: Vec<(u64, bool)> = Vec::with_capacity(sample);
    let mut bad_lines = Vec::new();
    let (mut seen, mut read_bytes) = (0u64, 0u64);
    let started = Instant::now();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        read_bytes += line.len() as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => {
                bad_lines.push(json!({"line": i + 1, "error": e.to_string()}));
                continue;
            }
        };
        let Some(text) = record.get(text_field).and_then(Value::as_str) else {
            bad_lines.push(json!({"line": i + 1, "error": format!("no string field `{text_field}`")}));
            continue;
        };
        let source = record.get(source_field).and_then(Value::as_str).unwrap_or("(none)").to_string();
        let d = filter.check(text);
        let flagged = !d.hits.is_empty();
        let stats = sources.entry(source).or_default();
        stats.documents += 1;
        if flagged {
            stats.flagged += 1;
            for h in &d.hits {
                let c = h.category.map_or("uncategorized".to_string(), |c| c.to_string());
                *stats.categories.entry(c).or_default() += 1;
            }
        }
        seen += 1;
        if reservoir.len() < sample {
            reservoir.push((i as u64 + 1, flagged));
        } else {
            let j = rng.below(seen) as usize;
            if j < sample {
                reservoir[j] = (i as u64 + 1, flagged);
            }
        }
        if progress && seen % 2000 == 0 {
            let pct = if total_bytes > 0 { read_bytes as f64 * 100.0 / total_bytes as f64 } else { 0.0 };
            eprint!(
                "\rscanning {}: {seen} documents, {pct:5.1}% [{:<30}]",
                path.display(),
                "#".repeat((pct / 100.0 * 30.0) as usize)
            );
        }
    }
    if progress {
        eprintln!("\rscanned {seen} documents in {:.1} s{:40}", started.elapsed().as_secs_f64(), "");
    }
    let per_source: BTreeMap<&String, Value> = sources
        .iter()
        .map(|(name, s)| {
            let ratio = if s.documents > 0 { s.flagged as f64 / s.documents as f64 } else { 0.0 };
            (
                name,
                json!({
                    "documents": s.documents,
                    "flagged": s.flagged,
                    "harmful_ratio": ratio,
                    "collect": ratio <= threshold,
                    "categories": s.categories,
                }),
            )
        })
        .collect();
    let sample_flagged = reservoir.iter().filter(|(_, f)| *f).count();
    let report = json!({
        "file": path.display().to_string(),
        "documents": seen,
        "threshold": threshold,
        "sources": per_source,
        "rejected_sources": sources.iter().filter(|(_, s)| s.documents > 0 && s.flagged as f64 / s.documents as f64 > threshold).map(|(n, _)| n).collect::<Vec<_>>(),
        "sample": {
            "size": reservoir.len(),
            "seed": seed,
            "flagged": sample_flagged,
            "harmful_ratio": if reservoir.is_empty() { 0.0 } else { sample_flagged as f64 / reservoir.len() as f64 },
            "lines": reservoir.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        },
        "bad_lines": bad_lines,
    });
    let pretty = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    println!("{pretty}");
    Ok(())
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes());
    }
    aigc_edge::label::produce_id(&bytes)
}

fn key(args: &Args) -> Result<Option<Vec<u8>>, String> {
    args.options.get("key-file").map(|k| read(Path::new(k))).transpose()
}

fn label(args: &Args) -> Result<(), String> {
    let [input] = args.inputs.as_slice() else { return Err("label needs exactly one FILE".into()) };
    let output = args.output.as_ref().ok_or("label needs -o OUT")?;
    let mut bytes = read(input)?;
    let key = key(args)?;
    let opt = |k: &str| args.options.get(k).map(String::as_str);
    let at = |e: aigc_edge::files::FileError| format!("{}: {e}", input.display());
    let (out, label) = if opt("propagate").is_some() {
        if opt("watermark").is_some() {
            return Err("--watermark goes with the producer's label, not --propagate".into());
        }
        let platform = opt("platform").ok_or("--propagate needs --platform CODE")?;
        let provenance = match (opt("declared"), opt("detected")) {
            (Some(_), Some(_)) => return Err("give --declared or --detected, not both".into()),
            (Some(_), None) => aigc_edge::files::Provenance::Declared,
            (None, Some(_)) => aigc_edge::files::Provenance::Detected,
            (None, None) => aigc_edge::files::Provenance::Unknown,
        };
        let id = opt("propagate-id").map_or_else(random_id, str::to_string);
        aigc_edge::files::propagate(&bytes, platform, &id, provenance, key.as_deref()).map_err(at)?
    } else {
        let producer = opt("producer").ok_or("label needs --producer CODE (or --propagate)")?;
        let id = opt("produce-id").map_or_else(random_id, str::to_string);
        let mut label = aigc_edge::ImplicitLabel::generated(producer, &id).map_err(|e| e.to_string())?;
        if let Some(k) = &key {
            label.seal_producer(k);
        }
        if let Some(text) = opt("visible") {
            let corner: aigc_edge::label::visible::Corner =
                opt("corner").unwrap_or("bottom-right").parse().map_err(|e| format!("--corner: {e}"))?;
            bytes = draw_visible(&bytes, text, corner).map_err(|e| format!("{}: {e}", input.display()))?;
        }
        if opt("watermark").is_some() {
            // The body is marked before the label goes in, so the front matter stays plain.
            let k = key.as_deref().ok_or("--watermark needs --key-file K")?;
            let text = String::from_utf8(bytes).map_err(|_| "--watermark applies to text files only")?;
            bytes = aigc_edge::watermark::embed(&text, &label.produce_id, k).map_err(|e| e.to_string())?.into_bytes();
        }
        (aigc_edge::files::write_label(&bytes, &label).map_err(at)?, label)
    };
    std::fs::write(output, &out).map_err(|e| format!("{}: {e}", output.display()))?;
    println!("{}", label.to_json());
    Ok(())
}

/// Decodes a PNG or JPEG, draws the visible label and encodes it again in the same format.
fn draw_visible(bytes: &[u8], text: &str, corner: aigc_edge::label::visible::Corner) -> Result<Vec<u8>, String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err("--visible draws on PNG and JPEG".into());
    }
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| e.to_string())?;
    let mut rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    aigc_edge::label::visible::draw_label(&mut rgba, w, h, text, corner).map_err(|e| e.to_string())?;
    let mut out = std::io::Cursor::new(Vec::new());
    if format == image::ImageFormat::Jpeg {
        let rgb = image::DynamicImage::ImageRgba8(rgba).to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
            .encode_image(&rgb)
            .map_err(|e| e.to_string())?;
    } else {
        rgba.write_to(&mut out, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    }
    Ok(out.into_inner())
}

/// Exit code of `verify`: 0 all compliant, 1 some not, 2 some unreadable.
static VERIFY_STATUS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn verify(args: &Args) -> Result<(), String> {
    use aigc_edge::files::Verdict;
    if args.inputs.is_empty() {
        return Err("verify needs at least one FILE".into());
    }
    let key = key(args)?;
    let mut reports = Vec::new();
    let mut status = 0u8;
    for path in &args.inputs {
        let name = path.display().to_string();
        let bytes = match read(path) {
            Ok(b) => b,
            Err(e) => {
                reports.push(json!({"file": name, "error": e}));
                status = 2;
                continue;
            }
        };
        match aigc_edge::files::verify(&bytes, key.as_deref()) {
            Ok((format, labels, verdict)) => {
                if verdict != Verdict::Compliant {
                    status = status.max(1);
                }
                let mut report = json!({"file": name});
                if let (Some(out), Value::Object(fields)) =
                    (report.as_object_mut(), aigc_edge::files::report_json(format, &labels, Some(&verdict)))
                {
                    out.extend(fields);
                }
                if format == aigc_edge::files::FileFormat::Text {
                    let text = String::from_utf8_lossy(&bytes);
                    report["watermark"] = match key.as_deref().and_then(|k| aigc_edge::watermark::detect(&text, k)) {
                        Some(d) => json!({"payload": d.payload, "copies": d.copies}),
                        None => json!("none"),
                    };
                }
                reports.push(report);
            }
            Err(e) => {
                reports.push(json!({"file": name, "error": e.to_string()}));
                status = 2;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?);
    VERIFY_STATUS.store(status, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("aigc-edge: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command.as_str() {
        "check" => check(&args),
        "mask" => mask(&args),
        "compile" => compile(&args),
        "scan" => scan(&args),
        "label" => label(&args),
        "verify" => verify(&args),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::from(VERIFY_STATUS.load(std::sync::atomic::Ordering::Relaxed)),
        Err(e) => {
            eprintln!("aigc-edge: {e}");
            ExitCode::from(2)
        }
    }
}
