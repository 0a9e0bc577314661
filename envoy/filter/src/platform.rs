//! Platform mode (Measures art. 6): a distribution platform checks what its users upload.
//! Each uploaded file — a raw body, or each file part of a `multipart/form-data` form — has
//! its implicit label read: a label is kept and gets the platform's `ContentPropagator` and
//! `PropagateID` (and `ReservedCode2` with the signing key); a file without one gets `Label`
//! `"2"` when the uploader declared it generated, and is otherwise left as it is. A label is
//! never removed: a file with two different labels (or one that cannot be read as a label) is
//! a conflict, refused or passed unchanged by configuration.

use core::ops::Range;

use aigc_edge::files::{self, FileFormat, Provenance};
use aigc_edge::label::seal::Sealer;

/// What one uploaded file held, as `x-aigc-label-found` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Its label's `Label` value after the platform's pass (`"1"`, `"2"`, `"3"`).
    Label(&'static str),
    /// No label, nothing declared.
    None,
    /// Two different labels, or one that is not well-formed.
    Conflict,
}

impl Found {
    /// The token in `x-aigc-label-found`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Found::Label(kind) => kind,
            Found::None => "none",
            Found::Conflict => "conflict",
        }
    }
}

/// An upload after the platform's pass.
#[derive(Debug, Default)]
pub struct Relabeled {
    /// One entry per file, in body order.
    pub found: Vec<Found>,
    /// The new body, when some file changed.
    pub body: Option<Vec<u8>>,
}

impl Relabeled {
    /// The `x-aigc-label-found` value: one token per file, `none` for a body with no file.
    pub fn header(&self) -> String {
        if self.found.is_empty() {
            return "none".to_string();
        }
        self.found.iter().map(Found::as_str).collect::<Vec<_>>().join(", ")
    }

    /// True when some file is a conflict.
    pub fn conflict(&self) -> bool {
        self.found.contains(&Found::Conflict)
    }
}

/// The files of a body: the file parts of a multipart form; else the whole body when it is a
/// file the label code knows (text only under a `text/` content type, so JSON and forms are
/// not taken for documents).
fn file_ranges(bytes: &[u8], content_type: Option<&str>) -> Result<Vec<Range<usize>>, String> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        return crate::body::multipart(bytes, content_type.unwrap_or(""))
            .map(|parts| parts.files)
            .map_err(|e| format!("{} at byte {}", e.message, e.offset));
    }
    Ok(match FileFormat::detect(bytes) {
        Some(FileFormat::Text) if !ct.starts_with("text/") => Vec::new(),
        #[allow(clippy::single_range_in_vec_init)] // one range: the whole body is the file
        Some(_) if !bytes.is_empty() => vec![0..bytes.len()],
        _ => Vec::new(),
    })
}

/// One file: what it held and its new bytes, or why it cannot be read.
fn relabel_file(
    bytes: &[u8],
    platform: &str,
    propagate_id: &str,
    declared: bool,
    sealer: Option<&Sealer<'_>>,
) -> Result<(Found, Option<Vec<u8>>), String> {
    let labels = match files::read_labels(bytes) {
        Ok((_, labels)) => labels,
        // A file of a format the label code does not know carries no label it could read.
        Err(_) if FileFormat::detect(bytes).is_none() => return Ok((Found::None, None)),
        Err(e) => return Err(e.to_string()),
    };
    let mut distinct: Vec<_> = Vec::new();
    for l in &labels {
        if l.parsed.label.is_none() {
            return Ok((Found::Conflict, None)); // malformed: neither rewritten nor dropped
        }
        if !distinct.contains(&&l.parsed.label) {
            distinct.push(&l.parsed.label);
        }
    }
    if distinct.len() > 1 {
        return Ok((Found::Conflict, None));
    }
    if distinct.is_empty() && !declared {
        return Ok((Found::None, None));
    }
    let provenance = if declared { Provenance::Declared } else { Provenance::Unknown };
    let (out, label) =
        files::propagate(bytes, platform, propagate_id, provenance, sealer).map_err(|e| e.to_string())?;
    Ok((Found::Label(label.label.as_str()), Some(out)))
}

/// The platform's pass over an upload. `Err` is a body or file that cannot be read.
pub fn relabel(
    bytes: &[u8],
    content_type: Option<&str>,
    platform: &str,
    propagate_id: &str,
    declared: bool,
    sealer: Option<&Sealer<'_>>,
) -> Result<Relabeled, String> {
    let mut out = Relabeled::default();
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    for range in file_ranges(bytes, content_type)? {
        let file = bytes.get(range.clone()).unwrap_or(&[]);
        let (found, new) = relabel_file(file, platform, propagate_id, declared, sealer)
            .map_err(|e| format!("uploaded file at byte {}: {e}", range.start))?;
        out.found.push(found);
        if let Some(new) = new.filter(|n| n.as_slice() != file) {
            edits.push((range, new));
        }
    }
    if !edits.is_empty() {
        out.body = Some(crate::body::splice(bytes, &mut edits));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigc_edge::ImplicitLabel;

    const PNG: [u8; 70] = [
        137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21,
        196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153, 61, 29,
        0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
    ];

    fn labeled(id: &str) -> Vec<u8> {
        files::write_label(&PNG, &ImplicitLabel::generated("PRODUCER", id).unwrap()).unwrap()
    }

    fn form(files: &[&[u8]]) -> Vec<u8> {
        let mut out = b"--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n a title\r\n".to_vec();
        for (i, f) in files.iter().enumerate() {
            out.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"{i}.png\"\r\nContent-Type: image/png\r\n\r\n")
                    .as_bytes(),
            );
            out.extend_from_slice(f);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--B--\r\n");
        out
    }

    #[test]
    fn uploads_table() {
        // Two different labels in one file: a PNG tEXt label plus an XMP one made elsewhere.
        let mut two = labeled("a");
        let iend = two.len() - 12;
        let xmp = b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta><rdf:Description xmlns:TC260=\"http://www.tc260.org.cn/ns/AIGC/1.0/\" TC260:AIGC=\"{&quot;Label&quot;:&quot;1&quot;,&quot;ContentProducer&quot;:&quot;OTHER&quot;,&quot;ProduceID&quot;:&quot;b&quot;,&quot;ReservedCode1&quot;:&quot;&quot;,&quot;ContentPropagator&quot;:&quot;OTHER&quot;,&quot;PropagateID&quot;:&quot;b&quot;,&quot;ReservedCode2&quot;:&quot;&quot;}\"/></x:xmpmeta>";
        let mut chunk = (xmp.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(b"iTXt");
        chunk.extend_from_slice(xmp);
        let crc = {
            let mut c = 0xFFFF_FFFFu32;
            for &b in &chunk[4..] {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                }
            }
            !c
        };
        chunk.extend_from_slice(&crc.to_be_bytes());
        two.splice(iend..iend, chunk);
        assert_eq!(files::read_labels(&two).unwrap().1.len(), 2);
        let raw_png = Some("image/png");
        let multipart = Some("multipart/form-data; boundary=B");
        let cases: Vec<(&str, Vec<u8>, Option<&str>, bool, &str, bool)> = vec![
            ("labeled raw body", labeled("a"), raw_png, false, "1", true),
            ("unlabeled, undeclared: unchanged", PNG.to_vec(), raw_png, false, "none", false),
            ("unlabeled, declared: Label 2", PNG.to_vec(), raw_png, true, "2", true),
            ("two labels: conflict, unchanged", two.clone(), raw_png, false, "conflict", false),
            ("JSON is no file", br#"{"a":1}"#.to_vec(), Some("application/json"), true, "none", false),
            ("form with two files", form(&[&labeled("a"), &PNG]), multipart, false, "1, none", true),
            ("form with a conflict", form(&[&two, &labeled("c")]), multipart, false, "conflict, 1", true),
        ];
        for (name, body, ct, declared, header, changed) in cases {
            let r = relabel(&body, ct, "PLAT", "p-1", declared, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.header(), header, "{name}");
            assert_eq!(r.body.is_some(), changed, "{name}");
            if let Some(new) = &r.body {
                let files = file_ranges(new, ct).unwrap();
                for (range, _) in files.into_iter().zip(&r.found).filter(|(_, f)| matches!(f, Found::Label(_))) {
                    let labels = files::read_labels(&new[range]).unwrap().1;
                    for l in labels.iter().filter_map(|l| l.parsed.label.as_ref()) {
                        assert_eq!((l.content_propagator.as_str(), l.propagate_id.as_str()), ("PLAT", "p-1"), "{name}");
                    }
                }
            }
        }
        // A file of a known format that does not parse cannot be checked: an error.
        assert!(relabel(&PNG[..40], raw_png, "PLAT", "p", false, None).is_err());
        assert!(relabel(b"--B\r\nno end", multipart, "PLAT", "p", false, None).is_err());
    }
}
