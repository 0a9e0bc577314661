//! The visible label on a PNG, JPEG or WebP: decode, turn upright, draw, encode in the same format
//! and sample type, and carry the original's metadata over (the core draws and carries; the
//! `image` crate is only the codec). One shell for the CLI and the Envoy filter's visible build.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::Cursor;

use aigc_edge::label::visible::{draw_label, Corner};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, GenericImage, GenericImageView, ImageDecoder, ImageFormat, ImageReader};

/// `bytes` with `text` drawn in `corner` as the viewer sees the image (EXIF orientation applied;
/// the pixels come out upright and the orientation tag says so). Pixels outside the label keep
/// their values and sample depth; a JPEG is encoded again at `quality`, a WebP losslessly (the
/// encoder this codec has).
pub fn draw_visible(bytes: &[u8], text: &str, corner: Corner, quality: u8) -> Result<Vec<u8>, String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) {
        return Err("the visible label is drawn on PNG, JPEG and WebP".into());
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format).into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);

    // The core draws on 8-bit RGBA; only the pixels it changed are written back, so a 16-bit or
    // grey image keeps its type and every other sample.
    let before = img.to_rgba8();
    let mut after = before.clone();
    let (width, height) = img.dimensions();
    draw_label(&mut after, width, height, text, corner).map_err(|e| e.to_string())?;
    for (x, y, pixel) in after.enumerate_pixels() {
        if before.get_pixel(x, y) != pixel {
            img.put_pixel(x, y, *pixel);
        }
    }

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
