//! The plugin configuration (Envoy's `configuration` string) and what it compiles into.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aigc_edge::label::seal::SigningKey;
use aigc_edge::label::{is_annex_e_value, ExplicitLabel, LabelPosition};
use aigc_edge::policy::DictionarySource;
use aigc_edge::watermark::image::ImageWatermark;
use aigc_edge::{Dictionary, Filter, KeywordFormat, KeywordKind, Policy};
use serde::Deserialize;

/// The plugin configuration, as JSON. Unknown fields are refused; errors name the field.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginConfig {
    /// The default profile's policy (the core's schema). Parsed by the core's own parser
    /// (`parse_config`), not by this derive: one copy of the policy parser in the module.
    #[serde(skip)]
    pub policy: Policy,
    /// More profiles by name, e.g. a stricter `minor` one; chosen by header or route.
    #[serde(skip)]
    pub profiles: BTreeMap<String, Policy>,
    /// Request header naming a profile (`x-aigc-profile: minor`).
    pub profile_header: Option<String>,
    /// Route name (Envoy `route.name`) to profile.
    pub route_profiles: BTreeMap<String, String>,
    /// Route name to the profiles the profile header may switch that route to; a route that
    /// names a profile cannot be switched (relaxed) by a header otherwise.
    pub route_switches: BTreeMap<String, Vec<String>>,
    /// Deny keywords inline, one a line: `keyword TAB category TAB action` (or the tagged
    /// layout), added to every profile's `dictionaries`.
    pub keywords: String,
    /// Allow words inline, one a line, added likewise.
    pub allow: String,
    /// Periodic fetch of a compiled dictionary artifact, replacing the inline keywords.
    pub dictionary_fetch: Option<DictionaryFetch>,
    /// What to inspect.
    pub inspect: Inspect,
    /// GB 45438 labels on generated text.
    pub label: LabelConfig,
    /// `enforce` acts on decisions; `monitor` decides and logs but changes nothing.
    pub mode: Mode,
    /// Most bytes of a request or non-streamed response body buffered for inspection.
    pub max_body_bytes: Option<usize>,
    /// A guard model asked after the keywords pass (the classification layer). Parsed by
    /// `parse_config` (the model part by the core's `Guard::from_json`), not by this derive.
    #[serde(skip)]
    pub guard: Option<GuardConfig>,
    /// Platform mode (Measures art. 6): the implicit labels of uploaded files read, kept and
    /// given the platform's fields.
    pub platform: Option<PlatformConfig>,
}

/// See [`PluginConfig::platform`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The platform's code: `ContentPropagator` of every label it passes on.
    pub code: String,
    /// The upload paths (normalized as `inspect.skip_paths`; one ending in `/` covers
    /// everything below it).
    pub upload_paths: Vec<String>,
    /// The request header the platform sets (`1`, `true` or `yes`) when the uploader declares
    /// the content AI-generated: a file without a label then gets `Label` `"2"`.
    #[serde(default = "default_declared_header")]
    pub declared_header: String,
    /// A file holding two different labels: `refuse` (422) or `mark` (passed unchanged,
    /// reported as `conflict`).
    #[serde(default)]
    pub on_conflict: OnConflict,
}

/// The header that tells the upstream what platform mode found in an upload.
pub const LABEL_FOUND_HEADER: &str = "x-aigc-label-found";

fn default_declared_header() -> String {
    "x-aigc-declared".to_string()
}

impl PlatformConfig {
    /// True when `path` is an upload path.
    pub fn covers(&self, path: &str) -> bool {
        path_listed(&self.upload_paths, path)
    }
}

/// See [`PlatformConfig::on_conflict`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Answer 422; the upload is not forwarded.
    #[default]
    Refuse,
    /// Forward the file unchanged, `x-aigc-label-found: conflict`.
    Mark,
}

/// True when the normalized `path` is one of `list` or below an entry ending in `/`.
fn path_listed(list: &[String], path: &str) -> bool {
    let path = crate::api::normalize_path(path);
    list.iter().any(|p| {
        let p = crate::api::normalize_path(p);
        path == p || (p.ends_with('/') && path.starts_with(&p)) || path.starts_with(&format!("{p}/"))
    })
}

/// See [`PluginConfig::guard`]: where the guard model is, and when it is asked.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// The Envoy cluster serving the guard model.
    pub cluster: String,
    /// `:authority` of the calls; the cluster name by default.
    pub authority: String,
    /// Path of the calls; the protocol's default path (`/v1/chat/completions`, `/v1/moderations`).
    pub path: String,
    /// Most milliseconds a call may take; past it `on_error` decides.
    pub timeout_ms: u64,
    /// A call that fails, times out or answers what cannot be read: refused (`fail_closed`,
    /// the default) or let through (`fail_open`), logged and counted either way.
    pub on_error: aigc_edge::policy::OnLimit,
    /// Ask about prompts.
    pub requests: bool,
    /// Ask about non-streamed answers (judged with their prompt).
    pub responses: bool,
    /// How streamed answers are judged: windows, overlap, `hold` or `audit`.
    pub stream: crate::guard::StreamSettings,
    /// The model's contract and how its verdicts act (the core's).
    pub model: aigc_edge::guard::Guard,
}

/// The Envoy side of a `guard` object (the rest is the core's [`aigc_edge::guard::Guard`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardPlacement {
    cluster: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "default_guard_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    on_error: aigc_edge::policy::OnLimit,
    #[serde(default = "yes")]
    requests: bool,
    #[serde(default = "yes")]
    responses: bool,
    #[serde(default)]
    stream: crate::guard::StreamSettings,
}

fn default_guard_timeout() -> u64 {
    2000
}

fn yes() -> bool {
    true
}

const GUARD_PLACEMENT: [&str; 8] =
    ["cluster", "authority", "path", "timeout_ms", "on_error", "requests", "responses", "stream"];

/// The `guard` object: placement fields here, the rest through the core's parser; errors name
/// `guard.FIELD`.
fn guard_from_value(value: &serde_json::Value) -> Result<GuardConfig, ConfigError> {
    let bad = |field: &str, why: &str| {
        let at = if field.is_empty() { "guard".to_string() } else { format!("guard.{field}") };
        ConfigError(format!("invalid plugin configuration field `{at}`: {why}"))
    };
    let object = value.as_object().ok_or_else(|| bad("", "expected an object"))?;
    let (placement, model): (serde_json::Map<_, _>, serde_json::Map<_, _>) =
        object.clone().into_iter().partition(|(k, _)| GUARD_PLACEMENT.contains(&k.as_str()));
    let placement: GuardPlacement = from_object(placement, "guard")?;
    let model = aigc_edge::guard::Guard::from_json(&serde_json::Value::Object(model).to_string()).map_err(|e| {
        ConfigError(e.within("guard").to_string().replace("invalid policy", "invalid plugin configuration"))
    })?;
    if placement.cluster.is_empty() {
        return Err(bad("cluster", "must name the Envoy cluster serving the guard model"));
    }
    let path = placement.path.unwrap_or_else(|| model.protocol.default_path().to_string());
    if !path.starts_with('/') {
        return Err(bad("path", "must start with /"));
    }
    if placement.timeout_ms == 0 || placement.timeout_ms > 60_000 {
        return Err(bad("timeout_ms", "must be between 1 and 60000"));
    }
    let stream = placement.stream;
    if stream.window_chars == 0 || stream.overlap_chars >= stream.window_chars {
        return Err(bad("stream.overlap_chars", "needs window_chars > 0 and overlap_chars < window_chars"));
    }
    if stream.flush_ms == 0 {
        return Err(bad("stream.flush_ms", "must be greater than 0"));
    }
    Ok(GuardConfig {
        stream,
        authority: placement.authority.unwrap_or_else(|| placement.cluster.clone()),
        cluster: placement.cluster,
        path,
        timeout_ms: placement.timeout_ms,
        on_error: placement.on_error,
        requests: placement.requests,
        responses: placement.responses,
        model,
    })
}

/// See [`PluginConfig::dictionary_fetch`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictionaryFetch {
    /// Envoy cluster serving the artifact.
    pub cluster: String,
    /// Path of the artifact.
    pub path: String,
    /// `:authority` header; the cluster name by default.
    #[serde(default)]
    pub authority: Option<String>,
    /// Seconds between fetches (first fetch right after start).
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
}

fn default_interval() -> u64 {
    60
}

/// See [`PluginConfig::inspect`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inspect {
    /// Check prompts.
    pub requests: bool,
    /// Check model output.
    pub responses: bool,
    /// Which chat roles' messages are checked.
    pub roles: Roles,
    /// Inspect bodies of paths no known API claims (JSON, forms and text alike). On by
    /// default: a route the filter does not know is no way around it.
    pub raw: bool,
    /// Paths (normalized: lower case, decoded, dot segments resolved) left uninspected by
    /// name; a path ending in `/` covers everything below it.
    pub skip_paths: Vec<String>,
}

impl Default for Inspect {
    fn default() -> Self {
        Inspect { requests: true, responses: true, roles: Roles::All, raw: true, skip_paths: Vec::new() }
    }
}

impl Inspect {
    /// True when an exchange of `api` on `path` is inspected.
    pub fn covers(&self, api: crate::api::Api, path: &str) -> bool {
        !path_listed(&self.skip_paths, path) && (!api.is_raw() || self.raw)
    }
}

/// See [`Inspect::roles`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Roles {
    /// Every message, system and assistant included.
    #[default]
    All,
    /// Only `user` messages.
    User,
}

/// See [`PluginConfig::label`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// The explicit label text; must hold an AI element and a generation element.
    pub explicit: Option<String>,
    /// Where the explicit label goes in the assistant text.
    pub position: Placement,
    /// Response header carrying the Annex E JSON; its name must contain `aigc`.
    pub header: String,
    /// Also add the label object as a top-level `AIGC` field of JSON bodies.
    pub body_field: bool,
    /// `ContentProducer` (and first-write `ContentPropagator`): the provider's code.
    pub producer: String,
    /// An SM2 private key (PKCS#8 PEM, from `aigc-edge keygen`) that signs every label the
    /// filter writes (`ReservedCode1`): the header, the body field and generated files.
    pub signing_key: Option<Secret>,
    /// The visible label drawn on generated images (PNG, JPEG, WebP): only in the filter's
    /// visible build (`make filter-visible`).
    pub visible: Option<VisibleConfig>,
    /// The invisible image watermark on the generated images (PNG, JPEG, WebP) the filter labels,
    /// carrying the first 64 bits of the SHA-256 of the label's `ProduceID`: read back with
    /// `aigc-edge verify --key-file` or the browser's `detectImageWatermark`. Only in the
    /// visible build.
    pub image_watermark: Option<ImageWatermarkConfig>,
    /// The audible label (Morse "AI") on generated audio — WAV, MP3, and the raw PCM of
    /// `/v1/audio/speech` — at its `start` or `end`; off when absent.
    pub audible: Option<AudiblePlacement>,
}

/// See [`LabelConfig::image_watermark`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageWatermarkConfig {
    /// The secret key, at least 16 bytes.
    pub key: Secret,
}

/// See [`LabelConfig::visible`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisibleConfig {
    /// The text drawn, e.g. `AI生成`; must hold an AI element and a generation element.
    pub text: String,
    /// `top-left`, `top-right`, `bottom-left` or `bottom-right` (default).
    #[serde(default = "default_corner")]
    pub corner: String,
}

fn default_corner() -> String {
    "bottom-right".to_string()
}

/// See [`LabelConfig::audible`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudiblePlacement {
    /// Before the audio.
    Start,
    /// After it.
    End,
}

impl AudiblePlacement {
    /// The core's placement.
    pub fn placement(self) -> aigc_edge::files::audible::Placement {
        match self {
            AudiblePlacement::Start => aigc_edge::files::audible::Placement::Start,
            AudiblePlacement::End => aigc_edge::files::audible::Placement::End,
        }
    }
}

/// A secret as configured (a PEM private key, a watermark key): deserialized as the text,
/// never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig {
            explicit: Some(ExplicitLabel::DEFAULT_TEXT.to_string()),
            position: Placement::Start,
            header: "x-aigc-label".to_string(),
            body_field: false,
            producer: "aigc-edge".to_string(),
            signing_key: None,
            visible: None,
            image_watermark: None,
            audible: None,
        }
    }
}

/// See [`LabelConfig::position`]: the core's [`LabelPosition`], or none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Before the assistant text (the first delta of a stream).
    #[default]
    Start,
    /// After it (the last delta).
    End,
    /// No explicit label.
    None,
}

/// See [`PluginConfig::mode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Block, mask and label.
    #[default]
    Enforce,
    /// Decide and log only.
    Monitor,
}

/// Default for [`PluginConfig::max_body_bytes`]: 960 KiB, below Envoy's default
/// per-connection buffer limit (1 MiB) by more than one read, so the filter's own limit, with
/// the API's well-formed refusal, is met before Envoy resets the stream.
pub const DEFAULT_MAX_BODY_BYTES: usize = 960 << 10;

/// The compiled configuration every HTTP context shares.
#[derive(Debug)]
pub struct Plugin {
    /// The configuration as given.
    pub config: PluginConfig,
    /// The default profile.
    pub default: Filter,
    /// The explicit label in force, if any.
    pub explicit_label: Option<ExplicitLabel>,
    /// Every named profile.
    pub profiles: BTreeMap<String, Filter>,
    /// Where the dictionary came from, for logs.
    pub dictionary_source: String,
    /// The key `label.signing_key` names, parsed.
    pub signing_key: Option<SigningKey>,
    /// The watermark under `label.image_watermark.key`.
    pub image_watermark: Option<ImageWatermark>,
}

/// A configuration error naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PluginConfig {
    /// Parses the JSON configuration; the error names the bad field.
    pub fn from_json(bytes: &[u8]) -> Result<PluginConfig, ConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let config: PluginConfig = parse_config(de)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |field: &str, why: &str| Err(ConfigError(format!("invalid plugin configuration field `{field}`: {why}")));
        if let Err(e) = self.explicit_label() {
            return bad("label.explicit", &e.to_string());
        }
        for (at, policy) in self.policies() {
            if let Some(i) = policy.dictionaries.iter().position(|d| d.path.is_some()) {
                return bad(
                    &format!("{at}.dictionaries[{i}].path"),
                    "a proxy-wasm VM reads no files: give the list inline as `text`, in `keywords`, or use dictionary_fetch",
                );
            }
            if policy.segmentation.as_ref().is_some_and(|s| s.path.is_some()) {
                return bad(
                    &format!("{at}.segmentation.path"),
                    "a proxy-wasm VM reads no files: give the lexicon inline as `text`, or compile it into the artifact dictionary_fetch loads",
                );
            }
        }
        if !self.label.header.to_ascii_lowercase().contains("aigc") {
            return bad("label.header", "the carrier's name must contain AIGC (GB 45438 Annex E)");
        }
        if self.label.producer.is_empty() || !is_annex_e_value(&self.label.producer) {
            return bad(
                "label.producer",
                "must be a non-empty code of printable ASCII without space, quote or backslash",
            );
        }
        if let Some(visible) = &self.label.visible {
            if !cfg!(feature = "visible") {
                return bad(
                    "label.visible",
                    "this build draws no visible labels: load the filter's visible build (make filter-visible)",
                );
            }
            if !aigc_edge::label::is_explicit_label(&visible.text) {
                return bad("label.visible.text", "must contain 人工智能/AI and 生成/合成");
            }
            if let Err(e) = visible.corner.parse::<aigc_edge::label::visible::Corner>() {
                return bad("label.visible.corner", &e.to_string());
            }
        }
        if let Some(mark) = &self.label.image_watermark {
            if !cfg!(feature = "visible") {
                return bad(
                    "label.image_watermark",
                    "this build writes no image watermark: load the filter's visible build (make filter-visible)",
                );
            }
            if mark.key.0.len() < 16 {
                return bad("label.image_watermark.key", "must be at least 16 bytes");
            }
        }
        if let Some(platform) = &self.platform {
            if platform.code.is_empty() || !is_annex_e_value(&platform.code) {
                return bad(
                    "platform.code",
                    "must be a non-empty code of printable ASCII without space, quote or backslash",
                );
            }
            if platform.upload_paths.is_empty() || platform.upload_paths.iter().any(|p| !p.starts_with('/')) {
                return bad("platform.upload_paths", "give one path or more, each starting with /");
            }
            let header = &platform.declared_header;
            if header.is_empty() || !header.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
                return bad("platform.declared_header", "must be a lowercase header name");
            }
        }
        if self.max_body_bytes == Some(0) {
            return bad("max_body_bytes", "must be greater than 0");
        }
        for (route, allowed) in &self.route_switches {
            for (i, profile) in allowed.iter().enumerate() {
                if profile != "default" && !self.profiles.contains_key(profile) {
                    return bad(&format!("route_switches.{route}[{i}]"), &format!("no profile named {profile:?}"));
                }
            }
        }
        for (route, profile) in &self.route_profiles {
            if profile != "default" && !self.profiles.contains_key(profile) {
                return bad(&format!("route_profiles.{route}"), &format!("no profile named {profile:?}"));
            }
        }
        if let Some(fetch) = &self.dictionary_fetch {
            if fetch.cluster.is_empty() || !fetch.path.starts_with('/') || fetch.interval_seconds == 0 {
                return bad("dictionary_fetch", "needs a cluster, a path starting with / and interval_seconds > 0");
            }
        } else if !self.has_inline_keywords() {
            return bad("keywords", "give inline keywords or dictionary_fetch");
        }
        Ok(())
    }

    /// True when keywords are given inline (`keywords`, or a policy's inline `dictionaries`):
    /// the plugin can be built at configure, before any fetch.
    pub fn has_inline_keywords(&self) -> bool {
        !self.keywords.trim().is_empty() || self.policies().any(|(_, p)| !p.dictionaries.is_empty())
    }

    /// The default policy and every profile's, with the field each sits at.
    fn policies(&self) -> impl Iterator<Item = (String, &Policy)> {
        let profiles = self.profiles.iter().map(|(name, p)| (format!("profiles.{name}"), p));
        std::iter::once(("policy".to_string(), &self.policy)).chain(profiles)
    }

    /// The explicit label the configuration asks for.
    fn explicit_label(&self) -> Result<Option<ExplicitLabel>, aigc_edge::label::NotExplicitLabel> {
        let position = match self.label.position {
            Placement::Start => LabelPosition::Start,
            Placement::End => LabelPosition::End,
            Placement::None => return Ok(None),
        };
        self.label.explicit.as_deref().map(|text| ExplicitLabel::new(text, position)).transpose()
    }

    /// `policy` with the inline `keywords` and `allow` lists ahead of its own.
    fn with_inline_lists(&self, policy: &Policy) -> Policy {
        let mut policy = policy.clone();
        let inline = [(&self.keywords, KeywordKind::Deny), (&self.allow, KeywordKind::Allow)]
            .into_iter()
            .filter(|(text, _)| !text.trim().is_empty())
            .map(|(text, kind)| DictionarySource::inline(text.as_str(), KeywordFormat::Auto, kind));
        policy.dictionaries.splice(0..0, inline);
        policy
    }

    /// The body limit in force.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }
}

/// Parses the configuration; policies go through the core's own parser so their errors carry
/// the full field path (`policy.limits.max_carry_bytes`).
fn parse_config(de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>) -> Result<PluginConfig, ConfigError> {
    let value: serde_json::Value = serde::Deserialize::deserialize(&mut *de)
        .map_err(|e| ConfigError(format!("invalid plugin configuration: {e}")))?;
    let object =
        value.as_object().ok_or_else(|| ConfigError("invalid plugin configuration: not a JSON object".into()))?;
    // Policies go through the core's parser so their errors carry the full field path.
    let mut policies = BTreeMap::new();
    if let Some(p) = object.get("policy") {
        policies.insert("policy".to_string(), policy_from_value(p, "policy")?);
    }
    match object.get("profiles") {
        Some(serde_json::Value::Object(profiles)) => {
            for (name, p) in profiles {
                policies.insert(format!("profiles.{name}"), policy_from_value(p, &format!("profiles.{name}"))?);
            }
        }
        Some(_) => {
            return Err(ConfigError(
                "invalid plugin configuration field `profiles`: expected an object of policies".into(),
            ))
        }
        None => {}
    }
    let guard = object.get("guard").map(guard_from_value).transpose()?;
    let mut rest = object.clone();
    rest.remove("policy");
    rest.remove("profiles");
    rest.remove("guard");
    let mut config: PluginConfig = from_object(rest, "")?;
    config.guard = guard;
    for (key, policy) in policies {
        match key.strip_prefix("profiles.") {
            Some(name) => {
                config.profiles.insert(name.to_string(), policy);
            }
            None => config.policy = policy,
        }
    }
    Ok(config)
}

/// Deserializes the part of the configuration at `at` ("" for the top level); the error names
/// the field, a missing one by its own name ([`aigc_edge::Error::from_json`]). Through the JSON
/// text, as the core parses policies: one deserializer type for every configuration type (a
/// second, over `serde_json::Value`, cost the filter ~40 KB of code, and V8 compiles every byte
/// before the first request).
fn from_object<T: serde::de::DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
    at: &str,
) -> Result<T, ConfigError> {
    let text = serde_json::Value::Object(object).to_string();
    aigc_edge::Error::from_json(&text).map_err(|e| match e.kind() {
        aigc_edge::ErrorKind::Policy { field, message } => match (at, field.as_str()) {
            ("", "") => ConfigError(format!("invalid plugin configuration: {message}")),
            ("", field) | (field, "") => {
                ConfigError(format!("invalid plugin configuration field `{field}`: {message}"))
            }
            (at, field) => ConfigError(format!("invalid plugin configuration field `{at}.{field}`: {message}")),
        },
        _ => ConfigError(format!("invalid plugin configuration: {e}")),
    })
}

fn policy_from_value(value: &serde_json::Value, at: &str) -> Result<Policy, ConfigError> {
    Policy::from_json(&value.to_string()).map_err(|e| config_error(e.within(at)))
}

/// A core error as a configuration error: policy fields carry their full path.
fn config_error(e: aigc_edge::Error) -> ConfigError {
    ConfigError(e.to_string().replacen("invalid policy field", "invalid plugin configuration field", 1))
}

impl Plugin {
    /// Compiles the configuration: every profile's policy (with the inline lists) built by the
    /// core's one assembly; profiles that compile to the same dictionary share it.
    pub fn new(config: PluginConfig) -> Result<Plugin, ConfigError> {
        let no_files = |path: &str| Err(format!("a proxy-wasm VM reads no files ({path})"));
        let build = |at: &str, policy: &Policy| {
            let policy = config.with_inline_lists(policy);
            Filter::from_policy(&policy, no_files).map_err(|e| match e.kind() {
                aigc_edge::ErrorKind::Policy { .. } => config_error(e.within(at)),
                _ => ConfigError(format!("invalid plugin configuration field `keywords`: {e}")),
            })
        };
        let default = build("policy", &config.policy)?;
        let mut profiles = BTreeMap::new();
        for (name, policy) in &config.profiles {
            let at = format!("profiles.{name}");
            let filter = if policy.same_dictionary(&config.policy) {
                default.with_policy(policy).map_err(|e| config_error(e.within(&at)))?
            } else {
                build(&at, policy)?
            };
            profiles.insert(name.clone(), filter);
        }
        Self::assemble(config, default, profiles, "inline keywords".to_string())
    }

    /// Compiles the configuration over a fetched dictionary artifact, shared by every profile.
    pub fn with_artifact(config: PluginConfig, artifact: &[u8], source: String) -> Result<Plugin, ConfigError> {
        let dict = Dictionary::from_artifact(artifact).map_err(|e| ConfigError(e.to_string()))?;
        Plugin::with_dictionary(config, dict, source)
    }

    /// The plugin over a dictionary already loaded (from a fetched artifact read piece by piece).
    pub fn with_dictionary(config: PluginConfig, dict: Dictionary, source: String) -> Result<Plugin, ConfigError> {
        let dict = Arc::new(dict);
        let filter = |at: &str, policy: &Policy| {
            Filter::new(Arc::clone(&dict), policy)
                .map_err(|e| ConfigError(format!("invalid plugin configuration field `{at}`: {}", e.within(at))))
        };
        let default = filter("policy", &config.policy)?;
        let mut profiles = BTreeMap::new();
        for (name, policy) in &config.profiles {
            profiles.insert(name.clone(), filter(&format!("profiles.{name}"), policy)?);
        }
        Self::assemble(config, default, profiles, source)
    }

    fn assemble(
        config: PluginConfig,
        default: Filter,
        profiles: BTreeMap<String, Filter>,
        dictionary_source: String,
    ) -> Result<Plugin, ConfigError> {
        let explicit_label = config
            .explicit_label()
            .map_err(|e| ConfigError(format!("invalid plugin configuration field `label.explicit`: {e}")))?;
        let signing_key = match &config.label.signing_key {
            // The error names what is wrong with the PEM, never its content.
            Some(Secret(pem)) => Some(
                SigningKey::from_pem(pem)
                    .map_err(|e| ConfigError(format!("invalid plugin configuration field `label.signing_key`: {e}")))?,
            ),
            None => None,
        };
        let image_watermark = config.label.image_watermark.as_ref().map(|m| ImageWatermark::new(m.key.0.as_bytes()));
        Ok(Plugin { config, default, explicit_label, profiles, dictionary_source, signing_key, image_watermark })
    }

    /// The filter for a profile name.
    fn profile(&self, name: &str) -> Option<(&str, &Filter)> {
        if name == "default" {
            return Some(("default", &self.default));
        }
        self.profiles.get_key_value(name).map(|(k, f)| (k.as_str(), f))
    }

    /// The profile of a request: the route's (`route_profiles`), or the default; the profile
    /// header may name another only when it exists and, on a route that names a profile, when
    /// `route_switches` lists it for that route. `Err` says why a request is refused.
    pub fn select(&self, route: Option<&str>, header: Option<&str>) -> Result<(&str, &Filter), String> {
        let route_profile = route.and_then(|r| self.config.route_profiles.get(r));
        let base = route_profile.map_or("default", String::as_str);
        let Some(asked) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return self.profile(base).ok_or_else(|| format!("no profile named {base:?}"));
        };
        let chosen = self.profile(asked).ok_or_else(|| format!("no profile named {asked:?}"))?;
        if let (Some(route), Some(_)) = (route, route_profile) {
            let allowed = self.config.route_switches.get(route).is_some_and(|list| list.iter().any(|p| p == asked));
            if asked != base && !allowed {
                return Err(format!("route {route:?} does not allow switching to profile {asked:?}"));
            }
        }
        Ok(chosen)
    }
}
