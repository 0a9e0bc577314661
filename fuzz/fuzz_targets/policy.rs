//! Policy JSON: parsed or refused with a message, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = aigc_edge::Policy::from_json(text);
        let _ = aigc_edge_envoy::config::PluginConfig::from_json(data);
    }
});
