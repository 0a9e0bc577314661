//! The aigc-edge browser module: a thin wasm-bindgen shell over the core. Every error reaches
//! JavaScript as an `Error` carrying the core's message (`to_js` is the one place that maps
//! them); nothing here can trap.
//!
//! The npm package is four entries, each its own `.wasm`, so a page downloads only what it
//! uses: `aigc-edge` (feature `text`: filter, streams, text labels and watermark),
//! `aigc-edge/pinyin` (`text` with `readings`: the core's reading table and segmentation),
//! `aigc-edge/files` (`files`: labels inside files, the verifier, SM2 keys, the audible label)
//! and `aigc-edge/image` (`image`: the image watermark and the visible label). The default
//! features build everything into one module (the tests); `make web` builds each entry alone.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use serde_json::Value;
use wasm_bindgen::prelude::*;

#[cfg(feature = "files")]
mod files;
#[cfg(feature = "image")]
mod image;
#[cfg(feature = "text")]
mod text;

#[cfg(feature = "files")]
pub use files::*;
#[cfg(feature = "image")]
pub use image::*;
#[cfg(feature = "text")]
pub use text::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    fn random_uuid() -> String;
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;
}

/// A fresh `ProduceID` in the core's format ([`aigc_edge::label::produce_id`]), from the 16
/// random bytes of the browser's `crypto.randomUUID`.
#[cfg(any(feature = "text", feature = "files"))]
fn new_id() -> String {
    let hex: Vec<u8> = random_uuid().bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
        *byte = std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()).unwrap_or(0);
    }
    aigc_edge::label::produce_id(&bytes)
}

/// The one place core errors become JavaScript errors. The text entry built without the
/// reading table and segmentation (the main one) names the entry that has them when the core
/// refuses a policy or artifact for their lack (its refusals all say "not in this build"; the
/// package test holds the two to each other).
fn to_js(e: impl std::fmt::Display) -> JsError {
    let message = e.to_string();
    if cfg!(all(feature = "text", not(feature = "readings"))) && message.contains("not in this build") {
        return JsError::new(&format!("{message}; the aigc-edge/pinyin entry has it"));
    }
    JsError::new(&message)
}

fn to_value(v: &Value) -> Result<JsValue, JsError> {
    json_parse(&v.to_string()).map_err(|_| JsError::new("internal: result is not JSON"))
}
