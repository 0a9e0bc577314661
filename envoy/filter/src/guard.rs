//! The guard model's part of one exchange: what it is asked about, the keyword layer's verdict
//! waiting on its answer, and what its answer makes of it. The protocol itself (request body,
//! reading the answer, category mapping) is the core's `aigc_edge::guard`; the glue sends.

use crate::exchange::{Direction, Verdict};

/// A call to the guard model the glue must make, then hand the answer to
/// `Exchange::guard_answer`. Cluster, path, authority and timeout come from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardCall {
    /// The request body.
    pub body: Vec<u8>,
}

/// What a guard call came to, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Below the acting severity.
    Passed,
    /// A verdict the policy acted on (whatever the action).
    Acted,
    /// No usable answer: `on_error` decided.
    Failed,
}

impl Outcome {
    /// `passed`, `acted`, `failed`: the `outcome` label of `aigc_edge_guard_calls_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Acted => "acted",
            Outcome::Failed => "failed",
        }
    }
}

/// Per exchange: the texts inspected each way, and the call in flight.
#[derive(Debug, Default)]
pub struct Asking {
    prompt: String,
    answer: String,
    /// The direction asked about and the keyword layer's verdict, applied when the guard passes.
    waiting: Option<(Direction, Verdict)>,
    /// Outcomes of this exchange's calls, for the glue to count.
    pub outcomes: Vec<Outcome>,
    /// Why calls failed, for the glue to log.
    pub failures: Vec<String>,
}

impl Asking {
    /// Notes a text the keyword layer inspected (every string of every message).
    pub fn inspected(&mut self, direction: Direction, text: &str) {
        let all = match direction {
            Direction::Request => &mut self.prompt,
            Direction::Response => &mut self.answer,
        };
        if !text.trim().is_empty() {
            if !all.is_empty() {
                all.push('\n');
            }
            all.push_str(text);
        }
    }

    /// Notes every text of a body.
    pub fn inspected_all(&mut self, direction: Direction, texts: &[String]) {
        for text in texts {
            self.inspected(direction, text);
        }
    }

    /// The texts of `direction` so far.
    pub fn text(&self, direction: Direction) -> &str {
        match direction {
            Direction::Request => &self.prompt,
            Direction::Response => &self.answer,
        }
    }

    /// Starts a call: `otherwise` waits for the answer.
    pub fn wait(&mut self, direction: Direction, otherwise: Verdict) {
        self.waiting = Some((direction, otherwise));
    }

    /// The call in flight, taken.
    pub fn take_waiting(&mut self) -> Option<(Direction, Verdict)> {
        self.waiting.take()
    }

    /// True while a call is in flight.
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }
}

/// How streamed answers are judged (`guard.stream`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamMode {
    /// Text goes out only after the verdict on its window and on the next one, whose request
    /// repeats its tail: a harmful sentence across a window boundary is cut before any of it
    /// reaches the client. Adds up to two windows of latency.
    Hold,
    /// Text flows as it comes; an unsafe verdict cuts the stream at the next event.
    Audit,
}

/// See [`StreamMode`]; windows in characters of released text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// `hold` or `audit` (the default).
    pub mode: StreamMode,
    /// A window closes at this many characters, or earlier at a sentence end past a quarter of
    /// it, or when it has been open `flush_ms`.
    pub window_chars: usize,
    /// Characters of the previous window repeated at the start of the next request.
    pub overlap_chars: usize,
    /// Most milliseconds a window stays open, so a slow stream is judged and released anyway.
    pub flush_ms: u64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings { mode: StreamMode::Audit, window_chars: 300, overlap_chars: 80, flush_ms: 1000 }
    }
}

/// One window sent to the guard.
#[derive(Debug)]
struct Window {
    id: u64,
    /// The bytes the window's text came in (hold mode; empty in audit mode).
    out: Vec<u8>,
    /// `Some(true)` safe, `Some(false)` cut, `None` waiting.
    safe: Option<bool>,
    /// The judged text (with the overlap), for the audit record's hash.
    text: String,
}

/// The guard's part of one streamed answer: windows of released text, their calls and what
/// their verdicts let out.
#[derive(Debug)]
pub struct StreamGuard {
    settings: StreamSettings,
    window: String,
    window_out: Vec<u8>,
    opened_ms: Option<u64>,
    overlap: String,
    next_id: u64,
    windows: std::collections::VecDeque<Window>,
    ready: Vec<u8>,
    calls: Vec<(u64, GuardCall)>,
    ended: bool,
    /// An unsafe verdict (or a failure under fail_closed) arrived: the stream is cut.
    pub cut: bool,
}

const SENTENCE_ENDS: [char; 8] = ['。', '！', '？', '!', '?', '.', '\n', '；'];

impl StreamGuard {
    /// A guard for one stream.
    pub fn new(settings: StreamSettings) -> StreamGuard {
        StreamGuard {
            settings,
            window: String::new(),
            window_out: Vec::new(),
            opened_ms: None,
            overlap: String::new(),
            next_id: 0,
            windows: Default::default(),
            ready: Vec::new(),
            calls: Vec::new(),
            ended: false,
            cut: false,
        }
    }

    /// Bytes of a body callback with the text they released; windows that are full, at a
    /// sentence end or old enough close and are asked about (`ask` builds the request body).
    pub fn push(&mut self, out: Vec<u8>, released: &str, now_ms: u64, end: bool, ask: &dyn Fn(&str) -> Vec<u8>) {
        if self.cut {
            return;
        }
        match self.settings.mode {
            StreamMode::Audit => self.ready.extend_from_slice(&out),
            StreamMode::Hold => self.window_out.extend_from_slice(&out),
        }
        if !released.is_empty() && self.opened_ms.is_none() {
            self.opened_ms = Some(now_ms);
        }
        self.window.push_str(released);
        let chars = self.window.chars().count();
        let full = chars >= self.settings.window_chars;
        let sentence =
            chars * 4 >= self.settings.window_chars && self.window.trim_end_matches(' ').ends_with(SENTENCE_ENDS);
        let old = self.opened_ms.is_some_and(|t| now_ms.saturating_sub(t) >= self.settings.flush_ms);
        if full || sentence || old || end {
            self.close(ask);
        }
        if end {
            self.ended = true;
        }
        self.release();
    }

    fn close(&mut self, ask: &dyn Fn(&str) -> Vec<u8>) {
        let window = core::mem::take(&mut self.window);
        let out = core::mem::take(&mut self.window_out);
        self.opened_ms = None;
        let id = self.next_id;
        self.next_id += 1;
        if window.trim().is_empty() {
            self.windows.push_back(Window { id, out, safe: Some(true), text: String::new() });
            return;
        }
        let text = format!("{}{window}", self.overlap);
        self.calls.push((id, GuardCall { body: ask(&text) }));
        let skip = text.chars().count().saturating_sub(self.settings.overlap_chars);
        self.overlap = text.chars().skip(skip).collect();
        self.windows.push_back(Window { id, out, safe: None, text });
    }

    /// The verdict on window `id`; returns the judged text (for the audit record's hash).
    pub fn answer(&mut self, id: u64, safe: bool) -> String {
        let mut text = String::new();
        if let Some(w) = self.windows.iter_mut().find(|w| w.id == id) {
            w.safe = Some(safe);
            text = w.text.clone();
        }
        if !safe {
            self.cut = true;
            self.windows.clear();
            if self.settings.mode == StreamMode::Audit {
                // What flowed is out; what waits for the next chunk need not go.
                self.ready.clear();
            }
        }
        self.release();
        text
    }

    /// Hold mode lets a window out once it and the next are judged safe (the next repeats its
    /// tail), or it is the last of an ended stream.
    fn release(&mut self) {
        loop {
            let releasable = match (self.windows.front(), self.windows.get(1)) {
                (Some(w), _) if self.settings.mode == StreamMode::Audit => w.safe.is_some(),
                (Some(w), Some(next)) => w.safe == Some(true) && next.safe == Some(true),
                (Some(w), None) => w.safe == Some(true) && self.ended && self.window.is_empty(),
                (None, _) => false,
            };
            if !releasable {
                return;
            }
            if let Some(w) = self.windows.pop_front() {
                self.ready.extend_from_slice(&w.out);
            }
        }
    }

    /// Bytes of our own (the API's end after a cut) to go out with what is cleared.
    pub fn push_ready(&mut self, bytes: Vec<u8>) {
        self.ready.extend(bytes);
    }

    /// The calls to send, taken.
    pub fn take_calls(&mut self) -> Vec<(u64, GuardCall)> {
        core::mem::take(&mut self.calls)
    }

    /// Bytes cleared to go out, taken.
    pub fn take_ready(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.ready)
    }

    /// True while a window waits for its verdict (or, in hold mode, for the next window's).
    pub fn waiting(&self) -> bool {
        !self.cut && !self.windows.is_empty()
    }
}
