//! Where the implicit label sits in each file format, read and written at the byte level:
//! nothing but the label's own bytes changes, so pixels and samples decode the same.
//!
//! | Format | Carriers read | Carrier written |
//! |---|---|---|
//! | PNG | `tEXt` keyword `AIGC`; XMP in `iTXt` `XML:com.adobe.xmp` | `tEXt` `AIGC` (and an existing XMP is updated) |
//! | JPEG | APP1 XMP; EXIF `UserComment` (`ASCII\0\0\0` + JSON) | APP1 XMP (an existing EXIF label is updated in place) |
//! | WebP | RIFF chunk `XMP ` | `XMP ` (a simple file gains the `VP8X` header metadata needs) |
//! | GIF | application extension `XMP DataXMP` | the same, before the trailer |
//! | MP3 | ID3v2 `TXXX` frame, description `AIGC` | the same (a v2.4 tag is created when there is none) |
//! | WAV | RIFF chunk `AIGC` | the same |
//! | MP4, M4A, MOV | `moov/udta/meta`: `keys` entry `mdta` `AIGC` and its `ilst` item | the same (chunk offsets fixed when `moov` precedes `mdat`) |
//! | Text, Markdown | front matter line `AIGC: {…}` | the same (front matter added when there is none) |
//!
//! Malformed or truncated input gives a [`FileError`] naming the byte offset, never a panic;
//! no allocation is larger than the input plus the label.

use core::fmt;

use super::xmp;
use super::{ImplicitLabel, ParsedLabel};

/// A file format the label code knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// PNG.
    Png,
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// WebP.
    Webp,
    /// GIF87a/89a.
    Gif,
    /// MP3 with or without an ID3v2 tag.
    Mp3,
    /// WAV (RIFF WAVE).
    Wav,
    /// MP4 / M4A / MOV (ISO base media).
    Mp4,
    /// UTF-8 text or Markdown (label in front matter).
    Text,
}

impl FileFormat {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Png => "png",
            FileFormat::Jpeg => "jpeg",
            FileFormat::Webp => "webp",
            FileFormat::Gif => "gif",
            FileFormat::Mp3 => "mp3",
            FileFormat::Wav => "wav",
            FileFormat::Mp4 => "mp4",
            FileFormat::Text => "text",
        }
    }

    /// The format from the first bytes, if known.
    pub fn detect(bytes: &[u8]) -> Option<FileFormat> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(FileFormat::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8]) {
            Some(FileFormat::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(FileFormat::Webp)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
            Some(FileFormat::Wav)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(FileFormat::Gif)
        } else if bytes.len() >= 8 && matches!(&bytes[4..8], b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide") {
            Some(FileFormat::Mp4)
        } else if bytes.starts_with(b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
            Some(FileFormat::Mp3)
        } else if core::str::from_utf8(bytes).is_ok_and(|t| !t.contains('\0')) {
            Some(FileFormat::Text)
        } else {
            None
        }
    }
}

/// Where in the file a label was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// PNG `tEXt` chunk `AIGC`.
    PngText,
    /// XMP packet (PNG `iTXt`, JPEG APP1, WebP `XMP `, GIF application extension).
    Xmp,
    /// JPEG EXIF `UserComment`.
    ExifUserComment,
    /// ID3v2 `TXXX` frame `AIGC`.
    Id3Txxx,
    /// WAV chunk `AIGC`.
    WavChunk,
    /// `AIGC:` line of a text file's front matter.
    FrontMatter,
    /// MP4 `moov/udta/meta` `keys` + `ilst` item.
    Mp4Meta,
}

impl Carrier {
    /// Lowercase name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::PngText => "png-text",
            Carrier::Xmp => "xmp",
            Carrier::ExifUserComment => "exif-usercomment",
            Carrier::Id3Txxx => "id3-txxx",
            Carrier::WavChunk => "wav-chunk",
            Carrier::FrontMatter => "front-matter",
            Carrier::Mp4Meta => "mp4-meta",
        }
    }
}

/// One label found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundLabel {
    /// Where it was.
    pub carrier: Carrier,
    /// The label's JSON as stored (entities decoded).
    pub json: String,
    /// The label read from it, with any problems.
    pub parsed: ParsedLabel,
}

/// A file the label code cannot read or write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    format: Option<FileFormat>,
    offset: usize,
    message: String,
}

impl FileError {
    fn new(format: FileFormat, offset: usize, message: impl Into<String>) -> FileError {
        FileError { format: Some(format), offset, message: message.into() }
    }

    /// Byte offset of the problem.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            Some(format) => {
                write!(f, "malformed {} at byte {}: {}", format.as_str().to_uppercase(), self.offset, self.message)
            }
            None => write!(f, "unknown file format: {}", self.message),
        }
    }
}

impl std::error::Error for FileError {}

type Result<T> = core::result::Result<T, FileError>;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn found(carrier: Carrier, json: String) -> FoundLabel {
    let parsed = ImplicitLabel::parse(&json);
    FoundLabel { carrier, json, parsed }
}

/// Every label in the file, with its format.
///
/// ```
/// use aigc_edge::{files, ImplicitLabel};
/// // A 1x1 PNG.
/// let png = [137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153, 61, 29, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130];
/// let label = ImplicitLabel::generated("P", "id-1").unwrap();
/// let labeled = files::write_label(&png, &label).unwrap();
/// let (format, labels) = files::read_labels(&labeled).unwrap();
/// assert_eq!(format, files::FileFormat::Png);
/// assert_eq!(labels[0].parsed.label.as_ref(), Some(&label));
/// assert!(files::read_labels(&labeled[..40]).is_err());
/// ```
pub fn read_labels(bytes: &[u8]) -> Result<(FileFormat, Vec<FoundLabel>)> {
    let format = FileFormat::detect(bytes).ok_or_else(|| FileError {
        format: None,
        offset: 0,
        message: "not PNG, JPEG, WebP, GIF, MP3, WAV, MP4 or UTF-8 text".into(),
    })?;
    let labels = match format {
        FileFormat::Png => png::read(bytes)?,
        FileFormat::Jpeg => jpeg::read(bytes)?,
        FileFormat::Webp => riff::read(bytes, format)?,
        FileFormat::Wav => riff::read(bytes, format)?,
        FileFormat::Gif => gif::read(bytes)?,
        FileFormat::Mp3 => id3::read(bytes)?,
        FileFormat::Mp4 => mp4::read(bytes)?,
        FileFormat::Text => text::read(bytes),
    };
    Ok((format, labels))
}

/// The file with `label` as its one implicit label: every existing label carrier updated in
/// place, or the format's carrier added when there is none. Nothing else changes.
pub fn write_label(bytes: &[u8], label: &ImplicitLabel) -> Result<Vec<u8>> {
    let format = FileFormat::detect(bytes).ok_or_else(|| FileError {
        format: None,
        offset: 0,
        message: "not PNG, JPEG, WebP, GIF, MP3, WAV, MP4 or UTF-8 text".into(),
    })?;
    label.validate().map_err(|e| FileError::new(format, 0, e.to_string()))?;
    let json = label.to_json();
    match format {
        FileFormat::Png => png::write(bytes, &json),
        FileFormat::Jpeg => jpeg::write(bytes, &json),
        FileFormat::Webp | FileFormat::Wav => riff::write(bytes, format, &json),
        FileFormat::Gif => gif::write(bytes, &json),
        FileFormat::Mp3 => id3::write(bytes, &json),
        FileFormat::Mp4 => mp4::write(bytes, &json),
        FileFormat::Text => Ok(text::write(bytes, &json)),
    }
}

/// Where a file without a label came from, for [`propagate`] (Measures art. 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Nothing known: a file without a label is refused.
    Unknown,
    /// The uploader declared it AI-generated: `Label` `"2"`.
    Declared,
    /// Detection found traces of generation: `Label` `"3"`.
    Detected,
}

/// The platform's version of a file (Measures art. 6): an existing label is kept and its
/// `ContentPropagator` / `PropagateID` filled; a file without one gets `Label` `"2"` or `"3"`
/// by `provenance`. A label is never removed: a malformed one, or several different ones, are
/// refused rather than rewritten. With `key`, `ReservedCode2` seals the propagator fields.
pub fn propagate(
    bytes: &[u8],
    platform: &str,
    propagate_id: &str,
    provenance: Provenance,
    key: Option<&[u8]>,
) -> Result<(Vec<u8>, ImplicitLabel)> {
    let (format, labels) = read_labels(bytes)?;
    let mut distinct: Vec<&FoundLabel> = Vec::new();
    for l in &labels {
        if !distinct.iter().any(|d| d.parsed.label == l.parsed.label && d.parsed.label.is_some()) {
            distinct.push(l);
        }
    }
    let mut label = match distinct.as_slice() {
        [] => {
            let kind = match provenance {
                Provenance::Declared => super::LabelKind::Declared,
                Provenance::Detected => super::LabelKind::Suspected,
                Provenance::Unknown => {
                    return Err(FileError::new(
                        format,
                        0,
                        "no label, and nothing declared or detected: nothing to write",
                    ))
                }
            };
            ImplicitLabel {
                label: kind,
                content_producer: String::new(),
                produce_id: String::new(),
                reserved_code1: String::new(),
                content_propagator: String::new(),
                propagate_id: String::new(),
                reserved_code2: String::new(),
            }
        }
        [one] => match &one.parsed.label {
            Some(l) => l.clone(),
            None => {
                return Err(FileError::new(
                    format,
                    0,
                    format!("existing label is malformed ({}); not rewritten", one.parsed.problems.join("; ")),
                ))
            }
        },
        _ => return Err(FileError::new(format, 0, "file holds different labels; not rewritten")),
    };
    label.content_propagator = platform.to_string();
    label.propagate_id = propagate_id.to_string();
    label.reserved_code2.clear();
    if let Some(key) = key {
        label.seal_propagator(key);
    }
    let out = write_label(bytes, &label)?;
    Ok((out, label))
}

/// A file's labels (and verdict) as JSON, the one shape the CLI's `verify` and the browser
/// module report: `{"format", "labels": [{"carrier", "json", "fields" (null when malformed),
/// "problems"}], "verdict", "reasons"}`.
pub fn report_json(format: FileFormat, labels: &[FoundLabel], verdict: Option<&Verdict>) -> serde_json::Value {
    let labels: Vec<serde_json::Value> = labels
        .iter()
        .map(|l| {
            let fields = l.parsed.label.as_ref().map(|x| {
                x.fields()
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), serde_json::Value::String((*v).to_string())))
                    .collect::<serde_json::Map<_, _>>()
            });
            serde_json::json!({"carrier": l.carrier.as_str(), "json": l.json, "fields": fields, "problems": l.parsed.problems})
        })
        .collect();
    let mut v = serde_json::json!({"format": format.as_str(), "labels": labels});
    if let Some(verdict) = verdict {
        let (name, reasons) = match verdict {
            Verdict::Compliant => ("compliant", &[][..]),
            Verdict::NonCompliant(r) => ("non-compliant", r.as_slice()),
            Verdict::NoLabel => ("no label", &[][..]),
        };
        v["verdict"] = serde_json::json!(name);
        v["reasons"] = serde_json::json!(reasons);
    }
    v
}

/// The verdict on one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// One well-formed label (possibly repeated identically in several carriers).
    Compliant,
    /// Labels present but wrong; the reasons say how.
    NonCompliant(Vec<String>),
    /// No implicit label.
    NoLabel,
}

/// Checks a file's labels: format, every label found, the verdict, and with `key` the
/// integrity codes (`ReservedCode1`, `ReservedCode2` when present).
pub fn verify(bytes: &[u8], key: Option<&[u8]>) -> Result<(FileFormat, Vec<FoundLabel>, Verdict)> {
    let (format, labels) = read_labels(bytes)?;
    if labels.is_empty() {
        return Ok((format, labels, Verdict::NoLabel));
    }
    let mut reasons: Vec<String> = Vec::new();
    for l in &labels {
        for p in &l.parsed.problems {
            reasons.push(format!("{}: {p}", l.carrier.as_str()));
        }
    }
    let mut distinct: Vec<&ImplicitLabel> = Vec::new();
    for l in labels.iter().filter_map(|l| l.parsed.label.as_ref()) {
        if !distinct.contains(&l) {
            distinct.push(l);
        }
    }
    if distinct.len() > 1 {
        reasons.push(format!("{} different labels in one file (GB 45438 allows one)", distinct.len()));
    }
    if let Some(key) = key {
        for l in &distinct {
            if !l.reserved_code1.is_empty() && l.producer_code(key) != l.reserved_code1 {
                reasons.push("ReservedCode1 does not verify: producer fields edited or forged".into());
            }
            if !l.reserved_code2.is_empty() && l.propagator_code(key) != l.reserved_code2 {
                reasons.push("ReservedCode2 does not verify: propagator fields edited or forged".into());
            }
        }
    }
    let verdict = if reasons.is_empty() { Verdict::Compliant } else { Verdict::NonCompliant(reasons) };
    Ok((format, labels, verdict))
}

mod mp4 {
    use super::*;

    const F: FileFormat = FileFormat::Mp4;

    /// A box: `(start, header length, end, type)`.
    #[derive(Clone, Copy)]
    struct Bx {
        start: usize,
        header: usize,
        end: usize,
        kind: [u8; 4],
    }

    impl Bx {
        fn body(&self) -> core::ops::Range<usize> {
            self.start + self.header..self.end
        }
    }

    fn boxes(b: &[u8], range: core::ops::Range<usize>) -> Result<Vec<Bx>> {
        let mut out = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let size = be32(b, at).ok_or_else(|| FileError::new(F, at, "truncated box header"))? as u64;
            let kind: [u8; 4] = b
                .get(at + 4..at + 8)
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| FileError::new(F, at, "truncated box type"))?;
            let (header, size) = match size {
                1 => {
                    let hi = be32(b, at + 8).ok_or_else(|| FileError::new(F, at, "truncated large size"))?;
                    let lo = be32(b, at + 12).ok_or_else(|| FileError::new(F, at, "truncated large size"))?;
                    (16, u64::from(hi) << 32 | u64::from(lo))
                }
                0 => (8, (range.end - at) as u64),
                n => (8, n),
            };
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| at.checked_add(s))
                .filter(|&e| e <= range.end && e >= at + header)
                .ok_or_else(|| {
                    FileError::new(
                        F,
                        at,
                        format!("box {} of {size} bytes runs past its parent", String::from_utf8_lossy(&kind)),
                    )
                })?;
            out.push(Bx { start: at, header, end, kind });
            at = end;
        }
        Ok(out)
    }

    fn child(b: &[u8], parent: &Bx, kind: &[u8; 4], skip: usize) -> Result<Option<Bx>> {
        let body = parent.body();
        Ok(boxes(b, body.start + skip..body.end)?.into_iter().find(|c| &c.kind == kind))
    }

    /// The `meta` box of `moov/udta`, if any.
    fn meta(b: &[u8]) -> Result<Option<(Bx, Bx, Bx)>> {
        let Some(moov) = boxes(b, 0..b.len())?.into_iter().find(|x| &x.kind == b"moov") else {
            return Err(FileError::new(F, 0, "no moov box"));
        };
        let Some(udta) = child(b, &moov, b"udta", 0)? else { return Ok(None) };
        let Some(meta) = child(b, &udta, b"meta", 0)? else { return Ok(None) };
        Ok(Some((moov, udta, meta)))
    }

    /// `meta` children after its version/flags (QuickTime files omit them: detected).
    fn meta_children(b: &[u8], meta: &Bx) -> Result<(usize, Vec<Bx>)> {
        let body = meta.body();
        let full = b.get(body.start + 4..body.start + 8).is_some_and(|k| k != b"hdlr");
        let skip = if full { 4 } else { 0 };
        Ok((skip, boxes(b, body.start + skip..body.end)?))
    }

    /// Key names of a `keys` box, 1-based order.
    fn keys(b: &[u8], keys: &Bx) -> Result<Vec<Vec<u8>>> {
        let body = keys.body();
        let count = be32(b, body.start + 4).ok_or_else(|| FileError::new(F, keys.start, "truncated keys"))? as usize;
        let mut at = body.start + 8;
        let mut out = Vec::new();
        for _ in 0..count.min(4096) {
            let size = be32(b, at).ok_or_else(|| FileError::new(F, at, "truncated key"))? as usize;
            if size < 8 || at + size > body.end {
                return Err(FileError::new(F, at, "key entry runs past the keys box"));
            }
            out.push(b[at + 8..at + size].to_vec());
            at += size;
        }
        Ok(out)
    }

    /// `(ilst item box, data value range)` for 1-based key `index`.
    fn item(b: &[u8], ilst: &Bx, index: usize) -> Result<Option<(Bx, core::ops::Range<usize>)>> {
        for it in boxes(b, ilst.body())? {
            if be32(b, it.start + 4).map(|k| k as usize) == Some(index) {
                if let Some(data) = boxes(b, it.body())?.into_iter().find(|d| &d.kind == b"data") {
                    let body = data.body();
                    if body.end >= body.start + 8 {
                        return Ok(Some((it, body.start + 8..body.end)));
                    }
                }
            }
        }
        Ok(None)
    }

    pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
        let Some((_, _, meta)) = meta(b)? else { return Ok(Vec::new()) };
        let (_, children) = meta_children(b, &meta)?;
        let (Some(k), Some(ilst)) =
            (children.iter().find(|c| &c.kind == b"keys"), children.iter().find(|c| &c.kind == b"ilst"))
        else {
            return Ok(Vec::new());
        };
        let mut labels = Vec::new();
        for (i, name) in keys(b, k)?.iter().enumerate() {
            if name == b"AIGC" {
                if let Some((_, value)) = item(b, ilst, i + 1)? {
                    labels.push(found(Carrier::Mp4Meta, String::from_utf8_lossy(&b[value]).into_owned()));
                }
            }
        }
        Ok(labels)
    }

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn data_item(index: u32, json: &str) -> Vec<u8> {
        let mut data = 1u32.to_be_bytes().to_vec(); // UTF-8
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(json.as_bytes());
        bx(&index.to_be_bytes(), &bx(b"data", &data))
    }

    /// The new `meta` box: the label set in `keys` + `ilst`, everything else kept.
    fn new_meta(b: &[u8], old: Option<&Bx>, json: &str) -> Result<Vec<u8>> {
        let Some(old) = old else {
            let mut hdlr = vec![0u8; 8];
            hdlr[4..8].copy_from_slice(b"mdta");
            hdlr.extend_from_slice(&[0u8; 13]);
            let mut keys = vec![0u8, 0, 0, 0, 0, 0, 0, 1];
            keys.extend_from_slice(&12u32.to_be_bytes());
            keys.extend_from_slice(b"mdtaAIGC");
            let mut body = vec![0u8; 4];
            body.extend(bx(b"hdlr", &hdlr));
            body.extend(bx(b"keys", &keys));
            body.extend(bx(b"ilst", &data_item(1, json)));
            return Ok(bx(b"meta", &body));
        };
        let (skip, children) = meta_children(b, old)?;
        let mut body = b[old.body().start..old.body().start + skip].to_vec();
        let key_names = match children.iter().find(|c| &c.kind == b"keys") {
            Some(k) => keys(b, k)?,
            None => Vec::new(),
        };
        let index = key_names.iter().position(|k| k == b"AIGC").map(|i| i + 1);
        let new_index = index.unwrap_or(key_names.len() + 1);
        let has_keys = children.iter().any(|c| &c.kind == b"keys");
        let new_keys = || {
            let mut keys = vec![0u8, 0, 0, 0];
            keys.extend_from_slice(&1u32.to_be_bytes());
            keys.extend_from_slice(&12u32.to_be_bytes());
            keys.extend_from_slice(b"mdtaAIGC");
            bx(b"keys", &keys)
        };
        let mut saw_ilst = false;
        for c in &children {
            match &c.kind {
                b"keys" => {
                    if index.is_some() {
                        body.extend_from_slice(&b[c.start..c.end]);
                    } else {
                        let kb = c.body();
                        let mut keys = b[kb.start..kb.start + 4].to_vec();
                        keys.extend_from_slice(&(new_index as u32).to_be_bytes());
                        keys.extend_from_slice(&b[kb.start + 8..kb.end]);
                        keys.extend_from_slice(&12u32.to_be_bytes());
                        keys.extend_from_slice(b"mdtaAIGC");
                        body.extend(bx(b"keys", &keys));
                    }
                }
                b"ilst" => {
                    // Readers resolve item indices through `keys`, so it must come first.
                    if !has_keys {
                        body.extend(new_keys());
                    }
                    saw_ilst = true;
                    let mut items = Vec::new();
                    let mut replaced = false;
                    for it in boxes(b, c.body())? {
                        if be32(b, it.start + 4).map(|k| k as usize) == Some(new_index) {
                            if !replaced {
                                items.extend(data_item(new_index as u32, json));
                                replaced = true;
                            }
                        } else {
                            items.extend_from_slice(&b[it.start..it.end]);
                        }
                    }
                    if !replaced {
                        items.extend(data_item(new_index as u32, json));
                    }
                    body.extend(bx(b"ilst", &items));
                }
                _ => body.extend_from_slice(&b[c.start..c.end]),
            }
        }
        if !saw_ilst {
            if !has_keys {
                body.extend(new_keys());
            }
            body.extend(bx(b"ilst", &data_item(new_index as u32, json)));
        }
        Ok(bx(b"meta", &body))
    }

    /// The body of `parent` with its first `kind` child replaced by `new` (appended if none).
    fn replace_child(b: &[u8], parent: &Bx, kind: &[u8; 4], new: &[u8]) -> Result<Vec<u8>> {
        let mut body = Vec::with_capacity(parent.end - parent.start + new.len());
        let mut placed = false;
        for c in boxes(b, parent.body())? {
            if &c.kind == kind && !placed {
                body.extend_from_slice(new);
                placed = true;
            } else {
                body.extend_from_slice(&b[c.start..c.end]);
            }
        }
        if !placed {
            body.extend_from_slice(new);
        }
        Ok(body)
    }

    /// Adds `delta` to every chunk offset (`stco`, `co64`) inside `moov` bytes.
    fn shift_offsets(moov: &mut [u8], delta: i64) -> Result<()> {
        fn walk(m: &mut [u8], range: core::ops::Range<usize>, delta: i64) -> Result<()> {
            for c in boxes(m, range)? {
                match &c.kind {
                    b"trak" | b"mdia" | b"minf" | b"stbl" => walk(m, c.body(), delta)?,
                    b"stco" | b"co64" => {
                        let body = c.body();
                        let n = be32(m, body.start + 4)
                            .ok_or_else(|| FileError::new(F, c.start, "truncated offset table"))?
                            as usize;
                        let wide = &c.kind == b"co64";
                        let width = if wide { 8 } else { 4 };
                        if body.start + 8 + n.saturating_mul(width) > body.end {
                            return Err(FileError::new(F, c.start, "offset table runs past its box"));
                        }
                        for i in 0..n {
                            let at = body.start + 8 + i * width;
                            if wide {
                                let v = u64::from_be_bytes(m[at..at + 8].try_into().unwrap_or([0; 8]));
                                let nv = (v as i64 + delta) as u64;
                                m[at..at + 8].copy_from_slice(&nv.to_be_bytes());
                            } else {
                                let v = i64::from(u32::from_be_bytes(m[at..at + 4].try_into().unwrap_or([0; 4])));
                                let nv = u32::try_from(v + delta).map_err(|_| {
                                    FileError::new(F, at, "chunk offset overflows 32 bits after the label is added")
                                })?;
                                m[at..at + 4].copy_from_slice(&nv.to_be_bytes());
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        let len = moov.len();
        walk(moov, 8..len, delta)
    }

    pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
        let top = boxes(b, 0..b.len())?;
        let moov = *top.iter().find(|x| &x.kind == b"moov").ok_or_else(|| FileError::new(F, 0, "no moov box"))?;
        if moov.header != 8 {
            return Err(FileError::new(F, moov.start, "64-bit moov size is not supported"));
        }
        let udta = child(b, &moov, b"udta", 0)?;
        let meta_box = match &udta {
            Some(u) => child(b, u, b"meta", 0)?,
            None => None,
        };
        let meta = new_meta(b, meta_box.as_ref(), json)?;
        let udta_new = match &udta {
            Some(u) => bx(b"udta", &replace_child(b, u, b"meta", &meta)?),
            None => bx(b"udta", &meta),
        };
        let moov_body = replace_child(b, &moov, b"udta", &udta_new)?;
        let mut new_moov = bx(b"moov", &moov_body);
        let delta = new_moov.len() as i64 - (moov.end - moov.start) as i64;
        let media_after = top.iter().any(|x| &x.kind == b"mdat" && x.start > moov.start);
        if media_after && delta != 0 {
            shift_offsets(&mut new_moov, delta)?;
        }
        let mut out = Vec::with_capacity(b.len() + new_moov.len());
        out.extend_from_slice(&b[..moov.start]);
        out.extend_from_slice(&new_moov);
        out.extend_from_slice(&b[moov.end..]);
        Ok(out)
    }
}

mod text {
    use super::*;

    const FENCE: &str = "---";

    /// `(front matter body range, whole block end)` when the text opens with front matter.
    fn front_matter(t: &str) -> Option<(core::ops::Range<usize>, usize)> {
        let first = t.split_inclusive('\n').next()?;
        if first.trim_end() != FENCE {
            return None;
        }
        let mut at = first.len();
        for line in t[at..].split_inclusive('\n') {
            if line.trim_end() == FENCE {
                return Some((first.len()..at, at + line.len()));
            }
            at += line.len();
        }
        None
    }

    pub(super) fn read(b: &[u8]) -> Vec<FoundLabel> {
        let t = String::from_utf8_lossy(b);
        let Some((body, _)) = front_matter(&t) else { return Vec::new() };
        t[body]
            .lines()
            .filter_map(|l| l.strip_prefix("AIGC:"))
            .map(|v| found(Carrier::FrontMatter, v.trim().trim_matches('\'').to_string()))
            .collect()
    }

    pub(super) fn write(b: &[u8], json: &str) -> Vec<u8> {
        let t = String::from_utf8_lossy(b);
        let line = format!("AIGC: '{json}'");
        match front_matter(&t) {
            Some((body, end)) => {
                let mut lines: Vec<String> = Vec::new();
                let mut written = false;
                for l in t[body.clone()].lines() {
                    if l.starts_with("AIGC:") {
                        if !written {
                            lines.push(line.clone());
                            written = true;
                        }
                    } else {
                        lines.push(l.to_string());
                    }
                }
                if !written {
                    lines.push(line);
                }
                format!("{FENCE}\n{}\n{FENCE}\n{}", lines.join("\n"), &t[end..]).into_bytes()
            }
            None => format!("{FENCE}\n{line}\n{FENCE}\n{t}").into_bytes(),
        }
    }
}

mod png {
    use super::*;
    use crate::dictionary::crc32;

    const F: FileFormat = FileFormat::Png;
    const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

    struct Chunk {
        at: usize,
        kind: [u8; 4],
        data: core::ops::Range<usize>,
        end: usize,
    }

    fn chunks(b: &[u8]) -> Result<Vec<Chunk>> {
        let mut out = Vec::new();
        let mut at = 8;
        loop {
            let len = be32(b, at).ok_or_else(|| FileError::new(F, at, "truncated chunk header"))? as usize;
            let kind: [u8; 4] = b
                .get(at + 4..at + 8)
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| FileError::new(F, at + 4, "truncated chunk type"))?;
            let data = at + 8..at.checked_add(8 + len).filter(|&e| e + 4 <= b.len()).ok_or_else(|| {
                FileError::new(
                    F,
                    at,
                    format!("chunk {} of {len} bytes runs past the end", String::from_utf8_lossy(&kind)),
                )
            })?;
            let stored = be32(b, data.end).unwrap_or(0);
            if crc32(&b[at + 4..data.end]) != stored {
                return Err(FileError::new(F, at, format!("CRC mismatch in chunk {}", String::from_utf8_lossy(&kind))));
            }
            let end = data.end + 4;
            let last = &kind == b"IEND";
            out.push(Chunk { at, kind, data, end });
            if last {
                return Ok(out);
            }
            at = end;
        }
    }

    fn xmp_text(data: &[u8]) -> Option<&str> {
        // keyword \0 compression flag, method, language \0 translated keyword \0 text
        let rest = data.strip_prefix(XMP_KEYWORD)?.strip_prefix(b"\0")?;
        if rest.first() != Some(&0) {
            return None; // compressed: not read
        }
        let rest = rest.get(2..)?;
        let lang_end = rest.iter().position(|&c| c == 0)?;
        let rest = rest.get(lang_end + 1..)?;
        let tr_end = rest.iter().position(|&c| c == 0)?;
        core::str::from_utf8(rest.get(tr_end + 1..)?).ok()
    }

    pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
        let mut labels = Vec::new();
        for c in chunks(b)? {
            let data = &b[c.data.clone()];
            if &c.kind == b"tEXt" {
                if let Some(text) = data.strip_prefix(b"AIGC\0") {
                    labels.push(found(Carrier::PngText, String::from_utf8_lossy(text).into_owned()));
                }
            } else if &c.kind == b"iTXt" {
                if let Some(x) = xmp_text(data) {
                    labels.extend(xmp::find(x).into_iter().map(|j| found(Carrier::Xmp, j)));
                }
            }
        }
        Ok(labels)
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 12);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[4..]);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
        let all = chunks(b)?;
        let text_chunk = chunk(b"tEXt", &[b"AIGC\0".as_slice(), json.as_bytes()].concat());
        let has_text = all.iter().any(|c| &c.kind == b"tEXt" && b[c.data.clone()].starts_with(b"AIGC\0"));
        let mut out = Vec::with_capacity(b.len() + text_chunk.len());
        out.extend_from_slice(&b[..8]);
        let mut written = false;
        for c in &all {
            let data = &b[c.data.clone()];
            if &c.kind == b"tEXt" && data.starts_with(b"AIGC\0") {
                if !written {
                    out.extend_from_slice(&text_chunk);
                    written = true;
                }
                continue; // a second AIGC text chunk is dropped: one label per file
            }
            if &c.kind == b"iTXt" {
                if let Some(x) = xmp_text(data).filter(|x| !xmp::find(x).is_empty()) {
                    let header_len = data.len() - x.len();
                    let updated = xmp::update(x, json);
                    out.extend_from_slice(&chunk(b"iTXt", &[&data[..header_len], updated.as_bytes()].concat()));
                    continue;
                }
            }
            if !written && !has_text && &c.kind == b"IDAT" {
                out.extend_from_slice(&text_chunk);
                written = true;
            }
            out.extend_from_slice(&b[c.at..c.end]);
        }
        out.extend_from_slice(&b[all.last().map_or(8, |c| c.end)..]);
        Ok(out)
    }
}

mod jpeg {
    use super::*;

    const F: FileFormat = FileFormat::Jpeg;
    const XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

    struct Segment {
        at: usize,
        marker: u8,
        data: core::ops::Range<usize>,
    }

    /// Segments up to the start of scan; the rest is entropy-coded data, copied unchanged.
    fn segments(b: &[u8]) -> Result<(Vec<Segment>, usize)> {
        let mut out = Vec::new();
        let mut at = 2;
        loop {
            while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            if b.get(at) != Some(&0xFF) {
                return Err(FileError::new(F, at, "expected a marker"));
            }
            let marker = *b.get(at + 1).ok_or_else(|| FileError::new(F, at, "truncated marker"))?;
            if marker == 0xD9 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
                return Ok((out, at));
            }
            let len = b
                .get(at + 2..at + 4)
                .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
                .ok_or_else(|| FileError::new(F, at, "truncated segment length"))?;
            if len < 2 || at + 2 + len > b.len() {
                return Err(FileError::new(
                    F,
                    at,
                    format!("segment 0xFF{marker:02X} of {len} bytes runs past the end"),
                ));
            }
            out.push(Segment { at, marker, data: at + 4..at + 2 + len });
            at += 2 + len;
            if marker == 0xDA {
                return Ok((out, at));
            }
        }
    }

    /// `(value offset, value length)` of an EXIF UserComment in a TIFF block.
    fn user_comment(tiff: &[u8]) -> Option<(usize, usize)> {
        let little = match tiff.get(..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let u16_at = |o: usize| {
            tiff.get(o..o + 2).map(|s| {
                if little {
                    u16::from_le_bytes([s[0], s[1]])
                } else {
                    u16::from_be_bytes([s[0], s[1]])
                }
            })
        };
        let u32_at = |o: usize| if little { le32(tiff, o) } else { be32(tiff, o) };
        let find_tag = |ifd: usize, tag: u16| -> Option<(u16, u32, u32)> {
            let n = usize::from(u16_at(ifd)?);
            (0..n.min(512)).find_map(|i| {
                let e = ifd + 2 + i * 12;
                (u16_at(e)? == tag).then(|| Some((u16_at(e + 2)?, u32_at(e + 4)?, u32_at(e + 8)?))).flatten()
            })
        };
        let ifd0 = u32_at(4)? as usize;
        let (_, _, exif_ifd) = find_tag(ifd0, 0x8769)?;
        let (kind, count, offset) = find_tag(exif_ifd as usize, 0x9286)?;
        let count = count as usize;
        if kind != 7 || count <= 4 {
            return None;
        }
        let start = offset as usize;
        tiff.get(start..start.checked_add(count)?)?;
        Some((start, count))
    }

    pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
        let (segs, _) = segments(b)?;
        let mut labels = Vec::new();
        for s in segs.iter().filter(|s| s.marker == 0xE1) {
            let data = &b[s.data.clone()];
            if let Some(packet) = data.strip_prefix(XMP_HEADER) {
                let text = String::from_utf8_lossy(packet);
                labels.extend(xmp::find(&text).into_iter().map(|j| found(Carrier::Xmp, j)));
            } else if let Some(tiff) = data.strip_prefix(b"Exif\0\0") {
                if let Some((start, len)) = user_comment(tiff) {
                    let value = &tiff[start..start + len];
                    if let Some(text) = value.strip_prefix(b"ASCII\0\0\0") {
                        let text = String::from_utf8_lossy(text).trim_end_matches(['\0', ' ']).to_string();
                        if text.contains("AIGC") || text.contains("ContentProducer") {
                            labels.push(found(Carrier::ExifUserComment, text));
                        }
                    }
                }
            }
        }
        Ok(labels)
    }

    fn app1(payload: &[u8]) -> Result<Vec<u8>> {
        let len = payload.len() + 2;
        if len > 0xFFFF {
            return Err(FileError::new(F, 0, "XMP packet too large for one APP1 segment"));
        }
        let mut out = vec![0xFF, 0xE1];
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(payload);
        Ok(out)
    }

    pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
        let (segs, scan) = segments(b)?;
        let mut out = Vec::with_capacity(b.len() + json.len() + 512);
        out.extend_from_slice(&b[..2]);
        let has_xmp = segs.iter().any(|s| s.marker == 0xE1 && b[s.data.clone()].starts_with(XMP_HEADER));
        let mut inserted = false;
        let mut copy_from = 2;
        for s in &segs {
            let data = &b[s.data.clone()];
            let leading_app = s.marker == 0xE0 || (s.marker == 0xE1 && !data.starts_with(XMP_HEADER));
            if !has_xmp && !inserted && !leading_app {
                out.extend_from_slice(&b[copy_from..s.at]);
                out.extend_from_slice(&app1(&[XMP_HEADER, xmp::packet(json).as_bytes()].concat())?);
                inserted = true;
                copy_from = s.at;
            }
            if s.marker == 0xE1 {
                if let Some(packet) = data.strip_prefix(XMP_HEADER) {
                    out.extend_from_slice(&b[copy_from..s.at]);
                    let updated = xmp::update(&String::from_utf8_lossy(packet), json);
                    out.extend_from_slice(&app1(&[XMP_HEADER, updated.as_bytes()].concat())?);
                    copy_from = s.data.end;
                } else if let Some(tiff) = data.strip_prefix(b"Exif\0\0") {
                    // An existing EXIF label is overwritten in place (space-padded), so
                    // the TIFF offsets stay valid.
                    if let Some((start, len)) = user_comment(tiff).filter(|&(st, l)| {
                        tiff[st..st + l].starts_with(b"ASCII\0\0\0")
                            && String::from_utf8_lossy(&tiff[st..st + l]).contains("AIGC")
                    }) {
                        let value = [b"ASCII\0\0\0".as_slice(), json.as_bytes()].concat();
                        if value.len() > len {
                            return Err(FileError::new(F, s.at, "existing EXIF UserComment label is shorter than the new one; cannot update it in place"));
                        }
                        let at = s.data.start + 6 + start;
                        out.extend_from_slice(&b[copy_from..at]);
                        out.extend_from_slice(&value);
                        out.extend(core::iter::repeat_n(b' ', len - value.len()));
                        copy_from = at + len;
                    }
                }
            }
        }
        if !has_xmp && !inserted {
            out.extend_from_slice(&b[copy_from..scan]);
            out.extend_from_slice(&app1(&[XMP_HEADER, xmp::packet(json).as_bytes()].concat())?);
            copy_from = scan;
        }
        out.extend_from_slice(&b[copy_from..]);
        Ok(out)
    }
}

mod riff {
    use super::*;

    struct Chunk {
        at: usize,
        id: [u8; 4],
        data: core::ops::Range<usize>,
        end: usize,
    }

    fn chunks(b: &[u8], f: FileFormat) -> Result<Vec<Chunk>> {
        let size = le32(b, 4).ok_or_else(|| FileError::new(f, 4, "truncated RIFF header"))? as usize;
        let end = size
            .checked_add(8)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| FileError::new(f, 4, format!("RIFF size {size} runs past the end ({} bytes)", b.len())))?;
        let mut out = Vec::new();
        let mut at = 12;
        while at < end {
            let id: [u8; 4] = b
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| FileError::new(f, at, "truncated chunk id"))?;
            let len = le32(b, at + 4).ok_or_else(|| FileError::new(f, at, "truncated chunk size"))? as usize;
            let data_end = (at + 8).checked_add(len).filter(|&e| e <= end).ok_or_else(|| {
                FileError::new(
                    f,
                    at,
                    format!("chunk {} of {len} bytes runs past the end", String::from_utf8_lossy(&id)),
                )
            })?;
            let padded = (data_end + (len & 1)).min(end);
            out.push(Chunk { at, id, data: at + 8..data_end, end: padded });
            at = padded;
        }
        Ok(out)
    }

    fn label_id(f: FileFormat) -> &'static [u8; 4] {
        if f == FileFormat::Wav {
            b"AIGC"
        } else {
            b"XMP "
        }
    }

    pub(super) fn read(b: &[u8], f: FileFormat) -> Result<Vec<FoundLabel>> {
        let mut labels = Vec::new();
        for c in chunks(b, f)? {
            if &c.id != label_id(f) {
                continue;
            }
            let text = String::from_utf8_lossy(&b[c.data.clone()]).trim_end_matches('\0').to_string();
            if f == FileFormat::Wav {
                labels.push(found(Carrier::WavChunk, text));
            } else {
                labels.extend(xmp::find(&text).into_iter().map(|j| found(Carrier::Xmp, j)));
            }
        }
        Ok(labels)
    }

    fn chunk(id: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 9);
        out.extend_from_slice(id);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    /// A `VP8X` header for a simple (VP8 or VP8L) WebP, so it can carry metadata.
    fn vp8x_for(b: &[u8], first: &Chunk) -> Result<Vec<u8>> {
        let f = FileFormat::Webp;
        let d = &b[first.data.clone()];
        let (w, h, alpha) = match &first.id {
            b"VP8 " if d.len() >= 10 && d[3..6] == [0x9D, 0x01, 0x2A] => {
                let w = u32::from(u16::from_le_bytes([d[6], d[7]]) & 0x3FFF);
                let h = u32::from(u16::from_le_bytes([d[8], d[9]]) & 0x3FFF);
                (w, h, false)
            }
            b"VP8L" if d.len() >= 5 && d[0] == 0x2F => {
                let bits = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
                ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bits >> 28 & 1 == 1)
            }
            _ => return Err(FileError::new(f, first.at, "first chunk is neither VP8X, VP8 nor VP8L")),
        };
        if w == 0 || h == 0 {
            return Err(FileError::new(f, first.at, "zero image size"));
        }
        let mut data = vec![0u8; 10];
        data[0] = 0x04 | if alpha { 0x10 } else { 0 }; // XMP (and alpha) present
        data[4..7].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
        data[7..10].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
        Ok(chunk(b"VP8X", &data))
    }

    pub(super) fn write(b: &[u8], f: FileFormat, json: &str) -> Result<Vec<u8>> {
        let all = chunks(b, f)?;
        let id = label_id(f);
        let mut out = Vec::with_capacity(b.len() + json.len() + 600);
        out.extend_from_slice(&b[..12]);
        let mut written = false;
        let first_is_vp8x = all.first().is_some_and(|c| &c.id == b"VP8X");
        for (i, c) in all.iter().enumerate() {
            if i == 0 && f == FileFormat::Webp {
                if first_is_vp8x {
                    out.extend_from_slice(&b[c.at..c.end]);
                    if let Some(flags) = out.get_mut(12 + 8) {
                        *flags |= 0x04;
                    }
                    continue;
                }
                out.extend_from_slice(&vp8x_for(b, c)?);
            }
            if &c.id == id {
                if !written {
                    let payload = if f == FileFormat::Wav {
                        json.to_string()
                    } else {
                        xmp::update(&String::from_utf8_lossy(&b[c.data.clone()]), json)
                    };
                    out.extend_from_slice(&chunk(id, payload.as_bytes()));
                    written = true;
                }
                continue;
            }
            out.extend_from_slice(&b[c.at..c.end]);
        }
        if !written {
            let payload = if f == FileFormat::Wav { json.to_string() } else { xmp::packet(json) };
            out.extend_from_slice(&chunk(id, payload.as_bytes()));
        }
        let size = (out.len() - 8) as u32;
        out[4..8].copy_from_slice(&size.to_le_bytes());
        // Bytes after the RIFF body (rare) are kept as they were.
        let riff_end = le32(b, 4).map_or(b.len(), |s| (s as usize + 8).min(b.len()));
        out.extend_from_slice(&b[riff_end..]);
        Ok(out)
    }
}

mod gif {
    use super::*;

    const F: FileFormat = FileFormat::Gif;
    const APP_ID: &[u8] = b"XMP DataXMP";

    /// A block: `(start, end, is_xmp)`.
    type Block = (usize, usize, bool);

    /// Blocks up to the trailer, with the end of the header and the trailer's offset.
    fn blocks(b: &[u8]) -> Result<(Vec<Block>, usize, usize)> {
        let flags = *b.get(10).ok_or_else(|| FileError::new(F, 10, "truncated screen descriptor"))?;
        let mut at = 13;
        if flags & 0x80 != 0 {
            at += 3 << ((flags & 7) + 1);
        }
        let header_end = at;
        let mut out = Vec::new();
        let sub_blocks = |mut at: usize| -> Result<usize> {
            loop {
                let n = usize::from(*b.get(at).ok_or_else(|| FileError::new(F, at, "truncated data sub-block"))?);
                at += 1 + n;
                if n == 0 {
                    return Ok(at);
                }
            }
        };
        loop {
            let start = at;
            match b.get(at) {
                Some(0x3B) => return Ok((out, header_end, at)),
                Some(0x21) => {
                    let label = *b.get(at + 1).ok_or_else(|| FileError::new(F, at, "truncated extension"))?;
                    let is_xmp = label == 0xFF && b.get(at + 3..at + 14) == Some(APP_ID);
                    if is_xmp {
                        // The XMP packet is stored raw, followed by a 258-byte "magic trailer".
                        let body = at + 14;
                        let rest = b.get(body..).unwrap_or(&[]);
                        let end = rest
                            .windows(3)
                            .position(|w| w == [0x01, 0xFF, 0xFE])
                            .map(|p| body + p + 258)
                            .filter(|&e| e <= b.len())
                            .ok_or_else(|| FileError::new(F, at, "XMP extension without its trailer"))?;
                        at = end;
                    } else {
                        at = sub_blocks(at + 2)?;
                    }
                    out.push((start, at, is_xmp));
                }
                Some(0x2C) => {
                    let packed = *b.get(at + 9).ok_or_else(|| FileError::new(F, at, "truncated image descriptor"))?;
                    at += 10;
                    if packed & 0x80 != 0 {
                        at += 3 << ((packed & 7) + 1);
                    }
                    at = sub_blocks(at + 1)?;
                    out.push((start, at, false));
                }
                Some(other) => return Err(FileError::new(F, at, format!("unknown block 0x{other:02X}"))),
                None => return Err(FileError::new(F, at, "missing trailer")),
            }
        }
    }

    fn xmp_of(b: &[u8], start: usize, end: usize) -> String {
        String::from_utf8_lossy(b.get(start + 14..end.saturating_sub(258)).unwrap_or(&[])).into_owned()
    }

    pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
        let (blocks, _, _) = blocks(b)?;
        Ok(blocks
            .iter()
            .filter(|(_, _, x)| *x)
            .flat_map(|&(s, e, _)| xmp::find(&xmp_of(b, s, e)).into_iter().map(|j| found(Carrier::Xmp, j)))
            .collect())
    }

    fn extension(packet: &str) -> Vec<u8> {
        let mut out = vec![0x21, 0xFF, 0x0B];
        out.extend_from_slice(APP_ID);
        out.extend_from_slice(packet.as_bytes());
        out.push(0x01);
        out.extend((0..=255u8).rev());
        out.push(0x00);
        out
    }

    pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
        let (blocks, header_end, trailer) = blocks(b)?;
        let mut out = Vec::with_capacity(b.len() + json.len() + 700);
        out.extend_from_slice(&b[..header_end]);
        out[..6].copy_from_slice(b"GIF89a"); // extensions need 89a
        let mut written = false;
        for &(s, e, is_xmp) in &blocks {
            if is_xmp {
                if !written {
                    out.extend_from_slice(&extension(&xmp::update(&xmp_of(b, s, e), json)));
                    written = true;
                }
                continue;
            }
            out.extend_from_slice(&b[s..e]);
        }
        if !written {
            out.extend_from_slice(&extension(&xmp::packet(json)));
        }
        out.extend_from_slice(&b[trailer..]);
        Ok(out)
    }
}

mod id3 {
    use super::*;

    const F: FileFormat = FileFormat::Mp3;

    fn syncsafe(b: &[u8], at: usize) -> Option<usize> {
        let s = b.get(at..at + 4)?;
        if s.iter().any(|&x| x & 0x80 != 0) {
            return None;
        }
        Some((usize::from(s[0]) << 21) | (usize::from(s[1]) << 14) | (usize::from(s[2]) << 7) | usize::from(s[3]))
    }

    fn to_syncsafe(n: usize) -> [u8; 4] {
        [(n >> 21 & 0x7F) as u8, (n >> 14 & 0x7F) as u8, (n >> 7 & 0x7F) as u8, (n & 0x7F) as u8]
    }

    struct Tag {
        version: u8,
        /// Frames: `(start, end, is_aigc_txxx, value)`.
        frames: Vec<(usize, usize, Option<String>)>,
        end: usize,
    }

    fn text_value(encoding: u8, bytes: &[u8]) -> String {
        match encoding {
            1 | 2 => {
                let mut units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| {
                        if encoding == 2 {
                            u16::from_be_bytes([c[0], c[1]])
                        } else {
                            u16::from_le_bytes([c[0], c[1]])
                        }
                    })
                    .collect();
                if units.first() == Some(&0xFFFE) {
                    units = units.iter().map(|u| u.swap_bytes()).collect();
                }
                String::from_utf16_lossy(&units).trim_start_matches('\u{FEFF}').trim_end_matches('\0').to_string()
            }
            _ => String::from_utf8_lossy(bytes).trim_end_matches('\0').to_string(),
        }
    }

    fn txxx(encoding: u8, data: &[u8]) -> Option<String> {
        let wide = encoding == 1 || encoding == 2;
        let split = if wide {
            data.chunks_exact(2).position(|c| c == [0, 0]).map(|p| (p * 2, p * 2 + 2))
        } else {
            data.iter().position(|&c| c == 0).map(|p| (p, p + 1))
        }?;
        let description = text_value(encoding, &data[..split.0]);
        (description == "AIGC").then(|| text_value(encoding, &data[split.1..]))
    }

    fn tag(b: &[u8]) -> Result<Option<Tag>> {
        if !b.starts_with(b"ID3") {
            return Ok(None);
        }
        let version = *b.get(3).ok_or_else(|| FileError::new(F, 3, "truncated ID3 header"))?;
        if !(3..=4).contains(&version) {
            return Err(FileError::new(F, 3, format!("ID3v2.{version} is not supported (2.3 and 2.4 are)")));
        }
        let flags = *b.get(5).ok_or_else(|| FileError::new(F, 5, "truncated ID3 header"))?;
        if flags & 0x80 != 0 {
            return Err(FileError::new(F, 5, "unsynchronised ID3 tags are not supported"));
        }
        let size = syncsafe(b, 6).ok_or_else(|| FileError::new(F, 6, "bad ID3 size"))?;
        let end = 10 + size;
        if end > b.len() {
            return Err(FileError::new(F, 6, format!("ID3 tag of {size} bytes runs past the end")));
        }
        let mut at = 10;
        if flags & 0x40 != 0 {
            let ext = if version == 4 { syncsafe(b, at) } else { be32(b, at).map(|n| n as usize + 4) }
                .ok_or_else(|| FileError::new(F, at, "bad extended header"))?;
            at += ext;
        }
        let mut frames = Vec::new();
        while at + 10 <= end && b[at] != 0 {
            let len = if version == 4 { syncsafe(b, at + 4) } else { be32(b, at + 4).map(|n| n as usize) }
                .ok_or_else(|| FileError::new(F, at, "bad frame size"))?;
            let data_end = (at + 10)
                .checked_add(len)
                .filter(|&e| e <= end)
                .ok_or_else(|| FileError::new(F, at, format!("frame of {len} bytes runs past the tag")))?;
            let value =
                if &b[at..at + 4] == b"TXXX" && len > 1 { txxx(b[at + 10], &b[at + 11..data_end]) } else { None };
            frames.push((at, data_end, value));
            at = data_end;
        }
        let footer = if version == 4 && flags & 0x10 != 0 { 10 } else { 0 };
        if end + footer > b.len() {
            return Err(FileError::new(F, end, "ID3 footer runs past the end"));
        }
        Ok(Some(Tag { version, frames, end: end + footer }))
    }

    pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
        Ok(tag(b)?
            .map(|t| t.frames.into_iter().filter_map(|(_, _, v)| v).map(|j| found(Carrier::Id3Txxx, j)).collect())
            .unwrap_or_default())
    }

    pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
        let existing = tag(b)?;
        let version = existing.as_ref().map_or(4, |t| t.version);
        let mut frame_data = vec![if version == 4 { 3 } else { 0 }];
        frame_data.extend_from_slice(b"AIGC\0");
        frame_data.extend_from_slice(json.as_bytes());
        let mut frame = b"TXXX".to_vec();
        frame.extend_from_slice(&if version == 4 {
            to_syncsafe(frame_data.len())
        } else {
            (frame_data.len() as u32).to_be_bytes()
        });
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&frame_data);
        let mut body = Vec::new();
        let mut written = false;
        let audio_from = match &existing {
            Some(t) => {
                for (s, e, v) in &t.frames {
                    if v.is_some() {
                        if !written {
                            body.extend_from_slice(&frame);
                            written = true;
                        }
                        continue;
                    }
                    body.extend_from_slice(&b[*s..*e]);
                }
                t.end
            }
            None => 0,
        };
        if !written {
            body.extend_from_slice(&frame);
        }
        body.extend(core::iter::repeat_n(0u8, 256)); // padding for later edits
        let mut out = Vec::with_capacity(b.len() + body.len() + 10);
        out.extend_from_slice(b"ID3");
        out.extend_from_slice(&[version, 0, 0]);
        out.extend_from_slice(&to_syncsafe(body.len()));
        out.extend_from_slice(&body);
        out.extend_from_slice(b.get(audio_from..).unwrap_or_default());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> ImplicitLabel {
        ImplicitLabel::generated("001191110102MACQD9K64010000", "id-7").unwrap()
    }

    /// Minimal valid files of every format, made by hand.
    pub(crate) fn samples() -> Vec<(FileFormat, Vec<u8>)> {
        let png = vec![
            137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31,
            21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153,
            61, 29, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
        ];
        let jpeg = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xDB, 0, 4, 0,
            0, 0xFF, 0xDA, 0, 2, 0x12, 0x34, 0xFF, 0xD9,
        ];
        let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\x04\0\0\0\x01\x02\x03\x04".to_vec();
        let n = (wav.len() - 8) as u32;
        wav[4..8].copy_from_slice(&n.to_le_bytes());
        let mut webp = b"RIFF\0\0\0\0WEBPVP8L\x05\0\0\0\x2f\x00\x00\x00\x00\0".to_vec();
        let n = (webp.len() - 8) as u32;
        webp[4..8].copy_from_slice(&n.to_le_bytes());
        let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;".to_vec();
        let mp3 = vec![0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0];
        let text = "# 标题\n\n由人工智能生成的正文。\n".as_bytes().to_vec();
        // ftyp, moov (mvhd, one trak with a stco pointing into mdat), mdat: moov first.
        let bx = |k: &[u8; 4], body: &[u8]| [((body.len() + 8) as u32).to_be_bytes().as_slice(), k, body].concat();
        let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isom");
        let stco = |off: u32| bx(b"stco", &[&[0u8, 0, 0, 0, 0, 0, 0, 1][..], &off.to_be_bytes()].concat());
        let moov_len = |off: u32| {
            bx(
                b"moov",
                &[bx(b"mvhd", &[0u8; 100]), bx(b"trak", &bx(b"mdia", &bx(b"minf", &bx(b"stbl", &stco(off)))))].concat(),
            )
            .len()
        };
        let mdat_at = (ftyp.len() + moov_len(0)) as u32 + 8;
        let moov = bx(
            b"moov",
            &[bx(b"mvhd", &[0u8; 100]), bx(b"trak", &bx(b"mdia", &bx(b"minf", &bx(b"stbl", &stco(mdat_at)))))].concat(),
        );
        let mp4 = [ftyp, moov, bx(b"mdat", b"SAMPLEDATA")].concat();
        vec![
            (FileFormat::Png, png),
            (FileFormat::Jpeg, jpeg),
            (FileFormat::Wav, wav),
            (FileFormat::Webp, webp),
            (FileFormat::Gif, gif),
            (FileFormat::Mp3, mp3),
            (FileFormat::Mp4, mp4),
            (FileFormat::Text, text),
        ]
    }

    #[test]
    fn every_format_round_trips_and_updates_in_place() {
        let first = label();
        let mut second = label();
        second.content_propagator = "PLATFORM".into();
        second.propagate_id = "p-9".into();
        for (format, bytes) in samples() {
            let (f, none) = read_labels(&bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(f, format);
            assert!(none.is_empty(), "{format:?}");
            let once = write_label(&bytes, &first).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            let (_, labels) = read_labels(&once).unwrap_or_else(|e| panic!("{format:?} after write: {e}"));
            assert_eq!(labels.len(), 1, "{format:?}: {labels:?}");
            assert_eq!(labels[0].parsed.label.as_ref(), Some(&first), "{format:?}");
            let twice = write_label(&once, &second).unwrap();
            let (_, labels) = read_labels(&twice).unwrap();
            assert_eq!(labels.len(), 1, "{format:?}: a second label was added");
            assert_eq!(labels[0].parsed.label.as_ref(), Some(&second), "{format:?}");
            // Writing the same label again changes nothing.
            assert_eq!(write_label(&twice, &second).unwrap(), twice, "{format:?}");
        }
    }

    #[test]
    fn every_prefix_and_flip_is_an_error_or_a_read_never_a_panic() {
        for (format, bytes) in samples() {
            let labeled = write_label(&bytes, &label()).unwrap();
            for cut in 0..labeled.len() {
                let _ = read_labels(&labeled[..cut]);
                let _ = write_label(&labeled[..cut], &label());
            }
            for at in 0..labeled.len() {
                for bit in [0x01, 0x80] {
                    let mut bad = labeled.clone();
                    bad[at] ^= bit;
                    let _ = read_labels(&bad);
                    let _ = write_label(&bad, &label());
                }
            }
            assert!(
                read_labels(&labeled[..labeled.len() / 2]).is_err()
                    || matches!(format, FileFormat::Mp3 | FileFormat::Jpeg | FileFormat::Text),
                "{format:?} half file read as valid"
            );
        }
    }

    #[test]
    fn propagation_and_verification() {
        let key = b"k";
        for (format, bytes) in samples() {
            // Unlabeled: refused unless declared or detected.
            assert!(propagate(&bytes, "PLAT", "p-1", Provenance::Unknown, None).is_err(), "{format:?}");
            let (declared, l) = propagate(&bytes, "PLAT", "p-1", Provenance::Declared, Some(key)).unwrap();
            assert_eq!(l.label.as_str(), "2");
            let (detected, l3) = propagate(&bytes, "PLAT", "p-1", Provenance::Detected, None).unwrap();
            assert_eq!(l3.label.as_str(), "3");
            assert_eq!(verify(&detected, None).unwrap().2, Verdict::Compliant);
            assert_eq!(verify(&declared, Some(key)).unwrap().2, Verdict::Compliant, "{format:?}");
            // Labeled by the producer, sealed; the platform keeps Label "1" and fills its fields.
            let mut produced = label();
            produced.seal_producer(key);
            let labeled = write_label(&bytes, &produced).unwrap();
            let (platform, l) = propagate(&labeled, "PLAT", "p-2", Provenance::Declared, Some(key)).unwrap();
            assert_eq!(
                (l.label.as_str(), l.content_producer.as_str(), l.propagate_id.as_str()),
                ("1", produced.content_producer.as_str(), "p-2")
            );
            let (_, labels, verdict) = verify(&platform, Some(key)).unwrap();
            assert_eq!(labels.len(), 1, "{format:?}");
            assert_eq!(verdict, Verdict::Compliant, "{format:?}");
            // A forged ProduceID fails the producer's code.
            let mut forged = l.clone();
            forged.produce_id = "other".into();
            let forged_file = write_label(&bytes, &forged).unwrap();
            match verify(&forged_file, Some(key)).unwrap().2 {
                Verdict::NonCompliant(r) => assert!(r[0].starts_with("ReservedCode1 does not verify"), "{r:?}"),
                v => panic!("{format:?}: {v:?}"),
            }
            assert_eq!(verify(&bytes, None).unwrap().2, Verdict::NoLabel);
        }
    }

    #[test]
    fn mp4_chunk_offsets_follow_the_grown_moov() {
        let (_, mp4) = samples().into_iter().find(|(f, _)| *f == FileFormat::Mp4).unwrap();
        let labeled = write_label(&mp4, &label()).unwrap();
        for file in [&mp4, &labeled] {
            // The one stco entry follows the box type, version/flags and count; it must point at the data.
            let stco = file.windows(4).position(|w| w == b"stco").unwrap();
            let off = u32::from_be_bytes(file[stco + 12..stco + 16].try_into().unwrap()) as usize;
            assert_eq!(&file[off..off + 10], b"SAMPLEDATA");
        }
    }

    #[test]
    fn fuzz_regressions() {
        // ID3v2.4 header with the footer flag and no room for the footer.
        assert!(read_labels(b"ID3\x04\x00\x10\x00\x00\x00\x00").is_err());
        assert!(write_label(b"ID3\x04\x00\x10\x00\x00\x00\x00", &label()).is_err());
    }

    #[test]
    fn errors_name_the_offset() {
        let (_, png) = &samples()[0];
        let mut bad = png.clone();
        bad[45] ^= 1;
        let e = read_labels(&bad).unwrap_err().to_string();
        assert!(e.starts_with("malformed PNG at byte 33: CRC mismatch in chunk IDAT"), "{e}");
        assert_eq!(
            read_labels(b"\x00\x01binary").unwrap_err().to_string(),
            "unknown file format: not PNG, JPEG, WebP, GIF, MP3, WAV, MP4 or UTF-8 text"
        );
    }
}
