//! Metric names, in one place: what the filter counts and how Prometheus sees it.
//!
//! proxy-wasm metrics are flat names; Envoy turns parts of a name into labels with the
//! `stats_tags` of its bootstrap (`run.py` writes them; README shows them for Istio). Each label
//! is written `;name=value` after the family, so one regex per label, `(;name=([^;]*))`, takes
//! it out whatever the value holds (`A.1d` keeps its dot):
//!
//! | filter's name | Prometheus (with the stats_tags) |
//! |---|---|
//! | `aigc_edge_hits_total;category=A.1d;action=block;direction=request` | `aigc_edge_hits_total{category="A.1d",action="block",direction="request"}` |
//! | `aigc_edge_pii_total;kind=mobile;action=mask;direction=response` | `aigc_edge_pii_total{kind="mobile",…}` |
//! | `aigc_edge_uninspected_total;reason=limit;action=block;direction=request` | `aigc_edge_uninspected_total{reason="limit",…}` |
//! | `aigc_edge_inspect_microseconds` | a histogram, buckets 10 µs – 100 ms |
//!
//! Envoy exports metrics defined by Wasm as `wasmcustom.<name>` and Prometheus shows them
//! without that prefix. The proxy-wasm ABI records integers only, so inspection time is in
//! microseconds (seconds would all be 0).

use aigc_edge::{Action, Category, Policy};

use crate::exchange::{Direction, Finding};

/// Exchanges seen.
pub const REQUESTS: &str = "aigc_edge_requests_total";
/// Answers refused or cut.
pub const RESPONSES_BLOCKED: &str = "aigc_edge_responses_blocked_total";
/// Fetched dictionaries loaded.
pub const DICTIONARY_LOADS: &str = "aigc_edge_dictionary_loads_total";
/// Dictionary fetches that failed or were refused.
pub const DICTIONARY_FETCH_FAILURES: &str = "aigc_edge_dictionary_fetch_failures_total";
/// Time the filter spent inspecting one exchange, in microseconds.
pub const INSPECT_MICROSECONDS: &str = "aigc_edge_inspect_microseconds";
/// The histogram's bucket bounds (µs), for the bootstrap's `histogram_bucket_settings`.
pub const INSPECT_BUCKETS: [u32; 13] =
    [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];
/// The labels the filter writes, for the bootstrap's `stats_tags`.
pub const LABELS: [&str; 6] = ["category", "kind", "reason", "action", "direction", "outcome"];

/// The counter of guard-model calls by what they came to (`passed`, `acted`, `failed`).
pub fn guard_call(outcome: crate::guard::Outcome) -> String {
    format!("aigc_edge_guard_calls_total;outcome={}", outcome.as_str())
}

/// The counter for one finding acted on.
pub fn finding(finding: Finding, action: Action, direction: Direction) -> String {
    let (family, label, value) = match finding {
        Finding::Risk(c) => ("aigc_edge_hits_total", "category", c.to_string()),
        Finding::Uncategorized => ("aigc_edge_hits_total", "category", "uncategorized".to_string()),
        Finding::Pii(kind) => ("aigc_edge_pii_total", "kind", kind.as_str().to_string()),
        Finding::Limit => ("aigc_edge_uninspected_total", "reason", "limit".to_string()),
        Finding::Unreadable => ("aigc_edge_uninspected_total", "reason", "unreadable".to_string()),
        Finding::UnlabeledFile => ("aigc_edge_uninspected_total", "reason", "unlabeled_file".to_string()),
        Finding::GuardError => ("aigc_edge_uninspected_total", "reason", "guard_error".to_string()),
        Finding::LabelConflict => ("aigc_edge_label_conflicts_total", "reason", "labels_differ".to_string()),
    };
    format!("{family};{label}={value};action={};direction={}", action.as_str(), direction.as_str())
}

/// Every counter a policy can move, so each series exists (at 0) from configure on: each
/// category at the action the policy gives it, keywords without one, each personal-information
/// kind, and what goes uninspected; both directions. Actions that report nothing (`pass`) have
/// no series; a keyword with its own action gets its series when it first hits.
pub fn configured<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Vec<String> {
    let mut names = Vec::new();
    for policy in policies {
        let mut findings: Vec<(Finding, Action)> = Category::all()
            .map(|c| (Finding::Risk(c), policy.actions.resolve(aigc_edge::category::CategorySet::single(c), None).0))
            .collect();
        findings.push((Finding::Uncategorized, policy.actions.uncategorized));
        findings.extend(policy.pii.kinds.iter().map(|&k| (Finding::Pii(k), policy.pii.action)));
        let on_limit = match policy.on_limit {
            aigc_edge::policy::OnLimit::FailClosed => Action::Block,
            aigc_edge::policy::OnLimit::FailOpen => Action::Pass,
        };
        findings.extend([(Finding::Limit, on_limit), (Finding::Unreadable, on_limit)]);
        for (f, action) in findings {
            if action == Action::Pass {
                continue;
            }
            for direction in [Direction::Request, Direction::Response] {
                names.push(finding(f, action, direction));
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_labels() {
        let cases = [
            (
                finding(Finding::Risk("A.1d".parse().unwrap()), Action::Block, Direction::Request),
                "aigc_edge_hits_total;category=A.1d;action=block;direction=request",
            ),
            (
                finding(Finding::Pii(aigc_edge::PiiKind::Mobile), Action::Mask, Direction::Response),
                "aigc_edge_pii_total;kind=mobile;action=mask;direction=response",
            ),
            (
                finding(Finding::UnlabeledFile, Action::Flag, Direction::Response),
                "aigc_edge_uninspected_total;reason=unlabeled_file;action=flag;direction=response",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn configured_series_follow_the_policy() {
        let policy = Policy::from_json(r#"{"actions": {"default": "block", "categories": {"A.2e": "pass", "A.4c": "mask"}, "uncategorized": "flag"}, "pii": {"action": "pass"}}"#).unwrap();
        let names = configured([&policy]);
        let has = |n: &str| names.iter().any(|x| x == n);
        assert!(has("aigc_edge_hits_total;category=A.1d;action=block;direction=request"));
        assert!(has("aigc_edge_hits_total;category=A.4c;action=mask;direction=response"));
        assert!(has("aigc_edge_hits_total;category=uncategorized;action=flag;direction=request"));
        assert!(has("aigc_edge_uninspected_total;reason=limit;action=block;direction=response"));
        assert!(!names.iter().any(|n| n.contains("category=A.2e")), "pass has no series");
        assert!(!names.iter().any(|n| n.contains("aigc_edge_pii_total")), "pii off");
        // 30 categories at a reporting action, uncategorized, limit, unreadable; both ways.
        assert_eq!(names.len(), (30 + 1 + 2) * 2);
    }
}
