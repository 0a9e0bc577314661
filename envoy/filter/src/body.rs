//! A whole body, read by its bytes (the content-type is a hint, never trusted to skip
//! inspection): JSON, a form, a multipart form, or text, in any encoding JSON allows; anything
//! else is binary. Each kind is inspected and edited in place: only changed texts are spliced.

use core::ops::Range;

use aigc_edge::{Action, Decision, Filter};

use crate::inspect::drop_logprobs;
pub use crate::inspect::{inspect as inspect_json, Inspection};
use crate::json::{decode_text, encode_text, Doc, Encoding, Unreadable};

/// A body, read.
#[derive(Debug)]
pub enum Body {
    /// A JSON document.
    Json(Doc),
    /// `application/x-www-form-urlencoded`: each field's value range and decoded text.
    Form(String, Vec<(Range<usize>, String)>),
    /// `multipart/form-data`: its text fields and its files.
    Multipart(Parts),
    /// Text that is not JSON.
    Text(String, Encoding),
    /// Bytes that are no text in any encoding.
    Binary,
}

/// The parts of a multipart form, as byte ranges of their contents.
#[derive(Debug, Default)]
pub struct Parts {
    /// Fields without a file name, inspected as text.
    pub texts: Vec<Range<usize>>,
    /// File fields (a file name, or a content type that is not text).
    pub files: Vec<Range<usize>>,
}

/// Reads a body. `Err` is a body that claims a structure (JSON by its first byte, a form, a
/// multipart form) and breaks it, or text with invalid sequences.
pub fn read(bytes: &[u8], content_type: Option<&str>) -> Result<Body, Unreadable> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        return multipart(bytes, content_type.unwrap_or("")).map(Body::Multipart);
    }
    let (text, encoding) = match decode_text(bytes) {
        Ok(t) => t,
        Err(_) if is_binary_type(&ct) => return Ok(Body::Binary),
        Err(e) => return Err(e),
    };
    let first = text.trim_start().as_bytes().first().copied();
    if ct.starts_with("application/x-www-form-urlencoded") {
        return Ok(Body::Form(text.clone(), form_fields(&text)));
    }
    // JSON by its first character, whatever the label says; text that is not JSON is read as
    // the text it is.
    if matches!(first, Some(b'{' | b'[' | b'"')) {
        return Doc::parse(bytes).map(Body::Json);
    }
    Ok(Body::Text(text, encoding))
}

/// Media types whose bodies are files, not text: passed when they are no text at all.
fn is_binary_type(ct: &str) -> bool {
    ["image/", "audio/", "video/", "application/octet-stream", "application/pdf", "application/zip", "font/"]
        .iter()
        .any(|p| ct.starts_with(p))
}

/// What inspecting a body found, and the body with its changes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The most severe action.
    pub action: Action,
    /// The new body, when anything changed.
    pub body: Option<Vec<u8>>,
    /// Each checked text with its decision, for the audit log.
    pub decisions: Vec<(String, Decision)>,
    /// Every text checked, for the guard model.
    pub texts: Vec<String>,
}

/// Inspects a body that is not JSON (JSON goes through [`inspect_json`], which also labels).
pub fn inspect_other(filter: &Filter, bytes: &[u8], body: &Body) -> Outcome {
    let mut out = Outcome::default();
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    match body {
        Body::Json(_) | Body::Binary => {}
        Body::Form(text, fields) => {
            for (range, value) in fields {
                let d = filter.check(value);
                out.action = out.action.max(d.action);
                if let Some(t) = &d.text {
                    edits.push((range.clone(), form_encode(t)));
                }
                note(&mut out, value, d);
            }
            if !edits.is_empty() {
                out.body = Some(splice(text.as_bytes(), &mut edits));
            }
        }
        Body::Multipart(parts) => {
            for range in &parts.texts {
                let text = std::str::from_utf8(bytes.get(range.clone()).unwrap_or(&[])).unwrap_or("");
                let d = filter.check(text);
                out.action = out.action.max(d.action);
                if let Some(t) = &d.text {
                    edits.push((range.clone(), t.clone()));
                }
                note(&mut out, text, d);
            }
            if !edits.is_empty() {
                out.body = Some(splice(bytes, &mut edits));
            }
        }
        Body::Text(text, encoding) => {
            let d = filter.check(text);
            out.action = d.action;
            if let Some(t) = &d.text {
                out.body = Some(encode_text(t, *encoding));
            }
            note(&mut out, text, d);
        }
    }
    out
}

fn note(out: &mut Outcome, text: &str, d: Decision) {
    out.texts.push(text.to_string());
    if !d.hits.is_empty() || !d.pii.is_empty() || d.limit_exceeded {
        out.decisions.push((text.to_string(), d));
    }
}

/// The document with the inspection's changes and `extra` edits (labels), the `logprobs` of
/// every changed message dropped; `None` when nothing changed.
pub fn rewrite_json(doc: &Doc, inspection: &Inspection, mut extra: Vec<(Range<usize>, String)>) -> Option<Vec<u8>> {
    // A label's edit of a string already carries the inspection's rewrite of it.
    let mut edits: Vec<_> =
        inspection.edits(doc).into_iter().filter(|(r, _)| !extra.iter().any(|(e, _)| e == r)).collect();
    edits.append(&mut drop_logprobs(doc, &inspection.changed_units));
    edits.append(&mut extra);
    (!edits.is_empty()).then(|| doc.rewrite(&mut edits))
}

/// `bytes` with each range replaced (ranges do not overlap).
pub(crate) fn splice<T: AsRef<[u8]>>(bytes: &[u8], edits: &mut [(Range<usize>, T)]) -> Vec<u8> {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for (range, with) in edits.iter() {
        out.extend_from_slice(bytes.get(at..range.start).unwrap_or(&[]));
        out.extend_from_slice(with.as_ref());
        at = range.end;
    }
    out.extend_from_slice(bytes.get(at..).unwrap_or(&[]));
    out
}

/// The fields of a form: each value's byte range and its decoded text (`+` is a space,
/// `%XX` a byte; names are inspected as values too).
fn form_fields(text: &str) -> Vec<(Range<usize>, String)> {
    let mut fields = Vec::new();
    let mut at = 0;
    for pair in text.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_range = at..at + name.len();
        fields.push((name_range, percent_decode(name)));
        if pair.contains('=') {
            let start = at + name.len() + 1;
            fields.push((start..start + value.len(), percent_decode(value)));
        }
        at += pair.len() + 1;
    }
    fields
}

/// Percent-decoding as forms use it; invalid escapes stay as they are, invalid UTF-8 reads
/// as U+FFFD (as browsers and frameworks do).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text fields and files of a multipart form. A part with a `Content-Transfer-Encoding`
/// other than the identity ones is unreadable: what the filter sees would not be what a server
/// that decodes it reads.
pub fn multipart(bytes: &[u8], ct: &str) -> Result<Parts, Unreadable> {
    let bad = |m: &str, at: usize| Unreadable { message: m.to_string(), offset: at };
    let boundary = ct
        .split(';')
        .find_map(|p| {
            let p = p.trim();
            p.get(..9).filter(|k| k.eq_ignore_ascii_case("boundary=")).map(|_| &p[9..])
        })
        .map(|b| b.trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("multipart form without a boundary", 0))?;
    let delimiter = format!("--{boundary}");
    let find = |from: usize, what: &[u8]| {
        bytes.get(from..).and_then(|rest| rest.windows(what.len()).position(|w| w == what)).map(|p| p + from)
    };
    let mut at = find(0, delimiter.as_bytes()).ok_or_else(|| bad("multipart boundary not found", 0))?;
    let mut parts = Parts::default();
    loop {
        at += delimiter.len();
        if bytes.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        let head_end = find(at, b"\r\n\r\n").ok_or_else(|| bad("multipart part without headers", at))?;
        let head = String::from_utf8_lossy(&bytes[at..head_end]).to_ascii_lowercase();
        let start = head_end + 4;
        let next = find(start, format!("\r\n{delimiter}").as_bytes())
            .ok_or_else(|| bad("multipart part without its closing boundary", start))?;
        let encoded = head
            .lines()
            .filter_map(|l| l.strip_prefix("content-transfer-encoding:"))
            .any(|v| !matches!(v.trim(), "7bit" | "8bit" | "binary"));
        if encoded {
            return Err(bad("multipart part with a Content-Transfer-Encoding", at));
        }
        let is_file = head.contains("filename=")
            || head.lines().any(|l| l.starts_with("content-type:") && !l.contains("text/") && !l.contains("json"));
        if is_file {
            parts.files.push(start..next);
        } else {
            if std::str::from_utf8(&bytes[start..next]).is_err() {
                return Err(bad("multipart text field is not UTF-8", start));
            }
            parts.texts.push(start..next);
        }
        at = next + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_by_their_bytes() {
        let cases: [(&[u8], Option<&str>, &str); 7] = [
            (br#"{"a":"b"}"#, Some("text/plain"), "json"),
            (b"plain words", Some("application/json"), "text"),
            (b"a=1&b=%E8%87%AA", Some("application/x-www-form-urlencoded"), "form"),
            (b"\x89PNG\r\n\x1a\n\xff\xfe", Some("image/png"), "binary"),
            (b"hello", Some("application/octet-stream"), "text"),
            (b"  [1,2]", None, "json"),
            (b"", None, "text"),
        ];
        for (bytes, ct, want) in cases {
            let got = match read(bytes, ct).unwrap() {
                Body::Json(_) => "json",
                Body::Form(..) => "form",
                Body::Multipart(_) => "multipart",
                Body::Text(..) => "text",
                Body::Binary => "binary",
            };
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(bytes));
        }
        assert!(read(b"\xc3\x28 not UTF-8", Some("text/plain")).is_err());
        assert!(read(b"{\"a\": ", None).is_err());
    }

    #[test]
    fn forms_and_multipart_fields() {
        assert_eq!(percent_decode("%E8%87%AA+x%zz%"), "自 x%zz%");
        let Body::Form(_, fields) = read(b"q=%E8%87%AA%E5%88%B6&n", Some("application/x-www-form-urlencoded")).unwrap()
        else {
            panic!()
        };
        let texts: Vec<&str> = fields.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["q", "自制", "n"]);
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\xff\r\n--XX--\r\n";
        let Body::Multipart(parts) = read(body, Some("multipart/form-data; boundary=XX")).unwrap() else { panic!() };
        assert_eq!(parts.texts.iter().map(|r| &body[r.clone()]).collect::<Vec<_>>(), [b"hello"]);
        assert_eq!(parts.files.iter().map(|r| &body[r.clone()]).collect::<Vec<_>>(), [b"\x89PNG\xff"]);
        assert!(read(b"--XX\r\n\r\nno end", Some("multipart/form-data; boundary=XX")).is_err());
        // A field the filter would read as base64 gibberish is refused, not passed.
        let encoded = b"--XX\r\nContent-Disposition: form-data; name=\"p\"\r\nContent-Transfer-Encoding: base64\r\n\r\n6Ieq5Yi254K46I2v\r\n--XX--";
        assert!(read(encoded, Some("multipart/form-data; boundary=XX")).is_err());
    }
}
