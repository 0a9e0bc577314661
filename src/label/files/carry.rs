//! Metadata carried from an image to its re-encoded copy (after the visible label is drawn):
//! the codec writes new pixels, this puts back everything else the original said.

use super::*;

/// PNG chunks that describe the original's sample format (palette, transparency key, background,
/// significant bits, histogram): wrong for the re-encoded samples, so the encoder's own are kept.
const PNG_SAMPLE_FORMAT: [&[u8; 4]; 6] = [b"PLTE", b"tRNS", b"bKGD", b"sBIT", b"hIST", b"sPLT"];
/// The chunks of the pixels themselves.
const PNG_PIXELS: [&[u8; 4]; 4] = [b"IHDR", b"IDAT", b"IEND", b"PLTE"];

/// The re-encoded image `encoded` (same format as `original`, new pixels, upright) with the
/// original's metadata: EXIF (its orientation set to 1, since the pixels are upright now), the
/// ICC profile and colour-space chunks byte for byte, XMP, IPTC, comments and PNG text chunks,
/// in their original order.
///
/// What cannot stay true of new pixels is left out: a PNG's palette, transparency key,
/// background and significant bits (the encoder's own are kept); a JPEG's Adobe APP14 (it
/// describes the original's colour transform) and multi-picture APP2 (its offsets point at
/// images after the original's end).
///
/// Refused: the formats differ, or the original is an animated PNG or a CMYK JPEG (its pixels
/// and profile would no longer match).
///
/// ```
/// use aigc_edge::files;
/// // A 1x1 PNG, and the same with a text chunk.
/// let png = [137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153, 61, 29, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130];
/// let text = [0, 0, 0, 10, 116, 69, 88, 116, 67, 111, 109, 109, 101, 110, 116, 0, 104, 105, 162, 162, 88, 102];
/// let original = [&png[..33], &text[..], &png[33..]].concat();
/// assert_eq!(files::carry_metadata(&original, &png).unwrap(), original);
/// assert!(files::carry_metadata(&original, b"GIF89a").is_err());
/// ```
pub fn carry_metadata(original: &[u8], encoded: &[u8]) -> Result<Vec<u8>> {
    let format = FileFormat::detect(original);
    if format != FileFormat::detect(encoded) {
        let name = |f: Option<FileFormat>| f.map_or("unknown", FileFormat::as_str);
        return Err(FileError {
            format,
            offset: 0,
            message: format!(
                "the re-encoded image is {}, the original {}",
                name(FileFormat::detect(encoded)),
                name(format)
            ),
        });
    }
    match format {
        Some(FileFormat::Png) => png_carry(original, encoded),
        Some(FileFormat::Jpeg) => jpeg_carry(original, encoded),
        Some(FileFormat::Webp) => webp_carry(original, encoded),
        other => Err(FileError {
            format: None,
            offset: 0,
            message: format!(
                "{}: metadata is carried for PNG, JPEG and WebP only",
                other.map_or("unknown file format", FileFormat::as_str)
            ),
        }),
    }
}

fn png_carry(original: &[u8], encoded: &[u8]) -> Result<Vec<u8>> {
    let old = png::chunks(original)?;
    let new = png::chunks(encoded)?;
    if let Some(c) = old.iter().find(|c| &c.kind == b"acTL") {
        return Err(FileError::new(FileFormat::Png, c.at, "an animated PNG would lose its other frames"));
    }
    let kept = |c: &&png::Chunk| !PNG_PIXELS.contains(&&c.kind) && !PNG_SAMPLE_FORMAT.contains(&&c.kind);
    let first_idat = old.iter().position(|c| &c.kind == b"IDAT").unwrap_or(old.len());
    let (before, after): (Vec<_>, Vec<_>) =
        old.iter().enumerate().filter(|(_, c)| kept(c)).partition(|(i, _)| *i < first_idat);
    let original_kinds: Vec<[u8; 4]> = old.iter().filter(kept).map(|c| c.kind).collect();

    let mut out = Vec::with_capacity(original.len() + encoded.len());
    out.extend_from_slice(&encoded[..8]);
    let copy = |out: &mut Vec<u8>, c: &png::Chunk| {
        if &c.kind == b"eXIf" {
            let mut tiff = original[c.data.clone()].to_vec();
            exif::make_upright(&mut tiff);
            out.extend_from_slice(&png::chunk(b"eXIf", &tiff));
        } else {
            out.extend_from_slice(&original[c.at..c.end]);
        }
    };
    for c in &new {
        match &c.kind {
            b"IHDR" => {
                out.extend_from_slice(&encoded[c.at..c.end]);
                before.iter().for_each(|(_, c)| copy(&mut out, c));
            }
            b"IEND" => {
                after.iter().for_each(|(_, c)| copy(&mut out, c));
                out.extend_from_slice(&encoded[c.at..c.end]);
            }
            // The encoder's own ancillary chunks give way to the original's of the same kind.
            kind if !PNG_PIXELS.contains(&kind)
                && !PNG_SAMPLE_FORMAT.contains(&kind)
                && original_kinds.contains(kind) => {}
            _ => out.extend_from_slice(&encoded[c.at..c.end]),
        }
    }
    Ok(out)
}

const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;

fn is_metadata(marker: u8) -> bool {
    (APP0..=0xEF).contains(&marker) || marker == COM
}

fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
}

fn jpeg_carry(original: &[u8], encoded: &[u8]) -> Result<Vec<u8>> {
    let (old, _) = jpeg::segments(original)?;
    let (new, _) = jpeg::segments(encoded)?;
    if let Some(sof) = old.iter().find(|s| is_frame_header(s.marker)) {
        if original.get(sof.data.start + 5) == Some(&4) {
            return Err(FileError::new(
                FileFormat::Jpeg,
                sof.at,
                "a CMYK JPEG: its pixels would no longer match its profile",
            ));
        }
    }
    let kept: Vec<&jpeg::Segment> = old
        .iter()
        .filter(|s| is_metadata(s.marker) && s.marker != APP14)
        .filter(|s| !(s.marker == APP2 && original[s.data.clone()].starts_with(b"MPF\0")))
        .collect();
    let mut out = Vec::with_capacity(original.len() + encoded.len());
    out.extend_from_slice(&encoded[..2]);
    // JFIF's APP0 comes first when there is one: the original's, else the encoder's.
    let original_app0 = kept.first().is_some_and(|s| s.marker == APP0);
    if !original_app0 {
        if let Some(s) = new.first().filter(|s| s.marker == APP0) {
            out.extend_from_slice(&encoded[s.at..s.data.end]);
        }
    }
    for s in &kept {
        let data = &original[s.data.clone()];
        if s.marker == APP1 && data.starts_with(b"Exif\0\0") {
            let mut segment = original[s.at..s.data.end].to_vec();
            let tiff_at = s.data.start - s.at + 6;
            exif::make_upright(&mut segment[tiff_at..]);
            out.extend_from_slice(&segment);
        } else {
            out.extend_from_slice(&original[s.at..s.data.end]);
        }
    }
    // The encoder's tables, frame and scans; its own metadata gives way to the original's.
    let pixels_from = new.iter().find(|s| !is_metadata(s.marker)).map_or(2, |s| s.at);
    out.extend_from_slice(&encoded[pixels_from..]);
    Ok(out)
}

/// WebP: the encoder's image chunks (`VP8 `/`VP8L`, `ALPH`) inside an extended file that carries
/// the original's `ICCP`, `EXIF` (made upright) and `XMP ` in the order the container requires.
fn webp_carry(original: &[u8], encoded: &[u8]) -> Result<Vec<u8>> {
    const W: FileFormat = FileFormat::Webp;
    let old = riff::chunks(original, W)?;
    let new = riff::chunks(encoded, W)?;
    if let Some(c) = old.iter().find(|c| &c.id == b"ANIM") {
        return Err(FileError::new(W, c.at, "an animated WebP would lose its other frames"));
    }
    let chunk_of = |b: &[u8], c: &riff::Chunk| b[c.at..c.end].to_vec();
    let image: Vec<Vec<u8>> =
        new.iter().filter(|c| matches!(&c.id, b"VP8 " | b"VP8L" | b"ALPH")).map(|c| chunk_of(encoded, c)).collect();
    let find = |id: &[u8; 4]| old.iter().find(|c| &c.id == id);
    let (icc, exif_chunk, xmp_chunk) = (find(b"ICCP"), find(b"EXIF"), find(b"XMP "));
    if icc.is_none() && exif_chunk.is_none() && xmp_chunk.is_none() {
        return Ok(encoded.to_vec()); // nothing to carry
    }
    // The canvas: the encoded image's size, from its VP8X or its bitstream header.
    let (width, height) =
        webp_size(encoded, &new).ok_or_else(|| FileError::new(W, 12, "re-encoded WebP has no size"))?;
    let alpha = new.iter().any(|c| &c.id == b"ALPH")
        || new.iter().any(|c| &c.id == b"VP8L" && encoded.get(c.data.start + 4).is_some_and(|b| b & 0x10 != 0));
    let flags = u8::from(icc.is_some()) << 5
        | u8::from(alpha) << 4
        | u8::from(exif_chunk.is_some()) << 3
        | u8::from(xmp_chunk.is_some()) << 2;
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X\x0a\0\0\0");
    body.extend_from_slice(&[flags, 0, 0, 0]);
    body.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    if let Some(c) = icc {
        body.extend(chunk_of(original, c));
    }
    image.iter().for_each(|c| body.extend_from_slice(c));
    if let Some(c) = exif_chunk {
        let mut chunk = chunk_of(original, c);
        let tiff_at = 8 + if original[c.data.clone()].starts_with(b"Exif\0\0") { 6 } else { 0 };
        if let Some(tiff) = chunk.get_mut(tiff_at..) {
            exif::make_upright(tiff);
        }
        body.extend(chunk);
    }
    if let Some(c) = xmp_chunk {
        body.extend(chunk_of(original, c));
    }
    let size = u32::try_from(body.len()).map_err(|_| FileError::new(W, 4, "file would pass 4 GiB"))?;
    Ok([&b"RIFF"[..], &size.to_le_bytes(), &body].concat())
}

/// A WebP's canvas size: its `VP8X` fields, or the `VP8L` / `VP8 ` bitstream header.
fn webp_size(b: &[u8], chunks: &[riff::Chunk]) -> Option<(u32, u32)> {
    let le24 = |at: usize| b.get(at..at + 3).map(|s| u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16);
    for c in chunks {
        let d = c.data.start;
        match &c.id {
            b"VP8X" => return Some((le24(d + 4)? + 1, le24(d + 7)? + 1)),
            b"VP8L" => {
                let bits = le32(b, d + 1)?;
                return Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1));
            }
            b"VP8 " => {
                let w = u32::from(u16::from_le_bytes([*b.get(d + 6)?, *b.get(d + 7)?]) & 0x3FFF);
                let h = u32::from(u16::from_le_bytes([*b.get(d + 8)?, *b.get(d + 9)?]) & 0x3FFF);
                return Some((w, h));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in chunks {
            out.extend_from_slice(&png::chunk(kind, data));
        }
        out
    }

    fn jpeg_of(segments: &[(u8, &[u8])], scan: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        for (marker, data) in segments {
            out.extend_from_slice(&[0xFF, *marker]);
            out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(scan);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    /// A big-endian EXIF block with IFD0 holding orientation `o` and one other tag.
    fn exif(o: u16) -> Vec<u8> {
        let mut t = b"MM\0\x2a\0\0\0\x08\0\x02".to_vec();
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        t.extend_from_slice(&o.to_be_bytes());
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&[0x01, 0x31, 0, 2, 0, 0, 0, 4, b'c', b'a', b'm', 0]); // Software "cam"
        t.extend_from_slice(&[0, 0, 0, 0]);
        t
    }

    const IHDR_OLD: &[u8] = &[0, 0, 0, 2, 0, 0, 0, 2, 8, 3, 0, 0, 0];
    const IHDR_NEW: &[u8] = &[0, 0, 0, 2, 0, 0, 0, 2, 8, 6, 0, 0, 0];

    #[test]
    fn png_keeps_what_it_does_not_own_in_place() {
        let original = png_of(&[
            (b"IHDR", IHDR_OLD),
            (b"iCCP", b"icc\0\0PROFILE"),
            (b"eXIf", &exif(6)),
            (b"PLTE", &[0, 0, 0, 255, 255, 255]),
            (b"tRNS", &[0]),
            (b"tEXt", b"Comment\0before"),
            (b"IDAT", b"old pixels"),
            (b"tEXt", b"Comment\0after"),
            (b"IEND", b""),
        ]);
        let encoded = png_of(&[
            (b"IHDR", IHDR_NEW),
            (b"iCCP", b"enc\0\0OTHER"),
            (b"pHYs", b"123456789"),
            (b"IDAT", b"new"),
            (b"IDAT", b"pixels"),
            (b"IEND", b""),
        ]);
        let expected = png_of(&[
            (b"IHDR", IHDR_NEW),
            (b"iCCP", b"icc\0\0PROFILE"),
            (b"eXIf", &exif(1)),
            (b"tEXt", b"Comment\0before"),
            (b"pHYs", b"123456789"),
            (b"IDAT", b"new"),
            (b"IDAT", b"pixels"),
            (b"tEXt", b"Comment\0after"),
            (b"IEND", b""),
        ]);
        assert_eq!(carry_metadata(&original, &encoded), Ok(expected));
    }

    #[test]
    fn webp_keeps_icc_exif_and_xmp_around_the_new_image() {
        let riff = |chunks: &[(&[u8; 4], &[u8])]| {
            let mut body = b"WEBP".to_vec();
            for (id, data) in chunks {
                body.extend_from_slice(*id);
                body.extend_from_slice(&(data.len() as u32).to_le_bytes());
                body.extend_from_slice(data);
                if data.len() % 2 == 1 {
                    body.push(0);
                }
            }
            [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat()
        };
        // VP8L of 3x2: signature, then 14-bit width-1 and height-1.
        let bits: u32 = 2 | (1 << 14);
        let vp8l = [&[0x2Fu8][..], &bits.to_le_bytes(), b"pixels"].concat();
        let original = riff(&[
            (b"VP8X", &[0x2C, 0, 0, 0, 9, 0, 0, 9, 0, 0]),
            (b"ICCP", b"profile"),
            (b"VP8L", b"old pixels"),
            (b"EXIF", &exif(6)),
            (b"XMP ", b"<x:xmpmeta/>"),
        ]);
        let encoded = riff(&[(b"VP8L", &vp8l)]);
        let out = carry_metadata(&original, &encoded).unwrap();
        let chunks = riff::chunks(&out, FileFormat::Webp).unwrap();
        let ids: Vec<&[u8; 4]> = chunks.iter().map(|c| &c.id).collect();
        assert_eq!(ids, [b"VP8X", b"ICCP", b"VP8L", b"EXIF", b"XMP "]);
        assert_eq!(&out[chunks[0].data.clone()], &[0x2C, 0, 0, 0, 2, 0, 0, 1, 0, 0], "flags kept, size the new one's");
        assert_eq!(&out[chunks[2].data.clone()], &vp8l[..]);
        let tiff = &out[chunks[3].data.clone()];
        let orientation = exif::Tiff::new(tiff).and_then(|t| t.orientation_at().and_then(|at| t.u16_at(at)));
        assert_eq!(orientation, Some(1), "made upright");
        assert_eq!(carry_metadata(&encoded, &encoded).unwrap(), encoded, "nothing to carry");
        for cut in 0..original.len() {
            let _ = carry_metadata(&original[..cut], &encoded);
        }
    }

    #[test]
    fn jpeg_keeps_what_it_does_not_own_in_order() {
        let xmp = [XMP_PREFIX, b"<x:xmpmeta/>"].concat();
        let original = jpeg_of(
            &[
                (0xE1, &[b"Exif\0\0".as_slice(), &exif(8)].concat()),
                (0xE1, &xmp),
                (0xE2, b"ICC_PROFILE\0\x01\x02first"),
                (0xE2, b"ICC_PROFILE\0\x02\x02second"),
                (0xE2, b"MPF\0offsets"),
                (0xED, b"Photoshop 3.0\0iptc"),
                (0xEE, b"Adobe\0transform"),
                (0xFE, b"a comment"),
                (0xDB, b"old tables"),
                (0xC0, &[8, 0, 2, 0, 2, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]),
                (0xDA, b"old scan header"),
            ],
            b"old entropy data",
        );
        let encoded = jpeg_of(
            &[
                (0xE0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0"),
                (0xDB, b"new tables"),
                (0xC0, b"new frame"),
                (0xDA, b"new scan"),
            ],
            b"new entropy data",
        );
        let expected = jpeg_of(
            &[
                (0xE0, b"JFIF\0\x01\x02\0\0\x01\0\x01\0\0"),
                (0xE1, &[b"Exif\0\0".as_slice(), &exif(1)].concat()),
                (0xE1, &xmp),
                (0xE2, b"ICC_PROFILE\0\x01\x02first"),
                (0xE2, b"ICC_PROFILE\0\x02\x02second"),
                (0xED, b"Photoshop 3.0\0iptc"),
                (0xFE, b"a comment"),
                (0xDB, b"new tables"),
                (0xC0, b"new frame"),
                (0xDA, b"new scan"),
            ],
            b"new entropy data",
        );
        assert_eq!(carry_metadata(&original, &encoded), Ok(expected));
    }

    const XMP_PREFIX: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

    #[test]
    fn refuses_what_would_come_out_wrong() {
        let png = png_of(&[(b"IHDR", IHDR_NEW), (b"IDAT", b"x"), (b"IEND", b"")]);
        let apng =
            png_of(&[(b"IHDR", IHDR_NEW), (b"acTL", &[0, 0, 0, 2, 0, 0, 0, 0]), (b"IDAT", b"x"), (b"IEND", b"")]);
        let jpeg = jpeg_of(&[(0xDB, b"t"), (0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]), (0xDA, b"s")], b"d");
        let cmyk =
            jpeg_of(&[(0xC0, &[8, 0, 1, 0, 1, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]), (0xDA, b"s")], b"d");
        #[rustfmt::skip]
        let cases: [(&[u8], &[u8], &str); 5] = [
            (&apng, &png, "an animated PNG would lose its other frames"),
            (&cmyk, &jpeg, "a CMYK JPEG"),
            (&png, &jpeg, "the re-encoded image is jpeg, the original png"),
            (b"GIF89a", b"GIF89a", "gif: metadata is carried for PNG, JPEG and WebP only"),
            (b"\0\x01\0\x02", b"\0\x01\0\x02", "unknown file format: metadata is carried"),
        ];
        for (original, encoded, message) in cases {
            let e = carry_metadata(original, encoded).expect_err(message);
            assert!(e.to_string().contains(message), "{e} lacks {message:?}");
        }
    }

    #[test]
    fn every_prefix_and_flip_is_an_error_or_a_result_never_a_panic() {
        let png = png_of(&[(b"IHDR", IHDR_NEW), (b"eXIf", &exif(3)), (b"IDAT", b"x"), (b"IEND", b"")]);
        let jpeg = jpeg_of(&[(0xE1, &[b"Exif\0\0".as_slice(), &exif(3)].concat()), (0xDA, b"s")], b"d");
        for sample in [png, jpeg] {
            for cut in 0..sample.len() {
                let _ = carry_metadata(&sample[..cut], &sample);
                let _ = carry_metadata(&sample, &sample[..cut]);
            }
            for i in 0..sample.len() * 8 {
                let mut flipped = sample.clone();
                flipped[i / 8] ^= 1 << (i % 8);
                let _ = carry_metadata(&flipped, &sample);
            }
        }
    }
}
