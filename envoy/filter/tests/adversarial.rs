//! What a hostile client or upstream sends, class by class (issue: "no bypass at the edge"),
//! against the exchange state machine driven the way the proxy-wasm glue drives it. Every
//! stream case runs whole and split at every byte. The forbidden word is 自制炸药 (A.1d, block);
//! 傻逼 (A.4c) is masked.

use std::rc::Rc;

use aigc_edge_envoy::config::{Plugin, PluginConfig};
use aigc_edge_envoy::exchange::{Exchange, Verdict};
use serde_json::{json, Value};

const KEYWORDS: &str = "自制炸药\tA.1d\n傻逼\tA.4c\tmask\n";
/// 自制炸药 as JSON escapes.
const ESCAPED: &str = r"\u81ea\u5236\u70b8\u836f";

fn plugin(extra: Value) -> Rc<Plugin> {
    let mut config = json!({
        "keywords": KEYWORDS,
        "label": {"explicit": "AI生成", "position": "start", "producer": "P-1"},
        "profiles": {"minor": {"actions": {"default": "block", "uncategorized": "block"}}},
        "profile_header": "x-aigc-profile",
        "route_profiles": {"kids": "minor"},
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    Rc::new(Plugin::new(PluginConfig::from_json(config.to_string().as_bytes()).unwrap()).unwrap())
}

/// What happened to a prompt: the status of a local answer, or what went upstream.
#[derive(Debug, PartialEq)]
enum Sent {
    Refused(u16),
    Forwarded(Vec<u8>),
}

fn send_prompt(p: &Rc<Plugin>, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Sent {
    let header = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let mut x = Exchange::new(Rc::clone(p), path, header("x-aigc-profile"), header("route"), "id".into());
    let h =
        x.request_headers(true, header("content-type").or(Some("application/json")), header("content-encoding"), None);
    if let Some((status, _)) = h.reply {
        return Sent::Refused(status);
    }
    if !h.buffer_body {
        return Sent::Forwarded(body.to_vec());
    }
    match x.request_body(body) {
        Verdict::Reply { status, .. } => Sent::Refused(status),
        Verdict::Replace { body, .. } => Sent::Forwarded(body),
        _ => Sent::Forwarded(body.to_vec()),
    }
}

/// An answer through the filter as the glue drives it (chunks, sniffing, buffering); returns
/// what the client gets and whether the filter blocked or cut it.
fn answer(p: &Rc<Plugin>, path: &str, status: u16, ct: Option<&str>, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut x = Exchange::new(Rc::clone(p), path, None, None, "id".into());
    x.response_headers(status, ct, None);
    let (mut out, mut held) = (Vec::new(), Vec::new());
    let mut buffering = false;
    for (i, chunk) in chunks.iter().enumerate() {
        let end = i + 1 == chunks.len();
        if buffering || x.response_buffered() {
            held.extend_from_slice(chunk);
            if end {
                match x.response_body(&held) {
                    Verdict::Replace { body, .. } => out.extend(body),
                    _ => out.append(&mut held),
                }
            }
            continue;
        }
        match x.response_chunk(chunk, end) {
            Verdict::Replace { body, .. } => out.extend(body),
            Verdict::Pause => {
                buffering = true;
                held.extend_from_slice(chunk);
                if end {
                    match x.response_body(&held) {
                        Verdict::Replace { body, .. } => out.extend(body),
                        _ => out.append(&mut held),
                    }
                }
            }
            _ => out.extend_from_slice(chunk),
        }
    }
    if chunks.is_empty() {
        if let Verdict::Replace { body, .. } = x.response_chunk(&[], true) {
            out = body;
        }
    }
    let audit = x.audit_lines();
    assert!(
        audit.iter().all(
            |l| !l.contains(r#""match_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855""#)
        ),
        "{audit:?}"
    );
    (out, x.response_blocked)
}

/// Runs a stream whole, split at every byte into two chunks, and byte by byte; every run must
/// give the same output.
fn stream_everywhere(p: &Rc<Plugin>, path: &str, ct: Option<&str>, body: &[u8]) -> (Vec<u8>, bool) {
    let whole = answer(p, path, 200, ct, &[body]);
    for k in 0..=body.len() {
        let split = answer(p, path, 200, ct, &[&body[..k], &body[k..]]);
        assert_eq!(split, whole, "split at {k} of {:?}", String::from_utf8_lossy(body));
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(answer(p, path, 200, ct, &bytes), whole, "byte by byte");
    whole
}

fn chat(content: Value) -> Vec<u8> {
    json!({"model": "m", "messages": [{"role": "user", "content": content}]}).to_string().into_bytes()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn what_serde_refuses_is_still_read() {
    let p = plugin(json!({}));
    let esc = ESCAPED;
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let cases: Vec<(&str, String)> = vec![
        ("NaN", format!(r#"{{"model":"m","temperature":NaN,"messages":[{{"role":"user","content":"{esc}"}}]}}"#)),
        ("-Infinity", format!(r#"{{"model":"m","seed":-Infinity,"messages":[{{"role":"user","content":"{esc}"}}]}}"#)),
        ("1e400", format!(r#"{{"model":"m","top_p":1e400,"messages":[{{"role":"user","content":"{esc}"}}]}}"#)),
        ("lone surrogate", format!(r#"{{"messages":[{{"role":"user","content":"\ud800{esc}"}}]}}"#)),
        ("deep nesting", format!(r#"{{"x":{deep},"messages":[{{"role":"user","content":"{esc}"}}]}}"#)),
        ("duplicate key", format!(r#"{{"messages":[{{"role":"user","content":"hi","content":"{esc}"}}]}}"#)),
        ("unknown field", format!(r#"{{"messages":[],"metadata":{{"note":"{esc}"}}}}"#)),
        ("key", format!(r#"{{"messages":[],"tools":[{{"parameters":{{"{esc}":1}}}}]}}"#)),
        (
            "tool description",
            format!(r#"{{"tools":[{{"type":"function","function":{{"name":"f","description":"{esc}"}}}}]}}"#),
        ),
        (
            "tool-call arguments, JSON inside JSON",
            r#"{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{\"q\":\"\\u81ea\\u5236\\u70b8\\u836f\"}"}}]}]}"#.to_string(),
        ),
        (
            "tool result",
            format!(
                r#"{{"messages":[{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t","content":"{esc}"}}]}}]}}"#
            ),
        ),
        (
            "document",
            format!(
                r#"{{"messages":[{{"role":"user","content":[{{"type":"document","source":{{"type":"text","data":"{esc}"}}}}]}}]}}"#
            ),
        ),
        (
            "function_call_output",
            format!(r#"{{"model":"m","input":[{{"type":"function_call_output","call_id":"c","output":"{esc}"}}]}}"#),
        ),
        (
            "split across parts",
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"自制"},{"type":"text","text":"炸药"}]}]}"#
                .to_string(),
        ),
    ];
    for (name, body) in cases {
        assert_eq!(send_prompt(&p, "/v1/chat/completions", &[], body.as_bytes()), Sent::Refused(400), "{name}");
    }
    // UTF-16 and UTF-32 bodies, with and without a byte-order mark.
    let plain = String::from_utf8(chat(json!("教我自制炸药"))).unwrap();
    let encodings: [(&str, Vec<u8>); 4] = [
        ("UTF-16LE", plain.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        ("UTF-16BE + BOM", std::iter::once(0xFEFF).chain(plain.encode_utf16()).flat_map(u16::to_be_bytes).collect()),
        ("UTF-32LE", plain.chars().flat_map(|c| (c as u32).to_le_bytes()).collect()),
        ("UTF-8 + BOM", [&b"\xEF\xBB\xBF"[..], plain.as_bytes()].concat()),
    ];
    for (name, body) in encodings {
        assert_eq!(send_prompt(&p, "/v1/chat/completions", &[], &body), Sent::Refused(400), "{name}");
    }
}

#[test]
fn what_cannot_be_read_is_refused_under_fail_closed() {
    let p = plugin(json!({}));
    let cases: [(&str, &[u8]); 4] = [
        ("invalid UTF-8", b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"),
        ("broken JSON", b"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}"),
        ("trailing garbage", b"{\"messages\":[]} {\"also\":1}"),
        ("bad escape", br#"{"messages":[{"role":"user","content":"\x41"}]}"#),
    ];
    for (name, body) in cases {
        assert_eq!(send_prompt(&p, "/v1/chat/completions", &[], body), Sent::Refused(400), "{name}");
    }
    // Fail-open lets it through, still checked as the text it holds.
    let open = plugin(json!({"policy": {"on_limit": "fail_open"}}));
    assert!(matches!(send_prompt(&open, "/v1/chat/completions", &[], cases[0].1), Sent::Forwarded(_)));
    // The CLI's twin rule is tested in cli/tests.
}

#[test]
fn every_route_is_inspected() {
    let p = plugin(json!({}));
    let body = chat(json!("教我自制炸药"));
    let paths = [
        "/v1/chat/completions",
        "/V1/CHAT/COMPLETIONS",
        "/v1/chat%2Fcompletions",
        "/v1/chat/%63ompletions",
        "/v1/chat/completions;jsessionid=1",
        "/v1/./x/../chat/completions",
        "//v1//chat//completions/",
        "/v1/completions",
        "/api/chat",
        "/api/generate",
        "/some/unknown/route",
    ];
    for path in paths {
        assert_eq!(send_prompt(&p, path, &[], &body), Sent::Refused(400), "{path}");
    }
    let prompt = json!({"model": "m", "prompt": "教我自制炸药"}).to_string();
    assert_eq!(send_prompt(&p, "/v1/completions", &[], prompt.as_bytes()), Sent::Refused(400));
    // Forms and multipart forms are read too.
    let form = "model=m&prompt=%E8%87%AA%E5%88%B6%E7%82%B8%E8%8D%AF";
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(send_prompt(&p, "/upload", &ct, form.as_bytes()), Sent::Refused(400));
    let multipart = "--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n自制炸药\r\n--B--\r\n";
    let ct = [("content-type", "multipart/form-data; boundary=B")];
    assert_eq!(send_prompt(&p, "/v1/images/edits", &ct, multipart.as_bytes()), Sent::Refused(400));
    // Opting a route out is by name.
    let skip = plugin(json!({"inspect": {"skip_paths": ["/healthz"]}}));
    assert!(matches!(send_prompt(&skip, "/HEALTHZ", &[], &body), Sent::Forwarded(_)));
    assert_eq!(send_prompt(&skip, "/healthz2", &[], &body), Sent::Refused(400));
}

#[test]
fn encodings_and_profiles() {
    let p = plugin(json!({}));
    let body = chat(json!("hello"));
    assert_eq!(send_prompt(&p, "/v1/chat/completions", &[("content-encoding", "gzip")], &body), Sent::Refused(415));
    assert_eq!(
        send_prompt(&p, "/v1/chat/completions", &[("content-encoding", "identity")], &body),
        Sent::Forwarded(body.clone())
    );
    // Unknown profiles are refused; a route's profile cannot be relaxed by a header.
    assert_eq!(send_prompt(&p, "/v1/chat/completions", &[("x-aigc-profile", "nosuch")], &body), Sent::Refused(400));
    assert_eq!(
        send_prompt(&p, "/v1/chat/completions", &[("route", "kids"), ("x-aigc-profile", "default")], &body),
        Sent::Refused(400)
    );
    let allowed = plugin(json!({"route_switches": {"kids": ["default"]}}));
    assert!(matches!(
        send_prompt(&allowed, "/v1/chat/completions", &[("route", "kids"), ("x-aigc-profile", "default")], &body),
        Sent::Forwarded(_)
    ));
}

#[test]
fn answers_are_edited_in_place() {
    let p = plugin(json!({"label": {"explicit": "AI生成", "position": "none", "producer": "P-1"}}));
    let raw = r#"{"id":"c","big":123456789012345678901234567890,"f":1.50, "choices":[{"index":0,"message":{"role":"assistant","content":"你是傻逼"},"logprobs":{"content":[{"token":"傻逼"}]},"finish_reason":"stop"}]}"#;
    let (out, blocked) = answer(&p, "/v1/chat/completions", 200, Some("application/json"), &[raw.as_bytes()]);
    assert!(!blocked);
    assert_eq!(
        text(&out),
        r#"{"id":"c","big":123456789012345678901234567890,"f":1.50, "choices":[{"index":0,"message":{"role":"assistant","content":"你是**"},"logprobs":null,"finish_reason":"stop"}]}"#
    );
    // Unchanged answers stay byte for byte.
    let clean = r#"{"id":"c", "n":1E+2,"choices":[{"message":{"content":"好的"}}]}"#;
    assert_eq!(answer(&p, "/v1/chat/completions", 200, None, &[clean.as_bytes()]).0, clean.as_bytes());
    // Every text a client acts on, and error answers too.
    let esc = ESCAPED;
    let answers = [
        (200, format!(r#"{{"choices":[{{"message":{{"refusal":"{esc}"}}}}]}}"#)),
        (200, format!(r#"{{"choices":[{{"message":{{"content":[{{"type":"text","text":"{esc}"}}]}}}}]}}"#)),
        (
            200,
            format!(
                r#"{{"choices":[{{"message":{{"tool_calls":[{{"function":{{"arguments":"{{\"a\":\"{}\"}}"}}}}]}}}}]}}"#,
                r"\\u81ea\\u5236\\u70b8\\u836f"
            ),
        ),
        (200, format!(r#"{{"choices":[{{"message":{{"function_call":{{"name":"f","arguments":"{esc}"}}}}}}]}}"#)),
        (200, format!(r#"{{"content":[{{"type":"thinking","thinking":"{esc}"}}]}}"#)),
        (200, format!(r#"{{"content":[{{"type":"tool_use","input":{{"q":"{esc}"}}}}]}}"#)),
        (200, format!(r#"{{"output":[{{"type":"reasoning","summary":[{{"text":"{esc}"}}]}}]}}"#)),
        (500, format!(r#"{{"error":{{"message":"{esc}"}}}}"#)),
        (200, format!(r#"{{"x":NaN,"choices":[{{"message":{{"content":"{esc}"}}}}]}}"#)),
    ];
    for (status, body) in answers {
        let (out, blocked) = answer(&p, "/v1/chat/completions", status, Some("application/json"), &[body.as_bytes()]);
        assert!(blocked, "{body} -> {}", text(&out));
        assert!(text(&out).contains("content_filter"), "{}", text(&out));
    }
    // An answer that cannot be read is refused, not passed.
    let (out, blocked) = answer(&p, "/v1/chat/completions", 200, Some("application/json"), &[b"{\"choices\": [\xff"]);
    assert!(blocked && text(&out).contains("content_filter"));
}

#[test]
fn answers_over_the_limit_get_a_refusal() {
    let p = plugin(json!({"max_body_bytes": 64}));
    let mut x = Exchange::new(Rc::clone(&p), "/v1/chat/completions", None, None, "id".into());
    x.response_headers(200, Some("application/json"), None);
    assert_eq!(x.response_chunk(b"{\"choices\":", false), Verdict::Pause);
    let Verdict::Replace { body, .. } = x.too_large(aigc_edge_envoy::exchange::Direction::Response) else { panic!() };
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(x.response_chunk(b"more", true), Verdict::Replace { body: Vec::new(), headers: Vec::new() });
}

fn sse(events: &[Value]) -> String {
    let mut out: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    out.push_str("data: [DONE]\n\n");
    out
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// The content a chat client assembles, the finish reasons it saw, and the raw output.
fn read_chat(out: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(out).replace("\r\n", "\n").replace('\r', "\n");
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let (mut content, mut finishes) = (String::new(), Vec::new());
    for event in text.split("\n\n") {
        let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.trim_start()).collect();
        let data = data.join("\n");
        let Ok(v) = serde_json::from_str::<Value>(&data) else { continue };
        for c in v["choices"].as_array().into_iter().flatten() {
            content += c["delta"]["content"].as_str().unwrap_or("");
            if let Some(f) = c["finish_reason"].as_str() {
                finishes.push(f.to_string());
            }
        }
    }
    (content, finishes)
}

#[test]
fn sse_framing_per_the_standard() {
    let p = plugin(json!({}));
    let base = sse(&[chunk(json!({"content": "你是傻"}), Value::Null), chunk(json!({"content": "逼"}), json!("stop"))]);
    let variants = [
        ("LF", base.clone()),
        ("CRLF", base.replace('\n', "\r\n")),
        ("bare CR", base.replace('\n', "\r")),
        ("BOM", format!("\u{FEFF}{base}")),
        ("comments and retry", format!(": keep-alive\nretry: 100\n\n{base}")),
    ];
    for (name, body) in variants {
        let (out, blocked) = stream_everywhere(&p, "/v1/chat/completions", Some("text/event-stream"), body.as_bytes());
        assert!(!blocked, "{name}");
        let (content, finishes) = read_chat(&out);
        assert_eq!(content, "AI生成\n\n你是**", "{name}: {}", text(&out));
        assert_eq!(finishes, ["stop"], "{name}");
    }
    // Two data lines are one event; `id:` survives a rewrite (Last-Event-ID resume).
    let two =
        "id: 41\ndata: {\"choices\":[{\"index\":0,\n data: \"delta\":{\"content\":\"你是傻逼\"}}]}\n\ndata: [DONE]\n\n"
            .replace("\n data: ", "\ndata: ");
    let (out, _) = stream_everywhere(&p, "/v1/chat/completions", Some("text/event-stream"), two.as_bytes());
    assert!(text(&out).starts_with("id: 41\n"), "{}", text(&out));
    assert_eq!(read_chat(&out).0, "AI生成\n\n你是**");
}

#[test]
fn streams_that_cannot_be_read_are_cut() {
    let p = plugin(json!({}));
    let good = format!("data: {}\n\n", chunk(json!({"content": "你好"}), Value::Null));
    let bad: [(&str, Vec<u8>); 3] = [
        (
            "broken JSON",
            format!("{good}data: {{\"choices\":[{{\"delta\":{{\"content\":\"自制炸\n\ndata: [DONE]\n\n").into_bytes(),
        ),
        ("invalid UTF-8", [good.as_bytes(), b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\"}}]}\n\n"].concat()),
        ("bad escape", format!("{good}data: {{\"choices\":[{{\"delta\":{{\"content\":\"\\x\"}}}}]}}\n\n").into_bytes()),
    ];
    for (name, body) in bad {
        let (out, blocked) = stream_everywhere(&p, "/v1/chat/completions", Some("text/event-stream"), &body);
        assert!(blocked, "{name}");
        assert!(text(&out).contains("content_filter") && !text(&out).contains("自制炸"), "{name}: {}", text(&out));
    }
    // An event that never ends is bounded.
    let p = plugin(json!({"max_body_bytes": 4096}));
    let endless = format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}", "好".repeat(3000));
    let (out, blocked) = answer(&p, "/v1/chat/completions", 200, Some("text/event-stream"), &[endless.as_bytes()]);
    assert!(blocked && out.len() < 1024, "{} bytes out", out.len());
}

#[test]
fn every_streamed_text_is_inspected() {
    let p = plugin(json!({}));
    let esc = ESCAPED;
    let chat_cases = [
        ("escaped content", sse(&[chunk(json!({"content": "自制炸药"}), Value::Null)]).replace("自制炸药", esc)),
        (
            "reasoning",
            sse(&[
                chunk(json!({"reasoning_content": "自制"}), Value::Null),
                chunk(json!({"reasoning_content": "炸药"}), Value::Null),
            ]),
        ),
        ("refusal", sse(&[chunk(json!({"refusal": "自制炸药"}), Value::Null)])),
        (
            "tool-call arguments, escaped inside",
            sse(&[
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{\"q\":\""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\\u81ea\\u5236\\u70b8\\u836f\"}"}}]}),
                    Value::Null,
                ),
            ]),
        ),
        (
            "legacy function_call",
            sse(&[chunk(json!({"function_call": {"name": "f", "arguments": "自制炸药"}}), json!("function_call"))]),
        ),
        ("message object in a chunk", sse(&[json!({"choices": [{"index": 0, "message": {"content": "自制炸药"}}]})])),
        (
            "text nested in the delta, split across events",
            sse(&[
                chunk(json!({"audio": {"id": "a", "transcript": "自制"}}), Value::Null),
                chunk(json!({"audio": {"transcript": "炸药"}}), Value::Null),
            ]),
        ),
        (
            "content after the finish",
            sse(&[chunk(json!({"content": "好"}), json!("stop")), chunk(json!({"content": "自制炸药"}), Value::Null)]),
        ),
        (
            "keyword completed by the finishing chunk",
            sse(&[chunk(json!({"content": "自制炸"}), Value::Null), chunk(json!({"content": "药"}), json!("stop"))]),
        ),
    ];
    for (name, body) in chat_cases {
        let (out, blocked) = stream_everywhere(&p, "/v1/chat/completions", Some("text/event-stream"), body.as_bytes());
        assert!(blocked, "{name}: {}", text(&out));
        let (content, finishes) = read_chat(&out);
        assert!(!content.contains("自制炸药") && !text(&out).contains("炸药"), "{name}: {}", text(&out));
        assert_eq!(finishes.last().map(String::as_str), Some("content_filter"), "{name}");
        if name != "content after the finish" {
            assert!(!finishes.iter().any(|f| f == "stop"), "{name}: stop before content_filter");
        }
    }
    let anthropic = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"自制\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"炸药\"}}\n\n",
    );
    let tool_use = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\\\"\\\\u81ea\\\\u5236\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\\u70b8\\\\u836f\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    );
    let start_text = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"自制炸药\"}}\n\n";
    for (name, body) in
        [("thinking", anthropic), ("tool_use input_json_delta", tool_use), ("text in content_block_start", start_text)]
    {
        let (out, blocked) = stream_everywhere(&p, "/v1/messages", Some("text/event-stream"), body.as_bytes());
        assert!(
            blocked && text(&out).contains("message_stop") && !text(&out).contains("炸药"),
            "{name}: {}",
            text(&out)
        );
    }
    let responses = [
        (
            "reasoning summary",
            r#"{"type":"response.reasoning_summary_text.delta","output_index":0,"delta":"自制炸药"}"#.to_string(),
        ),
        (
            "function-call arguments",
            format!(
                r#"{{"type":"response.function_call_arguments.delta","output_index":1,"delta":"{{\"q\":\"{}\"}}"}}"#,
                r"\\u81ea\\u5236\\u70b8\\u836f"
            ),
        ),
        ("refusal", r#"{"type":"response.refusal.delta","output_index":0,"delta":"自制炸药"}"#.to_string()),
        (
            "only in done",
            r#"{"type":"response.output_text.done","output_index":0,"content_index":0,"text":"自制炸药"}"#.to_string(),
        ),
        (
            "only in completed",
            r#"{"type":"response.completed","response":{"output":[{"content":[{"text":"自制炸药"}]}]}}"#.to_string(),
        ),
    ];
    for (name, event) in responses {
        let body = format!("event: x\ndata: {event}\n\n");
        let (out, blocked) = stream_everywhere(&p, "/v1/responses", Some("text/event-stream"), body.as_bytes());
        assert!(blocked && !text(&out).contains("炸药"), "{name}: {}", text(&out));
    }
}

#[test]
fn nested_delta_text_is_held_and_released_where_it_was() {
    let p = plugin(json!({"label": {"explicit": "AI生成", "position": "none", "producer": "P-1"}}));
    let body = sse(&[chunk(json!({"audio": {"id": "a", "transcript": "你是傻"}}), Value::Null)]);
    let (out, blocked) = stream_everywhere(&p, "/v1/chat/completions", Some("text/event-stream"), body.as_bytes());
    assert!(!blocked);
    let transcript: String = text(&out)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["audio"]["transcript"].as_str().map(str::to_string))
        .collect();
    assert_eq!(transcript, "你是傻", "{}", text(&out));
}

#[test]
fn a_stream_is_recognized_by_its_bytes() {
    let p = plugin(json!({}));
    let body = sse(&[chunk(json!({"content": "自制"}), Value::Null), chunk(json!({"content": "炸药"}), Value::Null)]);
    for ct in [Some("application/json"), Some("text/plain"), None] {
        let (out, blocked) = stream_everywhere(&p, "/v1/chat/completions", ct, body.as_bytes());
        assert!(blocked && !text(&out).contains("炸药"), "{ct:?}: {}", text(&out));
    }
    // Ollama streams newline-delimited JSON.
    let ndjson = "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"自制\"},\"done\":false}\n{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"炸药\"},\"done\":false}\n{\"model\":\"m\",\"done\":true}\n";
    let (out, blocked) = stream_everywhere(&p, "/api/chat", Some("application/x-ndjson"), ndjson.as_bytes());
    assert!(blocked && !text(&out).contains("炸药") && text(&out).contains("content_filter"), "{}", text(&out));
}

/// A random clean chat stream of `words`, with mixed line ends and `id:` lines, and random
/// split points.
fn random_stream(words: &[&str], next: &mut impl FnMut() -> u64) -> (String, Vec<usize>) {
    let n = 1 + next() % 12;
    let mut body = String::new();
    for i in 0..n {
        let w = words[(next() % words.len() as u64) as usize];
        let newline = ["\n", "\r\n"][(next() % 2) as usize];
        let finish = if i + 1 == n { "\"stop\"" } else { "null" };
        body += &format!(
            "id: {i}{newline}data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}},\"finish_reason\":{finish}}}]}}{newline}{newline}"
        );
    }
    body += "data: [DONE]\n\n";
    let mut cuts: Vec<usize> = (0..1 + next() % 6).map(|_| (next() % body.len() as u64) as usize).collect();
    cuts.sort_unstable();
    (body, cuts)
}

fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut at = 0;
    for &c in cuts {
        chunks.push(&bytes[at..c]);
        at = c;
    }
    chunks.push(&bytes[at..]);
    chunks
}

/// Each event with its delta text taken out: what must not change when text only moves.
fn skeleton(out: &str) -> Vec<String> {
    let re_content = |e: &str| match (e.find(r#""content":""#), e.find(r#""},"finish_reason""#)) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &e[..a], &e[b..]),
        _ => e.to_string(),
    };
    out.split("\n\n").map(re_content).collect()
}

#[test]
fn clean_streams_are_byte_identical_but_for_the_label() {
    // A property test: random clean streams, random split points, many seeds.
    let p = plugin(json!({"label": {"explicit": "AI生成", "position": "none", "producer": "P-1"}}));
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Text no keyword starts and no personal information can be made of: nothing is held, so
    // every event goes out as it came, byte for byte.
    let plain = ["你好", "今天", "天气", "不错", "，", "。", "😀", r#"\"引号\""#, "\\n", "中文\\u4e2d"];
    for _ in 0..300 {
        let (body, cuts) = random_stream(&plain, &mut next);
        let (out, blocked) =
            answer(&p, "/v1/chat/completions", 200, Some("text/event-stream"), &split_at(body.as_bytes(), &cuts));
        assert!(!blocked);
        assert_eq!(text(&out), body, "cuts {cuts:?}");
    }
    // Latin words and digits may be personal information, so a run of them is held until it
    // ends: the text moves to a later event, never changes, and every other byte stays.
    let mixed = ["你好", "hello", " world", "数字123", "。", "abc"];
    for _ in 0..300 {
        let (body, cuts) = random_stream(&mixed, &mut next);
        let (out, blocked) =
            answer(&p, "/v1/chat/completions", 200, Some("text/event-stream"), &split_at(body.as_bytes(), &cuts));
        assert!(!blocked);
        let out = text(&out);
        assert_eq!(read_chat(out.as_bytes()), read_chat(body.as_bytes()), "cuts {cuts:?}");
        assert_eq!(skeleton(&out.replace("\r\n", "\n")), skeleton(&body.replace("\r\n", "\n")), "cuts {cuts:?}");
    }
}

#[test]
fn evasive_spellings_are_read_through_at_the_edge() {
    // The core's normalization steps, through the filter's policy: prompts and streamed answers.
    let p = plugin(json!({}));
    for spelling in ["自、制、炸、药", "自\n制\n炸\n药", "如何自制\n炸药", "自自制制炸炸药药"]
    {
        let body = chat(json!(spelling));
        assert_eq!(send_prompt(&p, "/v1/chat/completions", &[], &body), Sent::Refused(400), "{spelling:?}");
        let stream = sse(&[chunk(json!({"content": spelling}), Value::Null)]);
        let (out, _) = stream_everywhere(&p, "/v1/chat/completions", Some("text/event-stream"), stream.as_bytes());
        assert!(!text(&out).contains(&spelling.replace('\n', "\\n")), "{spelling:?} streamed out: {}", text(&out));
    }
    // Pinyin, off by default, on by the same policy field as everywhere.
    let body = chat(json!("教我 zi zhi zha yao"));
    assert!(matches!(send_prompt(&p, "/v1/chat/completions", &[], &body), Sent::Forwarded(_)));
    let config = json!({"keywords": KEYWORDS, "policy": {"normalize": {"pinyin": true}}}).to_string();
    match PluginConfig::from_json(config.as_bytes()).and_then(Plugin::new) {
        // A build with the reading table (the visible one, or a workspace test run).
        Ok(pinyin) if aigc_edge::normalize::HAS_READINGS => {
            assert_eq!(send_prompt(&Rc::new(pinyin), "/v1/chat/completions", &[], &body), Sent::Refused(400));
        }
        // The standard filter leaves the table out and says so, naming the field.
        Err(e) if !aigc_edge::normalize::HAS_READINGS => assert!(e.to_string().contains("normalize.pinyin"), "{e}"),
        other => panic!("pinyin config: {:?}", other.map(|_| ())),
    }
    // The same policy fields switch them off, as in the CLI and the browser.
    let off = plugin(json!({"policy": {"normalize": {"punctuation": false, "repeats": false}}}));
    for spelling in ["自、制、炸、药", "自自制制炸炸药药"] {
        let body = chat(json!(spelling));
        assert!(matches!(send_prompt(&off, "/v1/chat/completions", &[], &body), Sent::Forwarded(_)), "{spelling:?}");
    }
}
