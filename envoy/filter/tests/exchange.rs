//! The filter's logic without Envoy: the exchange state machine driven the way the proxy-wasm
//! glue drives it, with SSE bodies split at every byte.

use std::rc::Rc;

use aigc_edge_envoy::config::{Plugin, PluginConfig};
use aigc_edge_envoy::exchange::{Exchange, Verdict};
use serde_json::{json, Value};

const KEYWORDS: &str = "自制炸药\tA.1d\n傻逼\tA.4c\tmask\n散布谣言\tA.1g\n";

fn plugin(extra: Value) -> Rc<Plugin> {
    let mut config = json!({
        "keywords": KEYWORDS,
        "policy": {"actions": {"categories": {"A.1g": "flag"}}},
        "label": {"explicit": "AI生成", "position": "start", "producer": "P-1", "body_field": true},
        "profiles": {"minor": {"actions": {"default": "block", "uncategorized": "block"}}},
        "profile_header": "x-aigc-profile",
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let config = PluginConfig::from_json(config.to_string().as_bytes()).unwrap();
    Rc::new(Plugin::new(config).unwrap())
}

fn exchange(p: &Rc<Plugin>, path: &str) -> Exchange {
    Exchange::new(Rc::clone(p), path, None, None, "id-1".into())
}

fn chat_sse(pieces: &[&str], newline: &str) -> Vec<u8> {
    let mut out = String::new();
    let ev = |choice: Value| {
        format!(
            "data: {}{newline}{newline}",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]})
        )
    };
    out += &ev(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}));
    for p in pieces {
        out += &ev(json!({"index": 0, "delta": {"content": p}, "finish_reason": null}));
    }
    out += &ev(json!({"index": 0, "delta": {}, "finish_reason": "stop"}));
    out += &format!("data: [DONE]{newline}{newline}");
    out.into_bytes()
}

/// The `data` of each event of an SSE body, read as a client does (data lines joined by `\n`).
fn events(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8(body.to_vec()).unwrap().replace("\r\n", "\n").replace('\r', "\n");
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// `(joined content, last finish_reason, saw [DONE])` from an SSE body.
fn read_chat(body: &[u8]) -> (String, Option<String>, bool) {
    let (mut content, mut finish, mut done) = (String::new(), None, false);
    for data in events(body) {
        let data = data.as_str();
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        for c in v["choices"].as_array().unwrap() {
            if let Some(s) = c["delta"]["content"].as_str() {
                content += s;
            }
            if let Some(f) = c["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    (content, finish, done)
}

fn run_stream(p: &Rc<Plugin>, path: &str, chunks: &[&[u8]]) -> Vec<u8> {
    let mut x = exchange(p, path);
    let h = x.response_headers(200, Some("text/event-stream"), None);
    assert!(!h.buffer_body);
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        match x.response_chunk(chunk, i + 1 == chunks.len()) {
            Verdict::Replace { body, .. } => out.extend(body),
            other => panic!("{other:?}"),
        }
    }
    out
}

#[test]
fn chat_stream_cases_split_at_every_byte() {
    let p = plugin(json!({}));
    let cases: [(&[&str], &str, &str, Option<&str>); 4] = [
        (&["你好", "世界"], "\n", "AI生成\n\n你好世界", Some("stop")),
        (&["你这", "个傻", "逼啊"], "\n", "AI生成\n\n你这个**啊", Some("stop")),
        (&["你这", "个傻", "逼啊"], "\r\n", "AI生成\n\n你这个**啊", Some("stop")),
        (&["下面", "教你自", "制炸", "药的方法"], "\n", "AI生成\n\n下面教你", Some("content_filter")),
    ];
    for (pieces, newline, want, finish) in cases {
        let body = chat_sse(pieces, newline);
        let mut splits: Vec<Vec<&[u8]>> = (0..=body.len()).map(|k| vec![&body[..k], &body[k..]]).collect();
        splits.push(body.chunks(1).collect());
        for chunks in splits {
            let out = run_stream(&p, "/v1/chat/completions", &chunks);
            let (content, got_finish, done) = read_chat(&out);
            let at: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
            assert_eq!(content, want, "{pieces:?} {at:?}");
            assert_eq!(got_finish.as_deref(), finish, "{pieces:?} {at:?}");
            assert!(done, "{pieces:?} {at:?}: no [DONE]");
        }
    }
}

#[test]
fn segmentation_check_in_streams_split_at_every_byte() {
    let lexicon = include_str!("../../../tests/fixtures/lexicon.txt");
    let config = json!({
        "keywords": "法轮\tA.1a\tmask\n傻逼\tA.4c\tmask\n",
        "policy": {"segmentation": {"text": lexicon}},
    });
    if !aigc_edge::segment::HAS_SEGMENTATION {
        // The standard build (tested alone): refused by name (test_e2e.py runs it in Envoy too).
        let err = match PluginConfig::from_json(config.to_string().as_bytes()) {
            Err(e) => e.to_string(),
            Ok(config) => Plugin::new(config).err().map(|e| e.to_string()).unwrap_or_default(),
        };
        assert!(err.contains("`policy.segmentation`"), "{err}");
        return;
    }
    let p = plugin(config);
    let cases: [(&[&str], &str); 2] = [
        (&["大家合", "法轮流", "发言"], "AI生成\n\n大家合法轮流发言"),
        (&["说法轮", "，你这个傻", "逼"], "AI生成\n\n说**，你这个**"),
    ];
    for (pieces, want) in cases {
        let body = chat_sse(pieces, "\n");
        let mut splits: Vec<Vec<&[u8]>> = (0..=body.len()).map(|k| vec![&body[..k], &body[k..]]).collect();
        splits.push(body.chunks(1).collect());
        for chunks in splits {
            let (content, _, done) = read_chat(&run_stream(&p, "/v1/chat/completions", &chunks));
            let at: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
            assert_eq!(content, want, "{pieces:?} {at:?}");
            assert!(done, "{pieces:?} {at:?}: no [DONE]");
        }
    }
}

#[test]
fn multi_line_data_fields_are_one_event() {
    let p = plugin(json!({}));
    let first = format!(
        "data: {}\n\n",
        json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    );
    let split = "data: {\"id\":\"c\",\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\"}}]}\n\n";
    let body = format!("{first}{split}data: [DONE]\n\n");
    let out = String::from_utf8(run_stream(&p, "/v1/chat/completions", &[body.as_bytes()])).unwrap();
    let (content, _, done) = read_chat(out.as_bytes());
    assert_eq!(content, "AI生成\n\n你好");
    assert!(done);
    assert!(out.split("\n\n").all(|e| e.lines().all(|l| l.is_empty() || l.starts_with("data: "))), "{out}");
}

#[test]
fn stream_holds_back_at_most_the_longest_keyword() {
    let p = plugin(json!({}));
    let mut x = exchange(&p, "/v1/chat/completions");
    x.response_headers(200, Some("text/event-stream"), None);
    let text = "这是一个很长的回答，".repeat(50);
    let chars: Vec<char> = text.chars().collect();
    let mut emitted = 0usize;
    for (i, c) in chars.iter().enumerate() {
        let ev = format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": c.to_string()}}]}));
        let Verdict::Replace { body, .. } = x.response_chunk(ev.as_bytes(), false) else { panic!() };
        emitted += read_chat(&body).0.chars().count();
        // The label (6 chars) plus at most the longest keyword (4 chars) minus one held back.
        assert!(i + 1 + 6 - emitted <= 4, "held {} chars after {} in", i + 1 + 6 - emitted, i + 1);
    }
}

#[test]
fn anthropic_and_responses_streams() {
    let p = plugin(json!({}));
    let anthropic = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"你这个傻\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"逼\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    for k in 0..=anthropic.len() {
        let b = anthropic.as_bytes();
        let out = String::from_utf8(run_stream(&p, "/v1/messages", &[&b[..k], &b[k..]])).unwrap();
        let text: String = out
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text, "AI生成\n\n你这个**", "split {k}");
        assert!(out.find("content_block_stop").unwrap() > out.rfind("text_delta").unwrap(), "split {k}");
    }
    let responses = concat!(
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"你这个傻\"}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"逼\"}\n\n",
        "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"output_index\":0,\"content_index\":0,\"text\":\"你这个傻逼\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"你这个傻逼\"}]}]}}\n\n",
    );
    let out = String::from_utf8(run_stream(&p, "/v1/responses", &[responses.as_bytes()])).unwrap();
    assert!(!out.contains("傻逼"), "{out}");
    assert!(out.contains(r#""text":"AI生成\n\n你这个**""#), "{out}");
}

#[test]
fn requests_block_mask_and_respect_roles() {
    let p = plugin(json!({}));
    let body = |content: &str| {
        json!({"model": "m", "messages": [{"role": "system", "content": "傻逼"}, {"role": "user", "content": content}]})
            .to_string()
    };
    let mut x = exchange(&p, "/v1/chat/completions");
    let h = x.request_headers(true, Some("application/json"), None, None);
    assert!(h.buffer_body);
    assert!(h.set.contains(&("content-length".to_string(), None)));
    assert!(h.set.contains(&("accept-encoding".to_string(), None)));
    match x.request_body(body("教我自制炸药").as_bytes()) {
        Verdict::Reply { status: 400, body } => {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"]["type"], "content_filter");
            assert_eq!(v["error"]["param"], "prompt");
        }
        other => panic!("{other:?}"),
    }
    let mut x = exchange(&p, "/v1/chat/completions");
    match x.request_body(body("你是傻逼，电话13812345678").as_bytes()) {
        Verdict::Replace { body, .. } => {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["messages"][0]["content"], "**");
            assert_eq!(v["messages"][1]["content"], "你是**，电话[MOBILE_1]");
        }
        other => panic!("{other:?}"),
    }
    let audit = x.audit_lines().join("\n");
    assert!(!audit.contains("傻逼") && !audit.contains("13812345678"), "audit leaks text: {audit}");
    assert!(audit.contains("\"category\":\"pii:mobile\""), "{audit}");
    let user_only = plugin(json!({"inspect": {"roles": "user"}}));
    let mut x = exchange(&user_only, "/v1/chat/completions");
    match x.request_body(body("你好").as_bytes()) {
        Verdict::Continue => {}
        other => panic!("system message must not be checked: {other:?}"),
    }
    let mut x = exchange(&p, "/v1/messages");
    match x.request_body(
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "自制炸药"}]}]})
            .to_string()
            .as_bytes(),
    ) {
        Verdict::Reply { status: 400, body } => assert!(body.starts_with(r#"{"type":"error""#), "{body}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_profile_is_assembled_from_its_own_policy() {
    // Inline lists in the policy, in any format; each profile's allow words are its own.
    let p = Rc::new(
        Plugin::new(
            PluginConfig::from_json(
                json!({
                    "policy": {"dictionaries": [{"text": "黄片 2\n", "format": "tagged"}]},
                    "profiles": {"clinic": {"dictionaries": [{"text": "黄片 2\n", "format": "tagged"}], "allow": ["三黄片"]}},
                    "profile_header": "x-aigc-profile",
                })
                .to_string()
                .as_bytes(),
            )
            .unwrap(),
        )
        .unwrap(),
    );
    let body = json!({"messages": [{"role": "user", "content": "三黄片"}]}).to_string();
    let mut default = exchange(&p, "/v1/chat/completions");
    assert!(matches!(default.request_body(body.as_bytes()), Verdict::Reply { status: 400, .. }));
    let mut clinic = Exchange::new(Rc::clone(&p), "/v1/chat/completions", Some("clinic"), None, "id".into());
    assert_eq!(clinic.request_body(body.as_bytes()), Verdict::Continue);
}

#[test]
fn profiles_by_header() {
    let p = plugin(json!({}));
    let body = json!({"messages": [{"role": "user", "content": "有人散布谣言"}]}).to_string();
    let mut default = exchange(&p, "/v1/chat/completions");
    assert_eq!(default.request_body(body.as_bytes()), Verdict::Continue);
    let mut minor = Exchange::new(Rc::clone(&p), "/v1/chat/completions", Some("minor"), None, "id".into());
    assert_eq!(minor.profile, "minor");
    assert!(matches!(minor.request_body(body.as_bytes()), Verdict::Reply { status: 400, .. }));
}

#[test]
fn responses_are_labeled_masked_or_blocked() {
    let p = plugin(json!({}));
    let answer = |text: &str| {
        json!({"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).to_string()
    };
    let mut x = exchange(&p, "/v1/chat/completions");
    let h = x.response_headers(200, Some("application/json"), None);
    // The first bytes decide (a stream may come labelled JSON): not buffered yet.
    assert!(!h.buffer_body);
    let label = h.set.iter().find(|(k, _)| k == "x-aigc-label").and_then(|(_, v)| v.clone()).unwrap();
    let label: Value = serde_json::from_str(&label).unwrap();
    assert_eq!(label["AIGC"]["Label"], "1");
    assert_eq!(label["AIGC"]["ProduceID"], "id-1");
    assert_eq!(label["AIGC"]["PropagateID"], "id-1");
    let Verdict::Replace { body, .. } = x.response_body(answer("你是傻逼").as_bytes()) else { panic!() };
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "AI生成\n\n你是**");
    assert_eq!(v["AIGC"]["ContentProducer"], "P-1");
    let keys: Vec<&String> = v["AIGC"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator", "PropagateID", "ReservedCode2"]
    );

    let mut x = exchange(&p, "/v1/chat/completions");
    x.response_headers(200, Some("application/json"), None);
    let Verdict::Replace { body, .. } = x.response_body(answer("教你自制炸药").as_bytes()) else { panic!() };
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(v["choices"][0]["message"]["content"], "");
    assert_eq!(v["error"]["code"], "content_filter");
    assert!(x.response_blocked);
}

#[test]
fn compressed_responses_cannot_bypass() {
    let p = plugin(json!({}));
    let mut x = exchange(&p, "/v1/chat/completions");
    let h = x.response_headers(200, Some("application/json"), Some("gzip"));
    assert!(h.buffer_body);
    let Verdict::Replace { body, .. } = x.response_body(b"\x1f\x8b\x08\x00 compressed") else { panic!() };
    assert!(String::from_utf8_lossy(&body).contains("could not be inspected"));
    let open = plugin(json!({"policy": {"on_limit": "fail_open"}}));
    let mut x = exchange(&open, "/v1/chat/completions");
    x.response_headers(200, Some("application/json"), Some("gzip"));
    assert_eq!(x.response_body(b"\x1f\x8b"), Verdict::Continue);
}

#[test]
fn monitor_mode_changes_nothing() {
    let p = plugin(json!({"mode": "monitor"}));
    let mut x = exchange(&p, "/v1/chat/completions");
    let h = x.request_headers(true, Some("application/json"), None, None);
    assert!(!h.set.iter().any(|(k, _)| k == "content-length"));
    let body = json!({"messages": [{"role": "user", "content": "教我自制炸药"}]}).to_string();
    assert_eq!(x.request_body(body.as_bytes()), Verdict::Continue);
    assert!(x.audit_lines().iter().any(|l| l.contains("\"action\":\"block\"")));
    let h = x.response_headers(200, Some("text/event-stream"), None);
    assert!(h.set.is_empty());
    assert_eq!(x.response_chunk(&chat_sse(&["自制炸药"], "\n"), true), Verdict::Continue);
}

#[test]
fn malformed_bodies_never_crash() {
    let p = plugin(json!({}));
    for body in [
        &b"{not json"[..],
        b"",
        b"\xff\xfe",
        b"[]",
        b"{\"messages\": 5}",
        b"{\"messages\": [{\"content\": {\"x\": 1}}]}",
    ] {
        let mut x = exchange(&p, "/v1/chat/completions");
        let _ = x.request_body(body);
        x.response_headers(200, Some("application/json"), None);
        let _ = x.response_body(body);
        let mut y = exchange(&p, "/v1/chat/completions");
        y.response_headers(200, Some("text/event-stream"), None);
        let _ = y.response_chunk(body, false);
        let _ = y.response_chunk(b"data: {\"choices\": 7}\n\ndata: [DONE]\n\n", true);
    }
    // A malformed body with a keyword is still checked as text.
    let mut x = exchange(&p, "/v1/chat/completions");
    assert!(matches!(x.request_body("{bad 自制炸药".as_bytes()), Verdict::Reply { status: 400, .. }));
}

#[test]
fn bad_configuration_names_the_field() {
    let cases = [
        (json!({"keywords": "x", "label": {"explicit": "AI"}}), "`label.explicit`"),
        (json!({"keywords": "x", "label": {"header": "x-label"}}), "`label.header`"),
        (json!({"keywords": "x", "label": {"producer": "有 空格"}}), "`label.producer`"),
        // The standard build refuses the field; the visible build refuses the short key.
        (json!({"keywords": "x", "label": {"image_watermark": {"key": "short"}}}), "`label.image_watermark"),
        (json!({"keywords": "x", "label": {"image_watermark": {"secret": "k"}}}), "unknown field `secret`"),
        (json!({"keywords": "x", "policy": {"limits": {"max_carry_bytes": 0}}}), "`policy.limits.max_carry_bytes`"),
        (
            json!({"keywords": "x", "profiles": {"kid": {"actions": {"default": "nope"}}}}),
            "`profiles.kid.actions.default`",
        ),
        (json!({"keywords": "x", "route_profiles": {"r": "ghost"}}), "`route_profiles.r`"),
        (json!({"keywords": "x", "modee": "monitor"}), "unknown field `modee`"),
        // Nested fields of the plugin's own configuration are named by their path too.
        (json!({"keywords": "x", "guard": {"cluster": "g", "stream": {"mode": "later"}}}), "`guard.stream.mode`"),
        (json!({"keywords": "x", "label": {"visible": {"corner": "top-left"}}}), "`label.visible.text`"),
        (json!({"keywords": "x", "dictionary_fetch": {"cluster": "c"}}), "`dictionary_fetch.path`"),
        (json!({"keywords": "x", "guard": {"cluster": "g", "timeout_ms": "soon"}}), "`guard.timeout_ms`"),
        (json!({"keywords": "x", "guard": {"timeout_ms": 100}}), "`guard.cluster`"),
        (json!({}), "`keywords`"),
        (json!({"keywords": "x", "profiles": "minor"}), "`profiles`: expected an object"),
        (json!({"keywords": "x", "policy": 5}), "`policy`"),
        // No VM can read a file: refused at configure, not answered 503 forever.
        (json!({"keywords": "x", "policy": {"dictionaries": [{"path": "k.txt"}]}}), "`policy.dictionaries[0].path`"),
        (json!({"keywords": "x", "policy": {"segmentation": {"path": "dict.txt"}}}), "`policy.segmentation"),
        (
            json!({"dictionary_fetch": {"cluster": "c", "path": "/d"}, "profiles": {"kid": {"dictionaries": [{"path": "k.txt"}]}}}),
            "`profiles.kid.dictionaries[0].path`",
        ),
    ];
    for (config, want) in cases {
        let err = PluginConfig::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
        assert!(err.contains(want), "{config}: {err}");
    }
}

const PNG: [u8; 70] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21, 196,
    137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153, 61, 29, 0, 0, 0,
    0, 73, 69, 78, 68, 174, 66, 96, 130,
];

fn produce_id_of(bytes: &[u8]) -> Option<String> {
    let (_, labels) = aigc_edge::files::read_labels(bytes).ok()?;
    labels.first()?.parsed.label.as_ref().map(|l| l.produce_id.clone())
}

#[test]
fn generated_files_get_the_implicit_label() {
    let p = plugin(json!({}));
    // A file answer (image/png) from an inspected API route.
    let mut x = exchange(&p, "/v1/images/generations");
    let h = x.response_headers(200, Some("image/png"), None);
    assert!(h.buffer_body);
    let Verdict::Replace { body, .. } = x.response_body(&PNG) else { panic!() };
    assert_eq!(produce_id_of(&body).as_deref(), Some("id-1"));
    // OpenAI images API: b64_json decoded, labeled, re-encoded; the prompt is checked.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut x = exchange(&p, "/v1/images/generations");
    assert!(matches!(
        x.request_body(json!({"prompt": "自制炸药的图"}).to_string().as_bytes()),
        Verdict::Reply { status: 400, .. }
    ));
    x.response_headers(200, Some("application/json"), None);
    let answer = json!({"created": 1, "data": [{"b64_json": b64.encode(PNG), "revised_prompt": "a cat"}]}).to_string();
    let Verdict::Replace { body, .. } = x.response_body(answer.as_bytes()) else { panic!() };
    let v: Value = serde_json::from_slice(&body).unwrap();
    let image = b64.decode(v["data"][0]["b64_json"].as_str().unwrap()).unwrap();
    assert_eq!(produce_id_of(&image).as_deref(), Some("id-1"));
    // Not a format that carries a label: passed through, noted.
    let mut x = exchange(&p, "/v1/images/generations");
    x.response_headers(200, Some("image/svg+xml"), None);
    assert_eq!(x.response_body(b"\x00<svg/>"), Verdict::Continue);
    assert!(x.audit_lines()[0].contains("unlabeled-file"));
}

/// A guard answer in the qwen3guard format.
fn qwen(content: &str) -> Result<(u16, Vec<u8>), String> {
    Ok((200, json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string().into_bytes()))
}

fn guarded(extra: Value) -> Rc<Plugin> {
    let mut guard = json!({"cluster": "guard", "model": "Qwen3Guard-Gen-0.6B"});
    if let (Some(g), Some(e)) = (guard.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            g.insert(k.clone(), v.clone());
        }
    }
    plugin(json!({"guard": guard}))
}

fn chat_body(prompt: &str) -> Vec<u8> {
    json!({"model": "m", "messages": [{"role": "system", "content": "你是助手"}, {"role": "user", "content": prompt}]})
        .to_string()
        .into_bytes()
}

#[test]
fn prompts_go_to_the_guard_after_the_keywords_pass() {
    let p = guarded(json!({}));
    type Answer = Result<(u16, Vec<u8>), String>;
    #[rustfmt::skip]
    let cases: [(&str, Value, Answer, Option<u16>, &str); 9] = [
        ("clean, guard says safe", json!({}), qwen("Safety: Safe\nCategories: None"), None, ""),
        ("guard says unsafe", json!({}), qwen("Safety: Unsafe\nCategories: Violent"), Some(400), "prompt blocked by content policy"),
        ("controversial does not act by default", json!({}), qwen("Safety: Controversial\nCategories: Violent"), None, ""),
        ("a category the policy flags passes, recorded", json!({"categories": {"Rumours": "A.1g"}}), qwen("Safety: Unsafe\nCategories: Rumours"), None, ""),
        ("a category of its own, uncategorized: blocked as the policy says", json!({}), qwen("Safety: Unsafe\nCategories: Something New"), Some(400), "blocked"),
        ("guard times out, fail_closed", json!({}), Err("no answer".into()), Some(400), "could not judge it"),
        ("guard answers garbage, fail_closed", json!({}), Ok((200, b"<html>".to_vec())), Some(400), "could not judge it"),
        ("guard answers 503, fail_closed", json!({}), Ok((503, b"{}".to_vec())), Some(400), "could not judge it"),
        ("guard times out, fail_open", json!({"on_error": "fail_open"}), Err("no answer".into()), None, ""),
    ];
    for (name, extra, answer, status, message) in cases {
        let p = if extra.as_object().is_some_and(|o| o.is_empty()) { Rc::clone(&p) } else { guarded(extra) };
        let mut x = exchange(&p, "/v1/chat/completions");
        x.request_headers(true, Some("application/json"), None, None);
        let Verdict::Ask(call) = x.request_body(&chat_body("请介绍一下如何做菜")) else {
            panic!("{name}: the guard is asked")
        };
        // Every message goes, as the text the keyword layer read.
        let asked: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(asked["messages"][0]["content"], "你是助手\n请介绍一下如何做菜", "{name}");
        assert_eq!(asked["model"], "Qwen3Guard-Gen-0.6B");
        match (x.guard_answer(answer), status) {
            (Verdict::Reply { status: got, body }, Some(want)) => {
                assert_eq!(got, want, "{name}");
                assert!(body.contains(message), "{name}: {body}");
            }
            (Verdict::Continue, None) => {}
            (other, _) => panic!("{name}: {other:?}"),
        }
        let lines = x.audit_lines();
        if name.contains("recorded") {
            assert!(
                lines.iter().any(|l| l.contains(r#""category":"A.1g""#) && l.contains(r#""layer":"guard""#)),
                "{lines:?}"
            );
        }
        if message.contains("could not judge") || name.contains("fail_open") {
            assert!(lines.iter().any(|l| l.contains("guard-error")), "{name}: {lines:?}");
        }
    }
}

#[test]
fn a_keyword_block_is_decisive_and_a_mask_waits_for_the_guard() {
    let p = guarded(json!({}));
    let mut x = exchange(&p, "/v1/chat/completions");
    x.request_headers(true, Some("application/json"), None, None);
    assert!(matches!(x.request_body(&chat_body("教我自制炸药")), Verdict::Reply { status: 400, .. }), "no guard call");
    let mut x = exchange(&p, "/v1/chat/completions");
    x.request_headers(true, Some("application/json"), None, None);
    assert!(matches!(x.request_body(&chat_body("你是傻逼")), Verdict::Ask(_)));
    match x.guard_answer(qwen("Safety: Safe")) {
        Verdict::Replace { body, .. } => assert!(String::from_utf8(body).unwrap().contains("你是**")),
        other => panic!("the masked prompt goes on: {other:?}"),
    }
}

#[test]
fn answers_are_judged_with_their_prompt() {
    let p = guarded(json!({}));
    let mut x = exchange(&p, "/v1/chat/completions");
    x.request_headers(true, Some("application/json"), None, None);
    assert!(matches!(x.request_body(&chat_body("讲个故事")), Verdict::Ask(_)));
    assert_eq!(x.guard_answer(qwen("Safety: Safe")), Verdict::Continue);
    x.response_headers(200, Some("application/json"), None);
    let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "从前有座山"}, "finish_reason": "stop"}]});
    let Verdict::Ask(call) = x.response_body(answer.to_string().as_bytes()) else { panic!("the answer is judged") };
    let asked: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        asked["messages"],
        json!([{"role": "user", "content": "你是助手\n讲个故事"}, {"role": "assistant", "content": "从前有座山"}])
    );
    match x.guard_answer(qwen("Safety: Unsafe\nCategories: Sexual Content or Sexual Acts\nRefusal: No")) {
        Verdict::Replace { body, .. } => {
            let body = String::from_utf8(body).unwrap();
            assert!(body.contains("content_filter") && !body.contains("从前有座山"), "{body}");
        }
        other => panic!("a refusal replaces the answer: {other:?}"),
    }
    assert!(x.response_blocked);
}

#[test]
fn guard_configuration_errors_name_the_field() {
    for (guard, field) in [
        (json!({"model": "x"}), "`guard.cluster`"),
        (json!({"cluster": "g", "timeout_ms": 0}), "`guard.timeout_ms`"),
        (json!({"cluster": "g", "path": "v1"}), "`guard.path`"),
        (json!({"cluster": "g", "severity": "low"}), "`guard.severity`"),
        (json!({"cluster": "g", "categories": {"Violent": "Z"}}), "`guard.categories.Violent`"),
        (json!({"cluster": "g", "on_error": "maybe"}), "`guard.on_error`"),
        (json!({"cluster": "g", "protocol": "llama"}), "`guard.protocol`"),
    ] {
        let config = json!({"keywords": KEYWORDS, "guard": guard});
        let e = PluginConfig::from_json(config.to_string().as_bytes()).unwrap_err().to_string();
        assert!(e.contains(field), "{guard}: {e}");
    }
}

/// A stream through the guard layer: every call answered at once by `unsafe_if` (a text
/// containing it is Violent), as the glue would hand the answers back.
fn run_guarded_stream(p: &Rc<Plugin>, chunks: &[&[u8]], unsafe_if: &str) -> Vec<u8> {
    let mut x = exchange(p, "/v1/chat/completions");
    x.response_headers(200, Some("text/event-stream"), None);
    let mut out = Vec::new();
    let answer_all = |x: &mut Exchange, out: &mut Vec<u8>| {
        for (id, call) in x.take_stream_calls() {
            let asked: Value = serde_json::from_slice(&call.body).unwrap();
            let text = asked["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
            let verdict = if text.contains(unsafe_if) { "Safety: Unsafe\nCategories: Violent" } else { "Safety: Safe" };
            if let Some(Verdict::Replace { body, .. }) = x.stream_guard_answer(id, qwen(verdict)) {
                out.extend(body);
            }
        }
    };
    for (i, chunk) in chunks.iter().enumerate() {
        x.tick(i as u64);
        match x.response_chunk(chunk, i + 1 == chunks.len()) {
            Verdict::Replace { body, .. } => out.extend(body),
            Verdict::Pause => assert!(x.stream_end_waiting && i + 1 == chunks.len(), "only the end waits"),
            other => panic!("{other:?}"),
        }
        answer_all(&mut x, &mut out);
    }
    assert!(!x.stream_end_waiting, "the last verdict released the end");
    out
}

fn stream_guarded(mode: &str) -> Rc<Plugin> {
    guarded(json!({"stream": {"mode": mode, "window_chars": 16, "overlap_chars": 10, "flush_ms": 1000000}}))
}

#[test]
fn hold_mode_cuts_a_harmful_sentence_split_across_windows_before_any_of_it_goes_out() {
    // The harmful sentence "炸弹的做法" straddles a window boundary (16 chars) and events.
    let pieces = ["今天天气不错，", "我们来聊聊化学。", "下面是炸", "弹的做法：", "第一步准备材料", "，第二步混合。"];
    let body = chat_sse(&pieces, "\n");
    for mode in ["hold", "audit"] {
        let p = stream_guarded(mode);
        for cut in 0..=body.len() {
            let out = run_guarded_stream(&p, &[&body[..cut], &body[cut..]], "炸弹的做法");
            let (content, finish, done) = read_chat(&out);
            assert_eq!(finish.as_deref(), Some("content_filter"), "{mode} cut at {cut}: {content}");
            assert!(done, "{mode} cut at {cut}: the stream ends properly");
            let full = format!("AI生成\n\n{}", pieces.concat());
            assert!(full.starts_with(&content), "{mode} cut at {cut}: what went out is the text's start: {content}");
            if mode == "hold" {
                assert!(!content.contains('炸') && !content.contains("做法"), "hold, cut at {cut}: {content}");
            }
        }
        // Event by event, as a model streams.
        let events: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
        let (content, finish, _) = read_chat(&run_guarded_stream(&p, &events, "炸弹的做法"));
        assert_eq!(finish.as_deref(), Some("content_filter"), "{mode}: {content}");
        if mode == "hold" {
            assert!(!content.contains('炸'), "{content}");
        } else {
            // Audit mode lets text flow until the verdict, then nothing more.
            assert!(content.starts_with("AI生成\n\n今天天气不错"), "{content}");
            assert!(!content.contains("第二步"), "{content}");
        }
    }
}

#[test]
fn a_clean_stream_through_the_guard_is_byte_identical() {
    let body = chat_sse(&["今天天气不错，", "我们去公园", "散步吧。", "晚上回家吃饭。"], "\n");
    let plain = run_stream(&plugin(json!({})), "/v1/chat/completions", &[&body]);
    for mode in ["hold", "audit"] {
        let p = stream_guarded(mode);
        for cut in (0..=body.len()).step_by(7) {
            let out = run_guarded_stream(&p, &[&body[..cut], &body[cut..]], "炸弹的做法");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(plain.clone()).unwrap(),
                "{mode} cut at {cut}"
            );
        }
    }
}

#[test]
fn a_slow_stream_is_judged_and_released_as_time_passes() {
    let p = guarded(json!({"stream": {"mode": "hold", "window_chars": 1000, "overlap_chars": 10, "flush_ms": 50}}));
    let body = chat_sse(&["第一句话", "第二句话", "第三句话", "第四句话", "第五句话"], "\n");
    let events: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').filter(|e| e != b"\n").collect();
    let mut x = exchange(&p, "/v1/chat/completions");
    x.response_headers(200, Some("text/event-stream"), None);
    let (mut out, mut before_end) = (Vec::new(), 0);
    for (i, event) in events.iter().enumerate() {
        x.tick(i as u64 * 100); // a token every 100 ms: each window closes by time
        let last = i + 1 == events.len();
        if let Verdict::Replace { body, .. } = x.response_chunk(&[*event, b"\n".as_slice()].concat(), last) {
            out.extend(body);
        }
        for (id, _) in x.take_stream_calls() {
            if let Some(Verdict::Replace { body, .. }) = x.stream_guard_answer(id, qwen("Safety: Safe")) {
                out.extend(body);
            }
        }
        if !last {
            before_end = out.len();
        }
    }
    assert!(read_chat(&out[..before_end]).0.contains("第二句话"), "released before the stream ended");
    assert_eq!(read_chat(&out).0, "AI生成\n\n第一句话第二句话第三句话第四句话第五句话");
}

#[test]
fn a_guard_that_never_answers_bounds_calls_and_memory() {
    // 400 events of 10 characters: windows of 16, a guard that is never heard from.
    let pieces: Vec<String> = (0..400).map(|i| format!("第{i:03}句很平常的话。")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let body = chat_sse(&refs, "\n");
    let events: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
    for on_error in ["fail_closed", "fail_open"] {
        let guard = json!({"cluster": "g", "on_error": on_error, "stream": {"mode": "hold", "window_chars": 16, "overlap_chars": 4}});
        let p = plugin(json!({"guard": guard, "max_body_bytes": 4096}));
        let mut x = exchange(&p, "/v1/chat/completions");
        x.response_headers(200, Some("text/event-stream"), None);
        let (mut out, mut calls) = (Vec::new(), 0);
        for (i, event) in events.iter().enumerate() {
            x.tick(i as u64);
            if let Verdict::Replace { body, .. } = x.response_chunk(event, i + 1 == events.len()) {
                out.extend(body);
            }
            calls += x.take_stream_calls().len();
            assert!(calls <= aigc_edge_envoy::guard::MAX_PENDING_WINDOWS + 1, "{on_error}: {calls} calls in flight");
        }
        let (content, finish, done) = read_chat(&out);
        if on_error == "fail_closed" {
            assert_eq!(
                (content.as_str(), finish.as_deref(), done),
                ("", Some("content_filter"), true),
                "nothing unjudged goes out"
            );
        } else {
            assert!(content.ends_with("第399句很平常的话。") && finish.as_deref() == Some("stop"), "{content}");
        }
        assert!(
            x.audit_lines().iter().any(|l| l.contains(r#""category":"limit""#)),
            "{on_error}: the limit is recorded"
        );
    }
}

#[test]
fn speech_answers_are_audio_and_text_in_their_place_is_inspected() {
    let p = plugin(json!({"label": {"explicit": "AI生成", "producer": "P-1", "audible": "start"}}));
    // Raw PCM (as octet-stream) asked for: the rhythm first, the samples after, unchanged.
    let mut x = exchange(&p, "/v1/audio/speech");
    let _ = x.request_body(json!({"model": "tts-1", "input": "你好", "response_format": "pcm"}).to_string().as_bytes());
    let h = x.response_headers(200, Some("application/octet-stream"), None);
    assert!(h.buffer_body);
    let pcm = vec![0u8; 4800];
    let Verdict::Replace { body, .. } = x.response_body(&pcm) else { panic!() };
    assert_eq!(body.len(), pcm.len() + 2 * 2880 * 14);
    assert!(body.ends_with(&pcm));
    // A speech route that answers text instead: read as the text it is, not passed as a file.
    let mut x = exchange(&p, "/v1/audio/speech");
    x.response_headers(200, Some("audio/mpeg"), None);
    let v = x.response_body(json!({"text": "教你自制炸药"}).to_string().as_bytes());
    assert!(!matches!(v, Verdict::Continue), "{v:?}");
}
