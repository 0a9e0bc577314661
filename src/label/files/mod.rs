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
//! | TIFF | XMP in tag 700 of IFD0 | the same (the packet and a new IFD0 appended, the header pointed at it: no offset moves) |
//! | Ogg Vorbis, Ogg Opus | comment `AIGC=` in the comment header (`\x03vorbis`, `OpusTags`) | the same (the header packets re-paged, later pages renumbered with new CRCs; audio packets unchanged) |
//! | PDF | `/AIGC` in the document information dictionary; the catalog's XMP `/Metadata` stream | both, as an incremental update (nothing before it changes) |
//! | OOXML (docx, xlsx, pptx) | custom property `AIGC` in `docProps/custom.xml` | the same (the part, its content type and package relationship added when missing; every other member copied byte for byte) |
//! | FLAC | Vorbis comment `AIGC=` in `VORBIS_COMMENT` | the same (a comment block added after `STREAMINFO` when there is none; other comments kept) |
//! | MP4, M4A, MOV | `moov/udta/meta`: `keys` entry `mdta` `AIGC` and its `ilst` item | the same (chunk offsets fixed when `moov` precedes `mdat`) |
//! | Text, Markdown | front matter line `AIGC: {…}` | the same (front matter added when there is none) |
//!
//! Malformed or truncated input gives a [`FileError`] naming the byte offset, never a panic;
//! no allocation is larger than the input plus the label.

use core::fmt;

use super::seal::{CodeCheck, Keyring, Sealer};
use super::xmp;
use super::{ImplicitLabel, ParsedLabel};

pub use carry::carry_metadata;

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
    /// FLAC.
    Flac,
    /// TIFF (classic, either byte order).
    Tiff,
    /// Ogg Vorbis or Ogg Opus.
    Ogg,
    /// PDF.
    Pdf,
    /// Office Open XML: docx, xlsx, pptx.
    Ooxml,
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
            FileFormat::Flac => "flac",
            FileFormat::Tiff => "tiff",
            FileFormat::Ogg => "ogg",
            FileFormat::Pdf => "pdf",
            FileFormat::Ooxml => "ooxml",
        }
    }

    /// The format from the first bytes, if known.
    pub fn detect(bytes: &[u8]) -> Option<FileFormat> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(FileFormat::Png)
        } else if bytes.starts_with(b"%PDF-") {
            Some(FileFormat::Pdf)
        } else if bytes.starts_with(b"PK\x03\x04") {
            Some(FileFormat::Ooxml)
        } else if bytes.starts_with(b"OggS") {
            Some(FileFormat::Ogg)
        } else if bytes.starts_with(b"fLaC") {
            Some(FileFormat::Flac)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(FileFormat::Tiff)
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
    /// Vorbis comment `AIGC=` (FLAC, Ogg Vorbis, Ogg Opus).
    VorbisComment,
    /// `/AIGC` in a PDF's document information dictionary.
    PdfInfo,
    /// Custom property `AIGC` in an OOXML document's `docProps/custom.xml`.
    OoxmlCustom,
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
            Carrier::VorbisComment => "vorbis-comment",
            Carrier::PdfInfo => "pdf-info",
            Carrier::OoxmlCustom => "ooxml-custom",
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
                write!(
                    f,
                    "malformed {} at byte {}: {}",
                    format.as_str().to_ascii_uppercase(),
                    self.offset,
                    self.message
                )
            }
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FileError {}

type Result<T> = core::result::Result<T, FileError>;

/// CRC-32 (IEEE 802.3), as PNG chunks and ZIP entries carry it; slicing-by-8.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLES: [[u32; 256]; 8] = {
        let mut t = [[0u32; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[0][i] = c;
            i += 1;
        }
        let mut i = 0;
        while i < 256 {
            let mut k = 1;
            while k < 8 {
                t[k][i] = (t[k - 1][i] >> 8) ^ t[0][(t[k - 1][i] & 0xFF) as usize];
                k += 1;
            }
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xFF) as usize]
            ^ TABLES[6][((lo >> 8) & 0xFF) as usize]
            ^ TABLES[5][((lo >> 16) & 0xFF) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xFF) as usize]
            ^ TABLES[2][((hi >> 8) & 0xFF) as usize]
            ^ TABLES[1][((hi >> 16) & 0xFF) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// DEFLATE data (`zlib`: with its zlib header and checksum) inflated, refused past `limit`
/// bytes so a small bomb cannot take the memory.
fn inflate(data: &[u8], zlib: bool, limit: usize) -> core::result::Result<Vec<u8>, String> {
    use miniz_oxide::inflate::{decompress_to_vec_with_limit, decompress_to_vec_zlib_with_limit, TINFLStatus};
    let out =
        if zlib { decompress_to_vec_zlib_with_limit(data, limit) } else { decompress_to_vec_with_limit(data, limit) };
    out.map_err(|e| match e.status {
        TINFLStatus::HasMoreOutput => format!("inflates past the {limit}-byte limit"),
        status => format!("bad DEFLATE data ({status:?})"),
    })
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
        message:
            "unknown file format: not PNG, JPEG, WebP, GIF, MP3, WAV, MP4, FLAC, Ogg, TIFF, PDF, OOXML or UTF-8 text"
                .into(),
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
        FileFormat::Flac => flac::read(bytes)?,
        FileFormat::Tiff => tiff::read(bytes)?,
        FileFormat::Ogg => ogg::read(bytes)?,
        FileFormat::Pdf => pdf::read(bytes)?,
        FileFormat::Ooxml => ooxml::read(bytes)?,
    };
    Ok((format, labels))
}

/// The file with `label` as its one implicit label: every existing label carrier updated in
/// place, or the format's carrier added when there is none. Nothing else changes.
pub fn write_label(bytes: &[u8], label: &ImplicitLabel) -> Result<Vec<u8>> {
    let format = FileFormat::detect(bytes).ok_or_else(|| FileError {
        format: None,
        offset: 0,
        message:
            "unknown file format: not PNG, JPEG, WebP, GIF, MP3, WAV, MP4, FLAC, Ogg, TIFF, PDF, OOXML or UTF-8 text"
                .into(),
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
        FileFormat::Flac => flac::write(bytes, &json),
        FileFormat::Tiff => tiff::write(bytes, &json),
        FileFormat::Ogg => ogg::write(bytes, &json),
        FileFormat::Pdf => pdf::write(bytes, &json),
        FileFormat::Ooxml => ooxml::write(bytes, &json),
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
/// refused rather than rewritten. With `sealer`, `ReservedCode2` seals the propagator fields.
pub fn propagate(
    bytes: &[u8],
    platform: &str,
    propagate_id: &str,
    provenance: Provenance,
    sealer: Option<&Sealer<'_>>,
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
    if let Some(sealer) = sealer {
        label.seal_propagator(sealer);
    }
    let out = write_label(bytes, &label)?;
    Ok((out, label))
}

/// A file's labels (and verdict) as JSON, the one shape the CLI's `verify` and the browser
/// module report: `{"format", "labels": [{"carrier", "json", "fields" (null when malformed),
/// "problems", "codes"}], "verdict", "reasons"}`; `codes` says what `keys` made of
/// `ReservedCode1` and `ReservedCode2` ([`CodeCheck::as_str`]), present with a verdict.
pub fn report_json(
    format: FileFormat,
    labels: &[FoundLabel],
    verdict: Option<(&Verdict, &Keyring)>,
) -> serde_json::Value {
    let labels: Vec<serde_json::Value> = labels
        .iter()
        .map(|l| {
            let fields = l.parsed.label.as_ref().map(|x| {
                x.fields()
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), serde_json::Value::String((*v).to_string())))
                    .collect::<serde_json::Map<_, _>>()
            });
            let mut entry = serde_json::json!({"carrier": l.carrier.as_str(), "json": l.json, "fields": fields, "problems": l.parsed.problems});
            if let (Some((_, keys)), Some(label)) = (verdict, &l.parsed.label) {
                let [rc1, rc2] = label.check_codes(keys);
                entry["codes"] = serde_json::json!({"ReservedCode1": rc1.as_str(), "ReservedCode2": rc2.as_str()});
            }
            entry
        })
        .collect();
    let mut v = serde_json::json!({"format": format.as_str(), "labels": labels});
    if let Some((verdict, _)) = verdict {
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

/// Checks a file's labels: format, every label found, the verdict, and the integrity codes
/// (`ReservedCode1`, `ReservedCode2`) the keyring can check; a code it cannot check is not a
/// finding here ([`ImplicitLabel::check_codes`] tells which).
pub fn verify(bytes: &[u8], keys: &Keyring) -> Result<(FileFormat, Vec<FoundLabel>, Verdict)> {
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
    for l in &distinct {
        let [producer, propagator] = l.check_codes(keys);
        if producer == CodeCheck::DoesNotVerify {
            reasons.push("ReservedCode1 does not verify: producer fields edited or forged".into());
        }
        if propagator == CodeCheck::DoesNotVerify {
            reasons.push("ReservedCode2 does not verify: propagator fields edited or forged".into());
        }
    }
    let verdict = if reasons.is_empty() { Verdict::Compliant } else { Verdict::NonCompliant(reasons) };
    Ok((format, labels, verdict))
}

pub mod audible;
mod carry;
mod exif;
mod flac;
mod mp4;
#[rustfmt::skip] // generated (tools/gen_mp3_tones.py)
mod mp3_frames;
mod ogg;
mod ooxml;
mod pdf;
mod tiff;

mod text;

mod png;

mod jpeg;

mod riff;

mod gif;

mod id3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    fn label() -> ImplicitLabel {
        ImplicitLabel::generated("001191110102MACQD9K64010000", "id-7").unwrap()
    }

    /// A one-page PDF: a classic cross-reference table, or (`compact`) a cross-reference
    /// stream with the catalog and the information dictionary inside an object stream.
    fn pdf_sample(compact: bool) -> Vec<u8> {
        let mut out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let catalog = "<< /Type /Catalog /Pages 2 0 R >>";
        let info = "<< /Producer (hand \\(made\\)) >>";
        let mut at = [0usize; 8];
        let mut obj = |out: &mut Vec<u8>, n: usize, body: &str| {
            at[n] = out.len();
            out.extend_from_slice(format!("{n} 0 obj\n{body}\nendobj\n").as_bytes());
        };
        obj(&mut out, 2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
        obj(&mut out, 3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Contents 4 0 R >>");
        obj(&mut out, 4, "<< /Length 8 >>\nstream\n0 0 m S\n\nendstream");
        if !compact {
            obj(&mut out, 1, catalog);
            obj(&mut out, 5, info);
            let xref = out.len();
            out.extend_from_slice(b"xref\n0 6\n0000000000 65535 f\r\n");
            for offset in &at[1..6] {
                out.extend_from_slice(format!("{offset:010} 00000 n\r\n").as_bytes());
            }
            out.extend_from_slice(
                format!("trailer\n<< /Size 6 /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
            );
            return out;
        }
        let header = format!("1 0 5 {} ", catalog.len() + 1);
        let data = format!("{header}{catalog} {info}");
        let stream = format!(
            "<< /Type /ObjStm /N 2 /First {} /Length {} >>\nstream\n{data}\nendstream",
            header.len(),
            data.len()
        );
        obj(&mut out, 6, &stream);
        at[7] = out.len();
        let mut rows: Vec<u8> = vec![0, 0, 0, 0xFF];
        let direct = |n: usize| [1u8, (at[n] >> 8) as u8, at[n] as u8, 0];
        rows.extend_from_slice(&[2, 0, 6, 0]);
        for n in 2..5 {
            rows.extend_from_slice(&direct(n));
        }
        rows.extend_from_slice(&[2, 0, 6, 1]);
        rows.extend_from_slice(&direct(6));
        rows.extend_from_slice(&direct(7));
        out.extend_from_slice(
            format!(
                "7 0 obj\n<< /Type /XRef /Size 8 /W [1 2 1] /Root 1 0 R /Info 5 0 R /Length {} >>\nstream\n",
                rows.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{}\n%%EOF\n", at[7]).as_bytes());
        out
    }

    /// A minimal docx: content types stored, the package relationships deflated, the document
    /// deflated behind a data descriptor.
    fn ooxml_sample() -> Vec<u8> {
        let parts: [(&str, &str, bool, bool); 3] = [
            ("[Content_Types].xml", "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"xml\" ContentType=\"application/xml\"/></Types>", false, false),
            ("_rels/.rels", "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>", true, false),
            ("word/document.xml", "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>生成的文字</w:t></w:r></w:p></w:body></w:document>", true, true),
        ];
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, text, deflate, descriptor) in parts {
            let data = if deflate {
                miniz_oxide::deflate::compress_to_vec(text.as_bytes(), 6)
            } else {
                text.as_bytes().to_vec()
            };
            let crc = crc32(text.as_bytes());
            let head = |crc: u32, csize: u32, usize: u32| {
                let mut h = Vec::new();
                h.extend_from_slice(&20u16.to_le_bytes());
                h.extend_from_slice(&(if descriptor { 8u16 } else { 0 }).to_le_bytes());
                h.extend_from_slice(&(if deflate { 8u16 } else { 0 }).to_le_bytes());
                h.extend_from_slice(&[0, 0, 0x21, 0]);
                h.extend_from_slice(&crc.to_le_bytes());
                h.extend_from_slice(&csize.to_le_bytes());
                h.extend_from_slice(&usize.to_le_bytes());
                h.extend_from_slice(&(name.len() as u16).to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes());
                h
            };
            let sizes = (crc, data.len() as u32, text.len() as u32);
            let at = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&if descriptor { head(0, 0, 0) } else { head(sizes.0, sizes.1, sizes.2) });
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&data);
            if descriptor {
                out.extend_from_slice(b"PK\x07\x08");
                for v in [sizes.0, sizes.1, sizes.2] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            central.extend_from_slice(b"PK\x01\x02\x14\0");
            central.extend_from_slice(&head(sizes.0, sizes.1, sizes.2));
            central.extend_from_slice(&[0; 10]);
            central.extend_from_slice(&at.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x03\0\x03\0");
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_at.to_le_bytes());
        out.extend_from_slice(b"\x02\0hi");
        out
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
        // A 1x1 grey TIFF, little and big endian: header, IFD0 (width, height, bits, strip
        // offset, rows, byte count), one pixel.
        let tiff = |le: bool| {
            let (s, l) = (
                |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() },
                |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() },
            );
            let mut t: Vec<u8> = if le { b"II*\0".to_vec() } else { b"MM\0*".to_vec() };
            t.extend_from_slice(&l(8));
            t.extend_from_slice(&s(6));
            for (tag, kind, value) in
                [(256u16, 3u16, 1u32), (257, 3, 1), (258, 3, 8), (273, 4, 86), (278, 3, 1), (279, 4, 1)]
            {
                t.extend_from_slice(&s(tag));
                t.extend_from_slice(&s(kind));
                t.extend_from_slice(&l(1));
                if kind == 3 {
                    t.extend_from_slice(&s(value as u16));
                    t.extend_from_slice(&[0, 0]);
                } else {
                    t.extend_from_slice(&l(value));
                }
            }
            t.extend_from_slice(&l(0));
            t.push(0x7F);
            t
        };
        let (tiff_le, tiff_be) = (tiff(true), tiff(false));
        // Ogg Opus: OpusHead (BOS), OpusTags, one audio page.
        let head = b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0";
        let tags = b"OpusTags\x04\0\0\0test\0\0\0\0";
        let ogg_opus = [
            ogg::page(2, [0; 8], 7, 0, &[head.len() as u8], head),
            ogg::page(0, [0; 8], 7, 1, &[tags.len() as u8], tags),
            ogg::page(4, [0x80, 0xbb, 0, 0, 0, 0, 0, 0], 7, 2, &[5], b"AUDIO"),
        ]
        .concat();
        // fLaC, STREAMINFO (34 bytes, the last block), then "audio".
        let mut flac = b"fLaC\x80\x00\x00\x22".to_vec();
        flac.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0, 0x0A, 0xC4, 0x42, 0xF0, 0, 0, 0, 0]);
        flac.extend_from_slice(&[0; 16]);
        flac.extend_from_slice(b"\xFF\xF8AUDIOFRAMES");
        vec![
            (FileFormat::Png, png),
            (FileFormat::Jpeg, jpeg),
            (FileFormat::Wav, wav),
            (FileFormat::Webp, webp),
            (FileFormat::Gif, gif),
            (FileFormat::Mp3, mp3),
            (FileFormat::Mp4, mp4),
            (FileFormat::Text, text),
            (FileFormat::Flac, flac),
            (FileFormat::Tiff, tiff_le),
            (FileFormat::Tiff, tiff_be),
            (FileFormat::Ogg, ogg_opus),
            (FileFormat::Pdf, pdf_sample(false)),
            (FileFormat::Pdf, pdf_sample(true)),
            (FileFormat::Ooxml, ooxml_sample()),
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
            // PDF carries the label twice, as the guides ask: the Info entry and the XMP.
            let carriers = if format == FileFormat::Pdf { 2 } else { 1 };
            let (_, labels) = read_labels(&once).unwrap_or_else(|e| panic!("{format:?} after write: {e}"));
            assert_eq!(labels.len(), carriers, "{format:?}: {labels:?}");
            assert!(labels.iter().all(|l| l.parsed.label.as_ref() == Some(&first)), "{format:?}");
            let twice = write_label(&once, &second).unwrap();
            let (_, labels) = read_labels(&twice).unwrap();
            assert_eq!(labels.len(), carriers, "{format:?}: a second label was added");
            assert!(labels.iter().all(|l| l.parsed.label.as_ref() == Some(&second)), "{format:?}");
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
                    || matches!(format, FileFormat::Mp3 | FileFormat::Jpeg | FileFormat::Text)
                    // A PDF cut inside its last incremental update is its previous revision.
                    || (format == FileFormat::Pdf && read_labels(&labeled[..labeled.len() / 2]).is_ok_and(|(_, l)| l.is_empty())),
                "{format:?} half file read as valid"
            );
        }
    }

    #[test]
    fn propagation_and_verification() {
        let key = b"k";
        let keys = Keyring::new().with_shared_key(key);
        let sealer = Sealer::HmacSha256(key);
        for (format, bytes) in samples() {
            // Unlabeled: refused unless declared or detected.
            assert!(propagate(&bytes, "PLAT", "p-1", Provenance::Unknown, None).is_err(), "{format:?}");
            let (declared, l) = propagate(&bytes, "PLAT", "p-1", Provenance::Declared, Some(&sealer)).unwrap();
            assert_eq!(l.label.as_str(), "2");
            let (detected, l3) = propagate(&bytes, "PLAT", "p-1", Provenance::Detected, None).unwrap();
            assert_eq!(l3.label.as_str(), "3");
            assert_eq!(verify(&detected, &Keyring::new()).unwrap().2, Verdict::Compliant);
            assert_eq!(verify(&declared, &keys).unwrap().2, Verdict::Compliant, "{format:?}");
            // Labeled by the producer, sealed; the platform keeps Label "1" and fills its fields.
            let mut produced = label();
            produced.seal_producer(&sealer);
            let labeled = write_label(&bytes, &produced).unwrap();
            let (platform, l) = propagate(&labeled, "PLAT", "p-2", Provenance::Declared, Some(&sealer)).unwrap();
            assert_eq!(
                (l.label.as_str(), l.content_producer.as_str(), l.propagate_id.as_str()),
                ("1", produced.content_producer.as_str(), "p-2")
            );
            let (_, labels, verdict) = verify(&platform, &keys).unwrap();
            assert_eq!(labels.len(), if format == FileFormat::Pdf { 2 } else { 1 }, "{format:?}");
            assert_eq!(verdict, Verdict::Compliant, "{format:?}");
            // A forged ProduceID fails the producer's code.
            let mut forged = l.clone();
            forged.produce_id = "other".into();
            let forged_file = write_label(&bytes, &forged).unwrap();
            match verify(&forged_file, &keys).unwrap().2 {
                Verdict::NonCompliant(r) => assert!(r[0].starts_with("ReservedCode1 does not verify"), "{r:?}"),
                v => panic!("{format:?}: {v:?}"),
            }
            assert_eq!(verify(&bytes, &Keyring::new()).unwrap().2, Verdict::NoLabel);
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
            "unknown file format: not PNG, JPEG, WebP, GIF, MP3, WAV, MP4, FLAC, Ogg, TIFF, PDF, OOXML or UTF-8 text"
        );
    }
}
