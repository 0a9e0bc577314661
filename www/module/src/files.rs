//! The file entry (`aigc-edge/files`, feature `files`): implicit labels inside media and
//! document files, their verifier, SM2 signing keys, the audible label and the metadata carried
//! over a canvas re-encode. Built as its own `.wasm` so a page that only filters text does not
//! download the container parsers and the SM2 stack.

use aigc_edge::files::audible::{PcmFormat, Placement, SampleFormat};
use aigc_edge::files::{self, Provenance};
use aigc_edge::label::seal::{Keyring, PublicKey, Sealer, SigningKey};
use aigc_edge::ImplicitLabel;
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::{new_id, to_js, to_value};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buffer: &mut [u8]);
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
export interface LabelFields { Label: string; ContentProducer: string; ProduceID: string; ReservedCode1: string; ContentPropagator: string; PropagateID: string; ReservedCode2: string; }
/** What the keys given made of a reserved code: "empty", "verified: sm2" (or hmac-sm3, hmac-sha256), "does not verify", "not checked: no key for it". */
export interface CodeChecks { ReservedCode1: string; ReservedCode2: string; }
export interface FoundLabel { carrier: string; json: string; fields: LabelFields | null; problems: string[]; codes?: CodeChecks; }
export interface FileReport { format: string; labels: FoundLabel[]; verdict: "compliant" | "non-compliant" | "no label"; reasons: string[]; }
export interface SigningKeyPair { privateKey: string; publicKey: string; }
"#;

/// The sealer for a shared HMAC key or an SM2 private key (PEM); the signature wins.
fn sealer<'k>(key: Option<&'k [u8]>, signing: Option<&'k SigningKey>) -> Option<Sealer<'k>> {
    match (signing, key) {
        (Some(k), _) => Some(Sealer::Sm2(k)),
        (None, Some(k)) => Some(Sealer::HmacSha256(k)),
        (None, None) => None,
    }
}

fn signing_key(pem: Option<String>) -> Result<Option<SigningKey>, JsError> {
    pem.map(|p| SigningKey::from_pem(&p).map_err(to_js)).transpose()
}

/// A new SM2 key pair for signing labels: `{privateKey, publicKey}`, PKCS#8 and
/// SubjectPublicKeyInfo PEM. The secret comes from `crypto.getRandomValues`.
#[wasm_bindgen(js_name = generateSigningKey, unchecked_return_type = "SigningKeyPair")]
pub fn generate_signing_key() -> Result<JsValue, JsError> {
    let key = SigningKey::generate(|secret| {
        get_random_values(secret);
        Ok::<(), core::convert::Infallible>(())
    })
    .map_err(|e| JsError::new(&e.to_string()))?;
    to_value(&json!({"privateKey": key.to_pem(), "publicKey": key.public_key().to_pem()}))
}

/// Writes the implicit label into a PNG, JPEG, WebP, GIF, TIFF, MP3, WAV, FLAC, Ogg, MP4, PDF,
/// OOXML or text file; returns the labeled bytes (one label per file; pixels and samples
/// unchanged). `ReservedCode1` is signed with `signingKey` (SM2, PKCS#8 PEM) or sealed with the
/// shared `key` (HMAC-SHA-256).
#[wasm_bindgen(js_name = labelFile)]
pub fn label_file(
    bytes: &[u8],
    producer: &str,
    produce_id: Option<String>,
    key: Option<Vec<u8>>,
    signing_key: Option<String>,
) -> Result<Vec<u8>, JsError> {
    let id = produce_id.unwrap_or_else(new_id);
    let mut label = ImplicitLabel::generated(producer, &id).map_err(to_js)?;
    let signing = self::signing_key(signing_key)?;
    if let Some(sealer) = sealer(key.as_deref(), signing.as_ref()) {
        label.seal_producer(&sealer);
    }
    files::write_label(bytes, &label).map_err(to_js)
}

/// Adds the audible label — Morse "AI", short-long-short-short — to a WAV or MP3 file, at
/// `placement` `"start"` (default) or `"end"`; the original samples or frames are unchanged.
#[wasm_bindgen(js_name = markAudio)]
pub fn mark_audio(bytes: &[u8], placement: Option<String>) -> Result<Vec<u8>, JsError> {
    let placement = placement.as_deref().unwrap_or("start").parse::<Placement>().map_err(|e| JsError::new(&e))?;
    files::audible::mark(bytes, placement).map_err(to_js)
}

/// The same for raw interleaved little-endian PCM: `sampleFormat` is `u8`, `s16le`, `s24le`,
/// `s32le` or `f32le` (OpenAI's `pcm` speech is 24000 Hz, 1 channel, `s16le`).
#[wasm_bindgen(js_name = markPcm)]
pub fn mark_pcm(
    samples: &[u8],
    sample_rate: u32,
    channels: u16,
    sample_format: &str,
    placement: Option<String>,
) -> Result<Vec<u8>, JsError> {
    let sample = match sample_format {
        "u8" => SampleFormat::U8,
        "s16le" => SampleFormat::S16Le,
        "s24le" => SampleFormat::S24Le,
        "s32le" => SampleFormat::S32Le,
        "f32le" => SampleFormat::F32Le,
        other => {
            return Err(JsError::new(&format!("sampleFormat must be u8, s16le, s24le, s32le or f32le, not {other:?}")))
        }
    };
    let placement = placement.as_deref().unwrap_or("start").parse::<Placement>().map_err(|e| JsError::new(&e))?;
    files::audible::pcm(samples, PcmFormat { sample_rate, channels, sample }, placement).map_err(|e| JsError::new(&e))
}

/// The platform's version of a file (Measures art. 6): `provenance` is `"declared"` or
/// `"detected"` for files without a label.
#[wasm_bindgen(js_name = propagateFile)]
pub fn propagate_file(
    bytes: &[u8],
    platform: &str,
    propagate_id: Option<String>,
    provenance: Option<String>,
    key: Option<Vec<u8>>,
    signing_key: Option<String>,
) -> Result<Vec<u8>, JsError> {
    let provenance = match provenance.as_deref() {
        None => Provenance::Unknown,
        Some("declared") => Provenance::Declared,
        Some("detected") => Provenance::Detected,
        Some(other) => {
            return Err(JsError::new(&format!("provenance must be \"declared\" or \"detected\", not {other:?}")))
        }
    };
    let id = propagate_id.unwrap_or_else(new_id);
    let signing = self::signing_key(signing_key)?;
    let sealer = sealer(key.as_deref(), signing.as_ref());
    files::propagate(bytes, platform, &id, provenance, sealer.as_ref()).map(|(b, _)| b).map_err(to_js)
}

/// Every implicit label in a file.
#[wasm_bindgen(js_name = readLabels, unchecked_return_type = "FileReport")]
pub fn read_labels(bytes: &[u8]) -> Result<JsValue, JsError> {
    let (format, labels) = files::read_labels(bytes).map_err(to_js)?;
    to_value(&files::report_json(format, &labels, None))
}

/// Labels found, verdict (one well-formed label) and the integrity codes checked with the
/// shared `key` (HMAC) and the SM2 `publicKeys` (SubjectPublicKeyInfo PEM) given.
#[wasm_bindgen(js_name = verifyFile, unchecked_return_type = "FileReport")]
pub fn verify_file(bytes: &[u8], key: Option<Vec<u8>>, public_keys: Option<Vec<String>>) -> Result<JsValue, JsError> {
    let mut keys = Keyring::new();
    if let Some(k) = &key {
        keys = keys.with_shared_key(k);
    }
    for pem in public_keys.unwrap_or_default() {
        keys = keys.with_public_key(PublicKey::from_pem(&pem).map_err(to_js)?);
    }
    let (format, labels, verdict) = files::verify(bytes, &keys).map_err(to_js)?;
    to_value(&files::report_json(format, &labels, Some((&verdict, &keys))))
}

/// The re-encoded image `encoded` (canvas `toBlob` of the same type) with the original's
/// metadata put back: EXIF (orientation set to upright, as `createImageBitmap` applied it), the
/// ICC profile byte for byte, XMP, IPTC, comments, PNG text chunks. PNG and JPEG.
#[wasm_bindgen(js_name = carryMetadata)]
pub fn carry_metadata(original: &[u8], encoded: &[u8]) -> Result<Vec<u8>, JsError> {
    files::carry_metadata(original, encoded).map_err(to_js)
}
