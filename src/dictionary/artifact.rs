//! The binary artifact: the automaton's arrays as they are, versioned and checksummed, so a VM
//! loads a dictionary in milliseconds without rebuilding it.

use std::borrow::Cow;

use xxhash_rust::xxh64::Xxh64;

use super::*;

/// Depth of every state (from the parent links in `check`) and output links (from the failure
/// links), validating on the way that parents form a tree no deeper than the longest keyword
/// and that failure links lead to shallower states, so no crafted artifact can make matching
/// loop.
fn derive_depth_and_links(
    nodes: &[Node],
    fail: &[u32],
    out: &[u32],
    max_len: u16,
) -> Result<(Vec<u16>, Vec<u32>), &'static str> {
    const UNKNOWN: u16 = u16::MAX;
    let check = |s: usize| nodes.get(s).map_or(NONE, |n| n.check);
    let n = nodes.len();
    let mut depth = vec![UNKNOWN; n];
    let mut path = Vec::new();
    for s in 0..n {
        if s == 0 || check(s) == NONE {
            depth[s] = 0;
            continue;
        }
        // Most states' parents come first in the array: one step, no walk.
        let parent = check(s) as usize;
        if parent < n && (parent == 0 || check(parent) != NONE) && depth[parent] != UNKNOWN {
            depth[s] = depth[parent] + 1;
            continue;
        }
        let mut t = s;
        while depth[t] == UNKNOWN {
            path.push(t);
            if path.len() > usize::from(max_len) {
                return Err("parent links deeper than the longest keyword, or a cycle");
            }
            t = check(t) as usize;
            if t != 0 && (t >= n || check(t) == NONE) {
                return Err("state whose parent is not a state");
            }
        }
        let mut d = depth[t];
        while let Some(u) = path.pop() {
            d += 1;
            depth[u] = d;
        }
    }
    if depth.iter().any(|&d| d > max_len) {
        return Err("state depth exceeds the longest keyword");
    }
    // Failure links must lead to a strictly shallower state (or the root).
    let shallower = |s: usize, to: u32| {
        let d = depth.get(to as usize).copied().unwrap_or(UNKNOWN);
        d < depth[s] || (to == ROOT && depth[s] == 0)
    };
    if fail.iter().enumerate().any(|(s, &f)| s != 0 && !shallower(s, f)) {
        return Err("failure link does not shorten the match");
    }
    // Output links: a state's is its failure target when that reports, else the target's own.
    // Each state's chain of failure links is walked until a state whose link is known (they
    // shorten, checked above, so every chain ends), then filled in backwards: every state once,
    // in no particular order.
    const UNSET: u32 = NONE - 1;
    let mut link = vec![UNSET; n];
    link[0] = NONE;
    for s in 1..n {
        let target = fail[s] as usize;
        if link[target] != UNSET {
            link[s] = if out[target] != NONE { target as u32 } else { link[target] };
            continue;
        }
        let mut t = s;
        while link[t] == UNSET {
            path.push(t);
            t = fail[t] as usize;
        }
        while let Some(u) = path.pop() {
            let f = fail[u] as usize;
            link[u] = if out[f] != NONE { f as u32 } else { link[f] };
        }
    }
    Ok((depth, link))
}

const MAGIC: &[u8; 8] = b"AIGCDICT";
/// Version of the artifact layout; bumped on any change.
pub const ARTIFACT_VERSION: u32 = 5;
const HEADER: usize = 24;

fn norm_bits(n: &Normalization) -> u32 {
    n.step_bits() | (u32::from(n.max_gap) << 16) | (u32::from(n.pinyin_scope.min_chars) << 24)
}

fn norm_from_bits(bits: u32) -> Normalization {
    let mut n = Normalization::from_step_bits(bits & 0xFFFF, (bits >> 16) as u8);
    n.pinyin_scope.min_chars = (bits >> 24) as u8;
    n
}

fn action_byte(a: Option<Action>) -> u8 {
    match a {
        None => 0xFF,
        Some(Action::Pass) => 0,
        Some(Action::Flag) => 1,
        Some(Action::Mask) => 2,
        Some(Action::Block) => 3,
    }
}

fn action_from_byte(b: u8) -> Result<Option<Action>, Error> {
    Ok(match b {
        0xFF => None,
        0 => Some(Action::Pass),
        1 => Some(Action::Flag),
        2 => Some(Action::Mask),
        3 => Some(Action::Block),
        _ => return Err(Error::artifact(format!("bad action byte {b}"))),
    })
}

/// The checksum the artifact ends with: XXH64 (seed 0), little-endian. It is there to catch
/// a damaged or truncated file, not a forger (that is what fetching from a trusted cluster is
/// for); measured on the 64k artifact (5.9 MB) in V8 it takes 0.6 ms where a slicing-by-8
/// CRC-32 took 3.2-4.2 ms, most of a VM's start-up after the automaton itself.
fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(bytes, 0)
}
const CHECKSUM: usize = 8;

/// Where the artifact's bytes come from: `read(at, n)` gives the `n` bytes at offset `at`,
/// borrowed from a slice or copied from a host's buffer piece by piece.
type Pieces<'r, 'a> = &'r mut dyn FnMut(usize, usize) -> Option<Cow<'a, [u8]>>;

/// Reads the payload section by section, checksumming every byte it is given.
struct Reader<'r, 'a> {
    read: Pieces<'r, 'a>,
    at: usize,
    /// Where the payload ends (the checksum follows).
    end: usize,
    sum: Xxh64,
}

impl<'a> Reader<'_, 'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<Cow<'a, [u8]>, Error> {
        let truncated = || Error::artifact(format!("truncated in {what} at byte {}", self.at));
        let end = self.at.checked_add(n).filter(|&e| e <= self.end).ok_or_else(truncated)?;
        if n == 0 {
            // Never asked of the source: a host may answer an empty read with nothing at all.
            return Ok(Cow::Borrowed(&[]));
        }
        let piece = (self.read)(self.at, n).filter(|p| p.len() == n).ok_or_else(truncated)?;
        self.sum.update(&piece);
        self.at = end;
        Ok(piece)
    }
    /// The checksum of the whole payload, the part not read yet included (a bad artifact is
    /// reported as damaged, not by the first thing its damage broke).
    fn checksum(mut self) -> Result<u64, Error> {
        const PIECE: usize = 1 << 20;
        while self.at < self.end {
            self.take(PIECE.min(self.end - self.at), "the payload")?;
        }
        Ok(self.sum.digest())
    }
    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32s(&mut self, n: usize, what: &str) -> Result<Vec<u32>, Error> {
        let bytes = self.take(n.saturating_mul(4), what)?;
        Ok(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
    fn count(&mut self, what: &str, max: usize) -> Result<usize, Error> {
        let n = self.u32(what)? as usize;
        if n > max {
            return Err(Error::artifact(format!("{what} count {n} exceeds the artifact size")));
        }
        Ok(n)
    }
}

fn put_u32s(out: &mut Vec<u8>, values: &[u32]) {
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

impl Dictionary {
    /// Serializes the compiled dictionary: magic, version, normalization, the automaton arrays,
    /// keyword metadata and texts, and a checksum (XXH64) over everything.
    pub fn to_artifact(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        let flat: Vec<u32> = self.codes.iter().flat_map(|&(c, k)| [c, k]).collect();
        put_u32s(&mut payload, &flat);
        let field = |f: fn(&Node) -> u32| self.nodes.iter().map(f).collect::<Vec<u32>>();
        // Depths and output links are derived at load (`derive_depth_and_links`): a smaller
        // artifact is faster to fetch, check and parse, and its copy costs each VM less memory.
        for array in [&field(|n| n.base & !REPORT_BIT), &field(|n| n.check), &self.fail, &self.out] {
            put_u32s(&mut payload, array);
        }
        let meta: Vec<u32> = self
            .patterns
            .iter()
            .flat_map(|p| {
                let kind = u32::from(p.kind == KeywordKind::Allow);
                let flags = kind | u32::from(p.starts_word) << 1 | u32::from(p.ends_word) << 2;
                let packed = u32::from(action_byte(p.action)) | flags << 8 | u32::from(p.len) << 16;
                [p.categories.bits(), packed, p.runs]
            })
            .collect();
        put_u32s(&mut payload, &meta);
        put_u32s(&mut payload, &self.runs.iter().map(|&r| u32::from(r)).collect::<Vec<u32>>());
        put_u32s(&mut payload, &self.text_end);
        payload.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        payload.extend_from_slice(self.text.as_bytes());
        // The pinyin lane: its patterns' main patterns (empty outside a lane), then the lane
        // itself as an artifact of its own (empty when there is none).
        put_u32s(&mut payload, &self.origin);
        let lane = self.reading_lane.as_ref().map(|lane| lane.to_artifact()).unwrap_or_default();
        payload.extend_from_slice(&(lane.len() as u32).to_le_bytes());
        payload.extend_from_slice(&lane);
        payload.extend_from_slice(&self.norm.pinyin_scope.categories.bits().to_le_bytes());
        // The scope's keywords, one a line (the lane holds only theirs; a policy must agree).
        let scoped = self.norm.pinyin_scope.keywords.join("\n");
        payload.extend_from_slice(&(scoped.len() as u32).to_le_bytes());
        payload.extend_from_slice(scoped.as_bytes());
        // The segmentation lexicon, after its length (0: none).
        let mut lexicon = Vec::new();
        if let Some(lex) = &self.lexicon {
            lex.to_bytes(&mut lexicon);
        }
        payload.extend_from_slice(&(lexicon.len() as u32).to_le_bytes());
        payload.extend_from_slice(&lexicon);

        let mut out = Vec::with_capacity(HEADER + payload.len() + CHECKSUM);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&ARTIFACT_VERSION.to_le_bytes());
        out.extend_from_slice(&norm_bits(&self.norm).to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Loads an artifact made by [`Dictionary::to_artifact`]. A wrong magic or version, a
    /// length or checksum mismatch, or any index out of range is refused with an error saying
    /// which; nothing in a bad artifact can make matching panic or read out of bounds.
    pub fn from_artifact(bytes: &[u8]) -> Result<Dictionary, Error> {
        Dictionary::from_artifact_pieces(bytes.len(), |at, n| bytes.get(at..at.checked_add(n)?).map(Cow::Borrowed))
    }

    /// [`Dictionary::from_artifact`] over an artifact of `len` bytes that `read(at, n)` hands
    /// out piece by piece (a host buffer, a file): each section is read into the dictionary's
    /// own arrays, so the whole artifact never sits in memory beside the dictionary. Its
    /// checksum is checked over every byte, and decides the error when it does not hold.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use aigc_edge::{Dictionary, KeywordFormat, KeywordKind, KeywordList};
    ///
    /// let mut list = KeywordList::new();
    /// list.add_source("k.txt", "赌博\tA.1h\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    /// let artifact = Dictionary::new(&list).unwrap().to_artifact();
    /// let read = |at: usize, n: usize| artifact.get(at..at + n).map(|p| Cow::Owned(p.to_vec()));
    /// let dict = Dictionary::from_artifact_pieces(artifact.len(), read).unwrap();
    /// assert_eq!(dict.len(), 1);
    /// ```
    pub fn from_artifact_pieces<'a>(
        len: usize,
        mut read: impl FnMut(usize, usize) -> Option<Cow<'a, [u8]>>,
    ) -> Result<Dictionary, Error> {
        let head = match len >= HEADER + CHECKSUM {
            true => read(0, HEADER).filter(|h| h.len() == HEADER),
            false => None,
        };
        let Some(head) = head.filter(|h| &h[..8] == MAGIC) else {
            return Err(Error::artifact("not an aigc-edge dictionary (bad magic)"));
        };
        let word = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let version = word(&head, 8);
        if version != ARTIFACT_VERSION {
            return Err(Error::artifact(format!(
                "format version {version}, this build reads version {ARTIFACT_VERSION}"
            )));
        }
        let norm = norm_from_bits(word(&head, 12));
        let declared = u64::from(word(&head, 16)) | u64::from(word(&head, 20)) << 32;
        let actual = (len - HEADER - CHECKSUM) as u64;
        if declared != actual {
            return Err(Error::artifact(format!(
                "payload is {actual} bytes, header says {declared} (truncated or padded)"
            )));
        }
        let end = len - CHECKSUM;
        let stored = read(end, CHECKSUM)
            .filter(|t| t.len() == CHECKSUM)
            .map(|t| u64::from(word(&t, 0)) | u64::from(word(&t, 4)) << 32)
            .ok_or_else(|| Error::artifact(format!("truncated in the checksum at byte {end}")))?;
        let mut sum = Xxh64::new(0);
        sum.update(&head);
        let mut r = Reader { read: &mut read, at: HEADER, end, sum };
        let loaded = Dictionary::read_payload(norm, &mut r);
        let computed = r.checksum()?;
        if computed != stored {
            return Err(Error::artifact(format!("checksum mismatch (stored {stored:016x}, computed {computed:016x})")));
        }
        loaded
    }

    /// The payload after the header: every section, then every index validated.
    fn read_payload(norm: Normalization, r: &mut Reader<'_, '_>) -> Result<Dictionary, Error> {
        let max = r.end / 4;
        let n = r.count("code map", max)?;
        let flat = r.u32s(n, "code map")?;
        let codes: Vec<(u32, u32)> = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        if n % 2 != 0 {
            return Err(Error::artifact("code map has an odd length"));
        }
        // `base` and `check` go straight into the nodes: read piece by piece, a VM's memory
        // peak while loading is the dictionary plus these two sections.
        let n = r.count("base", max)?;
        let base_raw = r.take(n.saturating_mul(4), "base")?;
        let n = r.count("check", max)?;
        let check_raw = r.take(n.saturating_mul(4), "check")?;
        if base_raw.len() != check_raw.len() {
            return Err(Error::artifact("state arrays differ in length"));
        }
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut nodes: Vec<Node> = base_raw
            .chunks_exact(4)
            .zip(check_raw.chunks_exact(4))
            .map(|(b, c)| Node { base: word(b), check: word(c) })
            .collect();
        let n = r.count("fail", max)?;
        let fail = r.u32s(n, "fail")?;
        let n = r.count("out", max)?;
        let out = r.u32s(n, "out")?;
        let n = r.count("keyword metadata", max)?;
        let meta = r.u32s(n, "keyword metadata")?;
        let n = r.count("run lengths", max)?;
        let runs: Vec<u8> = r.u32s(n, "run lengths")?.into_iter().map(|v| v.min(255) as u8).collect();
        let n = r.count("keyword offsets", max)?;
        let text_end = r.u32s(n, "keyword offsets")?;
        let n = r.count("keyword text", r.end)?;
        // A piece read for the text becomes the text; a borrowed one is copied once.
        let text = String::from_utf8(r.take(n, "keyword text")?.into_owned())
            .map_err(|e| Error::artifact(format!("keyword text is not UTF-8: {}", e.utf8_error())))?;
        let n = r.count("lane patterns", max)?;
        let origin = r.u32s(n, "lane patterns")?;
        let n = r.count("pinyin lane", r.end)?;
        let lane_bytes = r.take(n, "pinyin lane")?;
        let mut norm = norm;
        norm.pinyin_scope.categories = CategorySet::from_bits(r.u32("pinyin categories")?);
        let n = r.count("pinyin keywords", r.end)?;
        let scoped = r.take(n, "pinyin keywords")?;
        let scoped = core::str::from_utf8(&scoped)
            .map_err(|e| Error::artifact(format!("pinyin keywords are not UTF-8: {e}")))?;
        norm.pinyin_scope.keywords = scoped.split('\n').filter(|k| !k.is_empty()).map(str::to_string).collect();
        let n = r.count("lexicon", r.end)?;
        let lexicon_bytes = r.take(n, "lexicon")?;
        if r.at != r.end {
            return Err(Error::artifact("trailing bytes after the lexicon"));
        }
        let lexicon = match lexicon_bytes.is_empty() {
            true => None,
            #[cfg(feature = "segmentation")]
            false => Some(Arc::new(Lexicon::from_bytes(&lexicon_bytes).map_err(Error::artifact)?)),
            #[cfg(not(feature = "segmentation"))]
            false => return Err(Error::artifact("segmentation lexicon, not in this build")),
        };

        if meta.len() % 3 != 0 {
            return Err(Error::artifact("keyword metadata is not whole records"));
        }
        let mut patterns = Vec::with_capacity(meta.len() / 3);
        for m in meta.chunks_exact(3) {
            let packed = m[1];
            let flags = (packed >> 8) & 0xFF;
            patterns.push(Pattern {
                categories: CategorySet::from_bits(m[0]),
                action: action_from_byte(packed as u8)?,
                kind: if flags & 1 != 0 { KeywordKind::Allow } else { KeywordKind::Deny },
                starts_word: flags & 2 != 0,
                ends_word: flags & 4 != 0,
                len: (packed >> 16) as u16,
                runs: m[2],
            });
        }
        let slots = nodes.len();
        let max_len = patterns.iter().map(|p| p.len).max().unwrap_or(0);
        // Validate every index so matching never needs to trust the file.
        let in_slots = |v: u32| (v as usize) < slots;
        let problem = if slots == 0 {
            Some("no states")
        } else if [fail.len(), out.len()].iter().any(|&l| l != slots) {
            Some("state arrays differ in length")
        } else if nodes.iter().any(|n| n.base & REPORT_BIT != 0) {
            Some("base entry out of range")
        } else if nodes.iter().any(|n| n.check != NONE && !in_slots(n.check)) {
            Some("check entry out of range")
        } else if fail.iter().any(|&f| !in_slots(f)) {
            Some("failure link out of range")
        } else if out.iter().any(|&o| o != NONE && o as usize >= patterns.len()) {
            Some("output pattern out of range")
        } else if text_end.len() != patterns.len()
            || text_end.windows(2).any(|w| w[0] > w[1])
            || text_end.iter().any(|&e| e as usize > text.len() || !text.is_char_boundary(e as usize))
        {
            Some("keyword offsets out of range")
        } else if codes.windows(2).any(|w| w[0].0 >= w[1].0)
            || codes.iter().any(|&(c, k)| char::from_u32(c).is_none() || k == 0 || k > CODE_MASK)
        {
            Some("code map not sorted or out of range")
        } else if patterns.is_empty() {
            Some("no keywords")
        } else if patterns.iter().any(|p| p.len == 0) {
            Some("keyword of length 0")
        } else if patterns
            .iter()
            .any(|p| p.runs != NONE && p.runs as usize + usize::from(p.len) + usize::from(p.len == 1) > runs.len())
            || runs.contains(&0)
        {
            Some("run lengths out of range")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::artifact(problem));
        }
        let lane = !origin.is_empty();
        #[cfg(not(feature = "pinyin"))]
        let reading_lane: Option<Arc<Dictionary>> = match lane_bytes.is_empty() {
            true => None,
            false => return Err(Error::artifact("pinyin lane, not in this build")),
        };
        #[cfg(feature = "pinyin")]
        let reading_lane = if lane_bytes.is_empty() {
            None
        } else {
            let loaded = Dictionary::from_artifact(&lane_bytes)?;
            let fits = loaded.lane
                && loaded.reading_lane.is_none()
                && loaded.origin.len() == loaded.patterns.len()
                && loaded.origin.iter().all(|&o| (o as usize) < patterns.len());
            if !fits {
                return Err(Error::artifact("pinyin lane does not fit its dictionary"));
            }
            Some(Arc::new(loaded))
        };
        if lane && (origin.len() != patterns.len() || reading_lane.is_some()) {
            return Err(Error::artifact("lane patterns out of range"));
        }
        if reading_lane.is_some() && !norm.has(crate::Step::Pinyin) {
            return Err(Error::artifact("pinyin lane without the pinyin step"));
        }
        let (depth, link) = derive_depth_and_links(&nodes, &fail, &out, max_len).map_err(Error::artifact)?;
        mark_reports(&mut nodes, &out, &link);
        Ok(Dictionary {
            norm,
            codes,
            nodes,
            fail,
            out,
            link,
            depth,
            patterns,
            runs,
            text,
            text_end,
            max_len,
            classes: LazyClasses::new(),
            diagnostics: Vec::new(),
            lane,
            origin,
            reading_lane,
            lexicon,
        })
    }
}
