//! The text entry (the package's main module, feature `text`): keyword filtering of whole texts
//! and streams, explicit and implicit text labels, the text watermark.

use std::sync::Arc;

use aigc_edge::label::{ExplicitLabel, LabelPosition};
use aigc_edge::policy::DictionarySource;
use aigc_edge::{watermark, Action, Dictionary, ImplicitLabel, KeywordFormat, KeywordKind, Policy};
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::{json_parse, new_id, to_js, to_value};

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
export interface Watermark { payload: string; copies: number; }
"#;

#[wasm_bindgen]
extern "C" {
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
        let chunk = stream.write_str(text).map_err(to_js)?;
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

/// True when `action` would change or stop the text (`mask` or `block`).
#[wasm_bindgen(js_name = isEnforced)]
pub fn is_enforced(action: &str) -> bool {
    action.parse::<Action>().is_ok_and(|a| a >= Action::Mask)
}
