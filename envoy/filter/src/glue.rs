//! The proxy-wasm glue: translates host callbacks to [`Exchange`] calls and back. No logic of
//! its own beyond buffering decisions, metrics and logging.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use aigc_edge::{Dictionary, Filter};

use crate::config::{ConfigError, Plugin, PluginConfig};
use crate::exchange::{Direction, Exchange, Verdict};
use crate::guard::GuardCall;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// Counters and the inspection-time histogram, defined once per VM.
#[derive(Default)]
struct Metrics {
    ids: HashMap<String, u32>,
    /// The timed build's host-call prices are taken once per VM (`time_host_calls`).
    #[cfg(feature = "callback-timings")]
    host_calls_timed: bool,
}

impl Metrics {
    fn id(&mut self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        self.ids.insert(name.to_string(), id);
        Some(id)
    }

    fn count(&mut self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Creates every series the plugin can move, so they are scraped at 0 before the first hit.
    fn define_all(&mut self, plugin: &Plugin) {
        let policies = std::iter::once(plugin.default.policy()).chain(plugin.profiles.values().map(Filter::policy));
        for name in crate::metrics::configured(policies) {
            let _ = self.id(MetricType::Counter, &name);
        }
        for name in [
            crate::metrics::REQUESTS,
            crate::metrics::RESPONSES_BLOCKED,
            crate::metrics::DICTIONARY_LOADS,
            crate::metrics::DICTIONARY_FETCH_FAILURES,
        ] {
            let _ = self.id(MetricType::Counter, name);
        }
        if plugin.config.guard.is_some() {
            for outcome in [crate::guard::Outcome::Passed, crate::guard::Outcome::Acted, crate::guard::Outcome::Failed]
            {
                let _ = self.id(MetricType::Counter, &crate::metrics::guard_call(outcome));
            }
        }
        let _ = self.id(MetricType::Histogram, crate::metrics::INSPECT_MICROSECONDS);
    }

    fn record(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

#[derive(Default)]
struct Root {
    plugin: Option<Rc<Plugin>>,
    config: Option<PluginConfig>,
    metrics: Rc<RefCell<Metrics>>,
    fetch_token: Option<u32>,
}

fn produce_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Never a fixed ID: fall back to the clock, still unique per response in practice.
        let nanos = hostcalls::get_current_time().ok().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        bytes[..16].copy_from_slice(&nanos.map_or(0, |d| d.as_nanos()).to_le_bytes());
    }
    aigc_edge::label::produce_id(&bytes)
}

/// A header map read in one host call. Values are read as bytes: the SDK's string reads
/// (`get_map_value`, `get_map`) unwrap UTF-8, and Envoy passes obs-text (bytes 0x80-0xFF) in
/// values, so one such header would abort the VM. Bytes that are not UTF-8 become U+FFFD (no
/// known content type, encoding or profile is then matched, and the exchange is judged as for
/// any unknown value). A name given more than once is read as its values joined with ", "
/// (RFC 9110's list form): Envoy's single-value read gives only the first, while the upstream
/// or the client may act on another (`content-encoding: identity` then `gzip`).
struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    fn read(map: proxy_wasm::types::MapType) -> Headers {
        Headers(hostcalls::get_map_bytes(map).unwrap_or_default())
    }

    fn get(&self, name: &str) -> Option<String> {
        let mut values = self.0.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let mut joined = String::from_utf8_lossy(values.next()?).into_owned();
        for value in values {
            joined.push_str(", ");
            joined.push_str(&String::from_utf8_lossy(value));
        }
        Some(joined)
    }
}

/// The route's name (audit records, profile selection): `xds.route_name`, or `route_name` on
/// hosts that predate the `xds` attributes.
fn route_name() -> Option<String> {
    [vec!["xds", "route_name"], vec!["route_name"]]
        .into_iter()
        .find_map(|path| hostcalls::get_property(path).ok().flatten())
        .and_then(|b| String::from_utf8(b).ok())
}

/// The timed build's price list of host calls: on a VM's first request, each kind of call the
/// filter makes per exchange, made `CALLS` times and recorded as nanoseconds a call in
/// `aigc_edge_hostcall_ns_<kind>` (what `make bench-envoy` prints beside the callbacks).
#[cfg(feature = "callback-timings")]
fn time_host_calls(metrics: &mut Metrics) {
    use core::hint::black_box;
    use proxy_wasm::types::MapType::HttpRequestHeaders;
    const CALLS: u32 = 2000;
    const PROBE: &str = "x-aigc-edge-probe";
    let counter = metrics.id(MetricType::Counter, "aigc_edge_hostcall_probe");
    let histogram = metrics.id(MetricType::Histogram, "aigc_edge_hostcall_probe_value");
    let mut random = [0u8; 16];
    let kinds: [(&str, &mut dyn FnMut()); 8] = [
        ("clock", &mut || {
            let _ = black_box(now());
        }),
        ("route_property", &mut || {
            let _ = black_box(route_name());
        }),
        ("header_map", &mut || {
            let _ = black_box(Headers::read(HttpRequestHeaders));
        }),
        ("one_header", &mut || {
            let _ = black_box(hostcalls::get_map_value_bytes(HttpRequestHeaders, ":path"));
        }),
        ("header_write", &mut || {
            let _ = black_box(hostcalls::set_map_value(HttpRequestHeaders, PROBE, Some("1")));
        }),
        ("counter", &mut || {
            let _ = black_box(counter.map(|id| hostcalls::increment_metric(id, 1)));
        }),
        ("histogram", &mut || {
            let _ = black_box(histogram.map(|id| hostcalls::record_metric(id, 1)));
        }),
        ("random_16_bytes", &mut || {
            let _ = black_box(getrandom::fill(&mut random));
        }),
    ];
    for (kind, call) in kinds {
        let start = now();
        for _ in 0..CALLS {
            call();
        }
        if let Some(took) = elapsed(start) {
            metrics.record(&format!("aigc_edge_hostcall_ns_{kind}"), (took.as_nanos() / u128::from(CALLS)) as u64);
        }
    }
    let _ = hostcalls::set_map_value(HttpRequestHeaders, PROBE, None);
}

/// The `:status` of the answer to a host call (none: it timed out or the connection failed).
fn call_status() -> Option<u16> {
    hostcalls::get_map_value_bytes(proxy_wasm::types::MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        if self.fetch_token != Some(token) {
            return;
        }
        self.fetch_token = None;
        let status = call_status();
        let Some(config) = self.config.clone() else { return };
        let Some(fetch) = config.dictionary_fetch.clone() else { return };
        if status != Some(200) {
            log(
                LogLevel::Warn,
                &format!(
                    "aigc-edge: dictionary fetch {} answered {:?}; keeping the current dictionary",
                    fetch.path, status
                ),
            );
            self.metrics.borrow_mut().count(crate::metrics::DICTIONARY_FETCH_FAILURES);
            return;
        }
        // Read section by section into the dictionary's arrays: the whole artifact is never
        // copied into the VM, whose memory never shrinks after its peak.
        let start = now();
        let read = |at: usize, n: usize| {
            hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, at, n)
                .ok()
                .flatten()
                .map(Cow::Owned)
        };
        let source = format!("{}{}", fetch.cluster, fetch.path);
        let loaded = Dictionary::from_artifact_pieces(body_size, read)
            .map_err(|e| ConfigError(e.to_string()))
            .and_then(|dict| Plugin::with_dictionary(config, dict, source));
        match loaded {
            Ok(plugin) => {
                let keywords = plugin.default.dictionary().len();
                log(
                    LogLevel::Info,
                    &format!(
                        "aigc-edge: loaded dictionary from {} ({keywords} keywords, {} bytes) in {}; linear memory {} MiB",
                        plugin.dictionary_source,
                        body_size,
                        since(start),
                        linear_memory_mib()
                    ),
                );
                let mut metrics = self.metrics.borrow_mut();
                metrics.define_all(&plugin);
                metrics.count(crate::metrics::DICTIONARY_LOADS);
                drop(metrics);
                self.plugin = Some(Rc::new(plugin));
            }
            Err(e) => {
                log(LogLevel::Warn, &format!("aigc-edge: fetched dictionary refused, keeping the current one: {e}"));
                self.metrics.borrow_mut().count(crate::metrics::DICTIONARY_FETCH_FAILURES);
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let start = now();
        let bytes = hostcalls::get_buffer(proxy_wasm::types::BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match PluginConfig::from_json(&bytes) {
            Ok(c) => c,
            Err(e) => {
                log(LogLevel::Error, &format!("aigc-edge: {e}"));
                return false;
            }
        };
        if let Some(fetch) = &config.dictionary_fetch {
            let _ = hostcalls::set_tick_period(Duration::from_secs(fetch.interval_seconds));
        }
        let plugin = if !config.has_inline_keywords() {
            None
        } else {
            match Plugin::new(config.clone()) {
                Ok(p) => Some(Rc::new(p)),
                Err(e) => {
                    log(LogLevel::Error, &format!("aigc-edge: {e}"));
                    return false;
                }
            }
        };
        if let Some(p) = &plugin {
            self.metrics.borrow_mut().define_all(p);
            log(
                LogLevel::Info,
                &format!(
                    "aigc-edge: configured ({} keywords, profiles: default{}) in {}",
                    p.default.dictionary().len(),
                    p.profiles.keys().map(|k| format!(", {k}")).collect::<String>(),
                    since(start)
                ),
            );
        } else {
            log(LogLevel::Info, &format!("aigc-edge: configured, dictionary to be fetched, in {}", since(start)));
        }
        self.plugin = plugin;
        self.config = Some(config);
        if self.config.as_ref().is_some_and(|c| c.dictionary_fetch.is_some()) {
            self.on_tick();
        }
        true
    }

    fn on_tick(&mut self) {
        let Some(fetch) = self.config.as_ref().and_then(|c| c.dictionary_fetch.clone()) else { return };
        if self.fetch_token.is_some() {
            return;
        }
        let authority = fetch.authority.clone().unwrap_or_else(|| fetch.cluster.clone());
        let headers = vec![(":method", "GET"), (":path", fetch.path.as_str()), (":authority", authority.as_str())];
        match hostcalls::dispatch_http_call(&fetch.cluster, headers, None, vec![], Duration::from_secs(10)) {
            Ok(token) => self.fetch_token = Some(token),
            Err(e) => log(
                LogLevel::Warn,
                &format!("aigc-edge: dictionary fetch from cluster {} failed: {e:?}", fetch.cluster),
            ),
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            plugin: self.plugin.clone(),
            metrics: Rc::clone(&self.metrics),
            exchange: None,
            buffer_request: false,
            inspect_ns: 0,
            guard_call: None,
            stream_calls: HashMap::new(),
            stream_end_size: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    plugin: Option<Rc<Plugin>>,
    metrics: Rc<RefCell<Metrics>>,
    exchange: Option<Exchange>,
    buffer_request: bool,
    inspect_ns: u64,
    /// The guard call in flight: its token, the direction it holds, and the size of that
    /// direction's buffered body (what the answer's verdict replaces).
    guard_call: Option<(u32, Direction, usize)>,
    /// Guard calls about stream windows: token → window id.
    stream_calls: HashMap<u32, u64>,
    /// Size of the stream's last chunk, buffered while its end waits for verdicts.
    stream_end_size: usize,
}

/// The host buffer holding a body travelling `direction`.
fn body_buffer(direction: Direction) -> proxy_wasm::types::BufferType {
    match direction {
        Direction::Request => proxy_wasm::types::BufferType::HttpRequestBody,
        Direction::Response => proxy_wasm::types::BufferType::HttpResponseBody,
    }
}

fn now() -> Option<SystemTime> {
    hostcalls::get_current_time().ok()
}

/// The host's time since `start` for a log line ("1.234 ms"); what `make bench-envoy` reads
/// for its start-up breakdown.
/// The VM's linear memory, which never shrinks: the high-water mark of everything it held.
fn linear_memory_mib() -> usize {
    #[cfg(target_arch = "wasm32")]
    return (core::arch::wasm32::memory_size(0) * 65536) >> 20;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

fn since(start: Option<SystemTime>) -> String {
    match elapsed(start).map(|d| d.as_micros()) {
        Some(us) => format!("{}.{:03} ms", us / 1000, us % 1000),
        None => "(no clock)".to_string(),
    }
}

fn elapsed(start: Option<SystemTime>) -> Option<Duration> {
    now()?.duration_since(start?).ok()
}

impl Http {
    fn timed<T>(&mut self, f: impl FnOnce(&mut Exchange) -> T) -> Option<T> {
        let start = now();
        let out = self.exchange.as_mut().map(f);
        if let Some(took) = elapsed(start) {
            self.inspect_ns += took.as_nanos() as u64;
        }
        out
    }

    fn apply_headers(&self, set: &[(String, Option<String>)], direction: Direction) {
        let map = match direction {
            Direction::Request => proxy_wasm::types::MapType::HttpRequestHeaders,
            Direction::Response => proxy_wasm::types::MapType::HttpResponseHeaders,
        };
        for (name, value) in set {
            let _ = hostcalls::set_map_value(map, name, value.as_deref());
        }
    }

    fn max_body(&self) -> usize {
        self.plugin.as_ref().map_or(crate::config::DEFAULT_MAX_BODY_BYTES, |p| p.config.max_body_bytes())
    }

    /// Buffers a whole body (prompt or non-streamed answer) up to the limit, then decides it.
    fn buffer_whole(&mut self, direction: Direction, body_size: usize, end_of_stream: bool) -> Action {
        if body_size > self.max_body() {
            let v = self.timed(|x| x.too_large(direction));
            return self.finish_verdict(v.unwrap_or(Verdict::Continue), direction, body_size);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(body_buffer(direction), 0, body_size).ok().flatten().unwrap_or_default();
        let v = self.timed(|x| match direction {
            Direction::Request => x.request_body(&body),
            Direction::Response => x.response_body(&body),
        });
        self.finish_verdict(v.unwrap_or(Verdict::Continue), direction, body_size)
    }

    fn finish_verdict(&mut self, verdict: Verdict, direction: Direction, size: usize) -> Action {
        match verdict {
            Verdict::Continue => Action::Continue,
            Verdict::Pause => Action::Pause,
            Verdict::Replace { body, headers } => {
                let _ = hostcalls::set_buffer(body_buffer(direction), 0, size, &body);
                self.apply_headers(&headers, direction);
                Action::Continue
            }
            Verdict::Reply { status, body } => reply(status, &body),
            Verdict::Ask(call) => self.ask_guard(call, direction, size),
        }
    }

    /// Sends the guard calls about stream windows (the stream flows on meanwhile); a call that
    /// cannot be sent is answered at once as a failure.
    fn send_stream_calls(&mut self) {
        let Some(guard) = self.plugin.as_ref().and_then(|p| p.config.guard.clone()) else { return };
        let calls = self.exchange.as_mut().map(Exchange::take_stream_calls).unwrap_or_default();
        for (id, call) in calls {
            match dispatch_guard(&guard, &call) {
                Ok(token) => {
                    self.stream_calls.insert(token, id);
                }
                Err(status) => {
                    let why = format!("guard cluster {:?} could not be called ({status:?})", guard.cluster);
                    let released = self.timed(|x| x.stream_guard_answer(id, Err(why))).flatten();
                    self.release_stream_end(released);
                }
            }
        }
    }

    /// The stream's end, released by the guard's last verdict: its buffer replaced, resumed.
    fn release_stream_end(&mut self, released: Option<Verdict>) {
        if let Some(Verdict::Replace { body, .. }) = released {
            let _ = hostcalls::set_buffer(body_buffer(Direction::Response), 0, self.stream_end_size, &body);
            let _ = hostcalls::resume_http_response();
        }
    }

    /// Sends a guard call and holds `direction` until its answer; a call that cannot even be
    /// sent (no such cluster) is answered at once as a failure, for `on_error` to decide.
    fn ask_guard(&mut self, call: GuardCall, direction: Direction, size: usize) -> Action {
        let Some(guard) = self.plugin.as_ref().and_then(|p| p.config.guard.clone()) else { return Action::Continue };
        match dispatch_guard(&guard, &call) {
            Ok(token) => {
                self.guard_call = Some((token, direction, size));
                Action::Pause
            }
            Err(status) => {
                let why = format!("guard cluster {:?} could not be called ({status:?})", guard.cluster);
                let v = self.timed(|x| x.guard_answer(Err(why))).unwrap_or(Verdict::Continue);
                self.finish_verdict(v, direction, size)
            }
        }
    }

    /// The body ended with trailers (HTTP/2, gRPC-style): it is decided now, like any other.
    fn end_at_trailers(&mut self, direction: Direction) -> Action {
        let Some(exchange) = self.exchange.as_ref() else { return Action::Continue };
        let buffered = match direction {
            Direction::Request => self.buffer_request,
            Direction::Response => exchange.response_buffered(),
        };
        let body = hostcalls::get_buffer(body_buffer(direction), 0, usize::MAX).ok().flatten().unwrap_or_default();
        let size = body.len();
        let v = self.timed(|x| match (direction, buffered) {
            (Direction::Request, true) => x.request_body(&body),
            (Direction::Request, false) => Verdict::Continue,
            (Direction::Response, true) => x.response_body(&body),
            (Direction::Response, false) => x.response_chunk(&[], true),
        });
        match v.unwrap_or(Verdict::Continue) {
            Verdict::Replace { body: out, .. } if !buffered => {
                // A stream's held-back tail: appended to whatever body the host still holds.
                if !out.is_empty() && hostcalls::set_buffer(body_buffer(direction), size, 0, &out).is_err() {
                    log(LogLevel::Warn, "aigc-edge: stream tail at trailers could not be sent");
                }
                Action::Continue
            }
            verdict => self.finish_verdict(verdict, direction, size),
        }
    }
}

/// Answers locally (a refused prompt) and stops the request.
/// Sends one call to the guard model's cluster; its answer comes to `on_http_call_response`.
fn dispatch_guard(guard: &crate::config::GuardConfig, call: &GuardCall) -> Result<u32, proxy_wasm::types::Status> {
    let headers = vec![
        (":method", "POST"),
        (":path", guard.path.as_str()),
        (":authority", guard.authority.as_str()),
        ("content-type", "application/json"),
    ];
    let timeout = Duration::from_millis(guard.timeout_ms);
    hostcalls::dispatch_http_call(&guard.cluster, headers, Some(&call.body), vec![], timeout)
}

fn reply(status: u16, body: &str) -> Action {
    let _ = hostcalls::send_http_response(
        u32::from(status),
        vec![("content-type", "application/json")],
        Some(body.as_bytes()),
    );
    Action::Pause
}

impl Http {
    fn log_guard_failures(&mut self) {
        if let Some(exchange) = self.exchange.as_mut() {
            for why in exchange.asking.failures.drain(..) {
                log(LogLevel::Warn, &format!("aigc-edge: guard call failed: {why}"));
            }
        }
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = call_status();
        // No status: the call timed out or the connection failed (Envoy answers with nothing).
        let answer = match status {
            Some(status) => Ok((
                status,
                hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpCallResponseBody, 0, body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )),
            None => Err("no answer from the guard (timeout or connection failure)".to_string()),
        };
        if let Some(id) = self.stream_calls.remove(&token) {
            let released = self.timed(|x| x.stream_guard_answer(id, answer)).flatten();
            self.log_guard_failures();
            self.release_stream_end(released);
            return;
        }
        let Some((expected, direction, size)) = self.guard_call else { return };
        if token != expected {
            return;
        }
        self.guard_call = None;
        let v = self.timed(|x| x.guard_answer(answer)).unwrap_or(Verdict::Continue);
        self.log_guard_failures();
        let resume = |d: Direction| match d {
            Direction::Request => hostcalls::resume_http_request(),
            Direction::Response => hostcalls::resume_http_response(),
        };
        match v {
            Verdict::Reply { status, body } => {
                reply(status, &body);
            }
            Verdict::Replace { body, headers } => {
                let _ = hostcalls::set_buffer(body_buffer(direction), 0, size, &body);
                self.apply_headers(&headers, direction);
                let _ = resume(direction);
            }
            Verdict::Ask(call) => {
                if self.ask_guard(call, direction, size) == Action::Continue {
                    let _ = resume(direction);
                }
            }
            Verdict::Continue | Verdict::Pause => {
                let _ = resume(direction);
            }
        }
    }
}

/// The callbacks' work; `HttpContext` below calls each through `callback` (timed in the
/// bench's build).
impl Http {
    fn request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(plugin) = self.plugin.clone() else {
            // Fail closed until a dictionary is loaded.
            let _ = hostcalls::send_http_response(503, vec![("content-type", "application/json")],
                Some(br#"{"error":{"message":"content filter not ready","type":"content_filter","code":"content_filter_unavailable"}}"#));
            return Action::Pause;
        };
        let headers = Headers::read(proxy_wasm::types::MapType::HttpRequestHeaders);
        let header = |name: &str| headers.get(name);
        let path = header(":path").unwrap_or_default();
        let profile = plugin.config.profile_header.as_deref().and_then(header);
        let route = route_name();
        let declared = plugin.config.platform.as_ref().and_then(|p| header(&p.declared_header));
        self.exchange = Some(Exchange::new(plugin, &path, profile.as_deref(), route.as_deref(), produce_id()));
        let (ct, ce) = (header("content-type"), header("content-encoding"));
        let v = self
            .timed(|x| x.request_headers(!end_of_stream, ct.as_deref(), ce.as_deref(), declared.as_deref()))
            .unwrap_or_default();
        if let Some((status, body)) = &v.reply {
            return reply(*status, body);
        }
        self.apply_headers(&v.set, Direction::Request);
        self.buffer_request = v.buffer_body;
        if v.hold_headers {
            // Headers set from the body (platform mode) must not leave before it is read.
            return Action::Pause;
        }
        Action::Continue
    }

    fn request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.exchange.is_none() || !self.buffer_request {
            return Action::Continue;
        }
        self.buffer_whole(Direction::Request, body_size, end_of_stream)
    }

    fn response_headers(&mut self) -> Action {
        let headers = Headers::read(proxy_wasm::types::MapType::HttpResponseHeaders);
        let header = |name: &str| headers.get(name);
        let status = header(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
        let (ct, ce) = (header("content-type"), header("content-encoding"));
        let v = self.timed(|x| x.response_headers(status, ct.as_deref(), ce.as_deref())).unwrap_or_default();
        self.apply_headers(&v.set, Direction::Response);
        // Never Pause here: Envoy maps it to StopAllIteration, and the body, which decides
        // everything, would then never reach the filter.
        Action::Continue
    }

    fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(buffered) = self.exchange.as_ref().map(Exchange::response_buffered) else { return Action::Continue };
        if buffered {
            return self.buffer_whole(Direction::Response, body_size, end_of_stream);
        }
        let chunk = hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let now_ms =
            now().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as u64);
        let v = self
            .timed(|x| {
                x.tick(now_ms);
                x.response_chunk(&chunk, end_of_stream)
            })
            .unwrap_or(Verdict::Continue);
        self.send_stream_calls();
        if self.exchange.as_ref().is_some_and(|x| x.stream_end_waiting) {
            // The end waits for the guard's last verdicts; their answer releases it.
            self.stream_end_size = body_size;
            return Action::Pause;
        }
        if v == Verdict::Pause && body_size > self.max_body() {
            // Buffering starts with a chunk already over the limit: decided now, before Envoy's
            // own buffer limit resets the stream.
            let v = self.timed(|x| x.too_large(Direction::Response)).unwrap_or(Verdict::Continue);
            return self.finish_verdict(v, Direction::Response, body_size);
        }
        self.finish_verdict(v, Direction::Response, body_size)
    }

    fn log_exchange(&mut self) {
        let Some(exchange) = self.exchange.as_mut() else { return };
        let mut metrics = self.metrics.borrow_mut();
        for (line, counter) in exchange.audit() {
            log(LogLevel::Info, &line);
            metrics.count(&counter);
        }
        if exchange.response_blocked {
            metrics.count(crate::metrics::RESPONSES_BLOCKED);
        }
        for outcome in exchange.asking.outcomes.drain(..) {
            metrics.count(&crate::metrics::guard_call(outcome));
        }
        metrics.count(crate::metrics::REQUESTS);
        metrics.record(crate::metrics::INSPECT_MICROSECONDS, self.inspect_ns / 1000);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "callback-timings")]
        {
            let mut metrics = self.metrics.borrow_mut();
            if !metrics.host_calls_timed {
                metrics.host_calls_timed = true;
                time_host_calls(&mut metrics);
            }
        }
        callback(self, "request_headers", |h| h.request_headers(end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        callback(self, "request_body", |h| h.request_body(body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        callback(self, "request_trailers", |h| h.end_at_trailers(Direction::Request))
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        callback(self, "response_headers", Http::response_headers)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        callback(self, "response_body", |h| h.response_body(body_size, end_of_stream))
    }

    fn on_http_response_trailers(&mut self, _trailers: usize) -> Action {
        callback(self, "response_trailers", |h| h.end_at_trailers(Direction::Response))
    }

    fn on_log(&mut self) {
        callback(self, "log", Http::log_exchange)
    }
}

/// Runs one callback's work. The bench's build (`--features callback-timings`) also records its
/// time, in nanoseconds, in a histogram per callback (`aigc_edge_callback_ns_<name>`): two more
/// clock reads per callback, so never in the shipped build, where this is the call alone.
fn callback<T>(http: &mut Http, name: &str, work: impl FnOnce(&mut Http) -> T) -> T {
    #[cfg(feature = "callback-timings")]
    let start = now();
    let out = work(http);
    #[cfg(feature = "callback-timings")]
    if let Some(took) = elapsed(start) {
        http.metrics.borrow_mut().record(&format!("aigc_edge_callback_ns_{name}"), took.as_nanos() as u64);
    }
    #[cfg(not(feature = "callback-timings"))]
    let _ = name;
    out
}
