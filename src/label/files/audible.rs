//! The audible label: the rhythm short-long-short-short — Morse "AI" (`·−  ··`) — which the
//! rules accept in place of a spoken label, at the start or the end of generated audio.
//!
//! Timing in units of [`UNIT_MS`] (120 ms): tones of 1, 3, 1, 1 units; gaps of 1 unit inside a
//! letter and 3 between the letters; 3 units of silence between the rhythm and the audio. The
//! tone is a sine near [`TONE_HZ`] at [`AMPLITUDE`] of full scale, with 5 ms ramps so it does
//! not click. Decode-free: WAV and raw PCM get samples synthesized in their own format; MP3
//! gets Layer III frames of its own MPEG version, sample rate and channel mode, pre-encoded
//! without the bit reservoir (`tools/gen_mp3_tones.py`), a unit rounded to whole frames.
//! Either way the original samples (or frames) follow, or precede, unchanged.
//!
//! ```
//! use aigc_edge::files::audible::{pcm, PcmFormat, Placement, SampleFormat};
//! let format = PcmFormat { sample_rate: 24_000, channels: 1, sample: SampleFormat::S16Le };
//! let speech = vec![0u8; 48_000]; // one second of 24 kHz mono
//! let marked = pcm(&speech, format, Placement::Start).unwrap();
//! assert!(marked.ends_with(&speech));
//! // 11 units of rhythm and 3 of pause, 120 ms each, 2 bytes a sample.
//! assert_eq!(marked.len() - speech.len(), 2 * 24_000 * (120 * 14) / 1000);
//! ```

use super::*;

/// One unit of the rhythm, in milliseconds.
pub const UNIT_MS: u32 = 120;
/// The tone's frequency (MP3 frames use the nearest that fits a whole number of periods in a
/// frame).
pub const TONE_HZ: f32 = 880.0;
/// The tone's peak, as a fraction of full scale (about −10 dBFS).
pub const AMPLITUDE: f32 = 0.3;
/// The rhythm, as (tone?, units): Morse A (dot, dash), letter gap, Morse I (dot, dot).
pub const RHYTHM: [(bool, u32); 7] = [(true, 1), (false, 1), (true, 3), (false, 3), (true, 1), (false, 1), (true, 1)];
/// Silence between the rhythm and the audio, in units.
pub const PAUSE_UNITS: u32 = 3;
const RAMP_MS: f32 = 5.0;
/// The most bytes the rhythm may take (192 kHz, 8 channels of 32-bit samples take 10 MB): a
/// header claiming more is refused, not obeyed — a few header bytes must not cost gigabytes.
pub const MAX_RHYTHM_BYTES: usize = 16 << 20;

/// Where the rhythm goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Before the audio.
    #[default]
    Start,
    /// After it.
    End,
}

impl core::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> core::result::Result<Placement, String> {
        match s {
            "start" => Ok(Placement::Start),
            "end" => Ok(Placement::End),
            other => Err(format!("placement must be start or end, not {other:?}")),
        }
    }
}

/// How raw PCM samples are stored (interleaved, little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleFormat {
    /// Unsigned 8-bit.
    U8,
    /// Signed 16-bit.
    S16Le,
    /// Signed 24-bit.
    S24Le,
    /// Signed 32-bit.
    S32Le,
    /// 32-bit float.
    F32Le,
}

impl core::str::FromStr for SampleFormat {
    type Err = String;
    /// `u8`, `s16le`, `s24le`, `s32le` or `f32le`.
    fn from_str(s: &str) -> core::result::Result<SampleFormat, String> {
        match s {
            "u8" => Ok(SampleFormat::U8),
            "s16le" => Ok(SampleFormat::S16Le),
            "s24le" => Ok(SampleFormat::S24Le),
            "s32le" => Ok(SampleFormat::S32Le),
            "f32le" => Ok(SampleFormat::F32Le),
            other => Err(format!("sample format must be u8, s16le, s24le, s32le or f32le, not {other:?}")),
        }
    }
}

impl SampleFormat {
    fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 => 1,
            SampleFormat::S16Le => 2,
            SampleFormat::S24Le => 3,
            SampleFormat::S32Le | SampleFormat::F32Le => 4,
        }
    }

    /// One sample of value `v` in [-1, 1].
    fn write(self, v: f32, out: &mut Vec<u8>) {
        let v = v.clamp(-1.0, 1.0);
        match self {
            SampleFormat::U8 => out.push((128.0 + v * 127.0).round() as u8),
            SampleFormat::S16Le => out.extend_from_slice(&((v * 32767.0).round() as i16).to_le_bytes()),
            SampleFormat::S24Le => out.extend_from_slice(&((v * 8_388_607.0).round() as i32).to_le_bytes()[..3]),
            SampleFormat::S32Le => {
                out.extend_from_slice(&((f64::from(v) * 2_147_483_647.0).round() as i32).to_le_bytes())
            }
            SampleFormat::F32Le => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

/// A raw PCM stream's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmFormat {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// How each sample is stored.
    pub sample: SampleFormat,
}

/// The rhythm with its pause on the audio's side, as (tone?, units): what PCM and MP3 both lay out.
fn segments(placement: Placement) -> [(bool, u32); RHYTHM.len() + 1] {
    let mut out = [(false, PAUSE_UNITS); RHYTHM.len() + 1];
    match placement {
        Placement::Start => out[..RHYTHM.len()].copy_from_slice(&RHYTHM),
        Placement::End => out[1..].copy_from_slice(&RHYTHM),
    }
    out
}

/// Samples per channel of one unit at `format`'s rate.
fn unit_samples(format: PcmFormat) -> usize {
    (u64::from(format.sample_rate) * u64::from(UNIT_MS) / 1000) as usize
}

/// The rhythm (with its pause toward the audio) as samples in `format`.
fn rhythm(format: PcmFormat, placement: Placement) -> Vec<u8> {
    let rate = format.sample_rate as f32;
    let unit = unit_samples(format);
    let segments = segments(placement);
    let total: usize = segments.iter().map(|&(_, u)| u as usize * unit).sum();
    let mut out = Vec::with_capacity(total * usize::from(format.channels) * format.sample.bytes());
    let ramp = (RAMP_MS / 1000.0 * rate).max(1.0);
    for (tone, units) in segments {
        let n = units as usize * unit;
        for i in 0..n {
            let v = if tone {
                let edge = (i as f32).min((n - 1 - i) as f32);
                let gain = if edge < ramp { 0.5 - 0.5 * (core::f32::consts::PI * edge / ramp).cos() } else { 1.0 };
                AMPLITUDE * gain * (2.0 * core::f32::consts::PI * TONE_HZ * i as f32 / rate).sin()
            } else {
                0.0
            };
            for _ in 0..format.channels {
                format.sample.write(v, &mut out);
            }
        }
    }
    out
}

fn place(audio: &[u8], marks: &[u8], placement: Placement) -> Vec<u8> {
    match placement {
        Placement::Start => [marks, audio].concat(),
        Placement::End => [audio, marks].concat(),
    }
}

/// Raw PCM with the rhythm added. Refused: a zero rate or channel count, and bytes that are
/// not whole sample frames (the format would be wrong).
pub fn pcm(samples: &[u8], format: PcmFormat, placement: Placement) -> core::result::Result<Vec<u8>, String> {
    if format.sample_rate == 0 || format.channels == 0 || format.sample_rate > 768_000 {
        return Err("PCM needs a sample rate (at most 768 kHz) and at least one channel".into());
    }
    let frame = usize::from(format.channels) * format.sample.bytes();
    let units: usize = segments(placement).iter().map(|&(_, u)| u as usize).sum();
    let rhythm_bytes = unit_samples(format) * units * frame;
    if rhythm_bytes > MAX_RHYTHM_BYTES {
        return Err(format!(
            "{} Hz x {} channels would make a {rhythm_bytes}-byte rhythm, over the {MAX_RHYTHM_BYTES}-byte limit",
            format.sample_rate, format.channels
        ));
    }
    if samples.len() % frame != 0 {
        return Err(format!("{} bytes are not whole {frame}-byte sample frames", samples.len()));
    }
    Ok(place(samples, &rhythm(format, placement), placement))
}

/// A WAV file with the rhythm added to its `data` chunk, every other chunk kept. PCM (8, 16,
/// 24, 32-bit) and 32-bit float, plain or `WAVE_FORMAT_EXTENSIBLE`.
pub fn wav(b: &[u8], placement: Placement) -> Result<Vec<u8>> {
    const W: FileFormat = FileFormat::Wav;
    if FileFormat::detect(b) != Some(W) {
        return Err(FileError::new(W, 0, "not a WAV file"));
    }
    let chunks = riff::chunks(b, W)?;
    let fmt = chunks.iter().find(|c| &c.id == b"fmt ").ok_or_else(|| FileError::new(W, 12, "no fmt chunk"))?;
    let f = &b[fmt.data.clone()];
    let field = |at: usize| f.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let (Some(mut tag), Some(channels), Some(rate), Some(bits)) = (field(0), field(2), le32(f, 4), field(14)) else {
        return Err(FileError::new(W, fmt.at, "fmt chunk too short"));
    };
    if tag == 0xFFFE {
        tag = field(24).ok_or_else(|| FileError::new(W, fmt.at, "extensible fmt chunk too short"))?;
    }
    let sample = match (tag, bits) {
        (1, 8) => SampleFormat::U8,
        (1, 16) => SampleFormat::S16Le,
        (1, 24) => SampleFormat::S24Le,
        (1, 32) => SampleFormat::S32Le,
        (3, 32) => SampleFormat::F32Le,
        _ => return Err(FileError::new(W, fmt.at, format!("format {tag} with {bits}-bit samples is not written"))),
    };
    let data = chunks.iter().find(|c| &c.id == b"data").ok_or_else(|| FileError::new(W, 12, "no data chunk"))?;
    let format = PcmFormat { sample_rate: rate, channels, sample };
    let samples = pcm(&b[data.data.clone()], format, placement).map_err(|e| FileError::new(W, data.at, e))?;
    let len = u32::try_from(samples.len()).map_err(|_| FileError::new(W, data.at, "data chunk would pass 4 GiB"))?;
    let mut out = Vec::with_capacity(b.len() + samples.len() - data.data.len());
    out.extend_from_slice(&b[..data.at]);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&samples);
    if samples.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(&b[data.end..]);
    let riff = u32::try_from(out.len() - 8).map_err(|_| FileError::new(W, 4, "file would pass 4 GiB"))?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}

/// A Layer III frame header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    version: u8,
    rate_index: u8,
    mode: u8,
    crc: bool,
    size: usize,
    rate: u32,
}

fn header(b: &[u8], at: usize) -> Option<Header> {
    let h = be32(b, at)?;
    if h >> 21 != 0x7FF || (h >> 17) & 3 != 1 {
        return None; // not a Layer III frame
    }
    let (version, bitrate_index, rate_index) = ((h >> 19) & 3, (h >> 12) & 15, (h >> 10) & 3);
    if version == 1 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let rates: [u32; 3] = match version {
        3 => [44100, 48000, 32000],
        2 => [22050, 24000, 16000],
        _ => [11025, 12000, 8000],
    };
    let rate = rates[rate_index as usize];
    let kbps = if version == 3 { V1 } else { V2 }[bitrate_index as usize];
    let size = (if version == 3 { 144 } else { 72 }) * kbps as usize * 1000 / rate as usize + ((h >> 9) & 1) as usize;
    Some(Header {
        version: version as u8,
        rate_index: rate_index as u8,
        mode: ((h >> 6) & 3) as u8,
        crc: (h >> 16) & 1 == 0,
        size,
        rate,
    })
}

/// CRC-16 (polynomial 0x8005, reflected) as the LAME tag uses for its own bytes.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut c, &b| {
        c ^= u16::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xA001 } else { c >> 1 };
        }
        c
    })
}

/// An MP3 with the rhythm's frames added after the ID3v2 tag and any Xing/Info frame (whose
/// frame and byte counts, and LAME tag CRC, are updated), or before a trailing ID3v1 tag.
pub fn mp3(b: &[u8], placement: Placement) -> Result<Vec<u8>> {
    const M: FileFormat = FileFormat::Mp3;
    let start = id3::audio_start(b)?;
    let first =
        header(b, start).ok_or_else(|| FileError::new(M, start, "no MPEG Layer III frame where the audio starts"))?;
    if start + first.size > b.len() {
        return Err(FileError::new(M, start, "first frame runs past the end"));
    }
    let Some(&(_, _, _, _, tone, silence)) =
        mp3_frames::FRAMES.iter().find(|f| (f.0, f.1, f.2) == (first.version, first.rate_index, first.mode))
    else {
        return Err(FileError::new(M, start, "no pre-encoded frames for this MPEG version, rate and mode"));
    };
    let samples_per_frame: u32 = if first.version == 3 { 1152 } else { 576 };
    let unit = ((first.rate * UNIT_MS) as f32 / 1000.0 / samples_per_frame as f32).round().max(1.0) as usize;
    let mut marks = Vec::new();
    let mut count = 0u32;
    for (is_tone, units) in segments(placement) {
        for _ in 0..units as usize * unit {
            marks.extend_from_slice(if is_tone { tone } else { silence });
            count += 1;
        }
    }
    // A Xing/Info frame (the encoder's summary) stays first; its counts grow by ours.
    let side = match (first.version == 3, first.mode == 3) {
        (true, false) => 32,
        (true, true) => 17,
        (false, false) => 17,
        (false, true) => 9,
    };
    let tag_at = start + 4 + usize::from(first.crc) * 2 + side;
    let xing = matches!(b.get(tag_at..tag_at + 4), Some(b"Xing" | b"Info"));
    let audio_from = if xing { start + first.size } else { start };
    let end = if b.len() >= 128 && &b[b.len() - 128..b.len() - 125] == b"TAG" { b.len() - 128 } else { b.len() };
    let at = match placement {
        Placement::Start => audio_from,
        Placement::End => end.max(audio_from),
    };
    let mut out = Vec::with_capacity(b.len() + marks.len());
    out.extend_from_slice(&b[..at]);
    out.extend_from_slice(&marks);
    out.extend_from_slice(&b[at..]);
    if xing {
        let flags = be32(b, tag_at + 4).unwrap_or(0);
        let mut field = tag_at + 8;
        for (bit, add) in [(1u32, count), (2u32, marks.len() as u32)] {
            if flags & bit != 0 {
                if let Some(v) = be32(&out, field) {
                    out[field..field + 4].copy_from_slice(&v.saturating_add(add).to_be_bytes());
                }
                field += 4;
            }
        }
        // The LAME tag's last field is a CRC-16 of the frame's first 190 bytes.
        let lame = tag_at + 120;
        if out.get(lame..lame + 4) == Some(b"LAME") && start + 192 <= start + first.size {
            let c = crc16(&out[start..start + 190]);
            out[start + 190..start + 192].copy_from_slice(&c.to_be_bytes());
        }
    }
    Ok(out)
}

/// WAV or MP3, by its bytes, with the rhythm added.
pub fn mark(b: &[u8], placement: Placement) -> Result<Vec<u8>> {
    match FileFormat::detect(b) {
        Some(FileFormat::Wav) => wav(b, placement),
        Some(FileFormat::Mp3) => mp3(b, placement),
        other => Err(FileError {
            format: other,
            offset: 0,
            message: "the audible label is written into WAV, MP3 and raw PCM only".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tone segments of 16-bit mono samples, as (start, length) in samples.
    fn tones(samples: &[i16]) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        let mut quiet = 0usize;
        for (i, &s) in samples.iter().enumerate() {
            if s.unsigned_abs() > 1000 {
                match out.last_mut() {
                    Some((start, len)) if quiet < 100 => *len = i + 1 - *start,
                    _ => out.push((i, 1)),
                }
                quiet = 0;
            } else {
                quiet += 1;
            }
        }
        out
    }

    #[test]
    fn pcm_rhythm_table() {
        let speech: Vec<u8> = (0..8000u32).flat_map(|i| ((i as i16).wrapping_mul(7) / 20).to_le_bytes()).collect();
        for placement in [Placement::Start, Placement::End] {
            for (rate, channels) in [(8000, 1), (24000, 1), (44100, 2)] {
                let format = PcmFormat { sample_rate: rate, channels, sample: SampleFormat::S16Le };
                let audio: Vec<u8> = speech.iter().copied().take(speech.len() / 4 * 4).collect();
                let marked = pcm(&audio, format, placement).unwrap();
                let added = match placement {
                    Placement::Start => {
                        assert!(marked.ends_with(&audio));
                        &marked[..marked.len() - audio.len()]
                    }
                    Placement::End => {
                        assert!(marked.starts_with(&audio));
                        &marked[audio.len()..]
                    }
                };
                let left: Vec<i16> =
                    added.chunks(2 * usize::from(channels)).map(|f| i16::from_le_bytes([f[0], f[1]])).collect();
                let unit = rate as usize * 120 / 1000;
                let found = tones(&left);
                let lengths: Vec<f32> = found.iter().map(|&(_, n)| n as f32 / unit as f32).collect();
                assert_eq!(lengths.len(), 4, "{rate} {placement:?}: {found:?}");
                for (got, want) in lengths.iter().zip([1.0, 3.0, 1.0, 1.0]) {
                    assert!((got - want).abs() < 0.1, "{rate}: {lengths:?}");
                }
                let gaps: Vec<f32> =
                    found.windows(2).map(|w| (w[1].0 - w[0].0 - w[0].1) as f32 / unit as f32).collect();
                for (got, want) in gaps.iter().zip([1.0, 3.0, 1.0]) {
                    assert!((got - want).abs() < 0.1, "{rate}: gaps {gaps:?}");
                }
            }
        }
        let bad = PcmFormat { sample_rate: 24000, channels: 2, sample: SampleFormat::S24Le };
        assert!(pcm(&[0; 7], bad, Placement::Start).unwrap_err().contains("not whole 6-byte sample frames"));
        // A header's claim is not obeyed past the limit.
        let huge = PcmFormat { sample_rate: 768_000, channels: 65_535, sample: SampleFormat::F32Le };
        assert!(pcm(&[], huge, Placement::Start).unwrap_err().contains("over the 16777216-byte limit"));
    }

    #[test]
    fn wav_grows_its_data_chunk_and_keeps_the_rest() {
        let (_, wav_file) = super::super::tests::samples().into_iter().find(|(f, _)| *f == FileFormat::Wav).unwrap();
        let labeled = write_label(&wav_file, &ImplicitLabel::generated("P", "id").unwrap()).unwrap();
        let marked = wav(&labeled, Placement::Start).unwrap();
        assert_eq!(read_labels(&marked).unwrap().1.len(), 1, "the AIGC chunk stays");
        let chunks = riff::chunks(&marked, FileFormat::Wav).unwrap();
        let data = chunks.iter().find(|c| &c.id == b"data").unwrap();
        assert!(marked[data.data.clone()].ends_with(b"\x01\x02\x03\x04"));
        assert_eq!(le32(&marked, 4).unwrap() as usize, marked.len() - 8);
        for cut in 0..labeled.len() {
            let _ = wav(&labeled[..cut], Placement::End);
        }
    }

    #[test]
    fn mp3_frames_match_the_first_frame() {
        for &(version, rate_index, mode, _, tone, silence) in mp3_frames::FRAMES {
            let h = header(tone, 0).unwrap();
            assert_eq!((h.version, h.rate_index, h.mode, h.size), (version, rate_index, mode, tone.len()));
            assert_eq!(header(silence, 0).unwrap().size, silence.len());
        }
        // A file of three silent MPEG-1 44.1 kHz joint-stereo frames.
        let &(_, _, _, _, tone, silence) = mp3_frames::FRAMES.iter().find(|f| (f.0, f.1, f.2) == (3, 0, 1)).unwrap();
        let file = silence.repeat(3);
        let marked = mp3(&file, Placement::Start).unwrap();
        assert!(marked.ends_with(&file));
        let unit = 5; // 120 ms of 26.1 ms frames
        assert_eq!(marked.len() - file.len(), (6 * unit) * tone.len() + (5 + 3) * unit * silence.len());
        assert!(mp3(b"ID3\x04\0\0\0\0\0\0garbage", Placement::Start).is_err());
        assert!(mark(b"RIFF\0\0\0\0WEBP", Placement::Start).is_err());
    }
}
