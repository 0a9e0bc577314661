//! Per-request cost of the filter logic, natively:
//! `cargo run --release --example exchange_cost DICT [sse] [POLICY.json]` (the policy the
//! dictionary was compiled with, to measure other normalization settings; default: defaults).
use std::rc::Rc;
use std::time::Instant;

use aigc_edge_envoy::config::{Plugin, PluginConfig};
use aigc_edge_envoy::exchange::Exchange;

fn main() {
    let dict = std::env::args().nth(1).expect("artifact path");
    let artifact = std::fs::read(dict).expect("artifact");
    let policy = std::env::args().nth(3).map_or_else(
        || r#"{"actions":{"default":"flag","uncategorized":"flag"}}"#.to_string(),
        |path| std::fs::read_to_string(path).expect("policy"),
    );
    let config =
        format!(r#"{{"policy":{policy},"dictionary_fetch":{{"cluster":"d","path":"/d"}},"label":{{"producer":"p"}}}}"#);
    let config = PluginConfig::from_json(config.as_bytes()).expect("config");
    let plugin = Rc::new(Plugin::with_artifact(config, &artifact, "file".into()).expect("plugin"));
    let answer = ("这是一段用于压力测试的回答文本，内容平和，介绍城市公园的开放时间与游览路线。".repeat(40))
        .chars()
        .take(1400)
        .collect::<String>();
    let prompt = ("请介绍一下城市公园的开放时间、游览路线和附近的交通方式，谢谢。".repeat(40))
        .chars()
        .take(700)
        .collect::<String>();
    let req = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": prompt}]}).to_string();
    let resp = serde_json::json!({"id": "c", "object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]}).to_string();
    let only_sse = std::env::args().nth(2).as_deref() == Some("sse");
    let exchange = || {
        Exchange::new(
            Rc::clone(&plugin),
            "/v1/chat/completions",
            None,
            None,
            "aigc-0123456789abcdef0123456789abcdef".into(),
        )
    };
    let n = if only_sse { 0 } else { 20000 };
    let t = Instant::now();
    for _ in 0..n {
        let mut x = exchange();
        x.request_headers(true, Some("application/json"), None, None);
        std::hint::black_box(x.request_body(req.as_bytes()));
        x.response_headers(200, Some("application/json"), None);
        std::hint::black_box(x.response_body(resp.as_bytes()));
    }
    if n > 0 {
        println!("{:.1} us per request/response pair", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }

    let chars: Vec<char> = answer.chars().collect();
    let mut stream = String::new();
    for i in 0..1000 {
        let piece: String = chars.iter().cycle().skip(i * 2).take(2).collect();
        let ev = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        stream.push_str(&format!("data: {ev}\n\n"));
    }
    stream.push_str("data: [DONE]\n\n");
    let n = if only_sse { 1000 } else { 200 };
    let t = Instant::now();
    for _ in 0..n {
        let mut x = exchange();
        x.response_headers(200, Some("text/event-stream"), None);
        std::hint::black_box(x.response_chunk(stream.as_bytes(), true));
    }
    println!(
        "{:.1} us per streamed response of 1,000 events ({} bytes)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        stream.len()
    );
}
