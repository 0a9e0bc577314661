//! The image entry (`aigc-edge/image`, feature `image`): the invisible image watermark and the
//! visible label drawn on pixels. Built as its own `.wasm` (the watermark's FFT and the label's
//! glyph bitmaps stay out of the text entry).

use aigc_edge::label::visible::{draw_label as draw, Corner};
use aigc_edge::watermark::image::{ImageWatermark, Payload};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::Clamped;

use crate::{to_js, to_value};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A found image watermark: the 64-bit payload as 16 hex digits (CRC-checked: never a wrong one) and how well the image agrees with it, 0 to 1. */
export interface ImageWatermark { payload: string; confidence: number; }
export interface DrawnLabel { x: number; y: number; width: number; height: number; textHeight: number; }
"#;

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
