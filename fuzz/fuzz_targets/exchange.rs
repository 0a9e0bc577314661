//! The Envoy filter's exchange state machine over arbitrary traffic: request and response
//! headers chosen by the input, bodies split at input-chosen points, end of stream anywhere,
//! driven the way the proxy-wasm glue drives it (sniffing, buffering, limits). No input may
//! panic.
#![no_main]
use std::rc::Rc;

use aigc_edge_envoy::config::{Plugin, PluginConfig};
use aigc_edge_envoy::exchange::{Direction, Exchange, Verdict};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 8] = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/completions",
    "/api/chat",
    "/v1/images/generations",
    "/x/unknown",
    "/V1/Chat%2Fcompletions;x",
];
const TYPES: [Option<&str>; 7] = [
    Some("application/json"),
    Some("text/event-stream"),
    Some("application/x-ndjson"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=B"),
    Some("image/png"),
    None,
];

fn plugin() -> Rc<Plugin> {
    thread_local! {
        static PLUGIN: Rc<Plugin> = {
            let config = PluginConfig::from_json(
                br#"{"keywords": "\u8d4c\u535a\tA.1h\nsb\tA.4c\tmask\n", "max_body_bytes": 65536,
                     "profiles": {"minor": {}}, "profile_header": "p", "route_profiles": {"r": "minor"}}"#,
            )
            .expect("config");
            Rc::new(Plugin::new(config).expect("plugin"))
        };
    }
    PLUGIN.with(Rc::clone)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, rest @ ..] = data else { return };
    let p = plugin();
    let path = PATHS[usize::from(*a) % PATHS.len()];
    let header = ["minor", "nosuch", ""][usize::from(*b) % 3];
    let route = (b & 4 != 0).then_some("r");
    let mut x = Exchange::new(Rc::clone(&p), path, Some(header).filter(|h| !h.is_empty()), route, "id".into());
    let (request, response) = rest.split_at(rest.len() / 2);
    let encoding = (c & 1 != 0).then_some("gzip");
    let h = x.request_headers(true, TYPES[usize::from(*c >> 1) % TYPES.len()], encoding);
    if h.reply.is_none() && h.buffer_body {
        let _ = x.request_body(request);
    }
    let status = [200, 200, 500, 404][usize::from(*d) % 4];
    let h = x.response_headers(status, TYPES[usize::from(*d >> 2) % TYPES.len()], (d & 0x80 != 0).then_some("br"));
    // Split the answer at points the input chooses; buffer the way the glue does.
    let mut buffered = h.buffer_body;
    let mut held = Vec::new();
    let step = 1 + usize::from(*a >> 3);
    let mut chunks: Vec<&[u8]> = response.chunks(step).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let end = i + 1 == chunks.len();
        if buffered || x.response_buffered() {
            held.extend_from_slice(chunk);
            if held.len() > 65536 {
                let _ = x.too_large(Direction::Response);
                break;
            }
            if end {
                let _ = x.response_body(&held);
            }
            continue;
        }
        if let Verdict::Pause = x.response_chunk(chunk, end) {
            buffered = true;
            held.extend_from_slice(chunk);
            if end {
                let _ = x.response_body(&held);
            }
        }
    }
    let _ = x.audit_lines();
});
