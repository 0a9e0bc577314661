//! `label` and `verify`: GB 45438 labels in files.

use std::path::{Path, PathBuf};

use aigc_edge::files::audible::{PcmFormat, Placement};
use aigc_edge::files::{FileFormat, Provenance, Verdict};
use aigc_edge::label::seal::{Keyring, PublicKey, Sealer, SigningKey};
use aigc_edge::label::visible::Corner;
use aigc_edge::watermark::image::{ImageWatermark, Payload};
use aigc_edge_image::Paint;
use clap::{ArgGroup, Args, ValueEnum};
use serde_json::{json, Value};

use crate::io::{print, read_path, Failure, Input, Output};
use crate::Status;

#[derive(Args)]
#[command(group(ArgGroup::new("who").required(true).args(["producer", "propagate"])))]
pub(crate) struct LabelArgs {
    /// The file to label; `-` reads standard input.
    #[arg(value_name = "FILE")]
    input: Input,
    /// Where to write the labeled file; `-` writes standard output (the label then goes to stderr).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Output,
    /// The producer's code (ContentProducer).
    #[arg(long, value_name = "CODE")]
    producer: Option<String>,
    /// The ProduceID; a random one by default.
    #[arg(long, value_name = "ID", requires = "producer")]
    produce_id: Option<String>,
    /// A shared key: seals the label with HMAC (--hmac) when there is no --sign, and keys the
    /// text watermark.
    #[arg(long, value_name = "K")]
    key_file: Option<PathBuf>,
    /// The hash of the HMAC --key-file seals with.
    #[arg(long, value_name = "HASH", value_enum, default_value_t = Hmac::Sha256, requires = "key_file")]
    hmac: Hmac,
    /// Sign with this SM2 private key (NAME.key from `keygen`): ReservedCode1, or ReservedCode2
    /// with --propagate. Anyone with NAME.pub can check it.
    #[arg(long, value_name = "NAME.key")]
    sign: Option<PathBuf>,
    /// Also watermark the text invisibly under --key-file (text files).
    #[arg(long, requires_all = ["producer", "key_file"])]
    watermark: bool,
    /// Also draw TEXT on the image, at least 5% of its shortest side high (PNG, JPEG, WebP).
    #[arg(long, value_name = "TEXT", requires = "producer")]
    visible: Option<String>,
    /// Also hide an invisible watermark in the image's pixels under --key-file, carrying the
    /// ProduceID's 64-bit digest (PNG, JPEG, WebP); it survives recompression, resizing and crops.
    #[arg(long, requires_all = ["producer", "key_file"])]
    image_watermark: bool,
    /// The --image-watermark payload instead of the ProduceID's digest: 16 hex digits.
    #[arg(long, value_name = "HEX", value_parser = watermark_payload, requires = "image_watermark")]
    watermark_payload: Option<Payload>,
    /// Where --visible draws: top-left, top-right, bottom-left, bottom-right.
    #[arg(long, value_name = "CORNER", default_value = "bottom-right", value_parser = corner, requires = "visible")]
    corner: Corner,
    /// Also add the audible label, Morse "AI" (short-long-short-short), at the start or the end
    /// (WAV, MP3; raw PCM with --pcm).
    #[arg(long, value_name = "WHERE", num_args = 0..=1, default_missing_value = "start", requires = "producer")]
    audible: Option<Placement>,
    /// The input is raw PCM, RATE:CHANNELS:FORMAT (FORMAT u8, s16le, s24le, s32le, f32le), e.g.
    /// 24000:1:s16le (OpenAI speech): only the audible label is written, as raw PCM carries no
    /// implicit label.
    #[arg(long, value_name = "LAYOUT", value_parser = pcm_layout, requires = "audible")]
    pcm: Option<PcmFormat>,
    /// JPEG quality of the image --visible or --image-watermark paints on (1-100).
    #[arg(long, value_name = "Q", default_value_t = 92, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Write the platform's propagation label (article 6) instead of the producer's.
    #[arg(long, requires = "platform", conflicts_with_all = ["producer", "watermark", "visible", "image_watermark"])]
    propagate: bool,
    /// The platform's code (PropagatePlatform).
    #[arg(long, value_name = "CODE", requires = "propagate")]
    platform: Option<String>,
    /// The PropagateID; a random one by default.
    #[arg(long, value_name = "ID", requires = "propagate")]
    propagate_id: Option<String>,
    /// The uploader declared the content generated.
    #[arg(long, requires = "propagate", conflicts_with = "detected")]
    declared: bool,
    /// The platform detected the content as generated.
    #[arg(long, requires = "propagate")]
    detected: bool,
}

fn pcm_layout(s: &str) -> Result<PcmFormat, String> {
    let bad = || format!("{s:?}: expected RATE:CHANNELS:FORMAT, e.g. 24000:1:s16le");
    let mut parts = s.split(':');
    let (Some(rate), Some(channels), Some(sample), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let sample = sample.parse().map_err(|e: String| format!("{}: {e}", bad()))?;
    Ok(PcmFormat {
        sample_rate: rate.parse().map_err(|_| bad())?,
        channels: channels.parse().map_err(|_| bad())?,
        sample,
    })
}

fn corner(s: &str) -> Result<Corner, String> {
    s.parse().map_err(|e: aigc_edge::label::visible::DrawError| e.to_string())
}

fn watermark_payload(s: &str) -> Result<Payload, String> {
    Payload::from_hex(s).map_err(|e| e.to_string())
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Files to read; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<Input>,
    /// The shared key that checks HMAC-sealed labels and finds the text and image watermarks.
    #[arg(long, value_name = "K")]
    key_file: Option<PathBuf>,
    /// SM2 public keys that check signed labels: a NAME.pub file (for any party), or a
    /// directory of CODE.pub files, each for the producer or platform whose code is CODE.
    #[arg(long, value_name = "PATH")]
    public_key: Vec<PathBuf>,
}

/// The hash of an HMAC seal.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Hmac {
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SM3 (GB/T 32905).
    Sm3,
}

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// Writes NAME.key and NAME.pub.
    #[arg(short = 'o', long = "output", value_name = "NAME")]
    name: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

fn with_extension(name: &Path, extension: &str) -> PathBuf {
    let mut path = name.as_os_str().to_owned();
    path.push(".");
    path.push(extension);
    PathBuf::from(path)
}

fn read_text(path: &Path) -> Result<String, Failure> {
    String::from_utf8(read_path(path)?).map_err(|_| Failure::Error(format!("{}: not UTF-8 text", path.display())))
}

pub(crate) fn keygen(args: &KeygenArgs) -> Result<Status, Failure> {
    let (private, public) = (with_extension(&args.name, "key"), with_extension(&args.name, "pub"));
    for path in [&private, &public] {
        if path.exists() && !args.force {
            return Err(format!("{}: exists (--force replaces it)", path.display()).into());
        }
    }
    let key = SigningKey::generate(|secret| getrandom::fill(secret))
        .map_err(|e| format!("no random source for the key: {e}"))?;
    write_private(&private, key.to_pem().as_bytes())?;
    std::fs::write(&public, key.public_key().to_pem()).map_err(|e| crate::io::io_failure(public.display(), e))?;
    print(
        &serde_json::to_string(&json!({
            "private_key": private.display().to_string(),
            "public_key": public.display().to_string(),
            "public_point": key.public_key().to_hex(),
        }))
        .map_err(|e| e.to_string())?,
    )?;
    Ok(Status::Clean)
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let fail = |e| crate::io::io_failure(path.display(), e);
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)
}

/// The keyring `verify` checks codes with.
fn keyring(key: Option<&[u8]>, public: &[PathBuf]) -> Result<Keyring, Failure> {
    let mut keys = Keyring::new();
    if let Some(key) = key {
        keys = keys.with_shared_key(key);
    }
    let load = |path: &Path| {
        PublicKey::from_pem(&read_text(path)?).map_err(|e| Failure::Error(format!("{}: {e}", path.display())))
    };
    for path in public {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| crate::io::io_failure(path.display(), e))?;
            let mut found = 0;
            for entry in entries {
                let file = entry.map_err(|e| crate::io::io_failure(path.display(), e))?.path();
                if file.extension().is_some_and(|e| e == "pub") {
                    let party = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    keys = keys.with_party_key(&party, load(&file)?);
                    found += 1;
                }
            }
            if found == 0 {
                return Err(format!("{}: no CODE.pub files", path.display()).into());
            }
        } else {
            keys = keys.with_public_key(load(path)?);
        }
    }
    Ok(keys)
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes());
    }
    aigc_edge::label::produce_id(&bytes)
}

pub(crate) fn label(args: &LabelArgs) -> Result<Status, Failure> {
    let mut bytes = args.input.read_all()?;
    let key = args.key_file.as_deref().map(read_path).transpose()?;
    let signing = match &args.sign {
        Some(path) => Some(SigningKey::from_pem(&read_text(path)?).map_err(|e| format!("{}: {e}", path.display()))?),
        None => None,
    };
    let sealer = match (&signing, &key) {
        (Some(k), _) => Some(Sealer::Sm2(k)),
        (None, Some(k)) => Some(match args.hmac {
            Hmac::Sha256 => Sealer::HmacSha256(k),
            Hmac::Sm3 => Sealer::HmacSm3(k),
        }),
        (None, None) => None,
    };
    let at = |e: aigc_edge::files::FileError| format!("{}: {e}", args.input);
    let (out, label) = if args.propagate {
        let platform = args.platform.as_deref().ok_or("--propagate needs --platform CODE")?;
        let provenance = match (args.declared, args.detected) {
            (true, _) => Provenance::Declared,
            (_, true) => Provenance::Detected,
            _ => Provenance::Unknown,
        };
        let id = args.propagate_id.clone().unwrap_or_else(random_id);
        aigc_edge::files::propagate(&bytes, platform, &id, provenance, sealer.as_ref()).map_err(at)?
    } else {
        let producer = args.producer.as_deref().ok_or("label needs --producer CODE (or --propagate)")?;
        let id = args.produce_id.clone().unwrap_or_else(random_id);
        let mut label = aigc_edge::ImplicitLabel::generated(producer, &id).map_err(|e| e.to_string())?;
        if let Some(sealer) = &sealer {
            label.seal_producer(sealer);
        }
        if args.visible.is_some() || args.image_watermark {
            let mark = key.as_deref().filter(|_| args.image_watermark).map(ImageWatermark::new);
            let payload = args.watermark_payload.unwrap_or_else(|| Payload::from_produce_id(&label.produce_id));
            let paint = Paint {
                visible: args.visible.as_deref().map(|text| (text, args.corner)),
                watermark: mark.as_ref().map(|mark| (mark, payload)),
                quality: args.quality,
            };
            let painted = aigc_edge_image::paint(&bytes, &paint).map_err(|e| format!("{}: {e}", args.input))?;
            // Asked for by name, a watermark the image cannot carry is an error here.
            if let aigc_edge_image::Watermarked::Skipped(e) = painted.watermark {
                return Err(format!("{}: {e}", args.input).into());
            }
            bytes = painted.bytes;
        }
        if let Some(placement) = args.audible {
            if let Some(format) = args.pcm {
                let out = aigc_edge::files::audible::pcm(&bytes, format, placement)
                    .map_err(|e| format!("{}: {e}", args.input))?;
                args.output.write(&out)?;
                eprintln!(
                    "aigc-edge: raw PCM carries no implicit label; deliver it beside the audio: {}",
                    label.to_json()
                );
                return Ok(Status::Clean);
            }
            bytes = aigc_edge::files::audible::mark(&bytes, placement).map_err(at)?;
        }
        if args.watermark {
            // The body is marked before the label goes in, so the front matter stays plain.
            let k = key.as_deref().ok_or("--watermark needs --key-file K")?;
            let text = String::from_utf8(bytes).map_err(|_| "--watermark applies to text files only")?;
            bytes = aigc_edge::watermark::embed(&text, &label.produce_id, k).map_err(|e| e.to_string())?.into_bytes();
        }
        (aigc_edge::files::write_label(&bytes, &label).map_err(at)?, label)
    };
    args.output.write(&out)?;
    match args.output {
        Output::Stdout => eprintln!("{}", label.to_json()),
        Output::Path(_) => print(&label.to_json())?,
    }
    Ok(Status::Clean)
}

/// `verify`: [`Status::Found`] when some file is not compliant; an unreadable file is an error
/// (exit 2) after every file was reported.
pub(crate) fn verify(args: &VerifyArgs) -> Result<Status, Failure> {
    let key = args.key_file.as_deref().map(read_path).transpose()?;
    let keys = keyring(key.as_deref(), &args.public_key)?;
    let image_mark = key.as_deref().map(ImageWatermark::new);
    let mut reports = Vec::new();
    let (mut not_compliant, mut unreadable) = (false, 0usize);
    for input in &args.files {
        let name = input.to_string();
        let checked = input.read_all().and_then(|bytes| {
            let found = aigc_edge::files::verify(&bytes, &keys).map_err(|e| Failure::Error(e.to_string()))?;
            Ok((bytes, found))
        });
        let (bytes, (format, labels, verdict)) = match checked {
            Ok(checked) => checked,
            Err(Failure::Error(e)) => {
                reports.push(json!({"file": name, "error": e.trim_start_matches(&format!("{name}: "))}));
                unreadable += 1;
                continue;
            }
            Err(Failure::Closed) => return Err(Failure::Closed),
        };
        not_compliant |= verdict != Verdict::Compliant;
        let mut report = json!({"file": name});
        if let (Some(out), Value::Object(fields)) =
            (report.as_object_mut(), aigc_edge::files::report_json(format, &labels, Some((&verdict, &keys))))
        {
            out.extend(fields);
        }
        if format == FileFormat::Text {
            let text = String::from_utf8_lossy(&bytes);
            report["watermark"] = match key.as_deref().and_then(|k| aigc_edge::watermark::detect(&text, k)) {
                Some(d) => json!({"payload": d.payload, "copies": d.copies}),
                None => json!("none"),
            };
        }
        if let (Some(mark), FileFormat::Png | FileFormat::Jpeg | FileFormat::Webp) = (&image_mark, format) {
            report["image_watermark"] = match aigc_edge_image::detect_watermark(&bytes, mark) {
                Ok(Some(found)) => json!({
                    "found": true,
                    "payload": found.payload.to_hex(),
                    "confidence": (f64::from(found.confidence) * 1000.0).round() / 1000.0,
                }),
                Ok(None) => json!({"found": false}),
                Err(e) => json!({"found": false, "error": e}),
            };
        }
        reports.push(report);
    }
    print(&serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?)?;
    if unreadable > 0 {
        return Err(format!("{unreadable} of {} files could not be read", args.files.len()).into());
    }
    Ok(Status::found_if(not_compliant))
}
