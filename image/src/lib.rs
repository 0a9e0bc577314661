//! Pixels of a PNG, JPEG or WebP: decode, turn upright, paint the visible label and the invisible
//! watermark, encode in the same format and sample type, and carry the original's metadata over
//! (the core paints, marks and carries; the `image` crate is only the codec). One shell for the
//! CLI and the Envoy filter's visible build.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::Cursor;

use aigc_edge::label::visible::{draw_label, Corner};
use aigc_edge::watermark::image::{Found, ImageWatermark, ImageWatermarkError, Payload};
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

/// What [`paint`] made: the image, and what became of the watermark it was asked for.
#[derive(Clone, Debug)]
pub struct Painted {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// The watermark's fate.
    pub watermark: Watermarked,
}

/// What became of the watermark [`Paint::watermark`] asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watermarked {
    /// None was asked for.
    NotAsked,
    /// The image carries it.
    Embedded,
    /// The image cannot carry one (too small or too large, the core's error says which); the
    /// rest of the paint was done without it, in the same decode.
    Skipped(ImageWatermarkError),
}

/// `bytes` with `text` drawn in `corner` (see [`paint`]).
pub fn draw_visible(bytes: &[u8], text: &str, corner: Corner, quality: u8) -> Result<Vec<u8>, String> {
    paint(bytes, &Paint { visible: Some((text, corner)), watermark: None, quality }).map(|p| p.bytes)
}

/// `bytes` painted as the viewer sees the image (EXIF orientation applied; the pixels come out
/// upright and the orientation tag says so), encoded in the same format and sample type with the
/// original's metadata. Pixels the paint leaves alone keep their values and sample depth. A
/// watermark the image cannot carry is skipped and said so ([`Watermarked::Skipped`]); the
/// caller decides whether that is an error.
pub fn paint(bytes: &[u8], paint: &Paint<'_>) -> Result<Painted, String> {
    let (format, mut img) = decode(bytes)?;
    // The core paints on 8-bit RGBA; only the pixels it changed are written back, so a 16-bit or
    // grey image keeps its type and every other sample.
    let before = img.to_rgba8();
    let mut after = before.clone();
    let (width, height) = img.dimensions();
    let watermark = match paint.watermark {
        None => Watermarked::NotAsked,
        Some((mark, payload)) => match mark.embed(&mut after, width, height, payload) {
            Ok(()) => Watermarked::Embedded,
            Err(e @ (ImageWatermarkError::TooSmall { .. } | ImageWatermarkError::TooLarge { .. })) => {
                Watermarked::Skipped(e)
            }
            Err(e) => return Err(e.to_string()),
        },
    };
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
    let bytes = aigc_edge::files::carry_metadata(bytes, &encoded).map_err(|e| e.to_string())?;
    Ok(Painted { bytes, watermark })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 128, 255])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(img).write_with_encoder(PngEncoder::new(&mut out)).unwrap();
        out
    }

    #[test]
    fn a_watermark_the_image_cannot_carry_is_skipped_not_fatal() {
        let mark = ImageWatermark::new(b"a key of sixteen bytes");
        let payload = Payload::from_produce_id("id-1");
        let cases = [(64, 64, false), (200, 160, true)];
        for (width, height, carries) in cases {
            let bytes = png(width, height);
            let paint = Paint {
                visible: Some(("AI生成", Corner::BottomRight)),
                watermark: Some((&mark, payload)),
                quality: 90,
            };
            let painted = super::paint(&bytes, &paint).unwrap();
            assert_ne!(painted.bytes, bytes, "{width}x{height}: the visible label is drawn either way");
            match painted.watermark {
                Watermarked::Embedded => assert!(carries, "{width}x{height}"),
                Watermarked::Skipped(ImageWatermarkError::TooSmall { .. }) => assert!(!carries, "{width}x{height}"),
                other => panic!("{width}x{height}: {other:?}"),
            }
        }
        let bare = Paint { visible: None, watermark: None, quality: 90 };
        assert_eq!(super::paint(&png(64, 64), &bare).unwrap().watermark, Watermarked::NotAsked);
    }
}
