//! A crafted dictionary artifact is refused or, if accepted, matches without panics or loops.
#![no_main]
use std::sync::Arc;

use aigc_edge::{Dictionary, Filter, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(dict) = Dictionary::from_artifact(data) {
        let policy = Policy { normalize: *dict.normalization(), ..Policy::default() };
        if let Ok(f) = Filter::new(Arc::new(dict), &policy) {
            let _ = f.check("网上赌博，色情视频 sb usb 五星紅旗 ①②③ abc");
        }
    }
});
