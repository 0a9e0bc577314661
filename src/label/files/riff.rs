//! RIFF containers: WebP (`XMP ` chunk, `VP8X` created for simple files) and WAV (`AIGC` chunk).

use super::*;

pub(super) struct Chunk {
    pub(super) at: usize,
    pub(super) id: [u8; 4],
    pub(super) data: core::ops::Range<usize>,
    pub(super) end: usize,
}

pub(super) fn chunks(b: &[u8], f: FileFormat) -> Result<Vec<Chunk>> {
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
            FileError::new(f, at, format!("chunk {} of {len} bytes runs past the end", String::from_utf8_lossy(&id)))
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
