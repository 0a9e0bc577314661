//! An invisible, keyed text watermark carrying a short payload (the `ProduceID`).
//!
//! The payload is framed as `length, payload XOR keystream, CRC-16`, written two bits per
//! invisible character (U+200B, U+200C, U+200D, U+2060) after each visible character, each
//! frame opened by U+2064, and repeated to the end of the text. Any excerpt holding one whole
//! frame verifies — a frame spans 4 visible characters per payload byte plus 13, so an excerpt
//! of twice that always holds one; a wrong key or a damaged frame fails the CRC, so [`detect`]
//! answers "none" rather than a wrong payload.
//!
//! What removes it, honestly: anything that drops invisible format characters — Unicode
//! normalization that strips them (this crate's own [`Step::Invisible`](crate::Step) does, which
//! is why keyword matching never sees it), many input sanitizers, retyping, OCR, or copying
//! through a plain-text channel that filters `Cf` characters. It marks text for the honest
//! path (copy and paste); it is not robust against a remover, and the rules do not require
//! watermarks (GB 45438: encouraged, not required).
//!
//! ```
//! use aigc_edge::watermark;
//! let text = "这是一段由模型生成的回答，内容仅供参考。".repeat(3);
//! let marked = watermark::embed(&text, "aigc-1f2e", b"key").unwrap();
//! assert_eq!(marked.chars().filter(|c| !watermark::is_mark(*c)).collect::<String>(), text);
//! assert_eq!(watermark::detect(&marked, b"key").map(|d| d.payload), Some("aigc-1f2e".to_string()));
//! assert_eq!(watermark::detect(&marked, b"other key"), None);
//! ```

use core::fmt;

pub mod image;

const TEXT_DOMAIN: &[u8] = b"aigc-edge watermark\0";
const START: char = '\u{2064}';
const SYMBOLS: [char; 4] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}'];
/// Longest payload, in bytes.
pub const MAX_PAYLOAD: usize = 64;

/// True for the characters the watermark writes.
pub fn is_mark(c: char) -> bool {
    c == START || SYMBOLS.contains(&c)
}

/// The payload cannot be embedded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatermarkError(String);

impl fmt::Display for WatermarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WatermarkError {}

/// What [`detect`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    /// The payload.
    pub payload: String,
    /// Whole frames that verified.
    pub copies: usize,
}

/// `len` bytes of HMAC-SHA-256 counter-mode keystream under `key`, one stream per `domain`.
pub(crate) fn keystream(key: &[u8], domain: &[u8], len: usize) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else { break };
        mac.update(domain);
        mac.update(&counter.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// CRC-16/CCITT-FALSE.
pub(crate) fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

fn frame(payload: &[u8], key: &[u8]) -> Vec<char> {
    let stream = keystream(key, TEXT_DOMAIN, payload.len() + 1);
    let mut bytes = vec![payload.len() as u8 ^ stream[0]];
    bytes.extend(payload.iter().zip(&stream[1..]).map(|(p, k)| p ^ k));
    let crc = crc16(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    let mut symbols = vec![START];
    for b in bytes {
        for shift in [6, 4, 2, 0] {
            symbols.push(SYMBOLS[usize::from(b >> shift & 3)]);
        }
    }
    symbols
}

/// `text` with the payload spread through it, one mark after each visible character, frames
/// repeated to the end. Existing marks are removed first (one watermark per text).
pub fn embed(text: &str, payload: &str, key: &[u8]) -> Result<String, WatermarkError> {
    if payload.is_empty() || payload.len() > MAX_PAYLOAD {
        return Err(WatermarkError(format!("payload must be 1 to {MAX_PAYLOAD} bytes, got {}", payload.len())));
    }
    let symbols = frame(payload.as_bytes(), key);
    let mut out = String::with_capacity(text.len() * 4);
    let mut next = symbols.iter().cycle();
    for c in text.chars().filter(|c| !is_mark(*c)) {
        out.push(c);
        if !c.is_whitespace() {
            if let Some(&s) = next.next() {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// The payload, if a whole frame verifies under `key`.
pub fn detect(text: &str, key: &[u8]) -> Option<Detected> {
    let marks: Vec<char> = text.chars().filter(|c| is_mark(*c)).collect();
    let mut found: Option<Detected> = None;
    for segment in marks.split(|&c| c == START).skip(1) {
        let Some(bytes) = decode(segment) else { continue };
        if bytes.len() < 3 {
            continue;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 2);
        let len = body.len() - 1;
        if crc16(body) != u16::from_be_bytes([crc[0], crc[1]]) {
            continue;
        }
        let stream = keystream(key, TEXT_DOMAIN, len + 1);
        if usize::from(body[0] ^ stream[0]) != len {
            continue;
        }
        let payload: Vec<u8> = body[1..].iter().zip(&stream[1..]).map(|(b, k)| b ^ k).collect();
        let Ok(payload) = String::from_utf8(payload) else { continue };
        match &mut found {
            Some(d) if d.payload == payload => d.copies += 1,
            Some(_) => {}
            None => found = Some(Detected { payload, copies: 1 }),
        }
    }
    found
}

fn decode(symbols: &[char]) -> Option<Vec<u8>> {
    if symbols.len() % 4 != 0 {
        return None;
    }
    symbols
        .chunks_exact(4)
        .map(|quad| quad.iter().try_fold(0u8, |acc, c| SYMBOLS.iter().position(|s| s == c).map(|v| acc << 2 | v as u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_verify_and_damage_is_detected() {
        let text = "人工智能生成的文本需要标识。".repeat(60);
        let id = "aigc-0123456789abcdef0123456789abcdef";
        let marked = embed(&text, id, b"k").unwrap();
        let d = detect(&marked, b"k").unwrap();
        assert_eq!(d.payload, id);
        assert!(d.copies >= 2, "{d:?}");
        // An excerpt from the middle holding one whole frame (4 symbols a byte + start).
        let chars: Vec<char> = marked.chars().collect();
        let frame_chars = (1 + id.len() + 2) * 4 + 1;
        let excerpt: String = chars[300..300 + frame_chars * 4 + 10].iter().collect();
        assert_eq!(detect(&excerpt, b"k").map(|d| d.payload), Some(id.to_string()));
        // Too short an excerpt: none, never a wrong payload.
        let short: String = chars[300..340].iter().collect();
        assert_eq!(detect(&short, b"k"), None);
        // Stripping invisible characters removes it.
        let stripped: String = marked.chars().filter(|c| !crate::normalize::is_invisible(*c)).collect();
        assert_eq!(stripped, text);
        assert_eq!(detect(&stripped, b"k"), None);
        // Re-embedding replaces, never stacks.
        let again = embed(&marked, "other", b"k").unwrap();
        assert_eq!(detect(&again, b"k").map(|d| d.payload), Some("other".to_string()));
        assert!(embed("x", "", b"k").is_err());
        assert!(embed("x", &"a".repeat(65), b"k").is_err());
    }

    #[test]
    fn keyword_matching_ignores_the_watermark() {
        use crate::{Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};
        let mut list = KeywordList::new();
        list.add_source("k", "赌博\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
        let f = Filter::new(std::sync::Arc::new(Dictionary::new(&list).unwrap()), &Policy::default()).unwrap();
        let marked = embed("网上赌博很危险", "id", b"k").unwrap();
        assert_eq!(f.check(&marked).hits.len(), 1);
    }
}
