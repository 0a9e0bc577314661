//! The `aigc-edge` binary end to end: the `check` output contract, `mask`, `compile`, `scan`
//! and the errors a user meets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aigc-edge"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
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
    assert!(o.status.success(), "{}", stderr(&o));
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
    assert!(o.status.success());
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
    assert!(o.status.success(), "{}", stderr(&o));
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
}
