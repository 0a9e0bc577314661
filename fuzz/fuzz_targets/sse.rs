//! The Envoy filter's exchange over arbitrary bodies: requests, JSON answers and SSE streams.
#![no_main]
use std::rc::Rc;

use aigc_edge_envoy::config::{Plugin, PluginConfig};
use aigc_edge_envoy::exchange::Exchange;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = PluginConfig::from_json(br#"{"keywords": "\u8d4c\u535a\tA.1h\nsb\tA.4c\tmask\n"}"#).expect("config");
    let plugin = Rc::new(Plugin::new(config).expect("plugin"));
    for path in ["/v1/chat/completions", "/v1/messages", "/v1/responses"] {
        let mut x = Exchange::new(Rc::clone(&plugin), path, None, None, "id".into());
        let _ = x.request_body(data);
        x.response_headers(200, Some("text/event-stream"), None);
        for chunk in data.chunks(7) {
            let _ = x.response_chunk(chunk, false);
        }
        let _ = x.response_chunk(b"", true);
        let mut y = Exchange::new(Rc::clone(&plugin), path, None, None, "id".into());
        y.response_headers(200, Some("application/json"), None);
        let _ = y.response_body(data);
    }
});
