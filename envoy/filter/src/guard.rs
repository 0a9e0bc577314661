//! The guard model's part of one exchange: what it is asked about, the keyword layer's verdict
//! waiting on its answer, and what its answer makes of it. The protocol itself (request body,
//! reading the answer, category mapping) is the core's `aigc_edge::guard`; the glue sends.

use aigc_edge::policy::OnLimit;
use aigc_edge::Action;

use crate::exchange::{sha256_hex, AuditRecord, Direction, Exchange, Finding, Layer, ResponseMode, Verdict};

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
    /// Most bytes held for verdicts (the plugin's `max_body_bytes`).
    limit: usize,
    /// Past the limit under fail_open: the rest of the stream goes out unjudged.
    bypassed: bool,
}

/// Most windows waiting for verdicts at once: past it the open window grows instead (a fast
/// upstream cannot make the filter send thousands of calls).
pub const MAX_PENDING_WINDOWS: usize = 16;

const SENTENCE_ENDS: [char; 8] = ['。', '！', '？', '!', '?', '.', '\n', '；'];

impl StreamGuard {
    /// A guard for one stream that holds at most `limit` bytes for verdicts.
    pub fn new(settings: StreamSettings, limit: usize) -> StreamGuard {
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
            limit,
            bypassed: false,
        }
    }

    /// Bytes held: the open window's text and bytes, and the bytes of windows awaiting verdicts.
    fn held(&self) -> usize {
        self.window.len() + self.window_out.len() + self.windows.iter().map(|w| w.out.len()).sum::<usize>()
    }

    /// True when more is held than the limit allows: `on_error` must decide ([`Self::give_up`]).
    pub fn over_limit(&self) -> bool {
        !self.cut && !self.bypassed && self.held() > self.limit
    }

    /// Stops judging: under fail_closed the stream is cut (nothing held goes out); under
    /// fail_open everything held goes out in order and the rest flows unjudged.
    pub fn give_up(&mut self, fail_closed: bool) {
        if fail_closed {
            self.cut = true;
            self.windows.clear();
            self.ready.clear();
            self.window.clear();
            self.window_out.clear();
            return;
        }
        self.bypassed = true;
        for w in core::mem::take(&mut self.windows) {
            self.ready.extend(w.out);
        }
        self.ready.append(&mut self.window_out);
        self.window.clear();
    }

    /// Bytes of a body callback with the text they released; windows that are full, at a
    /// sentence end or old enough close and are asked about (`ask` builds the request body).
    pub fn push(&mut self, out: Vec<u8>, released: &str, now_ms: u64, end: bool, ask: &dyn Fn(&str) -> Vec<u8>) {
        if self.cut {
            return;
        }
        if self.bypassed {
            self.ready.extend_from_slice(&out);
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
        let pending = self.windows.iter().filter(|w| w.safe.is_none()).count();
        if (full || sentence || old) && pending < MAX_PENDING_WINDOWS || end {
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
        !self.cut && !self.bypassed && !self.windows.is_empty()
    }
}

/// What one guard answer came to, once read and put through the policy.
enum Judged {
    /// Below the acting severity.
    Passed,
    /// A verdict the policy acts on.
    Acted(aigc_edge::guard::Decided),
    /// No usable answer: the action `on_error` gives (recorded already).
    Failed(Action),
}

impl Exchange {
    /// Reads a guard answer about `direction` and counts its outcome.
    fn judge(&mut self, direction: Direction, answer: Result<(u16, Vec<u8>), String>) -> Judged {
        let plugin = self.plugin.clone();
        let Some(guard) = &plugin.config.guard else { return Judged::Passed };
        let judged =
            answer.and_then(|(status, body)| guard.model.read_response(status, &body).map_err(|e| e.to_string()));
        match judged {
            Ok(judgement) => match guard.model.decide(&judgement, self.filter.policy()) {
                None => {
                    self.asking.outcomes.push(Outcome::Passed);
                    Judged::Passed
                }
                Some(decided) => {
                    self.asking.outcomes.push(Outcome::Acted);
                    Judged::Acted(decided)
                }
            },
            Err(why) => {
                self.asking.outcomes.push(Outcome::Failed);
                self.asking.failures.push(why);
                let action = match guard.on_error {
                    OnLimit::FailClosed => Action::Block,
                    OnLimit::FailOpen => Action::Pass,
                };
                self.note(direction, Finding::GuardError, action);
                Judged::Failed(action)
            }
        }
    }

    /// Ends a stream on the guard layer's word: the API's own end goes out next.
    fn cut_stream_by_guard(&mut self) {
        self.response_blocked = true;
        let end = match &mut self.response {
            ResponseMode::Sse(sse) => sse.cut_now(),
            _ => Vec::new(),
        };
        if let Some(sg) = self.stream_guard.as_mut() {
            sg.push_ready(end);
        }
    }

    /// Records the guard's verdict on `text` in the audit log.
    fn record_guard(&mut self, direction: Direction, decided: aigc_edge::guard::Decided, text: &str) {
        self.audit.push(AuditRecord {
            direction,
            finding: decided.category.map_or(Finding::Uncategorized, Finding::Risk),
            action: decided.action,
            match_sha256: sha256_hex(text.as_bytes()),
            layer: Layer::Guard,
        });
    }
    /// Asks the guard model about `direction`'s texts when it is configured for them;
    /// `otherwise` is the verdict if it lets them pass.
    pub(crate) fn ask_guard(&mut self, direction: Direction, otherwise: Verdict) -> Verdict {
        let plugin = self.plugin.clone();
        let Some(guard) = &plugin.config.guard else { return otherwise };
        let asked = match direction {
            Direction::Request => guard.requests,
            Direction::Response => guard.responses && self.is_success(),
        };
        let text = self.asking.text(direction);
        if !asked || text.trim().is_empty() {
            return otherwise;
        }
        let prompt = self.asking.text(Direction::Request);
        let context = (direction == Direction::Response && !prompt.is_empty()).then_some(prompt);
        let body = guard.model.request(text, context);
        self.asking.wait(direction, otherwise);
        Verdict::Ask(GuardCall { body })
    }

    /// The guard's answer (its status and body, or why there is none) to the call the last
    /// [`Verdict::Ask`] asked for: the verdict the glue applies. Below the acting severity the
    /// keyword layer's verdict stands; above it the policy's action for the mapped category;
    /// no usable answer, `on_error`.
    pub fn guard_answer(&mut self, answer: Result<(u16, Vec<u8>), String>) -> Verdict {
        let Some((direction, otherwise)) = self.asking.take_waiting() else { return Verdict::Continue };
        let (action, message) = match self.judge(direction, answer) {
            Judged::Passed => return otherwise,
            Judged::Acted(decided) => {
                let text = self.asking.text(direction).to_string();
                self.record_guard(direction, decided, &text);
                (decided.action, "blocked by content policy")
            }
            Judged::Failed(action) => (action, "refused: the content classifier could not judge it"),
        };
        if action != Action::Block || !self.enforcing() {
            return otherwise;
        }
        match direction {
            Direction::Request => {
                Verdict::Reply { status: 400, body: self.api.error_body(&format!("prompt {message}"), "prompt") }
            }
            Direction::Response => {
                self.response_blocked = true;
                self.blocked_response(&format!("response {message}"))
            }
        }
    }

    /// The host's clock (milliseconds), before each body callback: stream windows close when
    /// they have been open `guard.stream.flush_ms`.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// A stream's output through the guard layer, when it judges streams: what may go out now
    /// (in `hold` mode, what judged windows let out), or `Pause` at the end while verdicts
    /// are awaited.
    pub(crate) fn stream_through_guard(&mut self, out: Vec<u8>, end: bool) -> Verdict {
        let plugin = self.plugin.clone();
        let (Some(guard), true) = (&plugin.config.guard, self.is_success()) else {
            return Verdict::Replace { body: out, headers: Vec::new() };
        };
        if !guard.responses {
            return Verdict::Replace { body: out, headers: Vec::new() };
        }
        let released = match &mut self.response {
            ResponseMode::Sse(sse) => sse.take_released(),
            _ => String::new(),
        };
        let prompt = self.asking.text(Direction::Request).to_string();
        let ask = |text: &str| guard.model.request(text, (!prompt.is_empty()).then_some(prompt.as_str()));
        let now = self.now_ms;
        let limit = plugin.config.max_body_bytes();
        let sg = self.stream_guard.get_or_insert_with(|| StreamGuard::new(guard.stream, limit));
        sg.push(out, &released, now, end, &ask);
        if sg.over_limit() {
            // More held for verdicts than max_body_bytes: on_error decides, as for a failed call.
            let fail_closed = guard.on_error == OnLimit::FailClosed;
            sg.give_up(fail_closed);
            let action = if fail_closed { Action::Block } else { Action::Pass };
            self.note(Direction::Response, Finding::Limit, action);
            if fail_closed {
                self.cut_stream_by_guard();
            }
        }
        let Some(sg) = self.stream_guard.as_mut() else { return Verdict::Continue };
        if end && sg.waiting() {
            self.stream_end_waiting = true;
            return Verdict::Pause;
        }
        Verdict::Replace { body: sg.take_ready(), headers: Vec::new() }
    }

    /// The stream windows' guard calls to send, taken: `(window id, call)`.
    pub fn take_stream_calls(&mut self) -> Vec<(u64, GuardCall)> {
        self.stream_guard.as_mut().map(StreamGuard::take_calls).unwrap_or_default()
    }

    /// The guard's answer about stream window `id`. An unsafe verdict (or a failure under
    /// `fail_closed`) cuts the stream with the API's own end; returns the bytes to send when
    /// the stream's end was waiting for this verdict (the glue replaces its buffer and
    /// resumes), else `None` (what is cleared goes out with the next chunk).
    pub fn stream_guard_answer(&mut self, id: u64, answer: Result<(u16, Vec<u8>), String>) -> Option<Verdict> {
        let (safe, decided) = match self.judge(Direction::Response, answer) {
            Judged::Passed => (true, None),
            Judged::Acted(d) => (d.action != Action::Block, Some(d)),
            Judged::Failed(action) => (action != Action::Block, None),
        };
        let sg = self.stream_guard.as_mut()?;
        let was_cut = sg.cut;
        let text = sg.answer(id, safe);
        let cut = sg.cut && !was_cut;
        if let Some(d) = decided {
            self.record_guard(Direction::Response, d, &text);
        }
        if cut {
            self.cut_stream_by_guard();
        }
        let sg = self.stream_guard.as_mut()?;
        if self.stream_end_waiting && !sg.waiting() {
            self.stream_end_waiting = false;
            return Some(Verdict::Replace { body: sg.take_ready(), headers: Vec::new() });
        }
        None
    }
}
