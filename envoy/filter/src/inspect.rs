//! What in a JSON body is inspected: deny by default. Every string is text — values and keys,
//! in every field of every API, known or not — except the values of a short list of structural
//! keys and blobs of base64. A string that is itself JSON (tool-call arguments, tool results;
//! apps `json.loads` them) is inspected decoded. The strings of one message are inspected as
//! one text, so a keyword split across two parts is one keyword.

use std::collections::BTreeMap;

use aigc_edge::{Action, Decision, Filter};

use crate::config::Roles;
use crate::json::{quote, walk, Doc, Place, Seg};

/// Keys whose values are structure — identifiers, enums, numbers as strings, binary payloads —
/// and never text a person or an app reads as such.
pub fn is_structural(key: &str) -> bool {
    matches!(
        key,
        "model"
            | "role"
            | "type"
            | "id"
            | "object"
            | "index"
            | "finish_reason"
            | "stop_reason"
            | "done_reason"
            | "tool_call_id"
            | "call_id"
            | "item_id"
            | "response_id"
            | "previous_response_id"
            | "status"
            | "system_fingerprint"
            | "service_tier"
            | "encoding_format"
            | "media_type"
            | "b64_json"
            | "signature"
            | "encrypted_content"
            | "created_at"
    )
}

/// Subtrees never inspected string by string: token log-probabilities repeat the text in
/// pieces; they are dropped instead when the text they describe was changed.
pub const DESCRIBES_TEXT: &[&str] = &["logprobs"];

/// True for a string that is a base64 blob or a data URL (an image, audio): not text.
fn is_blob(s: &str) -> bool {
    if s.starts_with("data:") && s.contains(";base64,") {
        return true;
    }
    s.len() >= 256 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// True for a key that is a plain identifier (`content`, `tool_calls`): structure, not text.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The message a string belongs to: its path up to the first array element of a top-level
/// list (`messages[3]`, `choices[0]`, `input[1]`), or the top-level key alone (`prompt`,
/// `system`); Anthropic's answer `content` is one message as a whole.
fn unit_len(path: &[Seg<'_>]) -> usize {
    match path {
        [Seg::Key("content"), ..] => 1,
        [Seg::Key(_), Seg::Index(_), ..] => 2,
        [] => 0,
        _ => 1,
    }
}

/// True when the message at `unit` is skipped under `roles: user`: another role's message, or
/// the system prompt and instructions.
fn skipped_for_roles(doc: &Doc, unit: &[Seg<'_>], roles: Roles) -> bool {
    if roles == Roles::All {
        return false;
    }
    match unit {
        [Seg::Key("system" | "instructions")] => true,
        [Seg::Key(list), Seg::Index(i)] => doc
            .root
            .get(doc, list)
            .and_then(|l| l.at(*i))
            .and_then(|m| m.get(doc, "role"))
            .and_then(|r| r.as_str(doc))
            .is_some_and(|r| r != "user"),
        _ => false,
    }
}

/// What inspecting a document found and changes.
#[derive(Debug, Default)]
pub struct Inspection {
    /// The most severe action.
    pub action: Action,
    /// New decoded text per string index of the document.
    pub rewritten: BTreeMap<usize, String>,
    /// Each checked text with its decision, for the audit log.
    pub decisions: Vec<(String, Decision)>,
    /// Every text checked (a message's parts as one), for the guard model.
    pub texts: Vec<String>,
    /// Messages whose text changed (a top-level key and an element of its list, if any):
    /// their `logprobs` must go.
    pub changed_units: Vec<(String, Option<usize>)>,
}

impl Inspection {
    /// The byte edits that apply [`Inspection::rewritten`] to `doc`.
    pub fn edits(&self, doc: &Doc) -> Vec<(core::ops::Range<usize>, String)> {
        self.rewritten
            .iter()
            .filter_map(|(i, text)| doc.strings.get(*i).map(|s| (s.range.clone(), quote(text))))
            .collect()
    }
}

/// How deep JSON inside strings is followed (a string holding JSON holding JSON …).
const MAX_NESTED: usize = 4;

/// True when every string of `doc` but the `skip`ped ones is plainly structure — an identifier
/// key, the value of a structural key — so there is nothing to inspect (most stream events).
pub fn nothing_to_inspect(doc: &Doc, skip: &dyn Fn(usize) -> bool) -> bool {
    doc.strings.iter().enumerate().all(|(i, s)| {
        skip(i)
            || match s.place {
                Place::Key => is_identifier(doc.str(i)),
                Place::Value(key) => is_structural(doc.str(key)) || is_blob(doc.str(i)),
                Place::Element => false,
            }
    })
}

/// Inspects every text of `doc` (see the module doc).
pub fn inspect(filter: &Filter, doc: &Doc, roles: Roles) -> Inspection {
    inspect_except(filter, doc, roles, &|_| false)
}

/// The same, leaving out the strings `skip` names (a stream's deltas, which go through lanes).
pub fn inspect_except(filter: &Filter, doc: &Doc, roles: Roles, skip: &dyn Fn(usize) -> bool) -> Inspection {
    let mut out = Inspection::default();
    if nothing_to_inspect(doc, skip) {
        return out;
    }
    inspect_into(filter, doc, roles, 0, skip, &mut out);
    out
}

fn inspect_into(
    filter: &Filter,
    doc: &Doc,
    roles: Roles,
    depth: usize,
    skip: &dyn Fn(usize) -> bool,
    out: &mut Inspection,
) {
    // Plain strings grouped by message, in document order; JSON strings apart.
    let mut units: Vec<(Unit<'_>, Vec<usize>)> = Vec::new();
    let mut nested: Vec<usize> = Vec::new();
    walk(doc, &doc.root, |path, i, is_key| {
        let parent = path.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(*k),
            Seg::Index(_) => None,
        });
        let last_is_key = matches!(path.last(), Some(Seg::Key(_)));
        if path.iter().any(|s| matches!(s, Seg::Key(k) if DESCRIBES_TEXT.contains(k))) {
            return;
        }
        if skip(i) {
            return;
        }
        let text = doc.str(i);
        if is_key {
            if is_identifier(text) {
                return;
            }
        } else if (last_is_key && parent.is_some_and(is_structural)) || is_blob(text) {
            return;
        }
        let unit = &path[..unit_len(path).min(path.len())];
        if skipped_for_roles(doc, unit, roles) {
            return;
        }
        if !is_key && depth < MAX_NESTED && text.trim_start().starts_with(['{', '[']) {
            nested.push(i);
            return;
        }
        let name = unit_of(unit);
        match units.last_mut() {
            Some((n, members)) if *n == name => members.push(i),
            _ => match units.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(i),
                None => units.push((name, vec![i])),
            },
        }
    });
    for (name, members) in units {
        let parts: Vec<&str> = members.iter().map(|&i| doc.str(i)).collect();
        let (d, texts) = filter.check_parts(&parts);
        out.action = out.action.max(d.action);
        let mut changed = false;
        for (&i, text) in members.iter().zip(texts) {
            if let Some(text) = text {
                out.rewritten.insert(i, text);
                changed = true;
            }
        }
        if changed {
            out.changed_units.push((name.0.to_string(), name.1));
        }
        let text = parts.concat();
        if !d.hits.is_empty() || !d.pii.is_empty() || d.limit_exceeded {
            out.decisions.push((text.clone(), d));
        }
        out.texts.push(text);
    }
    for i in nested {
        let text = doc.str(i);
        match Doc::parse_str(text) {
            Ok(inner) => {
                let mut sub = Inspection::default();
                inspect_into(filter, &inner, Roles::All, depth + 1, &|_| false, &mut sub);
                out.action = out.action.max(sub.action);
                out.decisions.append(&mut sub.decisions);
                out.texts.append(&mut sub.texts);
                if !sub.rewritten.is_empty() {
                    out.rewritten.insert(i, inner.rewrite_text(&mut sub.edits(&inner)));
                }
            }
            Err(_) => {
                // Looks like JSON but is not: read as the text it is.
                let d = filter.check(text);
                out.action = out.action.max(d.action);
                if let Some(t) = &d.text {
                    out.rewritten.insert(i, t.clone());
                }
                if !d.hits.is_empty() || !d.pii.is_empty() || d.limit_exceeded {
                    out.decisions.push((text.to_string(), d));
                }
                out.texts.push(text.to_string());
            }
        }
    }
}

/// A message: its top-level key and, for a list of messages, its position.
type Unit<'a> = (&'a str, Option<usize>);

fn unit_of<'a>(unit: &[Seg<'a>]) -> Unit<'a> {
    match unit {
        [Seg::Key(k), Seg::Index(i), ..] => (k, Some(*i)),
        [Seg::Key(k), ..] => (k, None),
        _ => ("", None),
    }
}

/// Edits that null the `logprobs` of every changed message (`choices[0]`): they would show
/// the text as it was.
pub fn drop_logprobs(doc: &Doc, changed_units: &[(String, Option<usize>)]) -> Vec<(core::ops::Range<usize>, String)> {
    let mut edits = Vec::new();
    for (key, index) in changed_units {
        let list = doc.root.get(doc, key);
        let node = match index {
            Some(i) => list.and_then(|n| n.at(*i)),
            None => list,
        };
        if let Some(logprobs) = node.and_then(|n| n.get(doc, "logprobs")).filter(|l| !l.is_null(doc)) {
            edits.push((logprobs.range(doc), "null".to_string()));
        }
    }
    edits
}
