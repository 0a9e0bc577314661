//! Pixels of a PNG, JPEG or WebP: decode, turn upright, paint the visible label and the invisible
//! watermark, encode in the same format and sample type, and carry the original's metadata over
//! (the core paints, marks and carries; the `image` crate is only the codec). One shell for the
//! CLI and the Envoy filter's visible build.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::Cursor;

use aigc_edge::label::visible::{draw_label, Corner};
use aigc_edge::watermark::image::{Found, ImageWatermark, Payload};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, GenericImage, GenericImageView, ImageDecoder, ImageFormat, ImageReader};

/// What [`paint`] does to an image's pixels.
#[derive(Clone, Copy, Debug)]
pub struct Paint<'a> {
    /// The visible label: text and corner.
    pub visible: Option<(&'a str, Corner)>,
    /// The invisible watermark and its payload (applied first, so the visible label sits on top).
    pub watermark: Option<(&'a ImageWatermark, Payload)>,
    /// The quality a JPEG is encoded again at (a WebP is encoded losslessly, the encoder this
    /// codec has; a PNG is lossless).
    pub quality: u8,
}

/// `bytes` with `text` drawn in `corner` (see [`paint`]).
pub fn draw_visible(bytes: &[u8], text: &str, corner: Corner, quality: u8) -> Result<Vec<u8>, String> {
    paint(bytes, &Paint { visible: Some((text, corner)), watermark: None, quality })
}

/// `bytes` painted as the viewer sees the image (EXIF orientation applied; the pixels come out
/// upright and the orientation tag says so), encoded in the same format and sample type with the
/// original's metadata. Pixels the paint leaves alone keep their values and sample depth.
pub fn paint(bytes: &[u8], paint: &Paint<'_>) -> Result<Vec<u8>, String> {
    let (format, mut img) = decode(bytes)?;
    // The core paints on 8-bit RGBA; only the pixels it changed are written back, so a 16-bit or
    // grey image keeps its type and every other sample.
    let before = img.to_rgba8();
    let mut after = before.clone();
    let (width, height) = img.dimensions();
    if let Some((mark, payload)) = paint.watermark {
        mark.embed(&mut after, width, height, payload).map_err(|e| e.to_string())?;
    }
    if let Some((text, corner)) = paint.visible {
        draw_label(&mut after, width, height, text, corner).map_err(|e| e.to_string())?;
    }
    for (x, y, pixel) in after.enumerate_pixels() {
        if before.get_pixel(x, y) != pixel {
            img.put_pixel(x, y, *pixel);
        }
    }
    let quality = paint.quality;
    let mut encoded = Vec::new();
    if format == ImageFormat::Jpeg {
        // JPEG has no alpha: grey stays grey, anything else is RGB.
        let img = if img.color().has_color() {
            DynamicImage::ImageRgb8(img.to_rgb8())
        } else {
            DynamicImage::ImageLuma8(img.to_luma8())
        };
        img.write_with_encoder(JpegEncoder::new_with_quality(&mut encoded, quality)).map_err(|e| e.to_string())?;
    } else if format == ImageFormat::WebP {
        let img = if img.color().has_alpha() {
            DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            DynamicImage::ImageRgb8(img.to_rgb8())
        };
        img.write_with_encoder(WebPEncoder::new_lossless(&mut encoded)).map_err(|e| e.to_string())?;
    } else {
        img.write_with_encoder(PngEncoder::new(&mut encoded)).map_err(|e| e.to_string())?;
    }
    aigc_edge::files::carry_metadata(bytes, &encoded).map_err(|e| e.to_string())
}

/// The watermark under `mark` in a PNG, JPEG or WebP, as the viewer sees it (EXIF orientation
/// applied).
pub fn detect_watermark(bytes: &[u8], mark: &ImageWatermark) -> Result<Option<Found>, String> {
    let (_, img) = decode(bytes)?;
    let (width, height) = img.dimensions();
    mark.detect(&img.to_rgba8(), width, height).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8]) -> Result<(ImageFormat, DynamicImage), String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) {
        return Err("pixels are painted and read in PNG, JPEG and WebP".into());
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format).into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    Ok((format, img))
}
