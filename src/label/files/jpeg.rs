//! JPEG: the APP1 XMP segment, and an EXIF `UserComment` label updated in place.

use super::*;

const F: FileFormat = FileFormat::Jpeg;
const XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

pub(super) struct Segment {
    pub(super) at: usize,
    pub(super) marker: u8,
    pub(super) data: core::ops::Range<usize>,
}

/// Segments up to the start of scan; the rest is entropy-coded data, copied unchanged.
pub(super) fn segments(b: &[u8]) -> Result<(Vec<Segment>, usize)> {
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
            return Err(FileError::new(F, at, format!("segment 0xFF{marker:02X} of {len} bytes runs past the end")));
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
    let t = exif::Tiff::new(tiff)?;
    let exif_ifd = t.find(t.ifd0()?, exif::EXIF_IFD)?.value as usize;
    let comment = t.find(exif_ifd, exif::USER_COMMENT)?;
    let count = comment.count as usize;
    if comment.kind != 7 || count <= 4 {
        return None;
    }
    let start = comment.value as usize;
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
                        return Err(FileError::new(
                            F,
                            s.at,
                            "existing EXIF UserComment label is shorter than the new one; cannot update it in place",
                        ));
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
