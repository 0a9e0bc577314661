//! Any other path: every string of a JSON body is inspected like any other (deny by default),
//! and a stream is read as OpenAI-compatible chat chunks, the most common shape.

use serde_json::Value;

use super::chat::Chat;
use super::Shape;
use crate::json::Doc;
use crate::sse::{Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Raw;

impl Shape for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn matches(&self, _path: &str) -> bool {
        true
    }

    fn is_raw(&self) -> bool {
        true
    }

    fn blocked_body(&self, message: &str) -> Value {
        Chat.blocked_body(message)
    }

    fn stream_fast(&self, lanes: &mut Lanes, event: &Event<'_>, data: &str, out: &mut Vec<u8>) -> bool {
        Chat.stream_fast(lanes, event, data, out)
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        Chat.stream_event(lanes, event, doc, out);
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        Chat.stream_block(lanes, out, newline);
    }

    fn stream_flush(&self, lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        Chat.stream_flush(lanes, pieces, out);
    }
}
