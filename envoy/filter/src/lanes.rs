//! The text lanes of a stream: one per choice, block or part and field, each run through the
//! core's streaming matcher (or, for JSON arriving in pieces, held until whole), and what they
//! decided. An API module's stream events read and write them; `sse.rs` frames the events.

use aigc_edge::label::LabelPosition;
use aigc_edge::policy::OnLimit;
use aigc_edge::{Action, Block, ExplicitLabel, Filter, Hit, PiiKind, Stream};
use std::collections::BTreeMap;

use crate::config::Roles;
use crate::inspect::inspect_except;
use crate::json::{quote, Doc};

/// One text lane: `(choice or block index, field, tool call or content index)`.
pub type Key = (u64, String, u64);

#[derive(Debug)]
struct Lane {
    stream: Option<Stream>,
    /// Everything output so far (labels included), for APIs whose events repeat the whole text.
    emitted: String,
    /// The last input bytes and the stream offset of the first, so a hit's bytes can be hashed.
    window: Vec<u8>,
    window_start: usize,
}

/// The lanes of a stream in order of first appearance, found by a borrowed key: a stream has a
/// handful, and a lookup then allocates nothing.
#[derive(Debug, Default)]
struct LaneMap(Vec<(Key, Lane)>);

impl LaneMap {
    fn position(&self, index: u64, field: &str, sub: u64) -> Option<usize> {
        self.0.iter().position(|((i, f, s), _)| *i == index && f == field && *s == sub)
    }

    fn get(&self, key: &Key) -> Option<&Lane> {
        self.position(key.0, &key.1, key.2).and_then(|p| self.0.get(p)).map(|(_, l)| l)
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Lane> {
        self.position(key.0, &key.1, key.2).and_then(|p| self.0.get_mut(p)).map(|(_, l)| l)
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &Lane)> {
        self.0.iter().map(|(k, l)| (k, l))
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.0.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &Lane> {
        self.0.iter().map(|(_, l)| l)
    }
}

/// The text lanes of one stream, and what they decided: the state an API module's stream
/// events read and write.
#[derive(Debug)]
pub struct Lanes {
    filter: Filter,
    label: Option<ExplicitLabel>,
    lanes: LaneMap,
    /// Tool-call arguments and other JSON arriving in pieces, held until whole (apps parse it).
    held: BTreeMap<Key, String>,
    labeled: Vec<u64>,
    end_labeled: Vec<u64>,
    keep_emitted: bool,
    /// Members of the stream's first event (`id`, `model`, …) as raw JSON, for events of our own.
    pub template: Option<Vec<(String, String)>>,
    /// The last chunk the chat fast path read, to read the next one of the same shape.
    pub(crate) shape: Option<crate::fast::Shape>,
    /// Why the stream was cut, if a keyword, personal information or a limit cut it.
    pub blocked: Option<Block>,
    /// The stream was cut at an event that could not be read.
    unreadable_cut: bool,
    /// The stream was cut on the guard model's verdict.
    guard_cut: bool,
    /// Text the lanes released since the last `take_released` (what the client reads), for
    /// the guard model's windows; kept only when tracked (`track_released`).
    released: Option<String>,
    /// The stream ended (or was cut): nothing more goes out.
    pub finished: bool,
    hits: Vec<(Hit, Vec<u8>)>,
    pii: Vec<PiiKind>,
    unreadable: Vec<Action>,
}

impl Lanes {
    /// The lanes of one stream under `filter`; `keep_emitted` for APIs that repeat the whole text.
    pub(crate) fn new(filter: Filter, label: Option<ExplicitLabel>, keep_emitted: bool) -> Lanes {
        Lanes {
            filter,
            label,
            lanes: LaneMap::default(),
            held: BTreeMap::new(),
            labeled: Vec::new(),
            end_labeled: Vec::new(),
            keep_emitted,
            template: None,
            shape: None,
            blocked: None,
            unreadable_cut: false,
            guard_cut: false,
            released: None,
            finished: false,
            hits: Vec::new(),
            pii: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    /// Bytes held in undecided text and held JSON.
    pub(crate) fn carry(&self) -> usize {
        self.lanes.values().filter_map(|l| l.stream.as_ref()).map(Stream::carry).sum::<usize>()
            + self.held.values().map(String::len).sum::<usize>()
    }

    /// True when what cannot be inspected is refused (the policy's `on_limit`).
    pub(crate) fn fails_closed(&self) -> bool {
        self.filter.policy().on_limit == OnLimit::FailClosed
    }

    /// Records something that could not be read: blocked (and the stream cut, when `cut`) under
    /// fail-closed, passed under fail-open.
    pub(crate) fn note_unreadable(&mut self, cut: bool) {
        if self.fails_closed() {
            self.unreadable.push(Action::Block);
            self.unreadable_cut |= cut;
        } else {
            self.unreadable.push(Action::Pass);
        }
    }

    /// Hits decided so far and not yet taken, each with the bytes it matched.
    pub(crate) fn take_hits(&mut self) -> Vec<(Hit, Vec<u8>)> {
        core::mem::take(&mut self.hits)
    }

    /// Kinds of personal information found so far and not yet taken.
    pub(crate) fn take_pii(&mut self) -> Vec<PiiKind> {
        core::mem::take(&mut self.pii)
    }

    /// What was done with each thing that could not be read (block or pass).
    pub(crate) fn take_unreadable(&mut self) -> Vec<Action> {
        core::mem::take(&mut self.unreadable)
    }

    /// Runs `text` through `key`'s lane; returns the text that has settled. A lane that was
    /// finished starts again: content after a finish is inspected like any other.
    pub fn feed(&mut self, key: &Key, text: &str) -> String {
        self.feed_at(key.0, &key.1, key.2, text)
    }

    /// [`Lanes::feed`] by the key's parts: nothing is allocated for a lane that exists.
    pub fn feed_at(&mut self, index: u64, field: &str, sub: u64, text: &str) -> String {
        let filter = &self.filter;
        let keep = filter.policy().limits.max_carry_bytes + 4096;
        let at = match self.lanes.position(index, field, sub) {
            Some(at) => at,
            None => {
                let lane = Lane { stream: None, emitted: String::new(), window: Vec::new(), window_start: 0 };
                self.lanes.0.push(((index, field.to_string(), sub), lane));
                self.lanes.0.len() - 1
            }
        };
        let Some((_, lane)) = self.lanes.0.get_mut(at) else { return String::new() };
        if lane.stream.is_none() {
            lane.stream = Some(filter.stream());
            lane.window.clear();
            lane.window_start = 0;
        }
        lane.window.extend_from_slice(text.as_bytes());
        if lane.window.len() > 2 * keep {
            let drop = lane.window.len() - keep;
            lane.window.drain(..drop);
            lane.window_start += drop;
        }
        let Some(stream) = lane.stream.as_mut() else { return String::new() };
        let Ok(chunk) = stream.write_str(text) else { return String::new() };
        self.absorb(at, chunk)
    }

    /// Takes the chunk of the lane at `at`: hits (with their bytes), personal information and
    /// a block are kept, the settled text returned.
    fn absorb(&mut self, at: usize, chunk: aigc_edge::Chunk) -> String {
        let lane = self.lanes.0.get_mut(at).map(|(_, l)| l);
        for hit in chunk.hits {
            let matched = lane
                .as_ref()
                .and_then(|l| {
                    l.window.get(hit.start.checked_sub(l.window_start)?..hit.end.checked_sub(l.window_start)?)
                })
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            self.hits.push((hit, matched));
        }
        self.pii.extend(chunk.pii.iter().map(|p| p.kind));
        if chunk.blocked.is_some() && self.blocked.is_none() {
            self.blocked = chunk.blocked;
        }
        // The stream's output is the input's text with ASCII masks: UTF-8, taken without a copy.
        let s = String::from_utf8(chunk.output).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if let Some(released) = self.released.as_mut() {
            released.push_str(&s);
        }
        if self.keep_emitted {
            if let Some(lane) = lane {
                lane.emitted.push_str(&s);
            }
        }
        s
    }

    /// Ends a lane; returns its held-back text.
    pub fn finish(&mut self, key: &Key) -> String {
        let Some(at) = self.lanes.position(key.0, &key.1, key.2) else { return String::new() };
        let Some(stream) = self.lanes.0.get_mut(at).and_then(|(_, l)| l.stream.take()) else { return String::new() };
        self.absorb(at, stream.finish())
    }

    /// Ends every open lane and releases every held JSON; returns what they held that was not
    /// empty, lanes first.
    pub fn finish_all(&mut self) -> Vec<(Key, String)> {
        let keys: Vec<Key> = self.lanes.iter().filter(|(_, l)| l.stream.is_some()).map(|(k, _)| k.clone()).collect();
        let mut out: Vec<(Key, String)> = keys.into_iter().map(|k| (k.clone(), self.finish(&k))).collect();
        let held: Vec<Key> = self.held.keys().cloned().collect();
        out.extend(held.into_iter().map(|k| (k.clone(), self.release(&k))));
        out.retain(|(_, tail)| !tail.is_empty());
        out
    }

    /// Holds a piece of JSON text (tool-call arguments) until the whole parses; then inspects
    /// the strings inside, decoded, and returns the text to send. Past the carry limit the
    /// policy's `on_limit` decides.
    pub fn hold(&mut self, key: &Key, piece: &str) -> Option<String> {
        let text = self.held.entry(key.clone()).or_default();
        text.push_str(piece);
        let limit = self.filter.policy().limits.max_carry_bytes;
        if text.trim().is_empty() {
            return None;
        }
        if let Ok(doc) = Doc::parse_str(text) {
            self.held.remove(key);
            return Some(self.inspect_whole(&doc));
        }
        if text.len() > limit {
            return match self.filter.policy().on_limit {
                OnLimit::FailClosed => {
                    self.blocked.get_or_insert(Block::CarryLimit { limit });
                    self.held.remove(key);
                    None
                }
                OnLimit::FailOpen => Some(self.release(key)),
            };
        }
        None
    }

    /// A held JSON text that never completed: checked as the text it is.
    pub fn release(&mut self, key: &Key) -> String {
        let Some(text) = self.held.remove(key) else { return String::new() };
        match Doc::parse_str(&text) {
            Ok(doc) => self.inspect_whole(&doc),
            Err(_) => {
                let d = self.filter.check(&text);
                self.take_decision(&text, d.clone());
                d.text.unwrap_or(text)
            }
        }
    }

    /// A whole JSON value, inspected decoded; returns its text with any masks.
    fn inspect_whole(&mut self, doc: &Doc) -> String {
        let ins = inspect_except(&self.filter, doc, Roles::All, &|_| false);
        for (text, d) in &ins.decisions {
            self.take_decision(text, d.clone());
        }
        doc.rewrite_text(&mut ins.edits(doc))
    }

    fn take_decision(&mut self, text: &str, d: aigc_edge::Decision) {
        for hit in d.hits {
            let matched = text.as_bytes().get(hit.start..hit.end).unwrap_or(&[]).to_vec();
            if hit.action == Action::Block && self.blocked.is_none() {
                self.blocked = Some(Block::Keyword(hit.clone()));
            }
            self.hits.push((hit, matched));
        }
        for p in &d.pii {
            if self.filter.policy().pii.action == Action::Block && self.blocked.is_none() {
                self.blocked = Some(Block::PersonalInformation(p.clone()));
            }
        }
        self.pii.extend(d.pii.iter().map(|p| p.kind));
        if d.limit_exceeded && d.action == Action::Block && self.blocked.is_none() {
            self.blocked = Some(Block::CarryLimit { limit: self.filter.policy().limits.max_text_bytes });
        }
    }

    /// Inspects every string of an event that `handled` does not name (deny by default: the
    /// next field of the next API version is covered); returns the edits that mask them.
    pub fn inspect_rest(&mut self, doc: &Doc, handled: &[usize]) -> Vec<(core::ops::Range<usize>, String)> {
        let ins = inspect_except(&self.filter, doc, Roles::All, &|i| handled.contains(&i));
        for (text, d) in &ins.decisions {
            self.take_decision(text, d.clone());
        }
        ins.edits(doc)
    }

    /// True when choice `index` still waits for its start label.
    pub fn awaits_start_label(&self, index: u64) -> bool {
        // By its position: `prefix()` would format the label for every delta of the stream.
        self.label.as_ref().is_some_and(|l| l.position() == LabelPosition::Start) && !self.labeled.contains(&index)
    }

    /// True once the stream must be cut: blocked, or unreadable under fail-closed.
    pub fn cut(&self) -> bool {
        self.blocked.is_some() || self.unreadable_cut || self.guard_cut
    }

    /// Cuts the stream on the guard model's verdict: nothing more goes out.
    pub(crate) fn cut_by_guard(&mut self) {
        self.guard_cut = true;
    }

    /// The text released since the last call.
    pub(crate) fn take_released(&mut self) -> String {
        self.released.as_mut().map(core::mem::take).unwrap_or_default()
    }

    /// Starts keeping the released text for `take_released`.
    pub(crate) fn track_released(&mut self) {
        self.released.get_or_insert_with(String::new);
    }

    /// The explicit label's prefix for choice `index`, the first time only.
    pub fn start_label(&mut self, index: u64) -> Option<String> {
        let prefix = self.label.as_ref()?.prefix()?;
        if self.labeled.contains(&index) {
            return None;
        }
        self.labeled.push(index);
        Some(prefix)
    }

    /// The explicit label's suffix for choice `index`, the first time only.
    pub fn end_label(&mut self, index: u64) -> Option<String> {
        let suffix = self.label.as_ref()?.suffix()?;
        if self.end_labeled.contains(&index) {
            return None;
        }
        self.end_labeled.push(index);
        Some(suffix)
    }

    /// Choices that got a start label.
    pub fn labeled(&self) -> Vec<u64> {
        self.labeled.clone()
    }

    /// Every choice or block with a lane or held JSON.
    pub fn indices(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.lanes.keys().chain(self.held.keys()).map(|k| k.0).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The open lanes and held JSON of choice `index`.
    pub fn keys_of(&self, index: u64) -> Vec<Key> {
        let open = self.lanes.iter().filter(|(k, l)| k.0 == index && l.stream.is_some()).map(|(k, _)| k.clone());
        open.chain(self.held.keys().filter(|k| k.0 == index).cloned()).collect()
    }

    /// True when `key` is held JSON rather than a text lane.
    pub fn is_held(&self, key: &Key) -> bool {
        self.held.contains_key(key)
    }

    /// Everything a lane has output (APIs that repeat the whole text only).
    pub fn emitted(&self, key: &Key) -> Option<&str> {
        self.lanes.get(key).map(|l| l.emitted.as_str())
    }

    /// The same, to add a label to.
    pub fn emitted_mut(&mut self, key: &Key) -> Option<&mut String> {
        self.lanes.get_mut(key).map(|l| &mut l.emitted)
    }

    /// Keeps the first event's identifying members (`id`, `object`, `created`, `model`, …) for
    /// events of our own.
    pub fn keep_template(&mut self, doc: &Doc, keys: &[&str]) {
        if self.template.is_some() {
            return;
        }
        let members = keys
            .iter()
            .filter_map(|k| doc.root.get(doc, k).map(|v| (quote(k), doc.scalar(&v.range(doc)).to_string())))
            .collect();
        self.template = Some(members);
    }

    /// A JSON object of the template's members and `rest` (raw `"key":value` members).
    pub fn from_template(&self, rest: &str) -> String {
        let mut members: Vec<String> = self.template.iter().flatten().map(|(k, v)| format!("{k}:{v}")).collect();
        if !rest.is_empty() {
            members.push(rest.to_string());
        }
        format!("{{{}}}", members.join(","))
    }
}
