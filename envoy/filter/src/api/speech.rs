//! OpenAI speech: `POST …/audio/speech`. The `input` is text like any other; the answer is the
//! generated audio (`wav`, `mp3`, raw `pcm` and others), which gets the implicit label where its
//! format carries one and, with `label.audible`, the audible label (Morse "AI").

use super::Shape;
use crate::json::Doc;

/// See the module doc.
#[derive(Debug)]
pub struct Speech;

impl Speech {
    /// True when the request asks for raw PCM (OpenAI's: 24 kHz, mono, 16-bit little-endian).
    pub fn wants_pcm(doc: &Doc) -> bool {
        doc.root.get(doc, "response_format").and_then(|n| n.as_str(doc)) == Some("pcm")
    }
}

impl Shape for Speech {
    fn name(&self) -> &'static str {
        "speech"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/audio/speech")
    }
}
