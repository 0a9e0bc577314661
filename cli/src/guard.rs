//! `--guard URL`: the guard model asked from the command line, over the protocols the Envoy
//! filter speaks (the core's `aigc_edge::guard`), with a small blocking HTTP client.

use std::time::Duration;

use aigc_edge::guard::{Decided, Guard, Judgement, Protocol, Severity};
use aigc_edge::policy::OnLimit;
use aigc_edge::{Action, Policy};
use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Clone)]
#[command(next_help_heading = "Guard model")]
pub(crate) struct GuardArgs {
    /// Also ask a guard model about each text (the keywords stay first): its URL, e.g.
    /// http://127.0.0.1:8000 (the protocol's path is added when none is given).
    #[arg(long = "guard", value_name = "URL")]
    url: Option<String>,
    /// qwen3guard (a chat-completions endpoint serving Qwen3Guard-Gen) or openai_moderation.
    #[arg(long, value_name = "P", default_value = "qwen3guard", value_parser = protocol, requires = "url")]
    guard_protocol: Protocol,
    /// The model name the guard server expects.
    #[arg(long, value_name = "M", requires = "url")]
    guard_model: Option<String>,
    /// The lowest severity that acts: unsafe or controversial.
    #[arg(long, value_name = "S", default_value = "unsafe", value_parser = severity, requires = "url")]
    guard_severity: Severity,
    /// Most milliseconds a call may take.
    #[arg(long, value_name = "MS", default_value_t = 10_000, requires = "url")]
    guard_timeout_ms: u64,
    /// What a call that fails or answers garbage means: fail_closed (block) or fail_open.
    #[arg(long, value_name = "E", default_value = "fail_closed", value_parser = on_error, requires = "url")]
    guard_on_error: OnLimit,
    /// An environment variable holding a bearer token for the guard server.
    #[arg(long, value_name = "VAR", requires = "url")]
    guard_api_key_env: Option<String>,
}

fn protocol(s: &str) -> Result<Protocol, String> {
    serde_json::from_value(json!(s)).map_err(|_| format!("{s:?}: expected qwen3guard or openai_moderation"))
}

fn severity(s: &str) -> Result<Severity, String> {
    match s {
        "unsafe" => Ok(Severity::Unsafe),
        "controversial" => Ok(Severity::Controversial),
        _ => Err(format!("{s:?}: expected unsafe or controversial")),
    }
}

fn on_error(s: &str) -> Result<OnLimit, String> {
    serde_json::from_value(json!(s)).map_err(|_| format!("{s:?}: expected fail_closed or fail_open"))
}

/// `url` as given when it names a path, else with `path` (an OpenAI-style server's default);
/// only http:// and https:// are taken. `option` names the flag in the error.
pub(crate) fn with_default_path(option: &str, url: &str, path: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let Some(rest) = rest else { return Err(format!("{option} {url}: expected an http:// or https:// URL")) };
    Ok(if rest.contains('/') && !rest.ends_with('/') {
        url.to_string()
    } else {
        format!("{}{path}", url.trim_end_matches('/'))
    })
}

/// A guard model to ask.
pub(crate) struct GuardClient {
    url: String,
    guard: Guard,
    agent: ureq::Agent,
    on_error: OnLimit,
    token: Option<String>,
}

/// What the guard made of one text.
pub(crate) enum Verdict {
    /// A judgement, and what the policy does about it (`None`: below the acting severity).
    Judged(Judgement, Option<Decided>),
    /// No usable answer; the action `on_error` gives.
    Failed(String, Action),
}

impl GuardArgs {
    /// The client, when `--guard` was given.
    pub(crate) fn client(&self) -> Result<Option<GuardClient>, String> {
        let Some(url) = &self.url else { return Ok(None) };
        let url = with_default_path("--guard", url, self.guard_protocol.default_path())?;
        let guard = Guard {
            protocol: self.guard_protocol,
            model: self.guard_model.clone().unwrap_or_default(),
            severity: self.guard_severity,
            ..Guard::default()
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(self.guard_timeout_ms)))
            .http_status_as_error(false)
            .build();
        let token = match &self.guard_api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| format!("--guard-api-key-env: ${var} is not set"))?),
            None => None,
        };
        Ok(Some(GuardClient { url, guard, agent: config.into(), on_error: self.guard_on_error, token }))
    }
}

impl GuardClient {
    /// Asks about `text`; the verdict under `policy`.
    pub(crate) fn judge(&self, text: &str, policy: &Policy) -> Verdict {
        self.verdict(self.ask(text, None), policy)
    }

    /// Asks about an answer with its question as context (the guard also says whether the
    /// answer refuses); the verdict under `policy` (the default policy without one).
    pub(crate) fn judge_answer(&self, question: &str, answer: &str, policy: Option<&Policy>) -> Verdict {
        let default = Policy::default();
        self.verdict(self.ask(answer, Some(question)), policy.unwrap_or(&default))
    }

    fn verdict(&self, asked: Result<Judgement, String>, policy: &Policy) -> Verdict {
        match asked {
            Ok(judgement) => {
                let decided = self.guard.decide(&judgement, policy);
                Verdict::Judged(judgement, decided)
            }
            Err(why) => {
                let action = match self.on_error {
                    OnLimit::FailClosed => Action::Block,
                    OnLimit::FailOpen => Action::Pass,
                };
                Verdict::Failed(why, action)
            }
        }
    }

    fn ask(&self, text: &str, prompt: Option<&str>) -> Result<Judgement, String> {
        let mut request = self.agent.post(&self.url).header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let mut response =
            request.send(&self.guard.request(text, prompt)[..]).map_err(|e| format!("{}: {e}", self.url))?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().map_err(|e| format!("{}: {e}", self.url))?;
        self.guard.read_response(status, &body).map_err(|e| format!("{}: {e}", self.url))
    }
}

impl Verdict {
    /// The action it adds to the keyword layer's.
    pub(crate) fn action(&self) -> Action {
        match self {
            Verdict::Judged(_, Some(d)) => d.action,
            Verdict::Judged(_, None) => Action::Pass,
            Verdict::Failed(_, action) => *action,
        }
    }

    /// The guard's word on whether an answer refuses (Qwen3Guard's `Refusal:`), when it said.
    pub(crate) fn refusal(&self) -> Option<bool> {
        match self {
            Verdict::Judged(j, _) => j.refusal,
            Verdict::Failed(..) => None,
        }
    }

    /// Harmful for a corpus assessment: the guard's verdict acted (whatever the policy's
    /// action), or it could not judge under fail_closed.
    pub(crate) fn harmful(&self) -> bool {
        match self {
            Verdict::Judged(_, decided) => decided.is_some(),
            Verdict::Failed(_, action) => *action == Action::Block,
        }
    }

    /// The `guard` member of a report line.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Verdict::Judged(j, decided) => json!({
                "safety": j.severity.as_str(),
                "categories": j.categories,
                "category": decided.and_then(|d| d.category).map(|c| c.to_string()),
                "action": self.action().as_str(),
            }),
            Verdict::Failed(why, action) => json!({"error": why, "action": action.as_str()}),
        }
    }
}
