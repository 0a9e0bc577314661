//! Every file parser: read, write, propagate, verify, carry metadata, the audible label. Errors are fine; panics are not.
#![no_main]
use aigc_edge::files::audible::{mark, Placement};
use aigc_edge::files::{carry_metadata, propagate, read_labels, verify, write_label, Provenance};
use aigc_edge::label::seal::Keyring;
use aigc_edge::ImplicitLabel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_labels(data);
    let _ = verify(data, &Keyring::new().with_shared_key(b"k"));
    let _ = mark(data, Placement::Start);
    let _ = mark(data, Placement::End);
    if let Ok(label) = ImplicitLabel::generated("P", "id") {
        if let Ok(out) = write_label(data, &label) {
            // A written label must read back.
            let (_, labels) = read_labels(&out).expect("written file reads");
            assert!(labels.iter().any(|l| l.parsed.label.as_ref() == Some(&label)));
        }
    }
    let _ = propagate(data, "PLAT", "p", Provenance::Declared, None);
    // Either side of a re-encode may be hostile: the first half as original, the rest encoded.
    let (original, encoded) = data.split_at(data.len() / 2);
    if let Ok(out) = carry_metadata(original, encoded) {
        assert!(out.len() <= original.len() + encoded.len(), "carrying never invents bytes");
    }
});
