//! Ogg Vorbis and Ogg Opus: the comment `AIGC=<json>` in the comment header (`\x03vorbis` or
//! `OpusTags`, the stream's second packet). Writing re-pages the header packets after the first
//! and renumbers (and re-checksums) the stream's later pages; the audio packets are copied as
//! they are.

use super::*;

const F: FileFormat = FileFormat::Ogg;
const KEY: &[u8] = b"AIGC=";

/// CRC-32 of Ogg pages: polynomial 0x04C11DB7, not reflected, no final xor; a byte-wise
/// table (every page of a stream is checked on read: the bit-wise loop made a 30 MB file 20x a copy).
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn crc_update(c: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(c, |c, &b| (c << 8) ^ CRC_TABLE[((c >> 24) as u8 ^ b) as usize])
}

fn crc(bytes: &[u8]) -> u32 {
    crc_update(0, bytes)
}

/// The CRC of a whole page as if its CRC field (bytes 22..26) were zero.
fn page_crc(page: &[u8]) -> u32 {
    let c = crc_update(0, &page[..22]);
    crc_update(crc_update(c, &[0; 4]), &page[26..])
}

impl Page<'_> {
    /// Checked where the page is read (the headers) or given a new CRC (renumbered): a damaged
    /// page is refused, never re-checksummed into looking whole. Pages copied as they are keep
    /// whatever CRC they had.
    fn check(&self) -> Result<()> {
        if page_crc(self.bytes) == le32(self.bytes, 22).unwrap_or(0) {
            Ok(())
        } else {
            Err(FileError::new(F, self.at, "page CRC mismatch"))
        }
    }
}

/// One page: its bytes, header fields and payload (by segments).
struct Page<'a> {
    /// Where the page starts in the file.
    at: usize,
    bytes: &'a [u8],
    flags: u8,
    granule: [u8; 8],
    serial: u32,
    seq: u32,
    segments: &'a [u8],
    payload: &'a [u8],
}

fn pages(b: &[u8]) -> Result<Vec<Page<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let head = b.get(at..at + 27).ok_or_else(|| FileError::new(F, at, "truncated page header"))?;
        if &head[..4] != b"OggS" || head[4] != 0 {
            return Err(FileError::new(F, at, "not an Ogg page"));
        }
        let n = usize::from(head[26]);
        let segments = b.get(at + 27..at + 27 + n).ok_or_else(|| FileError::new(F, at, "truncated segment table"))?;
        let len: usize = segments.iter().map(|&s| usize::from(s)).sum();
        let end = at + 27 + n + len;
        let bytes = b.get(at..end).ok_or_else(|| FileError::new(F, at, "page runs past the end"))?;
        let mut granule = [0u8; 8];
        granule.copy_from_slice(&head[6..14]);
        out.push(Page {
            at,
            bytes,
            flags: head[5],
            granule,
            serial: le32(head, 14).unwrap_or(0),
            seq: le32(head, 18).unwrap_or(0),
            segments,
            payload: &bytes[27 + n..],
        });
        at = end;
    }
    if out.is_empty() {
        return Err(FileError::new(F, 0, "no pages"));
    }
    Ok(out)
}

/// The first stream's first `want` packets, and how many of its pages they took.
fn header_packets(pages: &[Page<'_>], want: usize) -> Result<(Vec<Vec<u8>>, usize)> {
    let serial = pages[0].serial;
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for page in pages.iter().filter(|p| p.serial == serial) {
        page.check()?;
        used += 1;
        let mut at = 0;
        for &seg in page.segments {
            current.extend_from_slice(&page.payload[at..at + usize::from(seg)]);
            at += usize::from(seg);
            if seg < 255 {
                packets.push(core::mem::take(&mut current));
                if packets.len() == want {
                    if at != page.payload.len() {
                        return Err(FileError::new(F, 0, "an audio packet shares a page with the headers"));
                    }
                    return Ok((packets, used));
                }
            }
        }
    }
    Err(FileError::new(F, 0, "the header packets do not end"))
}

/// How many header packets the codec has and where its comment header's comments start.
fn codec(first: &[u8]) -> Result<(usize, &'static [u8])> {
    if first.starts_with(b"\x01vorbis") {
        Ok((3, b"\x03vorbis"))
    } else if first.starts_with(b"OpusHead") {
        Ok((2, b"OpusTags"))
    } else {
        Err(FileError::new(F, 28, "neither Vorbis nor Opus"))
    }
}

/// `(vendor, comments)` of a comment header after its magic.
fn comments(packet: &[u8], magic: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let bad = || FileError::new(F, 0, "malformed comment header");
    let body = packet.strip_prefix(magic).ok_or_else(bad)?;
    let mut at = 0;
    let field = |at: &mut usize| -> Result<Vec<u8>> {
        let len = le32(body, *at).ok_or_else(bad)? as usize;
        let v = body.get(*at + 4..(*at + 4).checked_add(len).ok_or_else(bad)?).ok_or_else(bad)?.to_vec();
        *at += 4 + len;
        Ok(v)
    };
    let vendor = field(&mut at)?;
    let n = le32(body, at).ok_or_else(bad)? as usize;
    at += 4;
    if n > body.len() / 4 {
        return Err(bad());
    }
    let list = (0..n).map(|_| field(&mut at)).collect::<Result<Vec<_>>>()?;
    Ok((vendor, list))
}

fn is_label(c: &[u8]) -> bool {
    c.len() >= KEY.len() && c[..KEY.len()].eq_ignore_ascii_case(KEY)
}

pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
    let all = pages(b)?;
    let (count, magic) = codec(all[0].payload)?;
    let (packets, _) = header_packets(&all, count)?;
    let (_, list) = comments(&packets[1], magic)?;
    Ok(list
        .iter()
        .filter(|c| is_label(c))
        .map(|c| found(Carrier::VorbisComment, String::from_utf8_lossy(&c[KEY.len()..]).into_owned()))
        .collect())
}

/// A page of `payload` (whole segments), its CRC filled.
pub(super) fn page(flags: u8, granule: [u8; 8], serial: u32, seq: u32, segments: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = b"OggS\0".to_vec();
    out.push(flags);
    out.extend_from_slice(&granule);
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(segments.len() as u8);
    out.extend_from_slice(segments);
    out.extend_from_slice(payload);
    let c = crc(&out);
    out[22..26].copy_from_slice(&c.to_le_bytes());
    out
}

/// Pages for `packet` (each page at most 255 segments; the packet ends the last one).
fn paginate(packet: &[u8], serial: u32, mut seq: u32, out: &mut Vec<u8>) -> u32 {
    let mut lacing: Vec<u8> = Vec::new();
    let mut rest = packet.len();
    loop {
        if rest >= 255 {
            lacing.push(255);
            rest -= 255;
        } else {
            lacing.push(rest as u8);
            break;
        }
    }
    let mut at = 0;
    let mut first = true;
    for chunk in lacing.chunks(255) {
        let len: usize = chunk.iter().map(|&s| usize::from(s)).sum();
        let flags = if first { 0 } else { 1 };
        out.extend(page(flags, [0; 8], serial, seq, chunk, &packet[at..at + len]));
        at += len;
        seq += 1;
        first = false;
    }
    seq
}

pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
    let all = pages(b)?;
    let (count, magic) = codec(all[0].payload)?;
    let (packets, used) = header_packets(&all, count)?;
    let (vendor, list) = comments(&packets[1], magic)?;
    let label = [KEY, json.as_bytes()].concat();
    let mut kept: Vec<Vec<u8>> = list.into_iter().filter(|c| !is_label(c)).collect();
    kept.push(label);
    let mut comment = magic.to_vec();
    comment.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    comment.extend_from_slice(&vendor);
    comment.extend_from_slice(&(kept.len() as u32).to_le_bytes());
    for c in &kept {
        comment.extend_from_slice(&(c.len() as u32).to_le_bytes());
        comment.extend_from_slice(c);
    }
    if magic == b"\x03vorbis" {
        comment.push(1); // the framing bit
    }
    if comment == packets[1] {
        return Ok(b.to_vec()); // the same label: nothing changes
    }
    let serial = all[0].serial;
    let mut out = Vec::with_capacity(b.len() + json.len() + 64);
    out.extend_from_slice(all[0].bytes);
    let mut seq = all[0].seq + 1;
    seq = paginate(&comment, serial, seq, &mut out);
    for packet in &packets[2..] {
        seq = paginate(packet, serial, seq, &mut out);
    }
    // The stream's later pages, renumbered; other streams' pages as they are.
    let mut seen = 0;
    for p in &all {
        if p.serial != serial {
            out.extend_from_slice(p.bytes);
            continue;
        }
        seen += 1;
        if seen <= used {
            continue;
        }
        if p.seq == seq {
            out.extend_from_slice(p.bytes);
        } else {
            p.check()?;
            out.extend(page(p.flags, p.granule, serial, seq, p.segments, p.payload));
        }
        seq += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_crc_is_the_bitwise_one() {
        let bitwise = |bytes: &[u8]| {
            bytes.iter().fold(0u32, |mut c, &b| {
                c ^= u32::from(b) << 24;
                for _ in 0..8 {
                    c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
                }
                c
            })
        };
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in [0, 1, 7, 8, 9, 100, 1000] {
            assert_eq!(crc(&data[..len]), bitwise(&data[..len]));
        }
    }
}
