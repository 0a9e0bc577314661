//! The streaming matcher over arbitrary bytes and chunking agrees with one write of the same
//! bytes (invalid UTF-8 included) and, for UTF-8, with the whole-text check, keywords and
//! personal information alike.
#![no_main]
use std::sync::Arc;

use aigc_edge::{Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut list = KeywordList::new();
    list.add_source("k", "赌博\nsb\n一二三\nab\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    list.add_source("a", "sb.com\n".as_bytes(), KeywordFormat::Native, KeywordKind::Allow);
    let pii = if split % 2 == 0 { "pass" } else { "mask" };
    let policy = Policy::from_json(&format!(
        r#"{{"actions": {{"default": "mask", "uncategorized": "mask"}}, "pii": {{"action": "{pii}"}}}}"#
    ))
    .expect("policy");
    let f = Filter::new(Arc::new(Dictionary::new(&list).expect("dict")), &policy).expect("filter");
    let mut s = f.stream();
    let mut out = Vec::new();
    for chunk in rest.chunks(usize::from(split / 2).max(1)) {
        out.extend(s.write(chunk).expect("not blocked").output);
    }
    out.extend(s.finish().output);
    // Runs longer than the stream's PII window (320 bytes) are checked in pieces; skip those.
    let longest_run =
        rest.split(|b| !(b.is_ascii_alphanumeric() || b"@.+-_%: ".contains(b))).map(<[u8]>::len).max().unwrap_or(0);
    let mut once = f.stream();
    let mut whole = once.write(rest).expect("not blocked").output;
    whole.extend(once.finish().output);
    assert_eq!(out, whole, "chunks of {} bytes", usize::from(split / 2).max(1));
    if let (Ok(text), true) = (std::str::from_utf8(rest), longest_run < 300) {
        assert_eq!(out, f.check(text).text.unwrap_or_else(|| text.to_string()).into_bytes());
    }
});
