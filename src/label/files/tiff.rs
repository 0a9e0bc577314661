//! TIFF: XMP in tag 700 of IFD0. Writing appends the packet and a new IFD0 (the old entries
//! plus tag 700, in tag order) at the end and points the header at it: every other offset
//! stays valid, the image data is not moved.

use super::exif::Tiff;
use super::*;

const F: FileFormat = FileFormat::Tiff;
const XMP_TAG: u16 = 700;
/// TIFF type BYTE.
const BYTE: u16 = 1;

/// IFD0's entries (12 bytes each, as stored) and its next-IFD offset.
fn ifd0(b: &[u8]) -> Result<(Tiff<'_>, Vec<[u8; 12]>, u32)> {
    let t = Tiff::new(b).ok_or_else(|| FileError::new(F, 0, "not a TIFF header"))?;
    if t.u16_at(2) != Some(42) {
        return Err(FileError::new(F, 2, "not classic TIFF (BigTIFF is not read)"));
    }
    let at = t.ifd0().ok_or_else(|| FileError::new(F, 4, "truncated header"))?;
    let n = usize::from(t.u16_at(at).ok_or_else(|| FileError::new(F, at, "IFD0 offset past the end"))?);
    if n > 4096 {
        return Err(FileError::new(F, at, format!("IFD0 claims {n} entries")));
    }
    let entries = (0..n)
        .map(|i| {
            let e = at + 2 + i * 12;
            b.get(e..e + 12).and_then(|s| s.try_into().ok()).ok_or_else(|| FileError::new(F, e, "truncated IFD0 entry"))
        })
        .collect::<Result<Vec<[u8; 12]>>>()?;
    let next_at = at + 2 + n * 12;
    let next = t.u32_at(next_at).ok_or_else(|| FileError::new(F, next_at, "truncated IFD0"))?;
    Ok((t, entries, next))
}

/// Where IFD0's XMP packet is, if it has one.
fn xmp(b: &[u8], t: &Tiff<'_>) -> Result<Option<core::ops::Range<usize>>> {
    let Some(ifd) = t.ifd0() else { return Ok(None) };
    let Some(entry) = t.find(ifd, XMP_TAG) else { return Ok(None) };
    let len = entry.count as usize;
    let start = if len <= 4 { entry.at + 8 } else { entry.value as usize };
    let range = start..start.saturating_add(len);
    match b.get(range.clone()) {
        Some(_) => Ok(Some(range)),
        None => Err(FileError::new(F, entry.at, format!("XMP of {len} bytes runs past the end"))),
    }
}

pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
    let (t, _, _) = ifd0(b)?;
    Ok(match xmp(b, &t)? {
        Some(at) => xmp::find(&String::from_utf8_lossy(&b[at])).into_iter().map(|j| found(Carrier::Xmp, j)).collect(),
        None => Vec::new(),
    })
}

pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
    let (t, entries, next) = ifd0(b)?;
    // An existing packet keeps everything else it says; the label goes in (or is replaced).
    let old = xmp(b, &t)?;
    let packet = match &old {
        Some(at) => xmp::update(&String::from_utf8_lossy(&b[at.clone()]), json),
        None => xmp::packet(json),
    };
    if old.as_ref().is_some_and(|at| &b[at.clone()] == packet.as_bytes()) {
        return Ok(b.to_vec()); // the same label: nothing changes
    }
    let tag_of = |e: &[u8; 12]| t.u16_of(&e[..2]);
    // A packet and IFD0 this code appended before are the file's tail: replaced, not stacked.
    let ifd_end = t.ifd0().map_or(0, |at| at + 2 + entries.len() * 12 + 4);
    let base = match (old, t.ifd0()) {
        (Some(at), Some(ifd)) if ifd_end == b.len() && at.end + at.end % 2 == ifd => at.start,
        _ => b.len(),
    };
    let mut out = b[..base].to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let packet_at = u32::try_from(out.len()).map_err(|_| FileError::new(F, 0, "file too large for TIFF offsets"))?;
    out.extend_from_slice(packet.as_bytes());
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let count = u32::try_from(packet.len()).map_err(|_| FileError::new(F, 0, "XMP packet too large"))?;
    let mut entry = [0u8; 12];
    entry[..2].copy_from_slice(&t.short_bytes(XMP_TAG));
    entry[2..4].copy_from_slice(&t.short_bytes(BYTE));
    entry[4..8].copy_from_slice(&t.long_bytes(count));
    entry[8..].copy_from_slice(&t.long_bytes(packet_at));
    let mut all: Vec<[u8; 12]> = entries.into_iter().filter(|e| tag_of(e) != Some(XMP_TAG)).collect();
    all.push(entry);
    all.sort_by_key(|e| tag_of(e).unwrap_or(u16::MAX));
    let ifd_at = u32::try_from(out.len()).map_err(|_| FileError::new(F, 0, "file too large for TIFF offsets"))?;
    let n = u16::try_from(all.len()).map_err(|_| FileError::new(F, 0, "too many IFD0 entries"))?;
    out.extend_from_slice(&t.short_bytes(n));
    for e in &all {
        out.extend_from_slice(e);
    }
    out.extend_from_slice(&t.long_bytes(next));
    out[4..8].copy_from_slice(&t.long_bytes(ifd_at));
    Ok(out)
}
