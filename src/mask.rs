//! Masking: rewrites spans of text that arrives in order, whole or in pieces.

use crate::policy::{Mask, MaskStyle};
use crate::scanner::utf8_width;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// A fixed replacement (a PII placeholder); `None` for the policy's mask.
    pub(crate) with: Option<String>,
}

impl Span {
    pub(crate) fn masked(start: usize, end: usize) -> Span {
        Span { start, end, with: None }
    }
}

/// Rewrites spans of a byte sequence that arrives in order, possibly in pieces.
#[derive(Clone, Debug, Default)]
pub(crate) struct MaskWriter {
    /// Spans not yet fully written, sorted by start. They mostly arrive in order, so an insert
    /// lands at the back and the front is taken in O(1), even for a text with many hits.
    spans: std::collections::VecDeque<Span>,
    /// Bytes before this offset are dropped (a replacement was written for them).
    skip_until: usize,
    /// Characters before this offset become the mask character.
    char_until: usize,
}

impl MaskWriter {
    pub(crate) fn add(&mut self, span: Span) {
        let at = self.spans.partition_point(|s| s.start <= span.start);
        self.spans.insert(at, span);
    }

    /// Writes `bytes` (which start at offset `base`) to `out`, rewriting spans.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, bytes: &[u8], base: usize, mask: &Mask) {
        let end = base + bytes.len();
        let mut at = base;
        while at < end {
            let i = at - base;
            if at < self.skip_until {
                at = self.skip_until.min(end);
                continue;
            }
            if let Some(span) = self.spans.front().filter(|s| s.start <= at) {
                let inside = at > span.start;
                let Some(span) = self.spans.pop_front() else { break };
                if span.end <= at {
                    continue;
                }
                match (&span.with, mask.style) {
                    (Some(with), _) => {
                        if !inside {
                            out.extend_from_slice(with.as_bytes());
                        }
                        self.skip_until = span.end;
                    }
                    (None, MaskStyle::Replace) => {
                        if !inside {
                            out.extend_from_slice(mask.with.as_bytes());
                        }
                        self.skip_until = span.end;
                    }
                    (None, MaskStyle::Char) => self.char_until = self.char_until.max(span.end),
                }
                continue;
            }
            if at < self.char_until {
                let width = utf8_width(bytes[i]).max(1);
                let mut buf = [0u8; 4];
                out.extend_from_slice(mask.char.encode_utf8(&mut buf).as_bytes());
                at += width;
                continue;
            }
            let next = self.spans.front().map_or(end, |s| s.start.min(end));
            out.extend_from_slice(&bytes[i..next - base]);
            at = next;
        }
    }
}
