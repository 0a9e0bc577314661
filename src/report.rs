//! The JSON form of decisions and stream chunks: one writer, used by every host (the CLI prints
//! it, the browser module returns it), so key names and order are the same everywhere.
//!
//! ```text
//! {"flagged":true,"action":"block",
//!  "hits":[{"keyword":"赌博","category":"A.1h","start":6,"end":13,"action":"block"}],
//!  "pii":[{"kind":"mobile","start":20,"end":31}],   only when personal information was found
//!  "text":"…",                                       only when the text was rewritten
//!  "limit_exceeded":true}                            only when a limit was exceeded
//! ```
//!
//! A stream chunk: `{"output":"…","hits":[…],"pii":[…],"blocked":"…","limit_exceeded":true}`,
//! `pii`, `blocked` and `limit_exceeded` likewise only when there is something to say.

use crate::filter::Hit;
use crate::pii::PiiHit;

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn push_number(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Appends `,"hits":[…]`, offsets mapped by `offset`.
pub(crate) fn push_hits(out: &mut Vec<u8>, hits: &[Hit], offset: &dyn Fn(usize) -> usize) {
    out.extend_from_slice(b",\"hits\":[");
    for (i, h) in hits.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"keyword\":");
        push_str(out, &h.keyword);
        out.extend_from_slice(b",\"category\":");
        match h.category {
            Some(c) => push_str(out, &c.to_string()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"start\":");
        push_number(out, offset(h.start));
        out.extend_from_slice(b",\"end\":");
        push_number(out, offset(h.end));
        out.extend_from_slice(b",\"action\":\"");
        out.extend_from_slice(h.action.as_str().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.push(b']');
}

/// Appends `,"pii":[…]` when there is any.
pub(crate) fn push_pii(out: &mut Vec<u8>, pii: &[PiiHit], offset: &dyn Fn(usize) -> usize) {
    if pii.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"pii\":[");
    for (i, p) in pii.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"kind\":\"");
        out.extend_from_slice(p.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"start\":");
        push_number(out, offset(p.start));
        out.extend_from_slice(b",\"end\":");
        push_number(out, offset(p.end));
        out.push(b'}');
    }
    out.push(b']');
}

/// Appends `,"<key>":"<value>"` when there is a value.
pub(crate) fn push_optional_str(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        push_str(out, value);
    }
}

/// Appends `,"limit_exceeded":true` when it was.
pub(crate) fn push_limit(out: &mut Vec<u8>, exceeded: bool) {
    if exceeded {
        out.extend_from_slice(b",\"limit_exceeded\":true");
    }
}

/// The object closed and read back as text (everything written is UTF-8).
pub(crate) fn finish(mut out: Vec<u8>) -> String {
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// Starts an object with its first key: `{"<key>":`.
pub(crate) fn open(key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out
}
