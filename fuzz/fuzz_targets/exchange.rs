//! The Envoy filter's exchange state machine over arbitrary traffic: request and response
//! headers chosen by the input, bodies split at input-chosen points, end of stream anywhere,
//! driven the way the proxy-wasm glue drives it (sniffing, buffering, limits). No input may
//! panic.
#![no_main]
use std::rc::Rc;

use aigc_edge_envoy::config::{Plugin, PluginConfig};
use aigc_edge_envoy::exchange::{Direction, Exchange, Verdict};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 9] = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/completions",
    "/api/chat",
    "/v1/images/generations",
    "/x/unknown",
    "/V1/Chat%2Fcompletions;x",
    "/upload/file",
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

fn plugin(guarded: bool) -> Rc<Plugin> {
    fn build(extra: &str) -> Rc<Plugin> {
        let config = format!(
            r#"{{"keywords": "\u8d4c\u535a\tA.1h\nsb\tA.4c\tmask\n", "max_body_bytes": 65536,
                 "profiles": {{"minor": {{}}}}, "profile_header": "p", "route_profiles": {{"r": "minor"}},
                 "platform": {{"code": "PLAT", "upload_paths": ["/upload/"]}}{extra}}}"#
        );
        Rc::new(Plugin::new(PluginConfig::from_json(config.as_bytes()).expect("config")).expect("plugin"))
    }
    thread_local! {
        static PLAIN: Rc<Plugin> = build("");
        static GUARDED: Rc<Plugin> = build(r#", "guard": {"cluster": "g", "stream": {"mode": "hold", "window_chars": 8, "overlap_chars": 3}}"#);
    }
    if guarded {
        GUARDED.with(Rc::clone)
    } else {
        PLAIN.with(Rc::clone)
    }
}

/// A hostile guard's answer, chosen by the input: a status and any bytes, or none at all.
fn guard_answer(seed: u8, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    match seed % 4 {
        0 => Err("no answer".into()),
        1 => Ok((500, body.to_vec())),
        _ => Ok((200, body.to_vec())),
    }
}

/// Answers every guard call the exchange has asked for, the way the glue hands answers back.
fn answer_guard(x: &mut Exchange, v: &Verdict, seed: u8, body: &[u8]) {
    if let Verdict::Ask(_) = v {
        let _ = x.guard_answer(guard_answer(seed, body));
    }
    for (i, (id, _)) in x.take_stream_calls().into_iter().enumerate() {
        let _ = x.stream_guard_answer(id, guard_answer(seed.wrapping_add(i as u8), body));
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, rest @ ..] = data else { return };
    let p = plugin(b & 8 != 0);
    let answer: &[u8] = if a & 1 != 0 {
        br#"{"choices":[{"message":{"content":"Safety: Unsafe\nCategories: Violent"}}]}"#
    } else {
        &rest[..rest.len().min(64)]
    };
    let path = PATHS[usize::from(*a) % PATHS.len()];
    let header = ["minor", "nosuch", ""][usize::from(*b) % 3];
    let route = (b & 4 != 0).then_some("r");
    let mut x = Exchange::new(Rc::clone(&p), path, Some(header).filter(|h| !h.is_empty()), route, "id".into());
    let (request, response) = rest.split_at(rest.len() / 2);
    let encoding = (c & 1 != 0).then_some("gzip");
    let declared = (c & 0x80 != 0).then_some("1");
    let h = x.request_headers(true, TYPES[usize::from(*c >> 1) % TYPES.len()], encoding, declared);
    if h.reply.is_none() && h.buffer_body {
        let v = x.request_body(request);
        answer_guard(&mut x, &v, *c, answer);
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
                let v = x.response_body(&held);
                answer_guard(&mut x, &v, *d, answer);
            }
            continue;
        }
        x.tick(i as u64 * 50);
        let v = x.response_chunk(chunk, end);
        answer_guard(&mut x, &v, d.wrapping_add(i as u8), answer);
        if v == Verdict::Pause && !x.stream_end_waiting {
            buffered = true;
            held.extend_from_slice(chunk);
            if end {
                let v = x.response_body(&held);
                answer_guard(&mut x, &v, *d, answer);
            }
        }
    }
    let _ = x.audit_lines();
});
