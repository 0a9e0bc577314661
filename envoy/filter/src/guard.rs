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
