//! GIF: the XMP application extension (`XMP DataXMP`).

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
