//! MP3: the ID3v2.3/2.4 `TXXX` frame with description `AIGC`.

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
            let mut units: Vec<u16> =
                bytes
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

/// Where the audio starts: after the ID3v2 tag, if there is one.
pub(super) fn audio_start(b: &[u8]) -> Result<usize> {
    Ok(tag(b)?.map_or(0, |t| t.end))
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
        let value = if &b[at..at + 4] == b"TXXX" && len > 1 { txxx(b[at + 10], &b[at + 11..data_end]) } else { None };
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
