//! The aigc-edge browser module: a thin wasm-bindgen shell over the core. Every error reaches
//! JavaScript as an `Error` carrying the core's message (`to_js` is the one place that maps
//! them); nothing here can trap.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::sync::Arc;

use aigc_edge::files::audible::{PcmFormat, Placement, SampleFormat};
use aigc_edge::files::{self, Provenance};
use aigc_edge::label::seal::{Keyring, PublicKey, Sealer, SigningKey};
use aigc_edge::label::visible::{draw_label as draw, Corner};
use aigc_edge::label::{ExplicitLabel, LabelPosition};
use aigc_edge::policy::DictionarySource;
use aigc_edge::watermark::image::{ImageWatermark, Payload};
use aigc_edge::{watermark, Action, Dictionary, ImplicitLabel, KeywordFormat, KeywordKind, Policy};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::Clamped;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
export type Action = "pass" | "flag" | "mask" | "block";
/** A keyword hit; `start`/`end` are UTF-16 offsets (what JS strings index by). */
export interface Hit { keyword: string; category: string | null; action: Action; start: number; end: number; }
export interface PiiHit { kind: string; start: number; end: number; }
/** The core's report form (the CLI prints the same keys); optional keys appear only when there is something to say. */
export interface CheckResult {
  flagged: boolean; action: Action; hits: Hit[];
  /** Personal information found. */
  pii?: PiiHit[];
  /** The text with hits masked and personal information redacted, when anything changed. */
  text?: string;
  /** The text exceeded `limits.max_text_bytes` and was not inspected. */
  limit_exceeded?: true;
}
export interface StreamChunk {
  /** Text that can be shown now (masked); held-back text follows in later chunks. */
  output: string; hits: Hit[]; pii?: PiiHit[];
  /** Why the stream stopped, when it did; nothing more is output. */
  blocked?: string;
  /** The carry limit was exceeded under fail-open: held text was flushed unchecked. */
  limit_exceeded?: true;
}
export interface LabelFields { Label: string; ContentProducer: string; ProduceID: string; ReservedCode1: string; ContentPropagator: string; PropagateID: string; ReservedCode2: string; }
/** What the keys given made of a reserved code: "empty", "verified: sm2" (or hmac-sm3, hmac-sha256), "does not verify", "not checked: no key for it". */
export interface CodeChecks { ReservedCode1: string; ReservedCode2: string; }
export interface FoundLabel { carrier: string; json: string; fields: LabelFields | null; problems: string[]; codes?: CodeChecks; }
export interface FileReport { format: string; labels: FoundLabel[]; verdict: "compliant" | "non-compliant" | "no label"; reasons: string[]; }
export interface Watermark { payload: string; copies: number; }
/** A found image watermark: the 64-bit payload as 16 hex digits (CRC-checked: never a wrong one) and how well the image agrees with it, 0 to 1. */
export interface ImageWatermark { payload: string; confidence: number; }
export interface SigningKeyPair { privateKey: string; publicKey: string; }
export interface DrawnLabel { x: number; y: number; width: number; height: number; textHeight: number; }
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    fn random_uuid() -> String;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buffer: &mut [u8]);
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = Object, js_name = freeze)]
    fn freeze(value: &JsValue) -> JsValue;
}

thread_local! {
    /// The result for a text with nothing found, shared and frozen: most texts are clean, and
    /// this spares them building and parsing a result.
    static CLEAN: Option<JsValue> = json_parse(&aigc_edge::Decision::default().to_json())
        .ok()
        .map(|v| {
            if let Some(hits) = js_get(&v, "hits") {
                freeze(&hits);
            }
            freeze(&v)
        });
}

fn js_get(object: &JsValue, key: &str) -> Option<JsValue> {
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = Reflect, js_name = get, catch)]
        fn reflect_get(target: &JsValue, key: &JsValue) -> Result<JsValue, JsValue>;
    }
    reflect_get(object, &JsValue::from_str(key)).ok()
}

/// A fresh `ProduceID` in the core's format ([`aigc_edge::label::produce_id`]), from the 16
/// random bytes of the browser's `crypto.randomUUID`.
fn new_id() -> String {
    let hex: Vec<u8> = random_uuid().bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
        *byte = std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()).unwrap_or(0);
    }
    aigc_edge::label::produce_id(&bytes)
}

/// The one place core errors become JavaScript errors.
fn to_js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_value(v: &Value) -> Result<JsValue, JsError> {
    json_parse(&v.to_string()).map_err(|_| JsError::new("internal: result is not JSON"))
}

fn policy(json: Option<String>) -> Result<Policy, JsError> {
    match json {
        Some(j) if !j.trim().is_empty() => Policy::from_json(&j).map_err(to_js),
        _ => Ok(Policy::default()),
    }
}

/// UTF-16 offset of a byte offset of `text`.
fn utf16_at(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or_else(|| text.encode_utf16().count(), |s| s.encode_utf16().count())
}

/// UTF-16 offsets of many byte offsets of `text` in one pass (hits can be many in a long text).
struct Utf16Map(Vec<(usize, usize)>);

impl Utf16Map {
    fn new(text: &str, mut bytes: Vec<usize>) -> Utf16Map {
        bytes.sort_unstable();
        bytes.dedup();
        let mut out = Vec::with_capacity(bytes.len());
        let (mut at, mut units) = (0usize, 0usize);
        for b in bytes {
            let upto = b.min(text.len());
            units += text.get(at..upto).map_or(0, |s| s.encode_utf16().count());
            at = at.max(upto);
            out.push((b, units));
        }
        Utf16Map(out)
    }

    fn get(&self, byte: usize) -> usize {
        match self.0.binary_search_by_key(&byte, |&(b, _)| b) {
            Ok(i) => self.0[i].1,
            Err(_) => 0,
        }
    }
}

/// A core filter from keyword text, the policy's own inline dictionaries and allow words.
fn from_keywords(
    keywords: &str,
    policy_json: Option<String>,
    allow: Option<String>,
) -> Result<aigc_edge::Filter, JsError> {
    let mut policy = policy(policy_json)?;
    let mut inline = vec![DictionarySource::inline(keywords, KeywordFormat::Auto, KeywordKind::Deny)];
    inline.extend(allow.map(|a| DictionarySource::inline(a, KeywordFormat::Auto, KeywordKind::Allow)));
    policy.dictionaries.splice(0..0, inline);
    aigc_edge::Filter::from_policy(&policy, |path| {
        Err(format!("the browser module reads no files ({path}): give the list as `text`"))
    })
    .map_err(to_js)
}

/// Compiles keyword text (and allow words) under a policy into a dictionary artifact, the same
/// bytes `aigc-edge compile` writes: load it with `Filter.fromArtifact`, serve it to the Envoy
/// filter's `dictionary_fetch`, or ship it with a page instead of the word list.
#[wasm_bindgen(js_name = compileDictionary)]
pub fn compile_dictionary(
    keywords: &str,
    policy_json: Option<String>,
    allow: Option<String>,
) -> Result<Vec<u8>, JsError> {
    Ok(from_keywords(keywords, policy_json, allow)?.dictionary().to_artifact())
}

/// A keyword filter: a dictionary and a policy (the same schema as the Envoy filter's).
#[wasm_bindgen]
pub struct Filter {
    inner: aigc_edge::Filter,
}

#[wasm_bindgen]
impl Filter {
    /// Builds a filter from keyword text (`keyword TAB category TAB action` a line) and an
    /// optional policy JSON. Dirty lines are skipped and reported in `warnings`.
    #[wasm_bindgen(constructor)]
    pub fn new(keywords: &str, policy_json: Option<String>, allow: Option<String>) -> Result<Filter, JsError> {
        Ok(Filter { inner: from_keywords(keywords, policy_json, allow)? })
    }

    /// Loads a compiled dictionary artifact (`aigc-edge compile`), refused when corrupt.
    #[wasm_bindgen(js_name = fromArtifact)]
    pub fn from_artifact(bytes: &[u8], policy_json: Option<String>) -> Result<Filter, JsError> {
        let dict = Dictionary::from_artifact(bytes).map_err(to_js)?;
        let mut policy = policy(policy_json)?;
        policy.normalize.max_gap = policy.normalize.max_gap.max(1);
        Ok(Filter { inner: aigc_edge::Filter::new(Arc::new(dict), &policy).map_err(to_js)? })
    }

    /// Distinct keywords in the dictionary.
    #[wasm_bindgen(getter, js_name = keywordCount)]
    pub fn keyword_count(&self) -> usize {
        self.inner.dictionary().len()
    }

    /// Dirty keyword lines met while building, as `file:line: problem` strings.
    #[wasm_bindgen(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.inner.dictionary().diagnostics().iter().map(|d| d.to_string()).collect()
    }

    /// Checks a whole text. A text with nothing found gets one shared, frozen result object.
    #[wasm_bindgen(unchecked_return_type = "CheckResult")]
    pub fn check(&self, text: &str) -> Result<JsValue, JsError> {
        let d = self.inner.check(text);
        if d.hits.is_empty() && d.pii.is_empty() && d.text.is_none() && !d.limit_exceeded && d.action == Action::Pass {
            if let Some(clean) = CLEAN.with(Clone::clone) {
                return Ok(clean);
            }
        }
        let offsets = d.hits.iter().flat_map(|h| [h.start, h.end]).chain(d.pii.iter().flat_map(|p| [p.start, p.end]));
        let map = Utf16Map::new(text, offsets.collect());
        json_parse(&d.to_json_with(&|byte| map.get(byte))).map_err(|_| JsError::new("internal: result is not JSON"))
    }

    /// A stream for text arriving piece by piece (tokens of a fetch SSE stream): keywords split
    /// across pieces are still found; only undecided text is held back.
    pub fn stream(&self) -> FilterStream {
        FilterStream { stream: Some(self.inner.stream()), chunks: Vec::new(), written: 0, written16: 0 }
    }
}

/// A streaming filter; see [`Filter::stream`].
#[wasm_bindgen]
pub struct FilterStream {
    stream: Option<aigc_edge::Stream>,
    /// `(byte start, UTF-16 start, text)` of pieces that may still hold an undecided hit.
    chunks: Vec<(usize, usize, String)>,
    written: usize,
    written16: usize,
}

impl FilterStream {
    fn utf16(&self, byte: usize) -> usize {
        match self.chunks.iter().rev().find(|(start, _, _)| *start <= byte) {
            Some((start, start16, text)) => start16 + utf16_at(text, byte - start),
            None => 0,
        }
    }

    fn chunk_json(&mut self, chunk: aigc_edge::Chunk) -> Result<JsValue, JsError> {
        let json = chunk.to_json_with(&|byte| self.utf16(byte));
        // Pieces wholly before what is still held back can no longer hold an undecided hit.
        let held = self.stream.as_ref().map_or(0, aigc_edge::Stream::carry);
        let settled = self.written.saturating_sub(held);
        while self.chunks.len() > 1 && self.chunks.get(1).is_some_and(|c| c.0 <= settled) {
            self.chunks.remove(0);
        }
        json_parse(&json).map_err(|_| JsError::new("internal: result is not JSON"))
    }
}

#[wasm_bindgen]
impl FilterStream {
    /// Pushes a piece of text; returns what can be shown now.
    #[wasm_bindgen(unchecked_return_type = "StreamChunk")]
    pub fn write(&mut self, text: &str) -> Result<JsValue, JsError> {
        let stream = self.stream.as_mut().ok_or_else(|| JsError::new("stream already finished"))?;
        let chunk = stream.write(text.as_bytes()).map_err(to_js)?;
        self.chunks.push((self.written, self.written16, text.to_string()));
        self.written += text.len();
        self.written16 += text.encode_utf16().count();
        self.chunk_json(chunk)
    }

    /// Ends the stream; returns the rest.
    #[wasm_bindgen(unchecked_return_type = "StreamChunk")]
    pub fn finish(&mut self) -> Result<JsValue, JsError> {
        let stream = self.stream.take().ok_or_else(|| JsError::new("stream already finished"))?;
        let chunk = stream.finish();
        self.chunk_json(chunk)
    }
}

/// The explicit text label at the start or end of generated text (GB 45438). The label must
/// hold 人工智能/AI and 生成/合成.
#[wasm_bindgen(js_name = labelText)]
pub fn label_text(text: &str, label: Option<String>, position: Option<String>) -> Result<String, JsError> {
    let position = match position.as_deref().unwrap_or("start") {
        "start" => LabelPosition::Start,
        "end" => LabelPosition::End,
        other => return Err(JsError::new(&format!("position must be \"start\" or \"end\", not {other:?}"))),
    };
    let label = ExplicitLabel::new(label.as_deref().unwrap_or(ExplicitLabel::DEFAULT_TEXT), position).map_err(to_js)?;
    Ok(label.apply(text))
}

/// The implicit label JSON (`{"AIGC":{…}}`) for generated content; a random ProduceID when
/// none is given.
#[wasm_bindgen(js_name = implicitLabel)]
pub fn implicit_label(producer: &str, produce_id: Option<String>) -> Result<String, JsError> {
    let id = produce_id.unwrap_or_else(new_id);
    Ok(ImplicitLabel::generated(producer, &id).map_err(to_js)?.to_json())
}

/// Embeds `payload` (the ProduceID) as an invisible, keyed watermark.
#[wasm_bindgen(js_name = watermarkText)]
pub fn watermark_text(text: &str, payload: &str, key: &[u8]) -> Result<String, JsError> {
    watermark::embed(text, payload, key).map_err(to_js)
}

/// The watermark payload, or `null` when none verifies under `key`.
#[wasm_bindgen(js_name = detectWatermark, unchecked_return_type = "Watermark | null")]
pub fn detect_watermark(text: &str, key: &[u8]) -> Result<JsValue, JsError> {
    match watermark::detect(text, key) {
        Some(d) => to_value(&json!({"payload": d.payload, "copies": d.copies})),
        None => Ok(JsValue::NULL),
    }
}

#[wasm_bindgen]
extern "C" {
    /// Canvas `ImageData`, or any `{data: Uint8ClampedArray, width, height}` of RGBA pixels.
    #[wasm_bindgen(typescript_type = "ImageData")]
    pub type ImageData;
    #[wasm_bindgen(method, getter)]
    fn width(this: &ImageData) -> u32;
    #[wasm_bindgen(method, getter)]
    fn height(this: &ImageData) -> u32;
    #[wasm_bindgen(method, getter, js_name = data)]
    fn pixels(this: &ImageData) -> Clamped<Vec<u8>>;
    #[wasm_bindgen(method, getter, js_name = data)]
    fn pixel_array(this: &ImageData) -> PixelArray;
    type PixelArray;
    #[wasm_bindgen(method)]
    fn set(this: &PixelArray, source: Clamped<&[u8]>);
}

/// Hides the 64-bit `payload` (16 hex digits; [`imageWatermarkPayload`] derives it from a
/// ProduceID) in the luminance of `image`, in place, under `key`. It survives JPEG and WebP
/// recompression, resizing, crops and brightness or contrast changes; PSNR ≥ 40 dB. The shorter
/// side must be at least 96 px.
#[wasm_bindgen(js_name = watermarkImage)]
pub fn watermark_image(image: &ImageData, key: &[u8], payload: &str) -> Result<(), JsError> {
    let payload = Payload::from_hex(payload).map_err(to_js)?;
    let mut pixels = image.pixels().0;
    ImageWatermark::new(key).embed(&mut pixels, image.width(), image.height(), payload).map_err(to_js)?;
    image.pixel_array().set(Clamped(&pixels));
    Ok(())
}

/// The image watermark under `key` in `image`, or `null`: never a wrong payload.
#[wasm_bindgen(js_name = detectImageWatermark, unchecked_return_type = "ImageWatermark | null")]
pub fn detect_image_watermark(image: &ImageData, key: &[u8]) -> Result<JsValue, JsError> {
    let pixels = image.pixels().0;
    match ImageWatermark::new(key).detect(&pixels, image.width(), image.height()).map_err(to_js)? {
        Some(found) => to_value(&json!({"payload": found.payload.to_hex(), "confidence": found.confidence})),
        None => Ok(JsValue::NULL),
    }
}

/// The default image watermark payload for a ProduceID (the first 64 bits of its SHA-256), so a
/// found mark leads back to the label and the audit record.
#[wasm_bindgen(js_name = imageWatermarkPayload)]
pub fn image_watermark_payload(produce_id: &str) -> String {
    Payload::from_produce_id(produce_id).to_hex()
}

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

/// Draws the visible label on RGBA pixels, at least 5% of the shortest side high, in place:
/// pass canvas `ImageData.data` as `new Uint8Array(imageData.data.buffer)`. `corner`:
/// `bottom-right` (default), `bottom-left`, `top-left`, `top-right`.
#[wasm_bindgen(js_name = drawLabel, unchecked_return_type = "DrawnLabel")]
pub fn draw_label(
    pixels: &mut [u8],
    width: u32,
    height: u32,
    text: Option<String>,
    corner: Option<String>,
) -> Result<JsValue, JsError> {
    let corner: Corner = corner.as_deref().unwrap_or("bottom-right").parse().map_err(to_js)?;
    let d = draw(pixels, width, height, text.as_deref().unwrap_or("AI生成"), corner).map_err(to_js)?;
    to_value(&json!({"x": d.x, "y": d.y, "width": d.width, "height": d.height, "textHeight": d.text_height}))
}

/// The re-encoded image `encoded` (canvas `toBlob` of the same type) with the original's
/// metadata put back: EXIF (orientation set to upright, as `createImageBitmap` applied it), the
/// ICC profile byte for byte, XMP, IPTC, comments, PNG text chunks. PNG and JPEG.
#[wasm_bindgen(js_name = carryMetadata)]
pub fn carry_metadata(original: &[u8], encoded: &[u8]) -> Result<Vec<u8>, JsError> {
    files::carry_metadata(original, encoded).map_err(to_js)
}

/// True when `action` would change or stop the text (`mask` or `block`).
#[wasm_bindgen(js_name = isEnforced)]
pub fn is_enforced(action: &str) -> bool {
    action.parse::<Action>().is_ok_and(|a| a >= Action::Mask)
}
