//! One HTTP exchange through the filter, as a state machine with no proxy-wasm in it: the glue
//! in `lib.rs` feeds it headers and bodies and carries out what it returns, and the tests drive
//! it directly.

use std::rc::Rc;

use core::fmt;

use aigc_edge::label::seal::Sealer;
use aigc_edge::policy::OnLimit;

use aigc_edge::files::FileFormat;

use crate::config::{AudiblePlacement, OnConflict, LABEL_FOUND_HEADER};
use crate::platform;
use aigc_edge::{Action, Block, Category, Decision, Filter, Hit, ImplicitLabel, PiiKind};
use sha2::{Digest, Sha256};

use crate::api::Api;
use crate::body::{self, Body};
use crate::config::{Mode, Plugin};
use crate::guard::{Asking, GuardCall, StreamGuard};
use crate::json::{quote, Doc};
use crate::sse::{Format, SseFilter};

/// What the glue must do after a body callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through unchanged.
    Continue,
    /// Keep buffering.
    Pause,
    /// Replace the body (the whole buffered body, or this chunk of a stream), set these headers
    /// (`None` removes one), and go on.
    Replace { body: Vec<u8>, headers: Vec<(String, Option<String>)> },
    /// Answer locally and stop.
    Reply { status: u16, body: String },
    /// Ask the guard model (the keywords passed): the glue sends the call, waits, and hands
    /// the answer to [`Exchange::guard_answer`] for the verdict.
    Ask(GuardCall),
}

/// Header changes, and whether the body is buffered whole before it is decided.
///
/// Headers always go on at once: Envoy delivers no body to a filter that holds its headers. So
/// `content-length` is dropped here whenever the body may change, and a response blocked after
/// its headers left keeps its status and carries the content-filter error in its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderVerdict {
    /// Buffer the body until its end.
    pub buffer_body: bool,
    /// Headers to set (`None` removes).
    pub set: Vec<(String, Option<String>)>,
    /// Answer locally with this status and JSON body instead (request headers only).
    pub reply: Option<(u16, String)>,
    /// Hold the headers until the body is done: a header set then depends on the body.
    pub hold_headers: bool,
}

/// Which way a body travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The client's request (prompts).
    Request,
    /// The upstream's answer (generated content).
    Response,
}

impl Direction {
    /// `request` or `response`, as audit records write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// What an audit record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A keyword of a TC260 risk category.
    Risk(Category),
    /// A keyword without a category.
    Uncategorized,
    /// Personal information of a kind.
    Pii(PiiKind),
    /// A body or stream over a limit.
    Limit,
    /// A body the filter cannot read (compressed).
    Unreadable,
    /// A generated file whose format carries no label.
    UnlabeledFile,
    /// An uploaded file holding two different labels, or a malformed one (platform mode).
    LabelConflict,
    /// The guard model could not be asked or its answer not read.
    GuardError,
}

impl Finding {
    fn of(hit: &Hit) -> Finding {
        hit.category.map_or(Finding::Uncategorized, Finding::Risk)
    }
}

impl fmt::Display for Finding {
    /// `A.1d`, `uncategorized`, `pii:mobile`, `limit`, `unreadable`, `unlabeled-file`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Risk(c) => write!(f, "{c}"),
            Finding::Uncategorized => f.write_str("uncategorized"),
            Finding::Pii(kind) => write!(f, "pii:{}", kind.as_str()),
            Finding::Limit => f.write_str("limit"),
            Finding::Unreadable => f.write_str("unreadable"),
            Finding::UnlabeledFile => f.write_str("unlabeled-file"),
            Finding::LabelConflict => f.write_str("label-conflict"),
            Finding::GuardError => f.write_str("guard-error"),
        }
    }
}

/// One audit record: never the raw text, only a hash of what matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Which way the body travelled.
    pub direction: Direction,
    /// What was found.
    pub finding: Finding,
    /// The action taken.
    pub action: Action,
    /// SHA-256 of the matched bytes (of the judged text, for the guard), hex.
    pub match_sha256: String,
    /// Which layer found it.
    pub layer: Layer,
}

/// The filtering layer behind an audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The keyword dictionary (and personal-information detectors, limits).
    Keyword,
    /// The guard model.
    Guard,
}

impl Layer {
    /// `keyword` or `guard`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Keyword => "keyword",
            Layer::Guard => "guard",
        }
    }
}

#[derive(Debug)]
pub(crate) enum ResponseMode {
    /// Not inspected.
    Pass,
    /// Not yet known: the first bytes decide between a stream and a whole body, whatever the
    /// content-type says.
    Sniff,
    /// A whole body, buffered.
    Json,
    /// A stream of events.
    Sse(Box<SseFilter>),
    /// Content the filter cannot read (compressed); `on_limit` decides.
    Unreadable,
    /// A generated file (image, audio, video): buffered and given the implicit label.
    Media,
    /// Refused (over the body limit): the rest of the body is dropped.
    Refused,
}

/// What [`Exchange::audible`] made of an answer.
enum Audible {
    /// A file with the rhythm, to be given the implicit label too.
    Marked(Vec<u8>),
    /// Raw PCM with the rhythm: no implicit label fits in it.
    Pcm(Vec<u8>),
    /// Nothing to add (not audio, or not configured).
    Unchanged,
}

/// True when `bytes` are newline-delimited JSON: two lines or more, the first a JSON object.
fn looks_like_ndjson(bytes: &[u8]) -> bool {
    // Fewer than two lines with a non-space byte on them cannot be NDJSON: the usual one-line
    // JSON answer is not validated as UTF-8 here and again when it is read.
    let (mut rest, mut filled) = (bytes, 0);
    while filled < 2 {
        let (line, tail) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], rest.get(i + 1..)),
            None => (rest, None),
        };
        filled += usize::from(line.iter().any(|b| !b.is_ascii_whitespace()));
        match tail {
            Some(tail) => rest = tail,
            None => break,
        }
    }
    if filled < 2 {
        return false;
    }
    let text = std::str::from_utf8(bytes).unwrap_or("");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().map(str::trim_start);
    first.is_some_and(|l| l.starts_with('{') && Doc::parse_str(l).is_ok()) && lines.next().is_some()
}

/// True when `bytes` (after a byte-order mark and blank lines) start like an event stream:
/// a `data`, `event`, `id` or `retry` field or a comment.
pub fn looks_like_sse(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len());
    let rest = &bytes[start..];
    [&b"data:"[..], b"event:", b"id:", b"retry:", b":"].iter().any(|f| rest.starts_with(f))
}

/// State of one request/response pair.
#[derive(Debug)]
pub struct Exchange {
    pub(crate) plugin: Rc<Plugin>,
    pub(crate) filter: Filter,
    /// The profile in force.
    pub profile: String,
    /// Why the request is refused before its body (an unknown or forbidden profile).
    refusal: Option<String>,
    pub(crate) api: Api,
    inspected: bool,
    /// Unique per response; labels, audit records and complaints cite it.
    pub produce_id: String,
    /// The response's implicit label, made (and signed) once for the header, body and files.
    label: std::cell::OnceCell<Option<ImplicitLabel>>,
    /// On an upload path in platform mode: whether the uploader declared the content generated.
    upload: Option<bool>,
    /// The request asked the speech API for raw PCM.
    wants_pcm: bool,
    /// Envoy route name, for audit records.
    pub route: String,
    request_type: Option<String>,
    response_type: Option<String>,
    status: u16,
    pub(crate) response: ResponseMode,
    /// Records waiting for the glue to log.
    pub audit: Vec<AuditRecord>,
    /// Set when the response was blocked or cut.
    pub response_blocked: bool,
    /// The guard model's part: texts asked about, the call in flight, outcomes.
    pub asking: Asking,
    /// The guard model's part of a streamed answer.
    pub(crate) stream_guard: Option<StreamGuard>,
    /// The stream's end waits for the guard's last verdicts (the glue paused it).
    pub stream_end_waiting: bool,
    /// The host's clock, in milliseconds, as of the last body callback.
    pub(crate) now_ms: u64,
}

/// Generated files the filter labels: images, audio and video.
fn is_media(content_type: &str) -> bool {
    let t = content_type.to_ascii_lowercase();
    t.starts_with("image/") || t.starts_with("audio/") || t.starts_with("video/mp4")
}

fn is_encoded(content_encoding: Option<&str>) -> bool {
    content_encoding.is_some_and(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Exchange {
    /// Starts an exchange for a request to `path`: the API from the normalized path, the
    /// profile from the route and the profile header (see [`Plugin::select`]).
    pub fn new(
        plugin: Rc<Plugin>,
        path: &str,
        profile_header: Option<&str>,
        route: Option<&str>,
        produce_id: String,
    ) -> Exchange {
        let (profile, filter, refusal) = match plugin.select(route, profile_header) {
            Ok((name, filter)) => (name.to_string(), filter.clone(), None),
            Err(why) => ("default".to_string(), plugin.default.clone(), Some(why)),
        };
        let api = Api::from_path(path);
        let inspected = plugin.config.inspect.covers(api, path);
        let upload = plugin.config.platform.as_ref().filter(|p| p.covers(path)).map(|_| false);
        Exchange {
            filter,
            profile,
            refusal,
            api,
            inspected,
            produce_id,
            label: std::cell::OnceCell::new(),
            upload,
            wants_pcm: false,
            route: route.unwrap_or("").to_string(),
            request_type: None,
            response_type: None,
            status: 0,
            response: ResponseMode::Pass,
            audit: Vec::new(),
            response_blocked: false,
            asking: Asking::default(),
            stream_guard: None,
            stream_end_waiting: false,
            now_ms: 0,
            plugin,
        }
    }

    pub(crate) fn enforcing(&self) -> bool {
        self.plugin.config.mode == Mode::Enforce
    }

    fn on_limit(&self) -> OnLimit {
        self.filter.policy().on_limit
    }

    /// What fail-closed or fail-open makes of something that cannot be inspected.
    fn unreadable_action(&self) -> Action {
        if self.on_limit() == OnLimit::FailClosed {
            Action::Block
        } else {
            Action::Pass
        }
    }

    /// Request headers: refuse a bad profile or an encoded body, buffer the body when prompts
    /// are inspected, and ask the upstream for an uncompressed answer so compressed responses
    /// cannot bypass the filter.
    /// `declared` is the platform's declaration header, when platform mode is on.
    pub fn request_headers(
        &mut self,
        has_body: bool,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        declared: Option<&str>,
    ) -> HeaderVerdict {
        let mut v = HeaderVerdict::default();
        if let Some(why) = &self.refusal {
            if self.enforcing() {
                v.reply = Some((400, self.api.error_body(why, "profile")));
                return v;
            }
        }
        if self.plugin.config.platform.is_some() && self.enforcing() {
            // Only the filter says what an upload holds: a client's own claim is dropped.
            v.set.push((LABEL_FOUND_HEADER.into(), None));
        }
        if let Some(upload) = &mut self.upload {
            *upload = declared.is_some_and(|d| matches!(d.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
            if !has_body {
                if self.enforcing() {
                    v.set.push((LABEL_FOUND_HEADER.into(), Some("none".into())));
                }
            } else if is_encoded(content_encoding) {
                self.note(Direction::Request, Finding::Unreadable, Action::Block);
                if self.enforcing() {
                    let message = "uploads with a Content-Encoding are not accepted: send the file uncompressed";
                    v.reply = Some((415, self.api.error_body(message, "upload")));
                    return v;
                }
            } else {
                self.request_type = content_type.map(str::to_string);
                v.buffer_body = true;
                v.hold_headers = self.enforcing();
                if self.enforcing() {
                    v.set.push(("content-length".into(), None));
                }
            }
        }
        if !self.inspected {
            return v;
        }
        if self.plugin.config.inspect.responses {
            v.set.push(("accept-encoding".into(), None));
        }
        if !(has_body && self.plugin.config.inspect.requests) {
            return v;
        }
        if is_encoded(content_encoding) {
            // An encoded prompt is refused rather than decoded: the filter carries no
            // decompressors (size, and no zip bomb can reach it), and clients send prompts plain.
            self.note(Direction::Request, Finding::Unreadable, Action::Block);
            if self.enforcing() {
                let message = "request bodies with a Content-Encoding are not accepted: send the body uncompressed";
                v.reply = Some((415, self.api.error_body(message, "prompt")));
            }
            return v;
        }
        self.request_type = content_type.map(str::to_string);
        v.buffer_body = true;
        if self.enforcing() {
            v.set.push(("content-length".into(), None));
        }
        v
    }

    /// The buffered body outgrew `max_body_bytes`: a prompt gets 413 (fail-closed), an answer
    /// the API's refusal in place of its body, the rest of which is dropped.
    pub fn too_large(&mut self, direction: Direction) -> Verdict {
        let action = self.unreadable_action();
        self.note(direction, Finding::Limit, action);
        if action == Action::Pass || !self.enforcing() {
            if direction == Direction::Response {
                self.response = ResponseMode::Pass;
            }
            return Verdict::Continue;
        }
        match direction {
            Direction::Request => {
                Verdict::Reply { status: 413, body: self.api.error_body("body exceeds the inspection limit", "prompt") }
            }
            Direction::Response => {
                self.response_blocked = true;
                self.response = ResponseMode::Refused;
                self.blocked_response("answer exceeds the inspection limit")
            }
        }
    }

    /// Records a finding with no matched text to hash.
    pub(crate) fn note(&mut self, direction: Direction, finding: Finding, action: Action) {
        let layer = if finding == Finding::GuardError { Layer::Guard } else { Layer::Keyword };
        self.audit.push(AuditRecord { direction, finding, action, match_sha256: String::new(), layer });
    }

    fn record(&mut self, direction: Direction, text: &str, d: &Decision) {
        for h in &d.hits {
            self.audit.push(AuditRecord {
                direction,
                finding: Finding::of(h),
                action: h.action,
                match_sha256: sha256_hex(text.as_bytes().get(h.start..h.end).unwrap_or(&[])),
                layer: Layer::Keyword,
            });
        }
        let pii_action = self.filter.policy().pii.action;
        for p in &d.pii {
            self.audit.push(AuditRecord {
                direction,
                finding: Finding::Pii(p.kind),
                action: pii_action,
                match_sha256: sha256_hex(text.as_bytes().get(p.start..p.end).unwrap_or(&[])),
                layer: Layer::Keyword,
            });
        }
        if d.limit_exceeded {
            self.note(direction, Finding::Limit, d.action);
        }
    }

    fn record_all(&mut self, direction: Direction, decisions: &[(String, Decision)]) {
        for (text, d) in decisions {
            self.record(direction, text, d);
        }
    }

    /// The whole request body.
    pub fn request_body(&mut self, bytes: &[u8]) -> Verdict {
        if !self.inspected || !self.plugin.config.inspect.requests {
            return self.upload_labels(bytes, Verdict::Continue);
        }
        let (action, new_body) = match body::read(bytes, self.request_type.as_deref()) {
            Ok(Body::Json(doc)) => {
                self.wants_pcm = self.api.name() == "speech" && crate::api::speech::Speech::wants_pcm(&doc);
                if self.api.is_raw() {
                    // A path no API claims: the body's shape may still say which API it is.
                    self.api = Api::from_body(&doc).unwrap_or(self.api);
                }
                let inspection = body::inspect_json(&self.filter, &doc, self.plugin.config.inspect.roles);
                self.record_all(Direction::Request, &inspection.decisions);
                self.asking.inspected_all(Direction::Request, &inspection.texts);
                (inspection.action, body::rewrite_json(&doc, &inspection, Vec::new()))
            }
            Ok(other) => self.inspect_other(Direction::Request, bytes, &other),
            Err(e) => {
                if self.refuse_unreadable(Direction::Request) {
                    let message = format!("prompt could not be read ({e}); it was not forwarded");
                    return Verdict::Reply { status: 400, body: self.api.error_body(&message, "prompt") };
                }
                self.check_as_text(Direction::Request, bytes)
            }
        };
        if action == Action::Block {
            // The keyword layer is decisive on a hit: no guard call.
            return if self.enforcing() {
                Verdict::Reply { status: 400, body: self.api.error_body("prompt blocked by content policy", "prompt") }
            } else {
                Verdict::Continue
            };
        }
        let verdict = match new_body {
            Some(body) if self.enforcing() => Verdict::Replace { headers: Vec::new(), body },
            _ => Verdict::Continue,
        };
        let verdict = self.upload_labels(bytes, verdict);
        if matches!(verdict, Verdict::Reply { .. }) {
            return verdict;
        }
        self.ask_guard(Direction::Request, verdict)
    }

    /// Platform mode on an upload path: every uploaded file's label read, kept and given the
    /// platform's fields; `x-aigc-label-found` says what was found. `verdict` is the text
    /// inspection's, whose body (if it rewrote one) is the one relabeled.
    fn upload_labels(&mut self, original: &[u8], verdict: Verdict) -> Verdict {
        let (Some(declared), Some(platform)) = (self.upload, self.plugin.config.platform.as_ref()) else {
            return verdict;
        };
        if !self.enforcing() {
            return verdict; // monitor mode changes nothing
        }
        let (mut headers, body) = match verdict {
            Verdict::Continue => (Vec::new(), None),
            Verdict::Replace { headers, body } => (headers, Some(body)),
            other => return other,
        };
        let current = body.as_deref().unwrap_or(original);
        let sealer = self.plugin.signing_key.as_ref().map(Sealer::Sm2);
        let relabeled = platform::relabel(
            current,
            self.request_type.as_deref(),
            &platform.code,
            &self.produce_id,
            declared,
            sealer.as_ref(),
        );
        let relabeled = match relabeled {
            Ok(r) => r,
            Err(e) => {
                if self.refuse_unreadable(Direction::Request) {
                    let message = format!("upload could not be read ({e}); it was not forwarded");
                    return Verdict::Reply { status: 400, body: self.api.error_body(&message, "upload") };
                }
                headers.push((LABEL_FOUND_HEADER.into(), Some("unreadable".into())));
                return Verdict::Replace { headers, body: body.unwrap_or_else(|| original.to_vec()) };
            }
        };
        if relabeled.conflict() && platform.on_conflict == OnConflict::Refuse {
            self.note(Direction::Request, Finding::LabelConflict, Action::Block);
            let message =
                "an uploaded file holds two different AIGC labels (GB 45438 allows one); it was not forwarded";
            return Verdict::Reply { status: 422, body: self.api.error_body(message, "upload") };
        }
        headers.push((LABEL_FOUND_HEADER.into(), Some(relabeled.header())));
        let body = relabeled.body.or(body).unwrap_or_else(|| original.to_vec());
        Verdict::Replace { headers, body }
    }

    /// A body that is not JSON: inspected, recorded; its action and new bytes.
    fn inspect_other(&mut self, direction: Direction, bytes: &[u8], read: &Body) -> (Action, Option<Vec<u8>>) {
        let outcome = body::inspect_other(&self.filter, bytes, read);
        self.record_all(direction, &outcome.decisions);
        self.asking.inspected_all(direction, &outcome.texts);
        (outcome.action, outcome.body)
    }

    /// Notes a body that cannot be read; true when it is refused (fail-closed, enforcing).
    fn refuse_unreadable(&mut self, direction: Direction) -> bool {
        let action = self.unreadable_action();
        self.note(direction, Finding::Unreadable, action);
        action == Action::Block && self.enforcing()
    }

    /// Fail-open: bytes that cannot be read are still checked as the text they hold.
    fn check_as_text(&mut self, direction: Direction, bytes: &[u8]) -> (Action, Option<Vec<u8>>) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let d = self.filter.check(&text);
        self.record(direction, &text, &d);
        (d.action, None)
    }

    fn label(&self) -> Option<ImplicitLabel> {
        self.label
            .get_or_init(|| {
                let mut label = ImplicitLabel::generated(&self.plugin.config.label.producer, &self.produce_id).ok()?;
                if let Some(key) = &self.plugin.signing_key {
                    label.seal_producer(&Sealer::Sm2(key));
                }
                Some(label)
            })
            .clone()
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Response headers. Every status is inspected (an error body can carry text too); only
    /// 2xx answers are labeled.
    pub fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> HeaderVerdict {
        let mut v = HeaderVerdict::default();
        self.status = status;
        self.response_type = content_type.map(str::to_string);
        if self.refusal.is_some() && self.enforcing() {
            return v;
        }
        let labels = self.enforcing() && self.is_success() && !self.api.is_raw();
        if labels {
            if let Some(label) = self.label() {
                v.set.push((self.plugin.config.label.header.clone(), Some(label.to_json())));
            }
            v.set.push(("x-aigc-produce-id".into(), Some(self.produce_id.clone())));
        }
        if !self.inspected || !self.plugin.config.inspect.responses {
            return v;
        }
        self.response = if is_encoded(content_encoding) {
            ResponseMode::Unreadable
        } else if labels && (content_type.is_some_and(is_media) || self.api.name() == "speech") {
            // A speech answer is audio whatever its type says (raw PCM comes as octet-stream).
            ResponseMode::Media
        } else if content_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream")) {
            self.stream(Format::Sse)
        } else if content_type.is_some_and(|t| t.to_ascii_lowercase().contains("ndjson")) {
            self.stream(Format::Ndjson)
        } else {
            ResponseMode::Sniff
        };
        if self.enforcing() {
            v.set.push(("content-length".into(), None));
        }
        v.buffer_body = self.response_buffered();
        v
    }

    fn stream(&self, format: Format) -> ResponseMode {
        let label = if self.enforcing() && self.is_success() { self.plugin.explicit_label.clone() } else { None };
        let limit = self.plugin.config.max_body_bytes();
        let mut sse = SseFilter::new(self.api, format, self.filter.clone(), label, limit);
        if self.plugin.config.guard.as_ref().is_some_and(|g| g.responses) {
            sse.track_released();
        }
        ResponseMode::Sse(Box::new(sse))
    }

    /// True when the glue must buffer the response body until its end.
    pub fn response_buffered(&self) -> bool {
        matches!(self.response, ResponseMode::Json | ResponseMode::Unreadable | ResponseMode::Media)
    }

    /// The implicit label written into a generated file; the file unchanged when its format
    /// carries none (recorded in the audit log).
    fn label_file(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let label = self.label()?;
        let drawn = self.visible(bytes, &label.produce_id);
        let bytes = drawn.as_deref().unwrap_or(bytes);
        let marked;
        let bytes = match self.audible(bytes) {
            Audible::Marked(out) => {
                marked = out;
                &marked[..]
            }
            // Raw PCM carries no implicit label: the header has it.
            Audible::Pcm(out) => return Some(out),
            Audible::Unchanged => bytes,
        };
        match aigc_edge::files::write_label(bytes, &label) {
            Ok(out) => Some(out),
            Err(_) => {
                self.note(Direction::Response, Finding::UnlabeledFile, Action::Flag);
                None
            }
        }
    }

    /// A generated image with the visible label drawn and the invisible watermark (the label's
    /// ProduceID) hidden, as configured (the visible build). An image it cannot draw on (too
    /// small for a label 5% high, another format) is noted and keeps its implicit label only; one
    /// too small for the watermark (under 96 px) gets the visible label alone.
    #[cfg(feature = "visible")]
    fn visible(&mut self, bytes: &[u8], produce_id: &str) -> Option<Vec<u8>> {
        use aigc_edge::watermark::image::Payload;
        use aigc_edge_image::Paint;
        let plugin = self.plugin.clone();
        let label = &plugin.config.label;
        if label.visible.is_none() && plugin.image_watermark.is_none() {
            return None;
        }
        if !matches!(FileFormat::detect(bytes), Some(FileFormat::Png | FileFormat::Jpeg | FileFormat::Webp)) {
            return None;
        }
        let visible = match &label.visible {
            Some(v) => Some((v.text.as_str(), v.corner.parse().ok()?)),
            None => None,
        };
        let watermark = plugin.image_watermark.as_ref().map(|m| (m, Payload::from_produce_id(produce_id)));
        // An image too small or too large for the watermark still gets the visible label, in
        // the same decode.
        match aigc_edge_image::paint(bytes, &Paint { visible, watermark, quality: 90 }) {
            Ok(painted) => Some(painted.bytes),
            Err(_) => {
                if visible.is_some() {
                    self.note(Direction::Response, Finding::UnlabeledFile, Action::Flag);
                }
                None
            }
        }
    }

    #[cfg(not(feature = "visible"))]
    fn visible(&mut self, _bytes: &[u8], _produce_id: &str) -> Option<Vec<u8>> {
        None
    }

    /// Generated audio with the audible label, when configured: WAV and MP3 by their bytes,
    /// raw PCM when the speech API was asked for it or the answer says `audio/pcm` / `audio/l16`.
    fn audible(&mut self, bytes: &[u8]) -> Audible {
        use aigc_edge::files::audible::{self, PcmFormat, SampleFormat};
        let Some(placement) = self.plugin.config.label.audible.map(AudiblePlacement::placement) else {
            return Audible::Unchanged;
        };
        let ct = self.response_type.as_deref().unwrap_or("").to_ascii_lowercase();
        match FileFormat::detect(bytes) {
            Some(FileFormat::Wav | FileFormat::Mp3) => match audible::mark(bytes, placement) {
                Ok(out) => Audible::Marked(out),
                Err(_) => {
                    self.note(Direction::Response, Finding::UnlabeledFile, Action::Flag);
                    Audible::Unchanged
                }
            },
            _ if self.wants_pcm || ct.starts_with("audio/pcm") || ct.starts_with("audio/l16") => {
                let format = PcmFormat { sample_rate: 24_000, channels: 1, sample: SampleFormat::S16Le };
                match audible::pcm(bytes, format, placement) {
                    Ok(out) => Audible::Pcm(out),
                    Err(_) => {
                        self.note(Direction::Response, Finding::UnlabeledFile, Action::Flag);
                        Audible::Unchanged
                    }
                }
            }
            _ => Audible::Unchanged,
        }
    }

    /// A chunk of a response body that is not buffered; `Replace` carries the bytes to send
    /// instead, `Pause` asks the glue to buffer from here on.
    pub fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Verdict {
        if let ResponseMode::Sniff = self.response {
            if chunk.is_empty() && !end_of_stream {
                return Verdict::Continue;
            }
            if looks_like_sse(chunk) {
                // An event stream, whatever its content-type says.
                self.response = self.stream(Format::Sse);
            } else {
                self.response = ResponseMode::Json;
                return if end_of_stream { self.response_body(chunk) } else { Verdict::Pause };
            }
        }
        if let ResponseMode::Refused = self.response {
            return Verdict::Replace { body: Vec::new(), headers: Vec::new() };
        }
        let ResponseMode::Sse(sse) = &mut self.response else { return Verdict::Continue };
        let out = sse.push(chunk, end_of_stream);
        let hits = sse.take_hits();
        let pii = sse.take_pii();
        let blocked = sse.blocked().cloned();
        let cut = sse.cut();
        let unreadable = sse.take_unreadable();
        for (hit, matched) in hits {
            self.audit.push(AuditRecord {
                direction: Direction::Response,
                finding: Finding::of(&hit),
                action: hit.action,
                match_sha256: sha256_hex(&matched),
                layer: Layer::Keyword,
            });
        }
        let pii_action = self.filter.policy().pii.action;
        for kind in pii {
            // The value went out redacted, or not at all: no hash of it is kept.
            self.note(Direction::Response, Finding::Pii(kind), pii_action);
        }
        for action in unreadable {
            self.note(Direction::Response, Finding::Unreadable, action);
        }
        if cut && !self.response_blocked {
            self.response_blocked = true;
            if let Some(Block::CarryLimit { .. }) = blocked {
                self.note(Direction::Response, Finding::Limit, Action::Block);
            }
        }
        if !self.enforcing() {
            return Verdict::Continue;
        }
        self.stream_through_guard(out, end_of_stream || cut)
    }

    /// The whole buffered response body.
    pub fn response_body(&mut self, bytes: &[u8]) -> Verdict {
        match self.response {
            ResponseMode::Unreadable => {
                if self.refuse_unreadable(Direction::Response) {
                    self.response_blocked = true;
                    return self.blocked_response("response could not be inspected (compressed)");
                }
                Verdict::Continue
            }
            // A whole body handed over at once (trailers, a test): decided by its bytes.
            ResponseMode::Json | ResponseMode::Sniff => self.answer(bytes),
            // A "file" that is text (a speech route answering JSON) is inspected as an answer.
            ResponseMode::Media if FileFormat::detect(bytes) == Some(FileFormat::Text) => self.answer(bytes),
            ResponseMode::Media => match self.label_file(bytes) {
                Some(out) => Verdict::Replace { body: out, headers: Vec::new() },
                None => Verdict::Continue,
            },
            ResponseMode::Refused => Verdict::Replace { body: Vec::new(), headers: Vec::new() },
            _ => Verdict::Continue,
        }
    }

    /// A whole answer: an event stream by its bytes, JSON, a form, text; labeled when 2xx.
    fn answer(&mut self, bytes: &[u8]) -> Verdict {
        let format =
            if looks_like_sse(bytes) { Some(Format::Sse) } else { looks_like_ndjson(bytes).then_some(Format::Ndjson) };
        if let Some(format) = format {
            self.response = self.stream(format);
            return self.response_chunk(bytes, true);
        }
        let (action, new_body) = match body::read(bytes, self.response_type.as_deref()) {
            Ok(Body::Json(doc)) => {
                let inspection = body::inspect_json(&self.filter, &doc, crate::config::Roles::All);
                self.record_all(Direction::Response, &inspection.decisions);
                self.asking.inspected_all(Direction::Response, &inspection.texts);
                let extra =
                    if inspection.action < Action::Block { self.answer_labels(&doc, &inspection) } else { Vec::new() };
                (inspection.action, body::rewrite_json(&doc, &inspection, extra))
            }
            Ok(other) => self.inspect_other(Direction::Response, bytes, &other),
            Err(_) => {
                if self.refuse_unreadable(Direction::Response) {
                    self.response_blocked = true;
                    return self.blocked_response("response could not be read");
                }
                self.check_as_text(Direction::Response, bytes)
            }
        };
        if action == Action::Block {
            if !self.enforcing() {
                return Verdict::Continue;
            }
            self.response_blocked = true;
            return self.blocked_response("response blocked by content policy");
        }
        let verdict = match new_body {
            Some(body) if self.enforcing() => Verdict::Replace { body, headers: Vec::new() },
            _ => Verdict::Continue,
        };
        self.ask_guard(Direction::Response, verdict)
    }

    /// The labels of a 2xx JSON answer, as edits over what inspection rewrote: the explicit
    /// label in the API's text, the implicit label in generated files and, when configured, as
    /// a top-level `AIGC` member.
    fn answer_labels(&mut self, doc: &Doc, inspection: &body::Inspection) -> Vec<(core::ops::Range<usize>, String)> {
        let mut edits = Vec::new();
        if !self.enforcing() || !self.is_success() {
            return edits;
        }
        if let Some(label) = self.plugin.explicit_label.clone() {
            for i in self.api.label_targets(doc, label.position()) {
                let current = inspection.rewritten.get(&i).map_or(doc.str(i), String::as_str);
                if let Some(s) = doc.strings.get(i) {
                    edits.push((s.range.clone(), quote(&label.apply(current))));
                }
            }
        }
        {
            use base64::Engine;
            let engine = base64::engine::general_purpose::STANDARD;
            for i in self.api.generated_files(doc) {
                let labeled = engine.decode(doc.str(i).as_bytes()).ok().and_then(|bytes| self.label_file(&bytes));
                if let (Some(out), Some(s)) = (labeled, doc.strings.get(i)) {
                    edits.push((s.range.clone(), quote(&engine.encode(out))));
                }
            }
        }
        if self.plugin.config.label.body_field {
            if let Some(edit) = self.label().and_then(|l| doc.root.insert_first("AIGC", &l.to_inner_json())) {
                edits.push(edit);
            }
        }
        edits
    }

    /// The body of a blocked response: no text, the API's content-filter stop reason, and the
    /// error object. (Its status line already left with the headers.)
    pub(crate) fn blocked_response(&self, message: &str) -> Verdict {
        Verdict::Replace { body: self.api.blocked_body(message).to_string().into_bytes(), headers: Vec::new() }
    }

    /// The audit records as JSON log lines, each with the name of the counter it increments
    /// (`aigc_edge.hits.<category>.<action>`).
    pub fn audit(&mut self) -> Vec<(String, String)> {
        let records = std::mem::take(&mut self.audit);
        records
            .into_iter()
            .map(|r| {
                let category = r.finding.to_string();
                let counter = crate::metrics::finding(r.finding, r.action, r.direction);
                let line = serde_json::json!({
                    "event": "aigc_edge.audit",
                    "produce_id": self.produce_id,
                    "route": self.route,
                    "profile": self.profile,
                    "direction": r.direction.as_str(),
                    "category": category,
                    "action": r.action.as_str(),
                    "layer": r.layer.as_str(),
                    "match_sha256": r.match_sha256,
                })
                .to_string();
                (line, counter)
            })
            .collect()
    }

    /// The audit records as JSON log lines.
    pub fn audit_lines(&mut self) -> Vec<String> {
        self.audit().into_iter().map(|(line, _)| line).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ndjson_is_two_lines_or_more_the_first_an_object() {
        let cases: [(&[u8], bool); 8] = [
            (b"{}\n{}\n", true),
            (b"{\"a\":1}\r\n{\"b\":2}", true),
            (b"{\"a\":1}", false),
            (b"{\"a\":1}\n\n  \n", false),
            (b"[1]\n{}\n", false),
            ("{}\n\u{3000}\n".as_bytes(), false),
            (b"{}\n\xff\n", false),
            (b"\n\n{}\n\t{}", true),
        ];
        for (bytes, want) in cases {
            assert_eq!(super::looks_like_ndjson(bytes), want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
