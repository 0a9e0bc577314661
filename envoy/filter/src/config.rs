//! The plugin configuration (Envoy's `configuration` string) and what it compiles into.

use std::collections::BTreeMap;
use std::sync::Arc;

use aigc_edge::{
    is_annex_e_value, is_explicit_label, Dictionary, DictionaryBuilder, Filter, KeywordFormat, KeywordKind,
    KeywordList, Policy,
};
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
    /// Deny keywords inline, one a line: `keyword TAB category TAB action`.
    pub keywords: String,
    /// Allow words inline, one a line.
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
    /// Check bodies of other paths as raw text.
    pub raw: bool,
}

impl Default for Inspect {
    fn default() -> Self {
        Inspect { requests: true, responses: true, roles: Roles::All, raw: false }
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
    pub position: LabelPosition,
    /// Response header carrying the Annex E JSON; its name must contain `aigc`.
    pub header: String,
    /// Also add the label object as a top-level `AIGC` field of JSON bodies.
    pub body_field: bool,
    /// `ContentProducer` (and first-write `ContentPropagator`): the provider's code.
    pub producer: String,
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig {
            explicit: Some("本回答由人工智能生成".to_string()),
            position: LabelPosition::Start,
            header: "x-aigc-label".to_string(),
            body_field: false,
            producer: "aigc-edge".to_string(),
        }
    }
}

/// See [`LabelConfig::position`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelPosition {
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

/// Default for [`PluginConfig::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// The compiled configuration every HTTP context shares.
#[derive(Debug)]
pub struct Plugin {
    /// The configuration as given.
    pub config: PluginConfig,
    /// The default profile.
    pub default: Filter,
    /// Every named profile.
    pub profiles: BTreeMap<String, Filter>,
    /// Where the dictionary came from, for logs.
    pub dictionary_source: String,
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
        if let Some(text) = &self.label.explicit {
            if !is_explicit_label(text) {
                return bad("label.explicit", "must contain 人工智能 or AI and 生成 or 合成 (GB 45438)");
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
        if self.max_body_bytes == Some(0) {
            return bad("max_body_bytes", "must be greater than 0");
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
        } else if self.keywords.trim().is_empty() && self.policy.dictionaries.is_empty() {
            return bad("keywords", "give inline keywords or dictionary_fetch");
        }
        Ok(())
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
    let mut rest = object.clone();
    rest.remove("policy");
    rest.remove("profiles");
    let mut config: PluginConfig = serde_json::from_value(serde_json::Value::Object(rest))
        .map_err(|e| ConfigError(format!("invalid plugin configuration: {e}")))?;
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

fn policy_from_value(value: &serde_json::Value, at: &str) -> Result<Policy, ConfigError> {
    Policy::from_json(&value.to_string()).map_err(|e| {
        ConfigError(
            e.to_string()
                .replacen("invalid policy field `", &format!("invalid plugin configuration field `{at}."), 1)
                .replacen("invalid policy: ", &format!("invalid plugin configuration field `{at}`: "), 1),
        )
    })
}

impl Plugin {
    /// Compiles the configuration with the inline keywords.
    pub fn new(config: PluginConfig) -> Result<Plugin, ConfigError> {
        let mut list = KeywordList::new();
        list.max_keyword_chars(config.policy.limits.max_keyword_chars);
        list.add_source("keywords", config.keywords.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
        list.add_source("allow", config.allow.as_bytes(), KeywordFormat::Native, KeywordKind::Allow);
        for word in &config.policy.allow {
            list.add(word, KeywordKind::Allow, Default::default());
        }
        let builder = |policy: &Policy| {
            DictionaryBuilder::new()
                .normalization(policy.normalize)
                .max_keywords(policy.limits.max_keywords)
                .build(&list)
                .map(Arc::new)
                .map_err(|e| ConfigError(format!("invalid plugin configuration field `keywords`: {e}")))
        };
        if list.keywords().is_empty() {
            // Only a fetched artifact will do; until it arrives the plugin needs something to
            // run, so refuse rather than silently pass everything.
            return Err(ConfigError("invalid plugin configuration field `keywords`: no keywords (the fetched dictionary replaces them once it arrives)".into()));
        }
        let dict = builder(&config.policy)?;
        Self::with_dictionary(config, dict, "inline keywords".to_string(), &builder)
    }

    /// Compiles the configuration over a loaded dictionary (a fetched artifact).
    pub fn with_artifact(config: PluginConfig, artifact: &[u8], source: String) -> Result<Plugin, ConfigError> {
        let dict = Dictionary::from_artifact(artifact).map(Arc::new).map_err(|e| ConfigError(e.to_string()))?;
        let reuse = Arc::clone(&dict);
        Self::with_dictionary(config, dict, source, &move |_: &Policy| Ok(Arc::clone(&reuse)))
    }

    fn with_dictionary(
        config: PluginConfig,
        dict: Arc<Dictionary>,
        dictionary_source: String,
        build: &dyn Fn(&Policy) -> Result<Arc<Dictionary>, ConfigError>,
    ) -> Result<Plugin, ConfigError> {
        let mut profiles = BTreeMap::new();
        let filter = |name: &str, policy: &Policy, dict: Arc<Dictionary>| {
            Filter::new(dict, policy)
                .map_err(|e| ConfigError(format!("invalid plugin configuration field `{name}`: {e}")))
        };
        let default = filter("policy", &config.policy, Arc::clone(&dict))?;
        for (name, policy) in &config.profiles {
            let d = if policy.normalize == config.policy.normalize { Arc::clone(&dict) } else { build(policy)? };
            profiles.insert(name.clone(), filter(&format!("profiles.{name}"), policy, d)?);
        }
        Ok(Plugin { config, default, profiles, dictionary_source })
    }

    /// The filter for a profile name (from header or route), falling back to the default.
    pub fn profile(&self, name: Option<&str>) -> (&str, &Filter) {
        match name.and_then(|n| self.profiles.get_key_value(n)) {
            Some((k, f)) => (k, f),
            None => ("default", &self.default),
        }
    }
}
