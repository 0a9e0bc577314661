//! The encodings a JSON body may come in (RFC 4627 §3): UTF-8, UTF-16 and UTF-32, each with or
//! without a byte-order mark, told apart by the mark or the pattern of zero bytes.

use super::{unreadable, Unreadable};

/// How the body's bytes encode its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8 { bom: bool },
    /// UTF-16, big or little endian.
    Utf16 { big_endian: bool, bom: bool },
    /// UTF-32, big or little endian.
    Utf32 { big_endian: bool, bom: bool },
}

/// The text of `bytes` and its encoding, from the byte-order mark or, without one, the pattern
/// of zero bytes in the first four (RFC 4627 §3). Invalid sequences are unreadable.
pub fn decode_text(bytes: &[u8]) -> Result<(String, Encoding), Unreadable> {
    let b = |i: usize| bytes.get(i).copied();
    let (encoding, body) = match (b(0), b(1), b(2), b(3)) {
        (Some(0xEF), Some(0xBB), Some(0xBF), _) => (Encoding::Utf8 { bom: true }, &bytes[3..]),
        (Some(0), Some(0), Some(0xFE), Some(0xFF)) => (Encoding::Utf32 { big_endian: true, bom: true }, &bytes[4..]),
        (Some(0xFF), Some(0xFE), Some(0), Some(0)) => (Encoding::Utf32 { big_endian: false, bom: true }, &bytes[4..]),
        (Some(0xFE), Some(0xFF), _, _) => (Encoding::Utf16 { big_endian: true, bom: true }, &bytes[2..]),
        (Some(0xFF), Some(0xFE), _, _) => (Encoding::Utf16 { big_endian: false, bom: true }, &bytes[2..]),
        (Some(0), Some(0), Some(0), Some(x)) if x != 0 => (Encoding::Utf32 { big_endian: true, bom: false }, bytes),
        (Some(x), Some(0), Some(0), Some(0)) if x != 0 => (Encoding::Utf32 { big_endian: false, bom: false }, bytes),
        (Some(0), Some(x), _, _) if x != 0 => (Encoding::Utf16 { big_endian: true, bom: false }, bytes),
        (Some(x), Some(0), _, _) if x != 0 => (Encoding::Utf16 { big_endian: false, bom: false }, bytes),
        _ => (Encoding::Utf8 { bom: false }, bytes),
    };
    let text = match encoding {
        Encoding::Utf8 { .. } => match std::str::from_utf8(body) {
            Ok(s) => s.to_string(),
            Err(e) => return Err(unreadable("invalid UTF-8", e.valid_up_to())),
        },
        Encoding::Utf16 { big_endian, .. } => {
            if body.len() % 2 != 0 {
                return Err(unreadable("UTF-16 body of odd length", body.len()));
            }
            let units = body.chunks_exact(2).map(|c| {
                let pair = [c[0], c[1]];
                if big_endian {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            });
            let mut out = String::with_capacity(body.len());
            for (i, c) in char::decode_utf16(units).enumerate() {
                out.push(c.map_err(|_| unreadable("invalid UTF-16", i * 2))?);
            }
            out
        }
        Encoding::Utf32 { big_endian, .. } => {
            if body.len() % 4 != 0 {
                return Err(unreadable("UTF-32 body of a length not a multiple of 4", body.len()));
            }
            let mut out = String::with_capacity(body.len() / 2);
            for (i, c) in body.chunks_exact(4).enumerate() {
                let quad = [c[0], c[1], c[2], c[3]];
                let u = if big_endian { u32::from_be_bytes(quad) } else { u32::from_le_bytes(quad) };
                out.push(char::from_u32(u).ok_or_else(|| unreadable("invalid UTF-32", i * 4))?);
            }
            out
        }
    };
    Ok((text, encoding))
}

/// `text` in `encoding`, byte-order mark included when the original had one.
pub fn encode_text(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 { bom } => {
            let mut out = Vec::with_capacity(text.len() + 3);
            if bom {
                out.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
            }
            out.extend_from_slice(text.as_bytes());
            out
        }
        Encoding::Utf16 { big_endian, bom } => {
            let mut out = Vec::with_capacity(text.len() * 2 + 2);
            let bom_unit = bom.then_some(0xFEFF_u16);
            for unit in bom_unit.into_iter().chain(text.encode_utf16()) {
                out.extend_from_slice(&if big_endian { unit.to_be_bytes() } else { unit.to_le_bytes() });
            }
            out
        }
        Encoding::Utf32 { big_endian, bom } => {
            let mut out = Vec::with_capacity(text.len() * 4 + 4);
            let bom_char = bom.then_some('\u{FEFF}');
            for c in bom_char.into_iter().chain(text.chars()) {
                let u = c as u32;
                out.extend_from_slice(&if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
            }
            out
        }
    }
}
