//! The explicit (visible) image label of GB 45438: text such as "AI生成" drawn in a corner of
//! RGBA pixels, at least 5% of the shortest side high, white on a darkened backdrop so it reads
//! on light and dark images alike. Glyphs come from an embedded subset of Noto Sans CJK SC Bold.

use core::fmt;

use super::glyphs::{GLYPHS, ROWS};

/// Where the label goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Corner {
    /// Top left.
    TopLeft,
    /// Top right.
    TopRight,
    /// Bottom left.
    BottomLeft,
    /// Bottom right.
    #[default]
    BottomRight,
}

impl core::str::FromStr for Corner {
    type Err = DrawError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "top-left" => Corner::TopLeft,
            "top-right" => Corner::TopRight,
            "bottom-left" => Corner::BottomLeft,
            "bottom-right" => Corner::BottomRight,
            _ => {
                return Err(DrawError(format!("unknown corner {s:?} (top-left, top-right, bottom-left, bottom-right)")))
            }
        })
    }
}

/// The label could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawError(String);

impl fmt::Display for DrawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DrawError {}

/// Where the label was drawn, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drawn {
    /// Left edge of the backdrop.
    pub x: u32,
    /// Top edge of the backdrop.
    pub y: u32,
    /// Backdrop width.
    pub width: u32,
    /// Backdrop height.
    pub height: u32,
    /// Height of the text itself (at least 5% of the shortest side).
    pub text_height: u32,
}

/// The characters the embedded glyphs cover.
pub fn supported_chars() -> impl Iterator<Item = char> {
    GLYPHS.iter().map(|g| g.0)
}

fn glyph(c: char) -> Option<(usize, &'static [u8])> {
    GLYPHS.iter().find(|g| g.0 == c).map(|g| (g.1, g.2))
}

/// Alpha (0–255) of glyph pixel `(x, y)`, 0 outside.
fn coverage(width: usize, bits: &[u8], x: isize, y: isize) -> f32 {
    if x < 0 || y < 0 || x as usize >= width || y as usize >= ROWS {
        return 0.0;
    }
    let i = y as usize * width + x as usize;
    let byte = bits.get(i / 2).copied().unwrap_or(0);
    let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0F };
    f32::from(nibble) * 17.0
}

/// Bilinear sample of a glyph at fractional position.
fn sample(width: usize, bits: &[u8], fx: f32, fy: f32) -> f32 {
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - x0, fy - y0);
    let (x0, y0) = (x0 as isize, y0 as isize);
    let a = coverage(width, bits, x0, y0) * (1.0 - tx) + coverage(width, bits, x0 + 1, y0) * tx;
    let b = coverage(width, bits, x0, y0 + 1) * (1.0 - tx) + coverage(width, bits, x0 + 1, y0 + 1) * tx;
    a * (1.0 - ty) + b * ty
}

fn blend(px: &mut [u8], rgb: [f32; 3], alpha: f32) {
    for (c, v) in px.iter_mut().take(3).zip(rgb) {
        *c = (f32::from(*c) * (1.0 - alpha) + v * alpha).round().clamp(0.0, 255.0) as u8;
    }
    if let Some(a) = px.get_mut(3) {
        *a = a.saturating_add(((255.0 - f32::from(*a)) * alpha) as u8);
    }
}

/// Draws `text` in `corner` of an RGBA image (`width * height * 4` bytes, row-major).
///
/// ```
/// use aigc_edge::label::visible::{draw_label, Corner};
/// let (w, h) = (400u32, 300u32);
/// let mut pixels = vec![255u8; (w * h * 4) as usize];
/// let drawn = draw_label(&mut pixels, w, h, "AI生成", Corner::BottomRight).unwrap();
/// assert!(drawn.text_height >= 15); // 5% of 300
/// assert!(draw_label(&mut pixels, w, h, "AI生成❤", Corner::TopLeft).is_err());
/// ```
pub fn draw_label(rgba: &mut [u8], width: u32, height: u32, text: &str, corner: Corner) -> Result<Drawn, DrawError> {
    let (w, h) = (width as usize, height as usize);
    if w.checked_mul(h).and_then(|n| n.checked_mul(4)) != Some(rgba.len()) {
        return Err(DrawError(format!("pixel buffer of {} bytes is not {width}x{height} RGBA", rgba.len())));
    }
    let missing: String = text.chars().filter(|&c| glyph(c).is_none()).collect();
    if !missing.is_empty() || text.is_empty() {
        let have: String = supported_chars().collect();
        return Err(DrawError(format!("no glyph for {missing:?} (the embedded font covers {have:?})")));
    }
    // GB 45438: text height at least 5% of the shortest side.
    let text_h = ((w.min(h) as f32 * 0.05).ceil() as usize).max(12);
    let scale = text_h as f32 / ROWS as f32;
    let glyphs: Vec<(usize, &[u8])> = text.chars().filter_map(glyph).collect();
    let text_w: usize = glyphs.iter().map(|(gw, _)| (*gw as f32 * scale).ceil() as usize).sum();
    let pad = (text_h as f32 * 0.35).ceil() as usize;
    let (box_w, box_h) = (text_w + 2 * pad, text_h + 2 * pad);
    let margin = pad;
    if box_w + 2 * margin > w || box_h + 2 * margin > h {
        return Err(DrawError(format!(
            "a {box_w}x{box_h} label does not fit a {width}x{height} image at 5% of its shortest side"
        )));
    }
    let x = match corner {
        Corner::TopLeft | Corner::BottomLeft => margin,
        _ => w - margin - box_w,
    };
    let y = match corner {
        Corner::TopLeft | Corner::TopRight => margin,
        _ => h - margin - box_h,
    };
    for row in y..y + box_h {
        for col in x..x + box_w {
            let i = (row * w + col) * 4;
            if let Some(px) = rgba.get_mut(i..i + 4) {
                blend(px, [0.0, 0.0, 0.0], 0.6);
            }
        }
    }
    let mut pen = x + pad;
    for (gw, bits) in glyphs {
        let dw = (gw as f32 * scale).ceil() as usize;
        for dy in 0..text_h {
            let fy = (dy as f32 + 0.5) / scale - 0.5;
            for dx in 0..dw {
                let fx = (dx as f32 + 0.5) / scale - 0.5;
                let alpha = sample(gw, bits, fx, fy) / 255.0;
                if alpha <= 0.0 {
                    continue;
                }
                let i = ((y + pad + dy) * w + pen + dx) * 4;
                if let Some(px) = rgba.get_mut(i..i + 4) {
                    blend(px, [255.0, 255.0, 255.0], alpha);
                }
            }
        }
        pen += dw;
    }
    Ok(Drawn { x: x as u32, y: y as u32, width: box_w as u32, height: box_h as u32, text_height: text_h as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legible_on_light_and_dark_and_nothing_else_changes() {
        for (w, h, shade) in [(640u32, 480u32, 255u8), (640, 480, 0), (3840, 2160, 128), (100, 1000, 200)] {
            let before = vec![shade; (w * h * 4) as usize];
            let mut px = before.clone();
            for corner in [Corner::TopLeft, Corner::TopRight, Corner::BottomLeft, Corner::BottomRight] {
                px.copy_from_slice(&before);
                let d = draw_label(&mut px, w, h, "AI生成", corner).unwrap();
                assert!(d.text_height as f32 >= 0.05 * w.min(h) as f32, "{d:?}");
                let inside = |x: u32, y: u32| x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height;
                let (mut bright, mut dark) = (0, 0);
                for y in 0..h {
                    for x in 0..w {
                        let i = ((y * w + x) * 4) as usize;
                        if inside(x, y) {
                            let luma = px[i];
                            if luma > 200 {
                                bright += 1
                            }
                            if luma < 110 {
                                dark += 1
                            }
                        } else {
                            assert_eq!(&px[i..i + 4], &before[i..i + 4], "pixel outside the label changed");
                        }
                    }
                }
                // White text on a darkened backdrop, whatever the image.
                assert!(bright > 0 && dark > 0, "{w}x{h} shade {shade} {corner:?}: {bright} bright, {dark} dark");
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut px = vec![0u8; 10 * 10 * 4];
        assert!(draw_label(&mut px, 10, 10, "AI生成", Corner::TopLeft)
            .unwrap_err()
            .to_string()
            .contains("does not fit"));
        assert!(draw_label(&mut px, 11, 10, "AI", Corner::TopLeft).unwrap_err().to_string().contains("not 11x10"));
        assert!(draw_label(&mut px, 10, 10, "", Corner::TopLeft).is_err());
        assert!("middle".parse::<Corner>().is_err());
    }
}
