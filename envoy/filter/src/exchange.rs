//! One HTTP exchange through the filter, as a state machine with no proxy-wasm in it: the glue
//! in `lib.rs` feeds it headers and bodies and carries out what it returns, and the tests drive
//! it directly.

use std::rc::Rc;

use core::fmt;

use aigc_edge::policy::OnLimit;
use aigc_edge::{Action, Block, Category, Decision, Filter, Hit, ImplicitLabel, PiiKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::Api;
use crate::config::{Mode, Plugin};
use crate::sse::SseFilter;

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
    /// SHA-256 of the matched bytes, hex.
    pub match_sha256: String,
}

#[derive(Debug)]
enum ResponseMode {
    /// Not inspected.
    Pass,
    /// Buffered JSON.
    Json,
    /// A stream of events.
    Sse(Box<SseFilter>),
    /// Content the filter cannot read (compressed); `on_limit` decides.
    Unreadable,
    /// A generated file (image, audio, video): buffered and given the implicit label.
    Media,
}

/// State of one request/response pair.
#[derive(Debug)]
pub struct Exchange {
    plugin: Rc<Plugin>,
    filter: Filter,
    /// The profile in force.
    pub profile: String,
    api: Api,
    inspected_api: bool,
    /// Unique per response; labels, audit records and complaints cite it.
    pub produce_id: String,
    /// Envoy route name, for audit records.
    pub route: String,
    response: ResponseMode,
    /// Records waiting for the glue to log.
    pub audit: Vec<AuditRecord>,
    /// Set when the response was blocked or cut.
    pub response_blocked: bool,
}

/// Generated files the filter labels: images, audio and video.
fn is_media(content_type: &str) -> bool {
    let t = content_type.to_ascii_lowercase();
    t.starts_with("image/") || t.starts_with("audio/") || t.starts_with("video/mp4")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Exchange {
    /// Starts an exchange for a request to `path`.
    pub fn new(
        plugin: Rc<Plugin>,
        path: &str,
        profile_header: Option<&str>,
        route: Option<&str>,
        produce_id: String,
    ) -> Exchange {
        let route_profile = route.and_then(|r| plugin.config.route_profiles.get(r)).map(String::as_str);
        let (profile, filter) = plugin.profile(profile_header.or(route_profile));
        let (profile, filter) = (profile.to_string(), filter.clone());
        let api = Api::from_path(path);
        let inspected_api = !api.is_raw() || plugin.config.inspect.raw;
        Exchange {
            filter,
            profile,
            api,
            inspected_api,
            produce_id,
            route: route.unwrap_or("").to_string(),
            response: ResponseMode::Pass,
            audit: Vec::new(),
            response_blocked: false,
            plugin,
        }
    }

    fn enforcing(&self) -> bool {
        self.plugin.config.mode == Mode::Enforce
    }

    fn on_limit(&self) -> OnLimit {
        self.filter.policy().on_limit
    }

    /// Request headers: buffer the body when prompts are inspected, and ask the upstream for an
    /// uncompressed answer so compressed responses cannot bypass the filter.
    pub fn request_headers(&mut self, has_body: bool) -> HeaderVerdict {
        let mut v = HeaderVerdict::default();
        if !self.inspected_api {
            return v;
        }
        if self.plugin.config.inspect.responses {
            v.set.push(("accept-encoding".into(), None));
        }
        v.buffer_body = has_body && self.plugin.config.inspect.requests;
        if v.buffer_body && self.enforcing() {
            v.set.push(("content-length".into(), None));
        }
        v
    }

    /// The buffered body outgrew `max_body_bytes`.
    pub fn too_large(&mut self, direction: Direction) -> Verdict {
        let action = if self.on_limit() == OnLimit::FailClosed { Action::Block } else { Action::Pass };
        self.note(direction, Finding::Limit, action);
        let param = match direction {
            Direction::Request => "prompt",
            Direction::Response => "response",
        };
        match (self.on_limit(), self.enforcing()) {
            (OnLimit::FailClosed, true) => {
                Verdict::Reply { status: 413, body: self.api.error_body("body exceeds the inspection limit", param) }
            }
            _ => Verdict::Continue,
        }
    }

    /// Records a finding with no matched text to hash.
    fn note(&mut self, direction: Direction, finding: Finding, action: Action) {
        self.audit.push(AuditRecord { direction, finding, action, match_sha256: String::new() });
    }

    fn record(&mut self, direction: Direction, text: &str, d: &Decision) {
        for h in &d.hits {
            self.audit.push(AuditRecord {
                direction,
                finding: Finding::of(h),
                action: h.action,
                match_sha256: sha256_hex(text.as_bytes().get(h.start..h.end).unwrap_or(&[])),
            });
        }
        let pii_action = self.filter.policy().pii.action;
        for p in &d.pii {
            self.audit.push(AuditRecord {
                direction,
                finding: Finding::Pii(p.kind),
                action: pii_action,
                match_sha256: sha256_hex(text.as_bytes().get(p.start..p.end).unwrap_or(&[])),
            });
        }
    }

    fn record_hits(&mut self, direction: Direction, hits: Vec<Hit>, text_of: impl Fn(&Hit) -> Vec<u8>) {
        for h in hits {
            self.audit.push(AuditRecord {
                direction,
                finding: Finding::of(&h),
                action: h.action,
                match_sha256: sha256_hex(&text_of(&h)),
            });
        }
    }

    /// Checks every text of a JSON body with `visit`; returns the most severe action and
    /// whether a text was rewritten.
    fn check_json(&mut self, direction: Direction, value: &mut Value) -> (Action, bool) {
        let filter = self.filter.clone();
        let roles = self.plugin.config.inspect.roles;
        let mut worst = Action::Pass;
        let mut changed = false;
        let mut decisions = Vec::new();
        let mut visit = |s: &mut String| {
            let d = filter.check(s);
            worst = worst.max(d.action);
            if let Some(t) = &d.text {
                decisions.push((s.clone(), d.clone()));
                *s = t.clone();
                changed = true;
            } else {
                decisions.push((s.clone(), d));
            }
        };
        match direction {
            Direction::Request => self.api.request_texts(value, roles, &mut visit),
            Direction::Response => self.api.response_texts(value, &mut visit),
        }
        for (text, d) in decisions {
            self.record(direction, &text, &d);
        }
        (worst, changed)
    }

    /// The whole request body.
    pub fn request_body(&mut self, body: &[u8]) -> Verdict {
        if !self.inspected_api || !self.plugin.config.inspect.requests {
            return Verdict::Continue;
        }
        let parsed = (!self.api.is_raw()).then(|| serde_json::from_slice::<Value>(body).ok()).flatten();
        let (action, new_body) = match parsed {
            Some(mut value) => {
                let (action, changed) = self.check_json(Direction::Request, &mut value);
                (action, changed.then(|| value.to_string().into_bytes()))
            }
            None => {
                // Raw mode, or a malformed body of a known API: the bytes are checked as text.
                let text = String::from_utf8_lossy(body).into_owned();
                let d = self.filter.check(&text);
                self.record(Direction::Request, &text, &d);
                (d.action, d.text.map(String::into_bytes))
            }
        };
        if !self.enforcing() {
            return Verdict::Continue;
        }
        match (action, new_body) {
            (Action::Block, _) => {
                Verdict::Reply { status: 400, body: self.api.error_body("prompt blocked by content policy", "prompt") }
            }
            (_, Some(body)) => Verdict::Replace { headers: Vec::new(), body },
            _ => Verdict::Continue,
        }
    }

    fn label(&self) -> Option<ImplicitLabel> {
        ImplicitLabel::generated(&self.plugin.config.label.producer, &self.produce_id).ok()
    }

    /// Response headers.
    pub fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> HeaderVerdict {
        let mut v = HeaderVerdict::default();
        let media = content_type.is_some_and(is_media) && !self.api.is_raw();
        if media
            && (200..300).contains(&status)
            && self.enforcing()
            && content_encoding.is_none_or(|e| e.is_empty() || e == "identity")
        {
            let mut v = HeaderVerdict::default();
            if let Some(label) = self.label() {
                v.set.push((self.plugin.config.label.header.clone(), Some(label.to_json())));
            }
            v.set.push(("x-aigc-produce-id".into(), Some(self.produce_id.clone())));
            v.set.push(("content-length".into(), None));
            self.response = ResponseMode::Media;
            v.buffer_body = true;
            return v;
        }
        if !self.inspected_api || self.api.is_raw() || !(200..300).contains(&status) || !self.enforcing() {
            if self.inspected_api && self.plugin.config.inspect.responses && (200..300).contains(&status) {
                // Monitor mode still inspects (below), but changes nothing.
                self.response = self.response_mode(content_type, content_encoding);
                v.buffer_body = self.response_buffered();
            }
            return v;
        }
        if let Some(label) = self.label() {
            v.set.push((self.plugin.config.label.header.clone(), Some(label.to_json())));
        }
        v.set.push(("x-aigc-produce-id".into(), Some(self.produce_id.clone())));
        if !self.plugin.config.inspect.responses {
            return v;
        }
        self.response = self.response_mode(content_type, content_encoding);
        v.set.push(("content-length".into(), None));
        v.buffer_body = self.response_buffered();
        v
    }

    fn response_mode(&self, content_type: Option<&str>, content_encoding: Option<&str>) -> ResponseMode {
        let encoded = content_encoding.is_some_and(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
        if encoded {
            return ResponseMode::Unreadable;
        }
        if content_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream")) {
            let label = if self.enforcing() { self.plugin.explicit_label.clone() } else { None };
            ResponseMode::Sse(Box::new(SseFilter::new(self.api, self.filter.clone(), label)))
        } else {
            ResponseMode::Json
        }
    }

    /// True when the glue must buffer the response body until its end.
    pub fn response_buffered(&self) -> bool {
        matches!(self.response, ResponseMode::Json | ResponseMode::Unreadable | ResponseMode::Media)
    }

    /// The implicit label written into a generated file; the file unchanged when its format
    /// carries none (recorded in the audit log).
    fn label_file(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let label = self.label()?;
        match aigc_edge::files::write_label(bytes, &label) {
            Ok(out) => Some(out),
            Err(_) => {
                self.note(Direction::Response, Finding::UnlabeledFile, Action::Flag);
                None
            }
        }
    }

    /// A chunk of a streamed response; `Replace` carries the bytes to send instead.
    pub fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Verdict {
        let ResponseMode::Sse(sse) = &mut self.response else { return Verdict::Continue };
        let out = sse.push(chunk, end_of_stream);
        let hits = sse.take_hits();
        let pii = sse.take_pii();
        let blocked = sse.blocked().cloned();
        let over = sse.carry() > self.filter.policy().limits.max_carry_bytes.saturating_mul(4);
        self.record_hits(Direction::Response, hits, |_| Vec::new());
        let pii_action = self.filter.policy().pii.action;
        for kind in pii {
            // The value already went out (redacted): no hash of it is kept.
            self.note(Direction::Response, Finding::Pii(kind), pii_action);
        }
        if let Some(block) = blocked {
            if !self.response_blocked {
                self.response_blocked = true;
                if let Block::CarryLimit { .. } = block {
                    self.note(Direction::Response, Finding::Limit, Action::Block);
                }
            }
        }
        if over && self.on_limit() == OnLimit::FailClosed && !self.response_blocked {
            // Incomplete events pile up without ending: cut the stream.
            self.response_blocked = true;
        }
        if !self.enforcing() {
            return Verdict::Continue;
        }
        Verdict::Replace { body: out, headers: Vec::new() }
    }

    /// The whole buffered (non-streamed) response body.
    pub fn response_body(&mut self, body: &[u8]) -> Verdict {
        match self.response {
            ResponseMode::Unreadable => {
                self.note(Direction::Response, Finding::Unreadable, Action::Block);
                if self.on_limit() == OnLimit::FailClosed && self.enforcing() {
                    self.response_blocked = true;
                    return self.blocked_response("response could not be inspected (compressed)");
                }
                return Verdict::Continue;
            }
            ResponseMode::Json => {}
            ResponseMode::Media => {
                return match self.label_file(body) {
                    Some(out) => Verdict::Replace { body: out, headers: Vec::new() },
                    None => Verdict::Continue,
                };
            }
            _ => return Verdict::Continue,
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            // Not JSON: checked as text, passed or replaced as a whole.
            let text = String::from_utf8_lossy(body).into_owned();
            let d = self.filter.check(&text);
            self.record(Direction::Response, &text, &d);
            if d.action == Action::Block && self.enforcing() {
                self.response_blocked = true;
                return self.blocked_response("response blocked by content policy");
            }
            return Verdict::Continue;
        };
        let (action, _) = self.check_json(Direction::Response, &mut value);
        if !self.enforcing() {
            return Verdict::Continue;
        }
        if action == Action::Block {
            self.response_blocked = true;
            return self.blocked_response("response blocked by content policy");
        }
        {
            // Generated files inside the answer (images' `b64_json`) get the implicit label.
            use base64::Engine;
            let engine = base64::engine::general_purpose::STANDARD;
            let mut files: Vec<String> = Vec::new();
            self.api.generated_files(&mut value, &mut |s| files.push(std::mem::take(s)));
            let labeled: Vec<String> = files
                .into_iter()
                .map(|b64| match engine.decode(b64.as_bytes()).ok().and_then(|bytes| self.label_file(&bytes)) {
                    Some(out) => engine.encode(out),
                    None => b64,
                })
                .collect();
            let mut labeled = labeled.into_iter();
            self.api.generated_files(&mut value, &mut |s| *s = labeled.next().unwrap_or_default());
        }
        if let Some(label) = &self.plugin.explicit_label {
            self.api.label_response(&mut value, label);
        }
        let cfg = &self.plugin.config.label;
        if cfg.body_field {
            if let (Some(label), Some(obj)) = (self.label(), value.as_object_mut()) {
                if let Ok(inner) = serde_json::from_str::<Value>(&label.to_inner_json()) {
                    obj.insert("AIGC".into(), inner);
                }
            }
        }
        Verdict::Replace { body: value.to_string().into_bytes(), headers: Vec::new() }
    }

    /// The body of a blocked response: no text, the API's content-filter stop reason, and the
    /// error object. (Its status line already left with the headers.)
    fn blocked_response(&self, message: &str) -> Verdict {
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
                let counter = format!("aigc_edge.hits.{}.{}", category.replace(['.', ':'], "_"), r.action.as_str());
                let line = serde_json::json!({
                    "event": "aigc_edge.audit",
                    "produce_id": self.produce_id,
                    "route": self.route,
                    "profile": self.profile,
                    "direction": r.direction.as_str(),
                    "category": category,
                    "action": r.action.as_str(),
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
