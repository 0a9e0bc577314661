//! PNG: the `tEXt` chunk `AIGC` and XMP in `iTXt` `XML:com.adobe.xmp`, CRCs checked.

use super::crc32;
use super::*;

const F: FileFormat = FileFormat::Png;
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

pub(super) struct Chunk {
    pub(super) at: usize,
    pub(super) kind: [u8; 4],
    pub(super) data: core::ops::Range<usize>,
    pub(super) end: usize,
}

pub(super) fn chunks(b: &[u8]) -> Result<Vec<Chunk>> {
    let mut out = Vec::new();
    let mut at = 8;
    loop {
        let len = be32(b, at).ok_or_else(|| FileError::new(F, at, "truncated chunk header"))? as usize;
        let kind: [u8; 4] = b
            .get(at + 4..at + 8)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| FileError::new(F, at + 4, "truncated chunk type"))?;
        let data = at + 8..at.checked_add(8 + len).filter(|&e| e + 4 <= b.len()).ok_or_else(|| {
            FileError::new(F, at, format!("chunk {} of {len} bytes runs past the end", String::from_utf8_lossy(&kind)))
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

pub(super) fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
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
