//! FLAC: the Vorbis comment `AIGC=<json>` in the `VORBIS_COMMENT` metadata block. Audio frames
//! follow the metadata and are copied unchanged (seek points count from the first frame).

use super::*;

const F: FileFormat = FileFormat::Flac;
const VORBIS_COMMENT: u8 = 4;
const KEY: &str = "AIGC=";

/// A metadata block: its type and its body.
struct Block {
    kind: u8,
    body: core::ops::Range<usize>,
}

/// The metadata blocks and the offset of the first audio frame.
fn blocks(b: &[u8]) -> Result<(Vec<Block>, usize)> {
    let mut out = Vec::new();
    let mut at = 4;
    loop {
        let header = b.get(at..at + 4).ok_or_else(|| FileError::new(F, at, "truncated metadata block header"))?;
        let last = header[0] & 0x80 != 0;
        let kind = header[0] & 0x7F;
        let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        let body = at + 4..at + 4 + len;
        if body.end > b.len() {
            return Err(FileError::new(F, at, format!("metadata block of {len} bytes runs past the end")));
        }
        if kind == 127 {
            return Err(FileError::new(F, at, "invalid metadata block type 127"));
        }
        if out.is_empty() && kind != 0 {
            return Err(FileError::new(F, at, "the first metadata block is not STREAMINFO"));
        }
        out.push(Block { kind, body: body.clone() });
        at = body.end;
        if last {
            return Ok((out, at));
        }
    }
}

/// A length-prefixed (little-endian u32) field at `*at`, within `end`.
fn field(b: &[u8], at: &mut usize, end: usize, what: &str) -> Result<core::ops::Range<usize>> {
    let bad = || FileError::new(F, *at, format!("Vorbis comment: {what}"));
    let len = le32(b, *at).ok_or_else(bad)? as usize;
    let start = *at + 4;
    let stop = start.checked_add(len).filter(|&e| e <= end).ok_or_else(bad)?;
    *at = stop;
    Ok(start..stop)
}

/// The comments of a `VORBIS_COMMENT` body: `(vendor, [comment ranges])`.
fn comments(
    b: &[u8],
    body: &core::ops::Range<usize>,
) -> Result<(core::ops::Range<usize>, Vec<core::ops::Range<usize>>)> {
    let mut at = body.start;
    let vendor = field(b, &mut at, body.end, "truncated vendor string")?;
    let count_at = at;
    let count =
        le32(b, count_at).ok_or_else(|| FileError::new(F, count_at, "Vorbis comment: truncated count"))? as usize;
    at += 4;
    // Every comment takes at least its 4-byte length: a count larger than that is a lie.
    if count > body.end.saturating_sub(at) / 4 {
        return Err(FileError::new(F, count_at, format!("Vorbis comment: {count} comments do not fit in the block")));
    }
    let list = (0..count).map(|_| field(b, &mut at, body.end, "truncated comment")).collect::<Result<Vec<_>>>()?;
    Ok((vendor, list))
}

fn is_label(comment: &[u8]) -> bool {
    comment.len() >= KEY.len() && comment[..KEY.len()].eq_ignore_ascii_case(KEY.as_bytes())
}

pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
    let (all, _) = blocks(b)?;
    let mut labels = Vec::new();
    for block in all.iter().filter(|x| x.kind == VORBIS_COMMENT) {
        let (_, list) = comments(b, &block.body)?;
        for c in list {
            if is_label(&b[c.clone()]) {
                let json = String::from_utf8_lossy(&b[c.start + KEY.len()..c.end]).into_owned();
                labels.push(found(Carrier::VorbisComment, json));
            }
        }
    }
    Ok(labels)
}

fn block_bytes(kind: u8, last: bool, body: &[u8]) -> Result<Vec<u8>> {
    if body.len() >= 1 << 24 {
        return Err(FileError::new(F, 0, "metadata block too large"));
    }
    let len = body.len() as u32;
    let mut out = vec![kind | if last { 0x80 } else { 0 }, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    out.extend_from_slice(body);
    Ok(out)
}

pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
    let (all, audio) = blocks(b)?;
    let label = format!("{KEY}{json}");
    let mut out = Vec::with_capacity(b.len() + label.len() + 64);
    out.extend_from_slice(&b[..4]);
    let has_comments = all.iter().any(|x| x.kind == VORBIS_COMMENT);
    let count = all.len() + usize::from(!has_comments);
    let mut written = 0;
    let mut push = |out: &mut Vec<u8>, kind: u8, body: &[u8]| -> Result<()> {
        written += 1;
        out.extend_from_slice(&block_bytes(kind, written == count, body)?);
        Ok(())
    };
    let mut labeled = false;
    for block in &all {
        let body = &b[block.body.clone()];
        if block.kind != VORBIS_COMMENT {
            push(&mut out, block.kind, body)?;
            if block.kind == 0 && !has_comments {
                // A file without comments gets them right after STREAMINFO.
                let mut fresh = Vec::new();
                fresh.extend_from_slice(&0u32.to_le_bytes());
                fresh.extend_from_slice(&1u32.to_le_bytes());
                fresh.extend_from_slice(&(label.len() as u32).to_le_bytes());
                fresh.extend_from_slice(label.as_bytes());
                push(&mut out, VORBIS_COMMENT, &fresh)?;
            }
            continue;
        }
        let (vendor, list) = comments(b, &block.body)?;
        // One label per file: the first comment block carries it, every other AIGC comment goes.
        let mut kept: Vec<&[u8]> = list.iter().map(|c| &b[c.clone()]).filter(|c| !is_label(c)).collect();
        if !labeled {
            kept.push(label.as_bytes());
            labeled = true;
        }
        let mut fresh = Vec::new();
        fresh.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        fresh.extend_from_slice(&b[vendor]);
        fresh.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        for c in kept {
            fresh.extend_from_slice(&(c.len() as u32).to_le_bytes());
            fresh.extend_from_slice(c);
        }
        push(&mut out, VORBIS_COMMENT, &fresh)?;
    }
    out.extend_from_slice(&b[audio..]);
    Ok(out)
}
