//! `make bench` (labels): writing the implicit label into a 12-megapixel JPEG and a 10 MB PNG
//! (metadata only, no re-encode) beside a plain copy of the same bytes, and drawing the visible
//! label on 4K RGBA pixels beside one pass over the same buffer, and embedding and detecting the
//! invisible image watermark at 1024 × 1024 beside one copy of the pixels. Runs natively and, built for
//! wasm32-wasip1, under node (`make bench-wasm`). Needs no data files.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aigc_edge::files::{read_labels, write_label};
use aigc_edge::label::visible::{draw_label, Corner};
use aigc_edge::watermark::image::{ImageWatermark, Payload};
use aigc_edge::ImplicitLabel;

/// A deterministic byte stream (xorshift), standing in for compressed image data.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// CRC-32 (IEEE), bit by bit: only the fixture needs it, and the core's own is private.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
        }
    }
    !crc
}

fn png(total: usize) -> Vec<u8> {
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = crc32(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    };
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 2800u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&1800u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    out.extend(chunk(b"IHDR", &ihdr));
    let data = noise(total, 7);
    for piece in data.chunks(1 << 16) {
        out.extend(chunk(b"IDAT", piece));
    }
    out.extend(chunk(b"IEND", b""));
    out
}

fn jpeg(scan_bytes: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
    out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    out.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    out.extend(std::iter::repeat_n(1u8, 64));
    // SOF0: 4000 x 3000 (12 megapixels), 3 components.
    out.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8, 0x0B, 0xB8, 0x0F, 0xA0, 3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
    out.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
    // Entropy-coded data: 0xFF bytes stuffed as 0xFF00, as an encoder writes them.
    for b in noise(scan_bytes, 11) {
        out.push(b);
        if b == 0xFF {
            out.push(0);
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A FLAC file: STREAMINFO, a Vorbis comment block with an encoder's tag, then `audio` bytes.
fn flac(audio: usize) -> Vec<u8> {
    let mut out = b"fLaC\x00\x00\x00\x22".to_vec();
    out.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0, 0x0A, 0xC4, 0x42, 0xF0, 0, 0, 0, 0]);
    out.extend_from_slice(&[0; 16]);
    let comment = b"TITLE=a song";
    let mut body = Vec::new();
    body.extend_from_slice(&4u32.to_le_bytes());
    body.extend_from_slice(b"lavf");
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&(comment.len() as u32).to_le_bytes());
    body.extend_from_slice(comment);
    out.extend_from_slice(&[0x84, 0, 0, body.len() as u8]);
    out.extend_from_slice(&body);
    out.extend(noise(audio, 5));
    out
}

/// A little-endian TIFF of `pixels` bytes of 8-bit grey in one strip.
fn tiff(pixels: usize) -> Vec<u8> {
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    let entries: [(u16, u16, u32); 6] = [
        (256, 4, 4000),
        (257, 4, (pixels / 4000) as u32),
        (258, 3, 8),
        (273, 4, 86),
        (278, 4, (pixels / 4000) as u32),
        (279, 4, pixels as u32),
    ];
    out.extend_from_slice(&6u16.to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend(noise(pixels, 9));
    out
}

/// An Ogg Opus stream: `OpusHead`, `OpusTags`, then `audio` bytes in pages of 16 segments of
/// 255 bytes (the stream's later pages are what relabeling renumbers).
fn ogg(audio: usize) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0u32;
        for &b in bytes {
            c ^= u32::from(b) << 24;
            for _ in 0..8 {
                c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
            }
        }
        c
    }
    let page = |flags: u8, granule: u64, seq: u32, packet: &[u8], out: &mut Vec<u8>| {
        let start = out.len();
        let mut lacing: Vec<u8> = vec![255; packet.len() / 255];
        lacing.push((packet.len() % 255) as u8);
        out.extend_from_slice(b"OggS\0");
        out.push(flags);
        out.extend_from_slice(&granule.to_le_bytes());
        out.extend_from_slice(&7u32.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(lacing.len() as u8);
        out.extend_from_slice(&lacing);
        out.extend_from_slice(packet);
        let c = crc(&out[start..]);
        out[start + 22..start + 26].copy_from_slice(&c.to_le_bytes());
    };
    let mut out = Vec::with_capacity(audio + audio / 64);
    page(2, 0, 0, b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0", &mut out);
    page(0, 0, 1, b"OpusTags\x04\0\0\0test\0\0\0\0", &mut out);
    let data = noise(audio, 17);
    for (i, packet) in data.chunks(16 * 255 - 1).enumerate() {
        page(0, (i as u64 + 1) * 960, i as u32 + 2, packet, &mut out);
    }
    out
}

/// A one-page PDF whose content stream is `content` bytes, with a classic cross-reference table.
fn pdf(content: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let stream = noise(content, 11);
    let mut at = Vec::new();
    let bodies: [Vec<u8>; 5] = [
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>".to_vec(),
        [format!("<< /Length {} >>\nstream\n", stream.len()).as_bytes(), &stream, b"\nendstream"].concat(),
        b"<< /Producer (bench) >>".to_vec(),
    ];
    for (i, body) in bodies.iter().enumerate() {
        at.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 6\n0000000000 65535 f\r\n");
    for a in at {
        out.extend_from_slice(format!("{a:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 6 /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

/// A docx-shaped ZIP: content types, package relationships and a `media` member of `media` bytes, stored.
fn docx(media: usize) -> Vec<u8> {
    let members: [(&str, Vec<u8>); 3] = [
        (
            "[Content_Types].xml",
            b"<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"></Types>".to_vec(),
        ),
        (
            "_rels/.rels",
            b"<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"></Relationships>"
                .to_vec(),
        ),
        ("word/media/image1.bin", noise(media, 13)),
    ];
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in &members {
        let mut head = Vec::new();
        head.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        head.extend_from_slice(&crc32(data).to_le_bytes());
        head.extend_from_slice(&(data.len() as u32).to_le_bytes());
        head.extend_from_slice(&(data.len() as u32).to_le_bytes());
        head.extend_from_slice(&(name.len() as u16).to_le_bytes());
        head.extend_from_slice(&[0, 0]);
        central.extend_from_slice(b"PK\x01\x02\x14\0");
        central.extend_from_slice(&head);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&(out.len() as u32).to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&head);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
    }
    let cd_at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x03\0\x03\0");
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let target = if cfg!(target_family = "wasm") { "wasm32-wasip1" } else { "native" };
    println!("\n## Labels ({target})");
    let label = ImplicitLabel::generated("001191110102MACQD9K64010000", "aigc-0123456789abcdef0123456789abcdef")
        .expect("valid label");
    let runs = 7;
    let files = [
        ("12-megapixel JPEG", jpeg(4 << 20)),
        ("10 MB PNG", png(10 << 20)),
        ("30 MB FLAC (3 min)", flac(30 << 20)),
        ("48 MB TIFF (12 MP grey)", tiff(48 << 20)),
        ("30 MB Ogg Opus", ogg(30 << 20)),
        ("20 MB PDF", pdf(20 << 20)),
        ("20 MB docx (one image)", docx(20 << 20)),
    ];
    for (name, file) in files {
        let labeled = write_label(&file, &label).expect("labels");
        let found = read_labels(&labeled).expect("reads").1;
        assert!(
            !found.is_empty() && found.iter().all(|l| l.parsed.label.as_ref() == Some(&label)),
            "benchmark must produce the label"
        );
        let write = best(runs, || {
            black_box(write_label(black_box(&file), &label).expect("labels"));
        });
        let copy = best(runs, || {
            black_box(black_box(&file).to_vec());
        });
        println!(
            "{:<48} {:>8.2} ms   baseline: copy of the same {:.1} MB {:>7.2} ms",
            format!("label a {name} (metadata only)"),
            ms(write),
            file.len() as f64 / 1e6,
            ms(copy)
        );
    }
    let (w, h) = (3840u32, 2160u32);
    let pixels = vec![200u8; (w * h * 4) as usize];
    let mut canvas = pixels.clone();
    let draw = best(runs, || {
        black_box(draw_label(black_box(&mut canvas), w, h, "AI生成", Corner::BottomRight).expect("fits"));
    });
    let pass = best(runs, || {
        canvas.copy_from_slice(black_box(&pixels));
    });
    println!(
        "{:<40} {:>8.2} ms   baseline: one copy of the 4K RGBA buffer {:>7.2} ms",
        "draw the visible label at 4K",
        ms(draw),
        ms(pass)
    );

    // The invisible watermark on a photo-like 1024 × 1024 image (smooth shapes under noise).
    let side = 1024u32;
    let grain = noise((side * side) as usize, 7);
    let photo: Vec<u8> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = ((i % side) as f32, (i / side) as f32);
            let shade = 120.0 + 50.0 * (x / 97.0).sin() * (y / 61.0).cos() + f32::from(grain[i as usize] % 48);
            let v = shade.clamp(0.0, 255.0) as u8;
            [v, v.saturating_sub(20), v / 2 + 60, 255]
        })
        .collect();
    let mark = ImageWatermark::new(b"benchmark watermark key 0123456789");
    let payload = Payload(0x0123_4567_89ab_cdef);
    let mut marked = photo.clone();
    mark.embed(&mut marked, side, side, payload).expect("embeds");
    assert_eq!(mark.detect(&marked, side, side).expect("reads").map(|f| f.payload), Some(payload));
    let embed = best(runs, || {
        let mut work = black_box(&photo).clone();
        mark.embed(&mut work, side, side, payload).expect("embeds");
        black_box(work);
    });
    let detect = best(runs, || {
        black_box(mark.detect(black_box(&marked), side, side).expect("reads"));
    });
    // An unmarked image is the slow case: every candidate period is read, rescaled where it
    // differs from the marked scale, and none decodes.
    assert_eq!(mark.detect(&photo, side, side).expect("reads"), None);
    let detect_unmarked = best(runs, || {
        black_box(mark.detect(black_box(&photo), side, side).expect("reads"));
    });
    let copy = best(runs, || {
        black_box(black_box(&photo).to_vec());
    });
    for (name, took, target) in
        [("embed", embed, 100.0), ("detect", detect, 50.0), ("detect (unmarked)", detect_unmarked, 50.0)]
    {
        println!(
            "{:<48} {:>8.2} ms   baseline: one copy of the 1024² RGBA buffer {:>7.2} ms   (target in wasm: {target} ms)",
            format!("{name} the image watermark at 1024²"),
            ms(took),
            ms(copy)
        );
    }
}
