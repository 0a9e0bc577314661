//! An invisible, keyed image watermark: a 64-bit [`Payload`] hidden in the luminance of RGBA
//! pixels, found again after what platforms do to images — JPEG and WebP recompression, resizing,
//! cropping, brightness and contrast changes, screenshots.
//!
//! ```
//! use aigc_edge::watermark::image::{ImageWatermark, Payload};
//! # let (width, height) = (256, 256);
//! # let mut rgba: Vec<u8> = (0..width * height).flat_map(|i| {
//! #     let (x, y) = (i % width, i / width);
//! #     let v = (128.0 + 60.0 * ((x as f32 / 9.0).sin() + (y as f32 / 13.0).cos())) as u8;
//! #     [v, v / 2 + 40, 255 - v, 255]
//! # }).collect();
//! let mark = ImageWatermark::new(b"the platform's key");
//! let payload = Payload::from_produce_id("aigc-0123456789abcdef0123456789abcdef");
//! mark.embed(&mut rgba, width, height, payload).unwrap();
//!
//! let found = mark.detect(&rgba, width, height).unwrap().unwrap();
//! assert_eq!(found.payload, payload);
//! assert_eq!(ImageWatermark::new(b"another key").detect(&rgba, width, height).unwrap(), None);
//! ```
//!
//! # How it works
//!
//! The mark is a tile of 16 × 16 *chips*, repeated over the whole image. A chip is a smooth bump
//! (a sine window, no edges to see) of a few pixels — at least [`MIN_CHIP_PX`], and 1/128 of the
//! shorter side on larger images, so it lives in the low frequencies that JPEG and resizing keep.
//! The key chooses which 56 chips are the *sync* pattern and the sign of every chip; the other 200
//! carry the payload and its CRC-16 (172 coded bits, the first 28 twice), coded with the rate-1/2, constraint-length-7 convolutional
//! code (generators 133 and 171 octal) and decoded with soft-decision Viterbi. The change is added
//! equally to R, G and B (so grey stays grey) and scaled by the local contrast (texture hides it;
//! flat sky gets little). The embedder is *informed*: it runs the detector's own measurement on the
//! unmarked image, sees how much of each chip the photo itself already contributes, and gives each
//! chip what it takes to reach a common margin (counting on 70% of the photo's share and taking
//! at least half of the margin from the mark, so a crop or a resize does not undo it). The whole change is held to a mean squared error of [`PSNR_DB`], and capped where
//! the image is flat, at what would take SSIM there below about 0.985; the budget the cap frees
//! goes to textured areas.
//!
//! Detection needs neither the original nor its size. It takes the luminance's high-pass residual,
//! tries the tile period the embedder would have chosen for an image of this size (right unless
//! it was resized), then the periods the residual's autocorrelation proposes (scored over all
//! their multiples, so the fundamental wins). Each candidate is read at the scale the image was
//! marked at: the image is resampled (Keys' cubic) until the candidate tile is as many pixels as
//! a tile the embedder measured, and high-passed again there, so a halved or shrunk screenshot is
//! read in the band the mark was put in and not in the coarser band the resize moved the photo's
//! texture into. At each candidate the whole image is folded onto one tile, the fold
//! cross-correlated with the sync pattern (FFT) to find the tile's offset, and the payload chips
//! read at the best offset, decoded, and checked; the first candidate whose payload passes every
//! check is the answer.
//!
//! # Never a wrong payload
//!
//! A payload is reported only when the sync peak stands [`SYNC_Z`] standard deviations above the
//! correlation surface, the Viterbi output passes its CRC-16 and the decoded chips agree with the
//! re-encoded codeword. On an unmarked image (or one marked under another key) the surface is
//! noise: detection tests at most 5 candidate periods × (7 refinements + 4 finer ones) × 4,096
//! offsets ≈ 2.3 × 10⁵ positions, so a false sync peak has probability ≤ 2.3 × 10⁵ × Q(5.5)
//! ≈ 4.3 × 10⁻³ per image (Q the Gaussian tail; a union bound), and it must then pass the CRC
//! (2⁻¹⁶): ≤ 7 × 10⁻⁸ per image.
//!
//! # What removes it
//!
//! It survives benign processing, not a remover who knows the scheme: a periodic mark can be
//! estimated by averaging the image's tiles and subtracted. Rotation is not searched (a rotated
//! image is not found). Images whose shorter side is below [`MIN_SIDE`] pixels are refused.

use core::fmt;

use rustfft::algorithm::Radix4;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftDirection};

use super::{crc16, keystream};

/// Chips along a side of the tile.
const CHIPS: usize = 16;
const TILE_CHIPS: usize = CHIPS * CHIPS;
const SYNC_CHIPS: usize = 56;
const PAYLOAD_BITS: usize = 64;
const CRC_BITS: usize = 16;
/// Zero bits that bring the encoder back to state 0 (constraint length 7).
const TAIL_BITS: usize = 6;
const INPUT_BITS: usize = PAYLOAD_BITS + CRC_BITS + TAIL_BITS;
const CODED_BITS: usize = 2 * INPUT_BITS;
/// Chips that carry coded bits: every coded bit has one, the first ones a second.
const DATA_CHIPS: usize = TILE_CHIPS - SYNC_CHIPS;
const _: () = assert!(DATA_CHIPS >= CODED_BITS && DATA_CHIPS <= 2 * CODED_BITS);
const GENERATORS: [u32; 2] = [0o133, 0o171];
/// The fold's resolution: bins along a side of the tile, four per chip.
const BINS: usize = 64;
const BINS_PER_CHIP: usize = BINS / CHIPS;

/// The smallest chip, in pixels of the marked image.
pub const MIN_CHIP_PX: f32 = 4.0;
/// Images with a shorter side below this are refused by [`ImageWatermark::embed`] and never
/// found by [`ImageWatermark::detect`].
pub const MIN_SIDE: u32 = 96;
/// The most pixels [`ImageWatermark::embed`] and [`ImageWatermark::detect`] take (4096 × 4096):
/// the work buffers are about 40 bytes a pixel, and a hostile upstream must not make a gateway
/// VM allocate gigabytes.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// The peak signal-to-noise ratio of the marked image against the original.
pub const PSNR_DB: f32 = 40.3;
/// How far above the correlation surface a sync peak must stand, in standard deviations.
pub const SYNC_Z: f32 = 5.5;
/// The least agreement between the decoded chips and the re-encoded codeword.
const MIN_AGREEMENT: f32 = 0.2;

/// SSIM's contrast constant, (0.03 × 255)², and the share of `√(2σ² + C2)` (σ the contrast in
/// SSIM's 7 × 7 window) a change may reach: in flat areas SSIM notices what PSNR does not, so
/// the change there is capped and its budget goes to textured areas.
const SSIM_C2: f32 = 58.5225;
const SSIM_CAP: f32 = 0.15;
/// Informed embedding: every chip is given what it takes to reach a common margin against the
/// host's own share of it, but at least this share of the margin (a crop or a resize changes
/// the host's share; the mark must not lean on it).
const LEAST_SHARE: f32 = 0.5;
/// And it counts on only this share of the host's part: a crop or a resize changes that part, so
/// what is spent cancelling all of it is partly lost, while the mark's own amplitude survives.
/// Misses on the six hardest photos of the suite (coins, grass, gravel, cat, chelsea, astronaut;
/// 3 payloads; crops of 80% and 60%, resize 50%, the screenshot chain), with the 2 px texture
/// radius: 16 at 1.0, 13 at 0.5, 12 at 0.7.
const HOST_SHARE: f32 = 0.7;
/// The local contrast that gets the mean strength, and the mask's bounds around it.
const MASK_REFERENCE: f32 = 10.0;
const MASK_RANGE: (f32, f32) = (0.3, 2.0);
/// The residual, divided by its local mean magnitude, is clipped at this, so strong edges do not
/// drown the mark.
const RESIDUAL_CLIP: f32 = 3.0;
/// The neighbourhood (in working pixels) whose mean residual magnitude each pixel is divided by:
/// about a chip, so a fine texture next to a flat patch is evened out chip by chip. Misses on the
/// six hardest photos (as for [`HOST_SHARE`], at a share of 1.0): radius 6: 30, 4: 21, 3: 22,
/// 2: 16, 1: 25.
const TEXTURE_RADIUS: usize = 2;
const TEXTURE_FLOOR: f32 = 1.0;
/// The detector works at a resolution whose shorter side is below this (whole-pixel averaging).
const WORK_SIDE: usize = 400;
/// The autocorrelation is taken over a centred window of at most this many working pixels.
const AUTOCORRELATION_SIDE: usize = 512;
/// Tile periods the autocorrelation proposes, and the refinements tried around each.
const PERIOD_CANDIDATES: usize = 4;
/// The spectral neighbourhood a peak is measured against, and the cap on its ratio.
const SPECTRUM_RADIUS: usize = 4;
const SPECTRUM_CAP: f32 = 8.0;
const PERIOD_STEPS: [f32; 7] = [-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75];
const FINE_STEPS: [f32; 2] = [0.125, 0.0625];
/// The tile period, in working pixels, an image marked at its own size measures: each candidate
/// period is read with the image rescaled to it.
const CANONICAL_PERIOD: f32 = CHIPS as f32 * MIN_CHIP_PX;
/// Candidates within this share of the canonical period are read as they are.
const RESCALE_TOLERANCE: f32 = 0.1;
/// The largest enlargement tried (a small photo halved is read at 2×), and the most pixels a
/// rescaled working image may have. A photo marked at 512 px or more keeps its period's share
/// of the side through a resize (the chips grow with the image), so its expected period is
/// right; the enlargements that matter are of photos marked below that (4 px chips) and then
/// shrunk, whose working images are small (a 512 × 1024 photo halved and read at 2× is this
/// bound). Past it a candidate is read unscaled: a large image whose autocorrelation proposes a
/// short period is never enlarged into buffers of many megabytes.
const MAX_RESCALE: f32 = 2.5;
const MAX_RESCALED_PIXELS: usize = 1 << 19;

/// The 64 bits a watermark carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Payload(pub u64);

impl Payload {
    /// The default payload: the first 64 bits of the SHA-256 of a `ProduceID`, so a found mark
    /// leads back to the label and the audit record holding that ID.
    pub fn from_produce_id(produce_id: &str) -> Payload {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(produce_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Payload(u64::from_be_bytes(first))
    }

    /// Sixteen lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Parses sixteen hex digits.
    pub fn from_hex(hex: &str) -> Result<Payload, ImageWatermarkError> {
        if hex.len() != 16 {
            return Err(ImageWatermarkError::Payload(hex.to_string()));
        }
        u64::from_str_radix(hex, 16).map(Payload).map_err(|_| ImageWatermarkError::Payload(hex.to_string()))
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A watermark that was found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Found {
    /// The payload, CRC-checked.
    pub payload: Payload,
    /// How well the image's chips agree with the payload's codeword, 0 to 1 (an unattacked mark
    /// is near 1; detection needs 0.2 and the sync peak).
    pub confidence: f32,
}

/// Why pixels could not be marked or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageWatermarkError {
    /// The buffer is not `width × height` RGBA pixels.
    Buffer {
        /// Bytes given.
        len: usize,
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
    /// The shorter side is below [`MIN_SIDE`].
    TooSmall {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
    /// More than [`MAX_PIXELS`] pixels.
    TooLarge {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
    /// A payload that is not sixteen hex digits.
    Payload(String),
}

impl fmt::Display for ImageWatermarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageWatermarkError::Buffer { len, width, height } => {
                write!(f, "image watermark: {len} bytes are not {width}x{height} RGBA pixels")
            }
            ImageWatermarkError::TooSmall { width, height } => {
                write!(f, "image watermark: {width}x{height} is too small (shorter side below {MIN_SIDE} px)")
            }
            ImageWatermarkError::TooLarge { width, height } => {
                write!(f, "image watermark: {width}x{height} is too large (more than {MAX_PIXELS} pixels)")
            }
            ImageWatermarkError::Payload(p) => write!(f, "image watermark payload {p:?} is not 16 hex digits"),
        }
    }
}

impl std::error::Error for ImageWatermarkError {}

/// The watermark under one key: embeds and detects.
#[derive(Clone)]
pub struct ImageWatermark {
    /// Each chip's sign (row-major in the tile).
    sign: [f32; TILE_CHIPS],
    /// The chips of the sync pattern, then the chip of each coded bit.
    order: [u16; TILE_CHIPS],
}

impl fmt::Debug for ImageWatermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ImageWatermark { .. }")
    }
}

impl ImageWatermark {
    /// The watermark under `key` (any bytes; a 16-byte or longer secret).
    pub fn new(key: &[u8]) -> ImageWatermark {
        let stream = keystream(key, b"aigc-edge image watermark\0", TILE_CHIPS / 8 + 2 * TILE_CHIPS);
        let (signs, shuffle) = stream.split_at(TILE_CHIPS / 8);
        let mut sign = [0f32; TILE_CHIPS];
        for (i, s) in sign.iter_mut().enumerate() {
            *s = if signs[i / 8] >> (i % 8) & 1 == 1 { 1.0 } else { -1.0 };
        }
        let mut order = [0u16; TILE_CHIPS];
        for (i, o) in order.iter_mut().enumerate() {
            *o = i as u16;
        }
        // Fisher–Yates, one keystream u16 per step.
        for i in (1..TILE_CHIPS).rev() {
            let r = usize::from(u16::from_be_bytes([shuffle[2 * i], shuffle[2 * i + 1]]));
            order.swap(i, r % (i + 1));
        }
        ImageWatermark { sign, order }
    }

    /// Each chip's value in the tile: ±1 (sync chips carry their sign, payload chips their sign
    /// times the coded bit).
    fn tile(&self, payload: Payload) -> [f32; TILE_CHIPS] {
        let mut tile = [0f32; TILE_CHIPS];
        for &chip in &self.order[..SYNC_CHIPS] {
            tile[usize::from(chip)] = self.sign[usize::from(chip)];
        }
        for (bit, &chip) in encode(payload).iter().cycle().zip(&self.order[SYNC_CHIPS..]) {
            let chip = usize::from(chip);
            tile[chip] = self.sign[chip] * if *bit { 1.0 } else { -1.0 };
        }
        tile
    }

    /// Marks `rgba` (`width × height` pixels, 4 bytes each; alpha untouched) with `payload`.
    pub fn embed(&self, rgba: &mut [u8], width: u32, height: u32, payload: Payload) -> Result<(), ImageWatermarkError> {
        let (w, h) = check(rgba, width, height)?;
        let tile = self.tile(payload);
        let chip_px = chip_px(w, h);
        // Each column's and row's chip and window value.
        let axis = |n: usize| -> Vec<(usize, f32)> {
            (0..n)
                .map(|i| {
                    let u = (i as f32 + 0.5) / chip_px;
                    let chip = (u.floor() as usize) % CHIPS;
                    (chip, (core::f32::consts::PI * u.fract()).sin())
                })
                .collect()
        };
        let (columns, rows) = (axis(w), axis(h));

        let luma = luma(rgba);
        // The local contrast in SSIM's own window (7 × 7): it sets the mask and bounds the change.
        let squares: Vec<f32> = luma.iter().map(|v| v * v).collect();
        let (mean, mean_square) = (box_blur(&luma, w, h, 3), box_blur(&squares, w, h, 3));
        drop(squares);
        // Each pixel's chip and its share of the chip's pattern (mask times window).
        let mut chip_of: Vec<u16> = Vec::with_capacity(w * h);
        let mut base: Vec<f32> = Vec::with_capacity(w * h);
        let mut cap: Vec<f32> = Vec::with_capacity(w * h);
        for (y, &(chip_y, window_y)) in rows.iter().enumerate() {
            for (x, &(chip_x, window_x)) in columns.iter().enumerate() {
                let i = y * w + x;
                let variance = (mean_square[i] - mean[i] * mean[i]).max(0.0);
                let contrast = variance.sqrt();
                let mask = (contrast / MASK_REFERENCE).clamp(MASK_RANGE.0, MASK_RANGE.1);
                chip_of.push((chip_y * CHIPS + chip_x) as u16);
                base.push(mask * window_x * window_y);
                // And within the pixel's range, so the change never clips to one side (near black a
                // one-sided change shifts the mean, which SSIM's luminance term punishes).
                let pixel = &rgba[4 * i..4 * i + 3];
                let (low, high) =
                    (pixel.iter().min().copied().unwrap_or(0), pixel.iter().max().copied().unwrap_or(255));
                let headroom = f32::from(low).min(f32::from(255 - high));
                cap.push((SSIM_CAP * (2.0 * variance + SSIM_C2).sqrt()).min(headroom));
            }
        }
        // Each work buffer goes as soon as it is used up: the peak, not the sum, bounds a VM.
        drop((mean, mean_square, columns, rows));
        let target = 255.0f32 * 255.0 / 10f32.powf(PSNR_DB / 10.0);
        let mut energy = [0f32; TILE_CHIPS];
        for (&c, b) in chip_of.iter().zip(&base) {
            energy[usize::from(c)] += b * b;
        }
        let total: f32 = energy.iter().sum();
        if total <= 0.0 {
            return Ok(());
        }
        let budget = target * (w * h) as f32;
        let strength = (budget / total).sqrt();
        // Informed embedding: what the detector reads from the unmarked image (the host's own
        // share of each chip) and how much of a chip's change reaches it.
        let period = CHIPS as f32 * chip_px / work_factor(w, h) as f32;
        let measure = |luma: &[f32]| -> [f32; TILE_CHIPS] {
            let (r, ww, wh) = residual(luma, w, h);
            chip_values(&fold(&r, ww, wh, period), (0, 0))
        };
        let host = measure(&luma);
        let trial: Vec<f32> = luma
            .iter()
            .zip(chip_of.iter().zip(&base))
            .map(|(l, (&c, b))| l + strength * tile[usize::from(c)] * b)
            .collect();
        drop(luma);
        let response = measure(&trial);
        drop(trial);
        let mut gain = [0f32; TILE_CHIPS];
        for c in 0..TILE_CHIPS {
            gain[c] = (response[c] - host[c]) * tile[c] / strength;
        }
        let mut sorted = gain;
        sorted.sort_by(f32::total_cmp);
        let floor = (0.25 * sorted[TILE_CHIPS / 2]).max(f32::MIN_POSITIVE);
        gain.iter_mut().for_each(|g| *g = g.max(floor));
        let amplitude =
            |margin: f32, c: usize| (margin - HOST_SHARE * tile[c] * host[c]).max(LEAST_SHARE * margin) / gain[c];
        let spent = |margin: f32| (0..TILE_CHIPS).map(|c| amplitude(margin, c).powi(2) * energy[c]).sum::<f32>();
        let margin = largest_within(budget, strength * sorted[TILE_CHIPS / 2].max(floor), spent);
        let multiplier: Vec<f32> = (0..TILE_CHIPS).map(|c| tile[c] * amplitude(margin, c)).collect();
        // The caps cut the change where the image is flat; the budget they free goes to the rest.
        let raw: Vec<f32> = chip_of.iter().zip(&base).map(|(&c, b)| multiplier[usize::from(c)] * b).collect();
        drop((chip_of, base));
        let (raw, cap) = (&raw, &cap);
        let capped = |scale: f32| raw.iter().zip(cap).map(move |(r, &m)| (scale * r).clamp(-m, m));
        let scale = largest_within(budget, 1.0, |scale| capped(scale).map(|v| v * v).sum::<f32>());
        let change: Vec<f32> = capped(scale).collect();
        // Rounding to 8 bits adds error of its own: one factor brings the whole change back
        // within the budget (scaling the capped change keeps every pixel within its cap).
        // Ties to even: one instruction in wasm (f32.nearest), where `round` (ties away from
        // zero) is a libm call, six per pixel; the two differ only on exact halves.
        let rounded = |c: &f32, v: u8| (f32::from(v) + c).round_ties_even().clamp(0.0, 255.0);
        let mut error = 0f64;
        for (pixel, c) in rgba.chunks_exact(4).zip(&change) {
            for &v in &pixel[..3] {
                error += f64::from((rounded(c, v) - f32::from(v)).powi(2));
            }
        }
        let error = (error / (3 * change.len()) as f64) as f32;
        let correction = if error > target { (target / error).sqrt() * 0.98 } else { 1.0 };
        for (pixel, c) in rgba.chunks_exact_mut(4).zip(&change) {
            for v in &mut pixel[..3] {
                *v = rounded(&(correction * c), *v) as u8;
            }
        }
        Ok(())
    }

    /// The watermark in `rgba` under this key, or `None`: never a wrong payload.
    pub fn detect(&self, rgba: &[u8], width: u32, height: u32) -> Result<Option<Found>, ImageWatermarkError> {
        let (w, h) = check(rgba, width, height)?;
        // The period the embedder chose for an image of this size (right unless it was resized
        // or a large image cropped), then what the autocorrelation proposes.
        let expected = CHIPS as f32 * chip_px(w, h) / work_factor(w, h) as f32;
        let (work, w, h) = working(&luma(rgba), w, h);
        let native = high_pass(&work, w, h);
        let mut candidates = vec![expected];
        for p in periods(&native, w, h) {
            if candidates.iter().all(|c| (c - p).abs() > 0.5) {
                candidates.push(p);
            }
        }
        let template = self.sync_spectrum();
        // Each candidate is searched on its own and its best offset decoded: the first payload
        // that passes every check is the answer.
        for period in candidates {
            // A resized image is read at the scale it was marked at: the high-pass then keeps the
            // band the embedder measured (and cancelled the photo's share of), not the band a
            // resize moved the photo's texture into (+3 to 8 dB on the chips of a halved photo).
            let scale = CANONICAL_PERIOD / period;
            let (rw, rh) = rescaled_size(w, h, scale);
            let rescaled =
                ((scale - 1.0).abs() > RESCALE_TOLERANCE && scale <= MAX_RESCALE && rw * rh <= MAX_RESCALED_PIXELS)
                    .then(|| (high_pass(&rescale(&work, w, h, scale), rw, rh), rw, rh));
            let (residual, rw, rh, scale) = match &rescaled {
                Some((residual, rw, rh)) => (&residual[..], *rw, *rh, scale),
                None => (&native[..], w, h, 1.0),
            };
            let mut best: Option<Peak> = None;
            let consider = |period: f32, best: &mut Option<Peak>| {
                let fold = fold(residual, rw, rh, period);
                let peak = correlate(&fold, &template);
                if best.as_ref().is_none_or(|b| peak.z > b.z) {
                    *best = Some(Peak { fold, period, ..peak });
                }
            };
            for step in PERIOD_STEPS {
                consider((period + step) * scale, &mut best);
            }
            // Finer around the best: on a small image's small chips a quarter pixel of period
            // drifts by a third of a chip across the image.
            for step in FINE_STEPS {
                if let Some(centre) = best.as_ref().map(|b| b.period) {
                    consider(centre - step * scale, &mut best);
                    consider(centre + step * scale, &mut best);
                }
            }
            if let Some(found) = best.filter(|b| b.z >= SYNC_Z).and_then(|b| self.decode(&b)) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The conjugate spectrum of the sync pattern on the fold's grid.
    fn sync_spectrum(&self) -> Vec<Complex32> {
        let mut grid = vec![Complex32::new(0.0, 0.0); BINS * BINS];
        for &chip in &self.order[..SYNC_CHIPS] {
            let chip = usize::from(chip);
            for (dy, dx, window) in chip_bins() {
                let (y, x) = ((chip / CHIPS) * BINS_PER_CHIP + dy, (chip % CHIPS) * BINS_PER_CHIP + dx);
                grid[y * BINS + x].re = self.sign[chip] * window;
            }
        }
        fft2(&mut grid, BINS, BINS, FftDirection::Forward);
        grid.iter().map(|c| c.conj()).collect()
    }

    fn decode(&self, peak: &Peak) -> Option<Found> {
        let soft = chip_values(&peak.fold, peak.offset);
        let mut coded = vec![0f32; CODED_BITS];
        for (i, &chip) in self.order[SYNC_CHIPS..].iter().enumerate() {
            coded[i % CODED_BITS] += soft[usize::from(chip)] * self.sign[usize::from(chip)];
        }
        let payload = viterbi(&coded)?;
        let codeword = encode(payload);
        let norm = coded.iter().map(|v| v * v).sum::<f32>().sqrt() * (CODED_BITS as f32).sqrt();
        let agreement = coded.iter().zip(&codeword).map(|(v, &b)| if b { *v } else { -*v }).sum::<f32>()
            / norm.max(f32::MIN_POSITIVE);
        (agreement >= MIN_AGREEMENT).then_some(Found { payload, confidence: agreement.min(1.0) })
    }
}

/// Each chip's soft value in a fold at an offset: the fold under the chip's window.
fn chip_values(fold: &[f32], offset: (usize, usize)) -> [f32; TILE_CHIPS] {
    let mut soft = [0f32; TILE_CHIPS];
    for (chip, s) in soft.iter_mut().enumerate() {
        for (dy, dx, window) in chip_bins() {
            let y = ((chip / CHIPS) * BINS_PER_CHIP + dy + offset.1) % BINS;
            let x = ((chip % CHIPS) * BINS_PER_CHIP + dx + offset.0) % BINS;
            *s += fold[y * BINS + x] * window;
        }
    }
    soft
}

/// The largest `x` (to a 2⁻⁸ share) with `cost(x)` within `budget`, for a `cost` that grows
/// with `x`, searched up from `start`.
fn largest_within(budget: f32, start: f32, cost: impl Fn(f32) -> f32) -> f32 {
    let (mut low, mut high) = (0.0f32, start.max(f32::MIN_POSITIVE));
    while cost(high) < budget && high < 1e12 {
        low = high;
        high *= 2.0;
    }
    for _ in 0..8 {
        let mid = 0.5 * (low + high);
        if cost(mid) < budget {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// The chip size the embedder uses for a `w × h` image.
fn chip_px(w: usize, h: usize) -> f32 {
    MIN_CHIP_PX.max(w.min(h) as f32 / 128.0)
}

/// The whole factor the detector averages an image down by.
fn work_factor(w: usize, h: usize) -> usize {
    (w.min(h) / WORK_SIDE).max(1)
}

fn check(rgba: &[u8], width: u32, height: u32) -> Result<(usize, usize), ImageWatermarkError> {
    let (w, h) = (width as usize, height as usize);
    if w.checked_mul(h).and_then(|n| n.checked_mul(4)) != Some(rgba.len()) {
        return Err(ImageWatermarkError::Buffer { len: rgba.len(), width, height });
    }
    if width.min(height) < MIN_SIDE {
        return Err(ImageWatermarkError::TooSmall { width, height });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageWatermarkError::TooLarge { width, height });
    }
    Ok((w, h))
}

/// The bins of a chip on the fold's grid and the window value of each.
fn chip_bins() -> impl Iterator<Item = (usize, usize, f32)> {
    let window = |b: usize| (core::f32::consts::PI * (b as f32 + 0.5) / BINS_PER_CHIP as f32).sin();
    (0..BINS_PER_CHIP).flat_map(move |dy| (0..BINS_PER_CHIP).map(move |dx| (dy, dx, window(dy) * window(dx))))
}

/// Rec. 601 luma of RGBA pixels.
fn luma(rgba: &[u8]) -> Vec<f32> {
    rgba.chunks_exact(4).map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).collect()
}

/// The mean over the `(2r+1)²` box around each pixel (the box cut at the edges).
fn box_blur(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut rows = vec![0f32; w * h];
    for (row, out) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        let mut sum: f32 = row[..r.min(w)].iter().sum();
        for x in 0..w {
            if x + r < w {
                sum += row[x + r];
            }
            if x > r {
                sum -= row[x - r - 1];
            }
            let count = (x + r).min(w - 1) + 1 - x.saturating_sub(r);
            out[x] = sum / count as f32;
        }
    }
    let mut out = vec![0f32; w * h];
    let mut sums = vec![0f32; w];
    for row in rows.chunks_exact(w).take(r.min(h)) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    for y in 0..h {
        if y + r < h {
            sums.iter_mut().zip(&rows[(y + r) * w..(y + r + 1) * w]).for_each(|(s, v)| *s += v);
        }
        if y > r {
            sums.iter_mut().zip(&rows[(y - r - 1) * w..(y - r) * w]).for_each(|(s, v)| *s -= v);
        }
        let count = ((y + r).min(h - 1) + 1 - y.saturating_sub(r)) as f32;
        out[y * w..(y + 1) * w].iter_mut().zip(&sums).for_each(|(o, s)| *o = s / count);
    }
    out
}

/// The luminance averaged down by a whole factor to the working resolution, then high-passed.
fn residual(luma: &[f32], w: usize, h: usize) -> (Vec<f32>, usize, usize) {
    let (work, ww, wh) = working(luma, w, h);
    (high_pass(&work, ww, wh), ww, wh)
}

/// The luminance summed over blocks of [`work_factor`]² pixels: the detector's working resolution.
fn working(luma: &[f32], w: usize, h: usize) -> (Vec<f32>, usize, usize) {
    let factor = work_factor(w, h);
    let (ww, wh) = (w / factor, h / factor);
    let mut work = vec![0f32; ww * wh];
    for y in 0..wh * factor {
        let row = &luma[y * w..y * w + ww * factor];
        let out = &mut work[(y / factor) * ww..(y / factor + 1) * ww];
        for (o, block) in out.iter_mut().zip(row.chunks_exact(factor)) {
            *o += block.iter().sum::<f32>();
        }
    }
    (work, ww, wh)
}

/// The working luminance minus its local mean, clipped: what is left is texture, noise and the mark.
fn high_pass(work: &[f32], ww: usize, wh: usize) -> Vec<f32> {
    let blurred = box_blur(work, ww, wh, 3);
    let mut residual: Vec<f32> = work.iter().zip(&blurred).map(|(v, b)| v - b).collect();
    // Each pixel weighed by its neighbourhood's texture: the mark is scaled with the texture,
    // the photo's own residual grows with it, so dividing by it evens the signal-to-noise ratio.
    let magnitude: Vec<f32> = residual.iter().map(|v| v.abs()).collect();
    let texture = box_blur(&magnitude, ww, wh, TEXTURE_RADIUS);
    for (v, t) in residual.iter_mut().zip(&texture) {
        *v = (*v / (t + TEXTURE_FLOOR)).clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP);
    }
    residual
}

/// The size of a `w × h` image rescaled by `scale`: known before any pixel is computed, so the
/// bound on it is checked before the buffer exists.
fn rescaled_size(w: usize, h: usize, scale: f32) -> (usize, usize) {
    (((w as f32 * scale) as usize).max(1), ((h as f32 * scale) as usize).max(1))
}

/// `src` (`w × h`) resampled by `scale` on both axes to [`rescaled_size`] with Keys' cubic
/// (a = -1/2), widened by `1 / scale` when shrinking so nothing aliases.
fn rescale(src: &[f32], w: usize, h: usize, scale: f32) -> Vec<f32> {
    let (nw, nh) = rescaled_size(w, h, scale);
    // For each output position along an axis: the first source index and the weights from there.
    let taps = |n: usize, out: usize| -> Vec<(usize, Vec<f32>)> {
        let stretch = (1.0 / scale).max(1.0);
        let support = 2.0 * stretch;
        (0..out)
            .map(|i| {
                let centre = (i as f32 + 0.5) / scale - 0.5;
                let first = (centre - support).ceil().max(0.0) as usize;
                let last = ((centre + support).floor().max(0.0) as usize).min(n - 1);
                let mut weights: Vec<f32> = (first..=last).map(|j| keys_cubic((j as f32 - centre) / stretch)).collect();
                let sum: f32 = weights.iter().sum();
                if sum != 0.0 {
                    weights.iter_mut().for_each(|v| *v /= sum);
                }
                (first.min(last), weights)
            })
            .collect()
    };
    let (columns, rows) = (taps(w, nw), taps(h, nh));
    let mut across = Vec::with_capacity(nw * h);
    for row in src.chunks_exact(w) {
        across.extend(
            columns.iter().map(|(first, weights)| weights.iter().zip(&row[*first..]).map(|(k, v)| k * v).sum::<f32>()),
        );
    }
    let mut out = vec![0f32; nw * nh];
    for ((first, weights), line) in rows.iter().zip(out.chunks_exact_mut(nw)) {
        for (k, from) in weights.iter().zip(across.chunks_exact(nw).skip(*first)) {
            line.iter_mut().zip(from).for_each(|(o, v)| *o += k * v);
        }
    }
    out
}

/// Keys' cubic convolution kernel with a = -1/2 (Catmull-Rom), support ±2.
fn keys_cubic(x: f32) -> f32 {
    let x = x.abs();
    if x < 1.0 {
        (1.5 * x - 2.5) * x * x + 1.0
    } else if x < 2.0 {
        ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    } else {
        0.0
    }
}

/// 2-D FFT in place, rows then columns; both sides powers of two. Only rustfft's radix-4
/// algorithm is linked (its planner brings every algorithm for every length: 1 MiB of wasm).
fn fft2(data: &mut [Complex32], w: usize, h: usize, direction: FftDirection) {
    Radix4::new(w, direction).process(data);
    let mut columns = vec![Complex32::new(0.0, 0.0); w * h];
    transpose::transpose(data, &mut columns, w, h);
    Radix4::new(h, direction).process(&mut columns);
    transpose::transpose(&columns, data, h, w);
}

/// Tile periods (in working pixels) where the residual correlates with itself shifted by one
/// period along both axes and the diagonals, strongest first, refined to a fraction of a pixel.
fn periods(residual: &[f32], w: usize, h: usize) -> Vec<f32> {
    let (aw, ah) = (w.min(AUTOCORRELATION_SIDE), h.min(AUTOCORRELATION_SIDE));
    let (x0, y0) = ((w - aw) / 2, (h - ah) / 2);
    // Zero-padded to powers of two (the FFT's sizes).
    let (pw, ph) = (aw.next_power_of_two(), ah.next_power_of_two());
    let mut grid = vec![Complex32::new(0.0, 0.0); pw * ph];
    for y in 0..ah {
        let row = &residual[(y0 + y) * w + x0..(y0 + y) * w + x0 + aw];
        grid[y * pw..y * pw + aw].iter_mut().zip(row).for_each(|(g, &v)| g.re = v);
    }
    fft2(&mut grid, pw, ph, FftDirection::Forward);
    // The power spectrum flattened against its neighbourhood: a periodic mark is a lattice of
    // spectral peaks, each standing above its neighbours, while a periodic texture in the photo
    // is a few peaks. Capped, each peak counts about the same, so the lattice wins.
    let power: Vec<f32> = grid.iter().map(|c| c.norm_sqr()).collect();
    let neighbourhood = box_blur(&power, pw, ph, SPECTRUM_RADIUS);
    for ((c, p), n) in grid.iter_mut().zip(&power).zip(&neighbourhood) {
        *c = Complex32::new((p / n.max(f32::MIN_POSITIVE)).min(SPECTRUM_CAP), 0.0);
    }
    fft2(&mut grid, pw, ph, FftDirection::Inverse);
    let at = |dx: usize, dy: usize| grid[(dy % ph) * pw + dx % pw].re;
    let longest = aw.min(ah) / 2;
    let shortest = 16;
    if longest <= shortest + 2 {
        return Vec::new();
    }
    let score: Vec<f32> = (0..=longest).map(|l| at(l, 0) + at(0, l) + at(l, l) + at(l, ph - l)).collect();
    // A lattice's autocorrelation peaks at every multiple of its period: the comb over the
    // multiples ranks the fundamental above its multiples and above a texture's lone peak.
    let comb: Vec<f32> = (0..=longest)
        .map(|l| if l == 0 { 0.0 } else { (1..).map(|k| k * l).take_while(|&m| m <= longest).map(|m| score[m]).sum() })
        .collect();
    let mut peaks: Vec<(f32, f32)> = (shortest + 1..longest)
        .filter(|&l| comb[l] > comb[l - 1] && comb[l] >= comb[l + 1])
        .map(|l| {
            // Measured at the highest multiple in range (the error divides by it): the vertex of the
            // parabola through the largest score near it and its neighbours.
            let k = (longest - 1) / l;
            let around = k * l;
            let m = (around.saturating_sub(k).max(1)..=(around + k).min(longest - 1))
                .max_by(|&a, &b| score[a].total_cmp(&score[b]))
                .unwrap_or(around);
            let (a, b, c) = (score[m - 1], score[m], score[m + 1]);
            let curvature = a - 2.0 * b + c;
            let offset = if curvature < 0.0 { (0.5 * (a - c) / curvature).clamp(-0.5, 0.5) } else { 0.0 };
            (comb[l], (m as f32 + offset) / k as f32)
        })
        .collect();
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    peaks.into_iter().take(PERIOD_CANDIDATES).map(|(_, period)| period).collect()
}

/// The residual folded onto one tile of `period` working pixels, on the `BINS × BINS` grid: each
/// bin the mean of the pixels that fall in it.
fn fold(residual: &[f32], w: usize, h: usize, period: f32) -> Vec<f32> {
    let bin = |i: usize| (((i as f32 + 0.5) % period) / period * BINS as f32) as usize % BINS;
    // Rows of the same bin are summed first (contiguous adds), so the scatter into the tile's
    // columns runs once per bin row, not once per pixel; a bin's count is its row count times
    // its column count.
    let mut rows = vec![0f32; BINS * w];
    let mut row_counts = [0u32; BINS];
    for (y, row) in residual.chunks_exact(w).take(h).enumerate() {
        let b = bin(y);
        row_counts[b] += 1;
        rows[b * w..(b + 1) * w].iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    let columns: Vec<usize> = (0..w).map(bin).collect();
    let mut column_counts = [0u32; BINS];
    columns.iter().for_each(|&x| column_counts[x] += 1);
    let mut fold = vec![0f32; BINS * BINS];
    for ((sums, count), acc) in fold.chunks_exact_mut(BINS).zip(row_counts).zip(rows.chunks_exact(w)) {
        if count > 0 {
            for (&x, &v) in columns.iter().zip(acc) {
                sums[x] += v;
            }
            sums.iter_mut()
                .zip(column_counts)
                .for_each(|(s, n)| *s = if n > 0 { *s / (n * count) as f32 } else { 0.0 });
        }
    }
    let mean = fold.iter().sum::<f32>() / fold.len() as f32;
    fold.iter_mut().for_each(|v| *v -= mean);
    fold
}

/// The sync pattern's best offset in a fold, and how far it stands above the rest.
struct Peak {
    fold: Vec<f32>,
    /// The period folded at, in working pixels.
    period: f32,
    /// Bins right and down.
    offset: (usize, usize),
    /// Standard deviations above the mean of the correlation surface.
    z: f32,
}

fn correlate(fold: &[f32], template: &[Complex32]) -> Peak {
    let mut grid: Vec<Complex32> = fold.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2(&mut grid, BINS, BINS, FftDirection::Forward);
    grid.iter_mut().zip(template).for_each(|(g, t)| *g *= t);
    fft2(&mut grid, BINS, BINS, FftDirection::Inverse);
    let n = grid.len() as f32;
    let mean = grid.iter().map(|c| c.re).sum::<f32>() / n;
    let variance = grid.iter().map(|c| (c.re - mean) * (c.re - mean)).sum::<f32>() / n;
    let (at, top) =
        grid.iter().enumerate().fold((0, f32::MIN), |best, (i, c)| if c.re > best.1 { (i, c.re) } else { best });
    let z = if variance > 0.0 { (top - mean) / variance.sqrt() } else { 0.0 };
    Peak { fold: Vec::new(), period: 0.0, offset: (at % BINS, at / BINS), z }
}

/// The payload and its CRC-16, convolutionally coded: 172 bits.
fn encode(payload: Payload) -> Vec<bool> {
    let mut bytes = payload.0.to_be_bytes().to_vec();
    let crc = crc16(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    let input = bytes.iter().flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1)).chain([false; TAIL_BITS]);
    let mut state = 0u32;
    let mut out = Vec::with_capacity(CODED_BITS);
    for bit in input {
        let register = u32::from(bit) << 6 | state;
        out.extend(GENERATORS.iter().map(|g| (register & g).count_ones() % 2 == 1));
        state = register >> 1;
    }
    out
}

/// Soft-decision Viterbi over 172 values (positive means 1): the payload if its CRC holds.
fn viterbi(coded: &[f32]) -> Option<Payload> {
    const STATES: usize = 64;
    let mut metric = [f32::NEG_INFINITY; STATES];
    metric[0] = 0.0;
    // For each step and state: the low bit of the predecessor state.
    let mut choices = vec![[0u8; STATES]; INPUT_BITS];
    for (step, pair) in coded.chunks_exact(2).enumerate() {
        let mut next = [f32::NEG_INFINITY; STATES];
        for (state, &m) in metric.iter().enumerate() {
            if m == f32::NEG_INFINITY {
                continue;
            }
            for bit in 0..2u32 {
                let register = bit << 6 | state as u32;
                let branch: f32 = GENERATORS
                    .iter()
                    .zip(pair)
                    .map(|(g, v)| if (register & g).count_ones() % 2 == 1 { *v } else { -*v })
                    .sum();
                let to = (register >> 1) as usize;
                if m + branch > next[to] {
                    next[to] = m + branch;
                    choices[step][to] = (state & 1) as u8;
                }
            }
        }
        metric = next;
    }
    let mut state = 0usize;
    let mut bits = [false; INPUT_BITS];
    for step in (0..INPUT_BITS).rev() {
        bits[step] = state >> 5 == 1;
        state = (state & 31) << 1 | usize::from(choices[step][state]);
    }
    let bytes: Vec<u8> = bits[..PAYLOAD_BITS + CRC_BITS]
        .chunks_exact(8)
        .map(|byte| byte.iter().fold(0u8, |acc, &b| acc << 1 | u8::from(b)))
        .collect();
    let (payload, crc) = bytes.split_at(8);
    let mut first = [0u8; 8];
    first.copy_from_slice(payload);
    (crc16(payload) == u16::from_be_bytes([crc[0], crc[1]])).then_some(Payload(u64::from_be_bytes(first)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic photo-like picture: smooth shapes, edges, texture and noise.
    pub(crate) fn picture(w: u32, h: u32, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 1000) as f32 / 1000.0 - 0.5
        };
        let s = seed as f32;
        let mut out = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                let sky = 150.0 + 60.0 * (fy * 2.0 + s).sin();
                let hill = if fy > 0.6 + 0.1 * (fx * 7.0 + s).sin() { -70.0 } else { 0.0 };
                let texture = 25.0 * ((x as f32 * 0.31 + s).sin() * (y as f32 * 0.17).cos()) * fy;
                let disc = if (fx - 0.3).powi(2) + (fy - 0.4).powi(2) < 0.02 { 60.0 } else { 0.0 };
                let v = sky + hill + texture + disc + 6.0 * noise();
                out.extend([v, v * 0.8 + 20.0, v * 0.6 + 50.0].map(|c| c.clamp(0.0, 255.0) as u8));
                out.push(255);
            }
        }
        out
    }

    fn resize(rgba: &[u8], w: u32, h: u32, nw: u32, nh: u32) -> Vec<u8> {
        // Area average when shrinking, bilinear when growing.
        let mut out = Vec::with_capacity((nw * nh * 4) as usize);
        let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
        for y in 0..nh {
            for x in 0..nw {
                let mut acc = [0f32; 4];
                let mut n = 0f32;
                if sx >= 1.0 {
                    let (x0, y0) = ((x as f32 * sx) as u32, (y as f32 * sy) as u32);
                    let (x1, y1) = (((x + 1) as f32 * sx) as u32, ((y + 1) as f32 * sy) as u32);
                    for yy in y0..y1.max(y0 + 1).min(h) {
                        for xx in x0..x1.max(x0 + 1).min(w) {
                            let i = ((yy * w + xx) * 4) as usize;
                            (0..4).for_each(|c| acc[c] += f32::from(rgba[i + c]));
                            n += 1.0;
                        }
                    }
                } else {
                    let (fx, fy) = (((x as f32 + 0.5) * sx - 0.5).max(0.0), ((y as f32 + 0.5) * sy - 0.5).max(0.0));
                    let (x0, y0) = (fx as u32, fy as u32);
                    let (ax, ay) = (fx.fract(), fy.fract());
                    for (yy, wy) in [(y0, 1.0 - ay), ((y0 + 1).min(h - 1), ay)] {
                        for (xx, wx) in [(x0, 1.0 - ax), ((x0 + 1).min(w - 1), ax)] {
                            let i = ((yy * w + xx) * 4) as usize;
                            (0..4).for_each(|c| acc[c] += wx * wy * f32::from(rgba[i + c]));
                        }
                    }
                    n = 1.0;
                }
                out.extend(acc.map(|v| (v / n).round_ties_even() as u8));
            }
        }
        out
    }

    fn crop(rgba: &[u8], w: u32, x0: u32, y0: u32, cw: u32, ch: u32) -> Vec<u8> {
        (y0..y0 + ch)
            .flat_map(|y| rgba[((y * w + x0) * 4) as usize..((y * w + x0 + cw) * 4) as usize].to_vec())
            .collect()
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let (mut sum, mut n) = (0f64, 0f64);
        for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
            for c in 0..3 {
                sum += (f64::from(p[c]) - f64::from(q[c])).powi(2);
                n += 1.0;
            }
        }
        10.0 * (255.0f64 * 255.0 / (sum / n)).log10()
    }

    #[test]
    fn the_payload_survives_geometry_and_tone() {
        let mark = ImageWatermark::new(b"test key");
        let payload = Payload(0x0123_4567_89ab_cdef);
        type Attack = fn(&[u8], u32, u32) -> (Vec<u8>, u32, u32);
        let cases: &[(&str, Attack)] = &[
            ("none", |p, w, h| (p.to_vec(), w, h)),
            ("resize 50%", |p, w, h| (resize(p, w, h, w / 2, h / 2), w / 2, h / 2)),
            ("resize 200%", |p, w, h| (resize(p, w, h, w * 2, h * 2), w * 2, h * 2)),
            ("resize 75%", |p, w, h| (resize(p, w, h, w * 3 / 4, h * 3 / 4), w * 3 / 4, h * 3 / 4)),
            ("crop central 80%", |p, w, h| {
                let (cw, ch) = (w * 4 / 5, h * 4 / 5);
                (crop(p, w, (w - cw) / 2, (h - ch) / 2, cw, ch), cw, ch)
            }),
            ("crop central 60%", |p, w, h| {
                let (cw, ch) = (w * 3 / 5, h * 3 / 5);
                (crop(p, w, (w - cw) / 2, (h - ch) / 2, cw, ch), cw, ch)
            }),
            ("crop off-centre", |p, w, h| (crop(p, w, 37, 11, w - 60, h - 40), w - 60, h - 40)),
            ("brightness +20%", |p, w, h| {
                (
                    p.iter()
                        .enumerate()
                        .map(|(i, &v)| if i % 4 == 3 { v } else { (f32::from(v) * 1.2).min(255.0) as u8 })
                        .collect(),
                    w,
                    h,
                )
            }),
            ("contrast -20%", |p, w, h| {
                (
                    p.iter()
                        .enumerate()
                        .map(|(i, &v)| if i % 4 == 3 { v } else { (128.0 + (f32::from(v) - 128.0) * 0.8) as u8 })
                        .collect(),
                    w,
                    h,
                )
            }),
        ];
        for (w, h, seed) in [(512, 512, 1), (640, 427, 2), (300, 451, 3), (1024, 768, 4)] {
            let original = picture(w, h, seed);
            let mut marked = original.clone();
            mark.embed(&mut marked, w, h, payload).unwrap();
            let quality = psnr(&original, &marked);
            assert!(quality >= 40.0, "{w}x{h}: PSNR {quality}");
            for (name, attack) in cases {
                let (pixels, aw, ah) = attack(&marked, w, h);
                let found = mark.detect(&pixels, aw, ah).unwrap();
                assert_eq!(found.map(|f| f.payload), Some(payload), "{w}x{h} {name}");
                // Unmarked and other keys: none.
                let (pixels, aw, ah) = attack(&original, w, h);
                assert_eq!(mark.detect(&pixels, aw, ah).unwrap(), None, "{w}x{h} {name} unmarked");
            }
            assert_eq!(ImageWatermark::new(b"other key").detect(&marked, w, h).unwrap(), None);
        }
    }

    #[test]
    fn no_false_finds_and_clear_errors() {
        for seed in 0..40 {
            let picture = picture(256, 256, 100 + seed);
            assert_eq!(
                ImageWatermark::new(&seed.to_be_bytes()).detect(&picture, 256, 256).unwrap(),
                None,
                "seed {seed}"
            );
        }
        let flat = vec![128u8; 200 * 200 * 4];
        let mark = ImageWatermark::new(b"k");
        assert_eq!(mark.detect(&flat, 200, 200).unwrap(), None);
        let mut marked = flat.clone();
        mark.embed(&mut marked, 200, 200, Payload(7)).unwrap();
        assert!(matches!(mark.detect(&flat, 10, 10), Err(ImageWatermarkError::Buffer { .. })));
        let mut tiny = vec![0u8; 50 * 50 * 4];
        assert_eq!(
            mark.embed(&mut tiny, 50, 50, Payload(1)),
            Err(ImageWatermarkError::TooSmall { width: 50, height: 50 })
        );
        assert!(mark.detect(&tiny, 50, 50).is_err());
        let huge = vec![0u8; 8193 * 2048 * 4];
        assert_eq!(mark.detect(&huge, 8193, 2048), Err(ImageWatermarkError::TooLarge { width: 8193, height: 2048 }));
        assert_eq!(Payload::from_hex("0123456789abcdef").unwrap(), Payload(0x0123_4567_89ab_cdef));
        assert!(Payload::from_hex("xyz").is_err());
        assert_eq!(Payload(0xab).to_string(), "00000000000000ab");
    }

    #[test]
    fn rescaling_keeps_levels_and_ramps() {
        // (width, height, scale): a constant stays constant and a ramp stays the same ramp in
        // the interior (where the kernel does not reach the edge; a widened kernel to within a
        // sixtieth of a step), enlarging and shrinking.
        for (w, h, scale) in [(40usize, 30usize, 2.0f32), (40, 30, 1.37), (64, 48, 0.5), (64, 48, 0.8)] {
            let (nw, nh) = rescaled_size(w, h, scale);
            assert_eq!((nw, nh), ((w as f32 * scale) as usize, (h as f32 * scale) as usize));
            let flat = vec![7.5f32; w * h];
            let out = rescale(&flat, w, h, scale);
            assert_eq!(out.len(), nw * nh);
            assert!(out.iter().all(|v| (v - 7.5).abs() < 1e-4), "{w}x{h} x{scale}: flat");
            let ramp: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 * 3.0 + (i / w) as f32).collect();
            let out = rescale(&ramp, w, h, scale);
            let margin = (4.0 * scale.max(1.0 / scale)).ceil() as usize;
            for y in margin..nh - margin {
                for x in margin..nw - margin {
                    let (sx, sy) = ((x as f32 + 0.5) / scale - 0.5, (y as f32 + 0.5) / scale - 0.5);
                    let want = sx * 3.0 + sy;
                    assert!(
                        (out[y * nw + x] - want).abs() < 0.05,
                        "{w}x{h} x{scale} at {x},{y}: {} != {want}",
                        out[y * nw + x]
                    );
                }
            }
        }
    }

    #[test]
    fn the_code_corrects_errors() {
        let payload = Payload(0xfeed_f00d_dead_beef);
        let mut soft: Vec<f32> = encode(payload).iter().map(|&b| if b { 1.0 } else { -1.0 }).collect();
        // Flip every eleventh coded bit and weaken others.
        for (i, v) in soft.iter_mut().enumerate() {
            if i % 11 == 0 {
                *v = -*v * 0.5;
            } else if i % 3 == 0 {
                *v *= 0.2;
            }
        }
        assert_eq!(viterbi(&soft), Some(payload));
        assert_eq!(viterbi(&[0.0; CODED_BITS]).filter(|p| *p == payload), None);
    }
}
