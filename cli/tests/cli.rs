//! The `aigc-edge` binary end to end: the `check` output contract, `mask`, `compile`, `scan`
//! and the errors a user meets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary started in the repository root with every stream piped.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_aigc-edge"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = spawn(args);
    // The binary may exit before reading (a refused dictionary): a broken pipe is fine.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aigc-edge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

const KEYWORDS: &str = "tests/fixtures/keywords.txt";

#[test]
fn check_prints_one_verdict_per_line_in_order() {
    let input = "今天很好\n网上赌-博和色情\n\n你是SB吗\r\nusb接口\n\u{ff}\n";
    let mut bytes = input.as_bytes().to_vec();
    let bad = bytes.iter().position(|&b| b == 0xC3).expect("ÿ is two bytes");
    bytes[bad] = 0xFF; // make that line invalid UTF-8
    let o = run(&["check", "--keywords", KEYWORDS], &bytes);
    assert_eq!(o.status.code(), Some(1), "lines were blocked: {}", stderr(&o));
    // The contract, to the byte: key order as documented, extended only at the end.
    let text = stdout(&o);
    let raw_lines: Vec<&str> = text.lines().collect();
    assert_eq!(raw_lines[0], r#"{"flagged":false,"action":"pass","hits":[]}"#);
    assert_eq!(
        raw_lines[1],
        r#"{"flagged":true,"action":"block","hits":[{"keyword":"赌博","category":"A.1h","start":6,"end":13,"action":"block"},{"keyword":"色情","category":"A.1f","start":16,"end":22,"action":"block"}],"text":"网上***和**"}"#
    );
    let lines: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], serde_json::json!({"flagged": false, "action": "pass", "hits": []}));
    assert_eq!(
        lines[1],
        serde_json::json!({"flagged": true, "action": "block", "hits": [
            {"keyword": "赌博", "category": "A.1h", "start": 6, "end": 13, "action": "block"},
            {"keyword": "色情", "category": "A.1f", "start": 16, "end": 22, "action": "block"},
        ], "text": "网上***和**"})
    );
    assert_eq!(lines[2]["flagged"], false);
    assert_eq!(lines[3]["hits"][0]["keyword"], "sb");
    assert_eq!(lines[3]["hits"][0]["category"], serde_json::Value::Null);
    assert_eq!((lines[3]["hits"][0]["start"].as_u64(), lines[3]["hits"][0]["end"].as_u64()), (Some(6), Some(8)));
    assert_eq!(lines[4]["flagged"], false, "sb inside usb");
    assert_eq!(lines[5]["error"], "input line is not valid UTF-8");
    // Not readable is not clean: blocked under the default fail_closed.
    assert_eq!(lines[5]["action"], "block");
}

#[test]
fn dirty_keyword_lines_are_reported_not_fatal() {
    let o = run(&["check", "--keywords", "tests/fixtures/dirty-keywords.txt"], "赌博\n".as_bytes());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for want in [
        "dirty-keywords.txt:3: control bytes removed",
        "dirty-keywords.txt:4: blank line skipped",
        "dirty-keywords.txt:5: unknown category \"A.7z\" ignored",
        "dirty-keywords.txt:6: duplicate of tests/fixtures/dirty-keywords.txt:2, categories merged",
        "dirty-keywords.txt:7: nothing left to match after normalization, skipped",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    assert!(stdout(&o).contains("\"flagged\":true"));
}

#[test]
fn mask_applies_policy_and_redacts_personal_information() {
    let o = run(&["mask", "--policy", "envoy/demo/policy.json"], "你这个傻-逼，电话13812345678\n今天很好\n".as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "你这个***，电话[MOBILE_1]\n今天很好\n");
}

#[test]
fn evasive_spellings_are_read_through_and_switched_off_by_policy() {
    // `check` reads a line at a time: vertical writing is the Envoy and core tests' case.
    let text = "法、轮、功\n法法轮轮功功\nffuuuck\n".as_bytes();
    let o = run(&["check", "--keywords", KEYWORDS], text);
    assert_eq!(o.status.code(), Some(1), "lines were blocked: {}", stderr(&o));
    assert_eq!(stdout(&o).matches("\"flagged\":true").count(), 2, "{}", stdout(&o));
    let policy = tmp("no-evasion-steps.json");
    std::fs::write(&policy, r#"{"normalize": {"punctuation": false, "repeats": false}}"#).expect("write");
    let o = run(&["check", "--keywords", KEYWORDS, "--policy", policy.to_str().expect("utf-8 path")], text);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).matches("\"flagged\":true").count(), 0, "{}", stdout(&o));
    // Pinyin, off by default, by the same field; a compiled artifact carries its lane.
    std::fs::write(&policy, r#"{"normalize": {"pinyin": true}}"#).expect("write");
    let policy = policy.to_str().expect("utf-8 path");
    let o = run(&["check", "--keywords", KEYWORDS, "--policy", policy], "falungong\n堵博\n".as_bytes());
    assert_eq!(stdout(&o).matches("\"flagged\":true").count(), 2, "{}", stdout(&o));
    let artifact = tmp("pinyin.dict");
    let a = artifact.to_str().expect("utf-8 path");
    let o = run(&["compile", "--keywords", KEYWORDS, "--policy", policy, "--output", a], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["check", "--dictionary", a, "--policy", policy], "falungong\n".as_bytes());
    assert_eq!(stdout(&o).matches("\"flagged\":true").count(), 1, "{}", stdout(&o));
}

#[test]
fn bad_policy_names_the_field() {
    let policy = tmp("bad-policy.json");
    std::fs::write(&policy, r#"{"normalize": {"max_gap": 99}}"#).expect("write");
    let o = run(&["check", "--keywords", KEYWORDS, "--policy", policy.to_str().expect("utf-8 path")], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid policy field `normalize.max_gap`"), "{}", stderr(&o));
}

#[test]
fn compiled_artifact_gives_the_same_verdicts() {
    let artifact = tmp("k.dict");
    let a = artifact.to_str().expect("utf-8 path");
    let o = run(&["compile", "--keywords", KEYWORDS, "-o", a], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("compiled"), "{}", stderr(&o));
    let input = "网上赌-博和色情\n你是SB吗\n".as_bytes();
    let from_words = run(&["check", "--keywords", KEYWORDS], input);
    let from_artifact = run(&["check", "--dictionary", a], input);
    assert_eq!(stdout(&from_words), stdout(&from_artifact));

    let mut bytes = std::fs::read(&artifact).expect("artifact");
    let last = bytes.len() - 10;
    bytes[last] ^= 1;
    std::fs::write(&artifact, &bytes).expect("write");
    let o = run(&["check", "--dictionary", a], input);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad dictionary artifact: checksum mismatch"), "{}", stderr(&o));
}

#[test]
fn scan_reports_per_source_with_the_five_percent_rule() {
    let corpus = tmp("corpus.jsonl");
    let mut lines = String::new();
    for i in 0..100 {
        // source "clean": 2 of 50 hit (4%); source "dirty": 10 of 50 hit (20%).
        let (source, text) = if i % 2 == 0 {
            ("clean", if i % 50 == 0 { "有人网上赌博" } else { "今天天气很好" })
        } else {
            ("dirty", if i % 10 == 1 { "色情内容" } else { "普通的句子" })
        };
        lines.push_str(&format!("{{\"text\": \"{text}\", \"source\": \"{source}\"}}\n"));
    }
    lines.push_str("not json\n{\"source\": \"x\"}\n");
    std::fs::write(&corpus, lines).expect("write");
    let c = corpus.to_str().expect("utf-8 path");
    let o = run(&["scan", "--keywords", KEYWORDS, c, "--sample", "10", "--seed", "7"], b"");
    assert_eq!(o.status.code(), Some(1), "a source is rejected: {}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
    assert_eq!(report["documents"], 100);
    assert_eq!(report["sources"]["clean"]["flagged"], 2);
    assert_eq!(report["sources"]["clean"]["collect"], true);
    assert_eq!(report["sources"]["dirty"]["flagged"], 10);
    assert_eq!(report["sources"]["dirty"]["harmful_ratio"], 0.2);
    assert_eq!(report["sources"]["dirty"]["collect"], false);
    assert_eq!(report["rejected_sources"], serde_json::json!(["dirty"]));
    assert_eq!(report["sample"]["size"], 10);
    assert_eq!(report["bad_lines"].as_array().map(Vec::len), Some(2));
    // The same seed gives the same sample.
    let again = run(&["scan", "--keywords", KEYWORDS, c, "--sample", "10", "--seed", "7"], b"");
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).expect("JSON report");
    assert_eq!(again["sample"], report["sample"]);
    assert_eq!(report["bad_lines"][0]["line"], 101);
    // Another seed picks other documents.
    let other = run(&["scan", "--keywords", KEYWORDS, c, "--sample", "10", "--seed", "8"], b"");
    let other: serde_json::Value = serde_json::from_str(&stdout(&other)).expect("JSON report");
    assert_ne!(other["sample"]["items"], report["sample"]["items"]);
    let items = report["sample"]["items"].as_array().expect("items");
    assert!(items.iter().all(|i| i["file"] == c && i["line"].as_u64().is_some_and(|l| (1..=100).contains(&l))));
}

#[test]
fn the_sample_does_not_depend_on_the_order_files_are_read_in() {
    let (a, b) = (tmp("part-a.jsonl"), tmp("part-b.jsonl"));
    let doc = |i: usize| format!("{{\"text\": \"第{i}句\", \"source\": \"s\"}}\n");
    std::fs::write(&a, (0..40).map(doc).collect::<String>()).expect("write");
    std::fs::write(&b, (40..80).map(doc).collect::<String>()).expect("write");
    let (a, b) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
    let items = |files: [&str; 2]| {
        let o = run(&["scan", "-k", KEYWORDS, files[0], files[1], "--sample", "15", "--seed", "3"], b"");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
        assert_eq!(report["documents"], 80);
        let mut items: Vec<String> = report["sample"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| format!("{}:{}", i["file"].as_str().unwrap_or(""), i["line"]))
            .collect();
        items.sort();
        items
    };
    let forward = items([a, b]);
    assert_eq!(forward.len(), 15);
    assert_eq!(forward, items([b, a]));
}

/// What a run should show: exit code, and text stdout and stderr must contain ("" for nothing
/// to check; `None` for must be empty).
struct Case {
    args: &'static [&'static str],
    stdin: &'static str,
    code: i32,
    stdout: Option<&'static str>,
    stderr: Option<&'static str>,
}

const CLEAN: &str = "tests/fixtures/clean.txt";
const DIRTY: &str = "tests/fixtures/dirty.txt";

#[test]
fn unix_conventions() {
    let version = format!("aigc-edge {}", env!("CARGO_PKG_VERSION"));
    let version: &'static str = Box::leak(version.into_boxed_str());
    #[rustfmt::skip]
    let cases = [
        // Help and version on stdout, exit 0.
        Case { args: &["--help"], stdin: "", code: 0, stdout: Some("Usage: aigc-edge <COMMAND>"), stderr: None },
        Case { args: &["-h"], stdin: "", code: 0, stdout: Some("Exit codes:"), stderr: None },
        Case { args: &["check", "--help"], stdin: "", code: 0, stdout: Some("Usage: aigc-edge check [OPTIONS] [FILE]..."), stderr: None },
        Case { args: &["help", "scan"], stdin: "", code: 0, stdout: Some("Usage: aigc-edge scan"), stderr: None },
        Case { args: &["help", "label"], stdin: "", code: 0, stdout: Some("--propagate"), stderr: None },
        Case { args: &["--version"], stdin: "", code: 0, stdout: Some(version), stderr: None },
        // Usage errors: stderr, exit 2, nothing on stdout.
        Case { args: &[], stdin: "", code: 2, stdout: None, stderr: Some("Usage: aigc-edge <COMMAND>") },
        Case { args: &["frobnicate"], stdin: "", code: 2, stdout: None, stderr: Some("unrecognized subcommand 'frobnicate'") },
        Case { args: &["check", "-k", KEYWORDS, "--seed", "7", "--producer", "X"], stdin: "", code: 2, stdout: None, stderr: Some("unexpected argument '--seed'") },
        Case { args: &["label", "x.png", "-o", "y.png"], stdin: "", code: 2, stdout: None, stderr: Some("--producer <CODE>|--propagate") },
        Case { args: &["label", "x.png", "-o", "y.png", "--producer", "P", "--propagate", "--platform", "Q"], stdin: "", code: 2, stdout: None, stderr: Some("cannot be used with") },
        Case { args: &["scan", "-k", KEYWORDS, "--threshold", "5"], stdin: "", code: 2, stdout: None, stderr: Some("not a share between 0 and 1") },
        Case { args: &["check", "-k", KEYWORDS, "-d", "x.dict"], stdin: "", code: 2, stdout: None, stderr: Some("cannot be used with") },
        // FILE arguments are read, never stdin instead (the silent false "clean" of old).
        Case { args: &["check", "-k", KEYWORDS, DIRTY], stdin: "今天很好\n", code: 1, stdout: Some("\"keyword\":\"赌博\""), stderr: None },
        Case { args: &["check", "--keywords=tests/fixtures/keywords.txt", DIRTY], stdin: "", code: 1, stdout: Some("\"action\":\"block\""), stderr: None },
        Case { args: &["check", "-k", KEYWORDS, CLEAN], stdin: "网上赌博\n", code: 0, stdout: Some("\"flagged\":false"), stderr: None },
        Case { args: &["check", "-k", KEYWORDS, "-"], stdin: "网上赌博\n", code: 1, stdout: Some("\"flagged\":true"), stderr: None },
        Case { args: &["check", "-k", KEYWORDS, CLEAN, "-", DIRTY], stdin: "第二\n", code: 1, stdout: Some("\"hits\":[]}\n{\"flagged\":false,\"action\":\"pass\",\"hits\":[]}\n{\"flagged\":true"), stderr: None },
        Case { args: &["check", "-k", KEYWORDS, "no/such.txt"], stdin: "", code: 2, stdout: None, stderr: Some("no/such.txt: No such file or directory") },
        Case { args: &["check", "-k", "no/such-keywords.txt"], stdin: "", code: 2, stdout: None, stderr: Some("no/such-keywords.txt: No such file") },
        Case { args: &["check"], stdin: "", code: 2, stdout: None, stderr: Some("no keywords") },
        // Exit codes a script can act on.
        Case { args: &["check", "-k", KEYWORDS], stdin: "今天很好\n", code: 0, stdout: Some(""), stderr: None },
        Case { args: &["mask", "-k", KEYWORDS], stdin: "今天很好\n", code: 0, stdout: Some("今天很好\n"), stderr: None },
        Case { args: &["mask", "-k", KEYWORDS], stdin: "网上赌博\n", code: 1, stdout: Some("网上**\n"), stderr: None },
        Case { args: &["verify", "no/such.png"], stdin: "", code: 2, stdout: Some("\"error\""), stderr: Some("1 of 1 files could not be read") },
        Case { args: &["verify", CLEAN], stdin: "", code: 1, stdout: Some("\"verdict\": \"no label\""), stderr: None },
    ];
    for case in &cases {
        let o = run(case.args, case.stdin.as_bytes());
        let what = format!("{:?}: stdout {:?}, stderr {:?}", case.args, stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(case.code), "{what}");
        for (want, got) in [(case.stdout, stdout(&o)), (case.stderr, stderr(&o))] {
            match want {
                None => assert!(got.is_empty(), "{what}"),
                Some(want) => assert!(got.contains(want), "{what}: wants {want:?}"),
            }
        }
    }
}

#[test]
fn mask_keeps_each_line_ending_and_the_last_lines_lack_of_one() {
    for input in ["网上赌博", "网上赌博\n", "a\r\n网上赌博\r\nb", "\n\n", "", "赌博\n\r\n赌博"] {
        let o = run(&["mask", "-k", KEYWORDS], input.as_bytes());
        assert_eq!(stdout(&o), input.replace("赌博", "**"), "{input:?}");
    }
}

#[test]
fn output_dash_writes_stdout() {
    let o = run(&["compile", "-k", KEYWORDS, "-o", "-"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!Path::new(&root()).join("-").exists(), "no file named -");
    let artifact = tmp("from-stdout.dict");
    std::fs::write(&artifact, &o.stdout).expect("write");
    let o = run(&["check", "-d", artifact.to_str().expect("utf-8"), DIRTY], b"");
    assert_eq!(o.status.code(), Some(1));

    // label -o -: the labeled file on stdout, the label on stderr.
    let o = run(&["label", "-", "-o", "-", "--producer", "P", "--produce-id", "id-1"], "生成的文字\n".as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("AIGC:") && stdout(&o).ends_with("生成的文字\n"), "{}", stdout(&o));
    assert!(stderr(&o).contains("\"ProduceID\":\"id-1\""), "{}", stderr(&o));
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    let mut child = spawn(&["check", "-k", KEYWORDS]);
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        for _ in 0..200_000 {
            if stdin.write_all("今天很好\n".as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().expect("stdout"), &mut first).expect("some output");
    drop(child.stdout.take()); // `| head -c 16`
    let o = child.wait_with_output().expect("binary runs");
    writer.join().expect("writer");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn progress_only_on_a_terminal() {
    let corpus = tmp("progress.jsonl");
    std::fs::write(&corpus, "{\"text\": \"今天很好\", \"source\": \"s\"}\n".repeat(5000)).expect("write");
    let c = corpus.to_str().expect("utf-8");
    let piped = run(&["scan", "-k", KEYWORDS, c], b"");
    assert_eq!(stderr(&piped), "", "no progress when stderr is not a terminal");
    // `script` gives the command a terminal; the bar reaches 100% and names the documents.
    if Path::new("/usr/bin/script").exists() {
        let bin = env!("CARGO_BIN_EXE_aigc-edge");
        let o = Command::new("/usr/bin/script")
            .args(["-qec", &format!("{bin} scan -k {KEYWORDS} {c} >/dev/null"), "/dev/null"])
            .current_dir(root())
            .output()
            .expect("script runs");
        let shown = String::from_utf8_lossy(&o.stdout);
        assert!(shown.contains("100%") && shown.contains("5000 documents"), "{shown:?}");
    }
}

#[test]
fn lexicon_confirms_hits_in_check_and_compile() {
    let keywords = tmp("seg-keywords.txt");
    std::fs::write(&keywords, "法轮\n").expect("write keywords");
    let k = keywords.to_str().expect("utf-8 path");
    let lexicon = "tests/fixtures/lexicon.txt";
    let text = "大家合法轮流发言\n我们反对法轮\n";
    let o = run(&["check", "-k", k, "--lexicon", lexicon], text.as_bytes());
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines[0], r#"{"flagged":false,"action":"pass","hits":[]}"#, "{}", stderr(&o));
    assert!(lines[1].contains(r#""keyword":"法轮""#), "{lines:?}");
    // Compiled into the artifact, and used from it.
    let artifact = tmp("seg.dict");
    let a = artifact.to_str().expect("utf-8 path");
    let o = run(&["compile", "-k", k, "--lexicon", lexicon, "-o", a], b"");
    assert!(stderr(&o).contains("a lexicon of 27 words"), "{}", stderr(&o));
    let o = run(&["check", "-d", a], text.as_bytes());
    assert_eq!(stdout(&o).lines().next(), Some(r#"{"flagged":false,"action":"pass","hits":[]}"#));
    // A policy's lexicon is relative to the policy; a bad one is named with its line.
    let policy = tmp("seg-policy.json");
    std::fs::write(&policy, r#"{"segmentation": {"path": "bad-lexicon.txt"}}"#).expect("write policy");
    std::fs::write(tmp("bad-lexicon.txt"), "合法 3000\n轮流 lots\n").expect("write lexicon");
    let o = run(&["check", "-k", k, "-p", policy.to_str().expect("utf-8 path")], b"x\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad-lexicon.txt line 2: frequency `lots` is not a whole number"), "{}", stderr(&o));
}
