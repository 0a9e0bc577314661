//! PDF: the document information dictionary's `/AIGC` string and the catalog's XMP
//! `/Metadata` stream. Writing appends an incremental update (ISO 32000-1 §7.5.6): the
//! information dictionary and the metadata stream redefined under their own object numbers
//! (new ones, and a redefined catalog, when the file had none), a cross-reference section for
//! them and a trailer whose `/Prev` points at the previous one. Not a byte before the update
//! changes, so pages, fonts and signatures made over the earlier revision stay as they were.
//!
//! Reading follows the cross-reference chain from the last `startxref` — classic tables and
//! cross-reference streams, objects inside object streams, `FlateDecode` with PNG predictors —
//! so it sees the file's current revision, not superseded ones. Encrypted files are refused:
//! their strings cannot be read or written without the password.

use std::collections::{HashMap, HashSet};

use super::*;

const F: FileFormat = FileFormat::Pdf;
/// Most cross-reference sections followed through `/Prev` before the chain is called a loop.
const MAX_SECTIONS: usize = 512;
/// Most bytes the streams read from one file (cross-reference, object streams, metadata) may
/// inflate to, together: many small bombs cost no more than one.
const MAX_INFLATED: usize = 64 << 20;
/// Deepest nesting of arrays and dictionaries read.
const MAX_DEPTH: usize = 64;

/// A PDF object as read. Dictionary entries keep each value's source bytes, so a dictionary
/// redefined by the update says exactly what it said before, plus the label.
#[derive(Clone, Debug, PartialEq)]
enum Obj {
    Null,
    Bool,
    Int(i64),
    Real,
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(u32, u16),
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Dict(Vec<(Vec<u8>, Obj, Vec<u8>)>);

impl Dict {
    fn get(&self, key: &[u8]) -> Option<&Obj> {
        self.0.iter().find(|(k, _, _)| k == key).map(|(_, v, _)| v)
    }

    fn int(&self, key: &[u8]) -> Option<i64> {
        match self.get(key) {
            Some(Obj::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// `<< … >>` with `key` set to `raw` (replacing any earlier value).
    fn with(&self, key: &[u8], raw: &[u8]) -> Vec<u8> {
        let mut out = b"<<".to_vec();
        for (k, _, v) in self.0.iter().filter(|(k, _, _)| k != key) {
            out.extend_from_slice(&name(k));
            out.push(b' ');
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out.extend_from_slice(&name(key));
        out.push(b' ');
        out.extend_from_slice(raw);
        out.extend_from_slice(b" >>");
        out
    }
}

/// A name written back with `#xx` for the bytes a name cannot hold.
fn name(n: &[u8]) -> Vec<u8> {
    let mut out = vec![b'/'];
    for &c in n {
        if c.is_ascii_graphic() && !is_delimiter(c) && c != b'#' {
            out.push(c);
        } else {
            out.extend_from_slice(format!("#{c:02X}").as_bytes());
        }
    }
    out
}

fn is_space(c: u8) -> bool {
    matches!(c, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn is_delimiter(c: u8) -> bool {
    matches!(c, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Reads objects from `b`; `base` is where `b` starts in the file, for error offsets.
struct Lexer<'a> {
    b: &'a [u8],
    at: usize,
    base: usize,
}

impl<'a> Lexer<'a> {
    fn new(b: &'a [u8], at: usize, base: usize) -> Lexer<'a> {
        Lexer { b, at, base }
    }

    fn error(&self, message: impl Into<String>) -> FileError {
        FileError::new(F, self.base + self.at, message)
    }

    /// What is left from the position (nothing when an offset pointed past the end).
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or(&[])
    }

    fn skip_space(&mut self) {
        while let Some(&c) = self.b.get(self.at) {
            if is_space(c) {
                self.at += 1;
            } else if c == b'%' {
                while self.b.get(self.at).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The regular characters from here (a keyword, number or name body).
    fn word(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().position(|&c| is_space(c) || is_delimiter(c)).unwrap_or(rest.len());
        self.at += n;
        &rest[..n]
    }

    fn keyword(&mut self, k: &[u8]) -> Result<()> {
        self.skip_space();
        let at = self.at;
        if self.word() == k {
            Ok(())
        } else {
            self.at = at;
            Err(self.error(format!("expected `{}`", String::from_utf8_lossy(k))))
        }
    }

    fn uint(&mut self) -> Result<u64> {
        self.skip_space();
        let at = self.at;
        let w = self.word();
        core::str::from_utf8(w).ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
            self.at = at;
            self.error("expected an unsigned integer")
        })
    }

    fn object(&mut self, depth: usize) -> Result<Obj> {
        if depth > MAX_DEPTH {
            return Err(self.error("objects nested too deep"));
        }
        self.skip_space();
        let Some(&c) = self.b.get(self.at) else { return Err(self.error("object expected, end of data")) };
        match c {
            b'<' if self.b.get(self.at + 1) == Some(&b'<') => {
                self.at += 2;
                let mut d = Dict::default();
                loop {
                    self.skip_space();
                    if self.rest().starts_with(b">>") {
                        self.at += 2;
                        return Ok(Obj::Dict(d));
                    }
                    let Obj::Name(key) = self.object(depth + 1)? else {
                        return Err(self.error("dictionary key is not a name"));
                    };
                    self.skip_space();
                    let start = self.at;
                    let value = self.object(depth + 1)?;
                    let raw = self.b.get(start..self.at).unwrap_or_default().to_vec();
                    d.0.push((key, value, raw));
                }
            }
            b'<' => {
                self.at += 1;
                let mut digits = Vec::new();
                loop {
                    match self.b.get(self.at) {
                        Some(b'>') => break,
                        Some(&c) if is_space(c) => {}
                        Some(&c) => digits.push(hex(c).ok_or_else(|| self.error("bad hex string digit"))?),
                        None => return Err(self.error("unterminated hex string")),
                    }
                    self.at += 1;
                }
                self.at += 1;
                if digits.len() % 2 == 1 {
                    digits.push(0);
                }
                Ok(Obj::Str(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()))
            }
            b'(' => self.literal().map(Obj::Str),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if self.b.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Ok(Obj::Array(items));
                    }
                    items.push(self.object(depth + 1)?);
                }
            }
            b'/' => {
                self.at += 1;
                let raw = self.word();
                let mut n = Vec::with_capacity(raw.len());
                let mut i = 0;
                while i < raw.len() {
                    match (raw[i], raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
                        (b'#', Some(h), Some(l)) => {
                            n.push(h << 4 | l);
                            i += 3;
                        }
                        (c, _, _) => {
                            n.push(c);
                            i += 1;
                        }
                    }
                }
                Ok(Obj::Name(n))
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                let w = self.word();
                let text = core::str::from_utf8(w).map_err(|_| self.error("bad number"))?;
                let Ok(i) = text.parse::<i64>() else {
                    return text.parse::<f64>().map(|_| Obj::Real).map_err(|_| self.error("bad number"));
                };
                // `N G R` is a reference; anything else leaves the integer alone.
                let after = self.at;
                if let (Ok(n), Ok(g)) =
                    (u32::try_from(i), self.uint().and_then(|g| u16::try_from(g).map_err(|_| self.error(""))))
                {
                    if self.keyword(b"R").is_ok() {
                        return Ok(Obj::Ref(n, g));
                    }
                }
                self.at = after;
                Ok(Obj::Int(i))
            }
            _ => match self.word() {
                b"true" | b"false" => Ok(Obj::Bool),
                b"null" => Ok(Obj::Null),
                _ => Err(self.error("not a PDF object")),
            },
        }
    }

    /// A `( … )` string: balanced parentheses, backslash escapes, octal codes.
    fn literal(&mut self) -> Result<Vec<u8>> {
        self.at += 1;
        let (mut out, mut depth) = (Vec::new(), 0usize);
        loop {
            let Some(&c) = self.b.get(self.at) else { return Err(self.error("unterminated string")) };
            self.at += 1;
            match c {
                b'(' => {
                    depth += 1;
                    out.push(c);
                }
                b')' if depth == 0 => return Ok(out),
                b')' => {
                    depth -= 1;
                    out.push(c);
                }
                b'\\' => {
                    let Some(&e) = self.b.get(self.at) else { return Err(self.error("unterminated string")) };
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.b.get(self.at) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.at += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        b'\r' => {
                            if self.b.get(self.at) == Some(&b'\n') {
                                self.at += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

/// Where the current revision keeps an object.
#[derive(Clone, Copy, Debug)]
enum Location {
    Offset(usize),
    InStream { stream: u32, index: usize },
}

/// The file's current revision: where each object is, and the newest trailer.
struct Document<'a> {
    b: &'a [u8],
    objects: HashMap<u32, Location>,
    trailer: Dict,
    startxref: usize,
    /// What is left of [`MAX_INFLATED`].
    inflate_budget: core::cell::Cell<usize>,
}

/// A text string's bytes as text: UTF-16BE or UTF-8 with their byte order marks, else
/// PDFDocEncoding, which agrees with Latin-1 wherever a label's JSON could go.
fn text_string(s: &[u8]) -> String {
    if let Some(u) = s.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = u.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        String::from_utf16_lossy(&units)
    } else if let Some(u) = s.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(u).into_owned()
    } else {
        s.iter().map(|&c| c as char).collect()
    }
}

/// `text` as a PDF string: a literal for ASCII, UTF-16BE hex otherwise.
fn string_object(text: &str) -> Vec<u8> {
    if text.is_ascii() {
        let mut out = vec![b'('];
        for c in text.bytes() {
            match c {
                b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', c]),
                c if c.is_ascii_graphic() || c == b' ' => out.push(c),
                c => out.extend_from_slice(format!("\\{c:03o}").as_bytes()),
            }
        }
        out.push(b')');
        out
    } else {
        let mut out = b"<FEFF".to_vec();
        for unit in text.encode_utf16() {
            out.extend_from_slice(format!("{unit:04X}").as_bytes());
        }
        out.push(b'>');
        out
    }
}

/// The PNG predictors (10–15) a `FlateDecode` stream may carry: each row starts with its
/// filter byte.
fn unpredict(data: &[u8], columns: usize, at: usize) -> Result<Vec<u8>> {
    let row = columns + 1;
    if columns == 0 || data.len() % row != 0 {
        return Err(FileError::new(F, at, "predicted stream is not whole rows"));
    }
    let mut out: Vec<u8> = Vec::with_capacity(data.len() / row * columns);
    let mut prev = vec![0u8; columns];
    for r in data.chunks(row) {
        let mut cur = r[1..].to_vec();
        for i in 0..columns {
            let (left, up, ul) = (if i > 0 { cur[i - 1] } else { 0 }, prev[i], if i > 0 { prev[i - 1] } else { 0 });
            let pred = match r[0] {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => {
                    let p = i16::from(left) + i16::from(up) - i16::from(ul);
                    let (pa, pb, pc) =
                        ((p - i16::from(left)).abs(), (p - i16::from(up)).abs(), (p - i16::from(ul)).abs());
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        ul
                    }
                }
                k => return Err(FileError::new(F, at, format!("unknown PNG predictor row filter {k}"))),
            };
            cur[i] = cur[i].wrapping_add(pred);
        }
        out.extend_from_slice(&cur);
        prev = cur;
    }
    Ok(out)
}

impl<'a> Document<'a> {
    fn open(b: &'a [u8]) -> Result<Document<'a>> {
        let tail_from = b.len().saturating_sub(4096);
        let sx = b[tail_from..]
            .windows(9)
            .rposition(|w| w == b"startxref")
            .map(|p| tail_from + p)
            .ok_or_else(|| FileError::new(F, b.len(), "no `startxref` near the end: truncated or not a PDF"))?;
        let mut lx = Lexer::new(b, sx + 9, 0);
        let startxref = usize::try_from(lx.uint()?).map_err(|_| lx.error("startxref too large"))?;
        let mut doc = Document {
            b,
            objects: HashMap::new(),
            trailer: Dict::default(),
            startxref,
            inflate_budget: core::cell::Cell::new(MAX_INFLATED),
        };
        let (mut pending, mut seen, mut first) = (vec![startxref], HashSet::new(), true);
        while let Some(at) = pending.pop() {
            if !seen.insert(at) || seen.len() > MAX_SECTIONS {
                return Err(FileError::new(F, at, "cross-reference sections loop"));
            }
            let trailer = doc.section(at)?;
            for key in [&b"Prev"[..], b"XRefStm"] {
                if let Some(Obj::Int(p)) = trailer.get(key) {
                    let p = usize::try_from(*p).map_err(|_| FileError::new(F, at, "negative /Prev"))?;
                    pending.push(p);
                }
            }
            if first {
                doc.trailer = trailer;
                first = false;
            }
        }
        if doc.trailer.get(b"Encrypt").is_some() {
            return Err(FileError::new(F, startxref, "encrypted PDF: its strings cannot be read or written"));
        }
        Ok(doc)
    }

    /// Reads the cross-reference section at `at` (table or stream) into `objects`, newer
    /// sections first so they win; returns its trailer dictionary.
    fn section(&mut self, at: usize) -> Result<Dict> {
        let b = self.b;
        let mut lx = Lexer::new(b, at, 0);
        if lx.b.get(at..).is_some_and(|s| s.starts_with(b"xref")) {
            lx.at += 4;
            loop {
                lx.skip_space();
                if lx.rest().starts_with(b"trailer") {
                    lx.at += 7;
                    return match lx.object(0)? {
                        Obj::Dict(d) => Ok(d),
                        _ => Err(lx.error("trailer is not a dictionary")),
                    };
                }
                let first = lx.uint()?;
                let count = lx.uint()?;
                if count > (b.len() / 18) as u64 {
                    return Err(lx.error(format!("cross-reference subsection claims {count} entries")));
                }
                for i in 0..count {
                    let offset = lx.uint()?;
                    let _generation = lx.uint()?;
                    lx.skip_space();
                    let kind = lx.word();
                    let number = u32::try_from(first + i).map_err(|_| lx.error("object number too large"))?;
                    if kind == b"n" {
                        let offset = usize::try_from(offset).map_err(|_| lx.error("offset too large"))?;
                        self.objects.entry(number).or_insert(Location::Offset(offset));
                    } else if kind != b"f" {
                        return Err(lx.error("cross-reference entry is neither `n` nor `f`"));
                    }
                }
            }
        }
        let (dict, data) = self.stream_at(at)?;
        if dict.get(b"Type") != Some(&Obj::Name(b"XRef".to_vec())) {
            return Err(FileError::new(F, at, "`startxref` points at neither `xref` nor a cross-reference stream"));
        }
        let widths: Vec<usize> = match dict.get(b"W") {
            Some(Obj::Array(w)) if w.len() == 3 => w
                .iter()
                .map(|x| match x {
                    Obj::Int(i @ 0..=8) => Ok(*i as usize),
                    _ => Err(FileError::new(F, at, "bad /W in cross-reference stream")),
                })
                .collect::<Result<_>>()?,
            _ => return Err(FileError::new(F, at, "cross-reference stream without /W [a b c]")),
        };
        let size = dict.int(b"Size").unwrap_or(0);
        let index: Vec<i64> = match dict.get(b"Index") {
            Some(Obj::Array(ix)) => ix.iter().map(|x| if let Obj::Int(i) = x { *i } else { -1 }).collect(),
            _ => vec![0, size],
        };
        let row: usize = widths.iter().sum();
        if row == 0 || index.len() % 2 == 1 || index.iter().any(|&i| i < 0) {
            return Err(FileError::new(F, at, "bad /Index or /W in cross-reference stream"));
        }
        let field =
            |r: &[u8], from: usize, w: usize| r[from..from + w].iter().fold(0u64, |v, &c| v << 8 | u64::from(c));
        let mut rows = data.chunks_exact(row);
        for pair in index.chunks(2) {
            for i in 0..pair[1] {
                let Some(r) = rows.next() else {
                    return Err(FileError::new(F, at, "cross-reference stream shorter than its /Index"));
                };
                let kind = if widths[0] == 0 { 1 } else { field(r, 0, widths[0]) };
                let (f2, f3) = (field(r, widths[0], widths[1]), field(r, widths[0] + widths[1], widths[2]));
                let number =
                    u32::try_from(pair[0] + i).map_err(|_| FileError::new(F, at, "object number too large"))?;
                let location = match kind {
                    1 => Location::Offset(usize::try_from(f2).map_err(|_| FileError::new(F, at, "offset too large"))?),
                    2 => Location::InStream {
                        stream: u32::try_from(f2)
                            .map_err(|_| FileError::new(F, at, "object stream number too large"))?,
                        index: f3 as usize,
                    },
                    _ => continue,
                };
                self.objects.entry(number).or_insert(location);
            }
        }
        Ok(dict)
    }

    /// The stream object at `at`: its dictionary and decoded data.
    fn stream_at(&self, at: usize) -> Result<(Dict, Vec<u8>)> {
        let mut lx = Lexer::new(self.b, at, 0);
        let Obj::Dict(dict) = self.indirect(&mut lx)? else {
            return Err(FileError::new(F, at, "stream object without a dictionary"));
        };
        lx.keyword(b"stream")?;
        // The keyword's end of line is CRLF or LF.
        if lx.rest().starts_with(b"\r\n") {
            lx.at += 2;
        } else if lx.b.get(lx.at) == Some(&b'\n') {
            lx.at += 1;
        }
        let length = match dict.get(b"Length") {
            Some(Obj::Int(n)) => usize::try_from(*n).ok(),
            Some(Obj::Ref(n, _)) => match self.objects.get(n) {
                Some(Location::Offset(o)) => {
                    let mut l = Lexer::new(self.b, *o, 0);
                    match self.indirect(&mut l) {
                        Ok(Obj::Int(n)) => usize::try_from(n).ok(),
                        _ => None,
                    }
                }
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| lx.error("stream /Length missing or unreadable"))?;
        let raw = lx.b.get(lx.at..lx.at.saturating_add(length)).ok_or_else(|| lx.error("stream runs past the end"))?;
        let data = decode(&dict, raw, lx.at, self.inflate_budget.get())?;
        self.inflate_budget.set(self.inflate_budget.get().saturating_sub(data.len()));
        Ok((dict, data))
    }

    /// `N G obj <object>` at the lexer's position; the object.
    fn indirect(&self, lx: &mut Lexer<'_>) -> Result<Obj> {
        lx.uint()?;
        lx.uint()?;
        lx.keyword(b"obj")?;
        lx.object(0)
    }

    /// Object `n` of the current revision (`None` when the file does not define it).
    fn get(&self, n: u32) -> Result<Option<Obj>> {
        match self.objects.get(&n) {
            None => Ok(None),
            Some(Location::Offset(at)) => {
                let mut lx = Lexer::new(self.b, *at, 0);
                lx.uint().ok().filter(|&k| k == u64::from(n)).ok_or_else(|| {
                    FileError::new(F, *at, format!("object {n} is not where the cross-reference says"))
                })?;
                lx.at = *at;
                self.indirect(&mut lx).map(Some)
            }
            Some(Location::InStream { stream, index }) => {
                let Some(Location::Offset(at)) = self.objects.get(stream) else {
                    return Err(FileError::new(F, 0, format!("object stream {stream} of object {n} not found")));
                };
                let (dict, data) = self.stream_at(*at)?;
                let first = dict.int(b"First").and_then(|f| usize::try_from(f).ok());
                let count = dict.int(b"N").and_then(|f| usize::try_from(f).ok());
                let (Some(first), Some(count)) = (first, count) else {
                    return Err(FileError::new(F, *at, "object stream without /N and /First"));
                };
                if *index >= count {
                    return Err(FileError::new(F, *at, format!("object {n} is past the end of its object stream")));
                }
                let mut header = Lexer::new(&data, 0, *at);
                let mut offset = 0;
                for _ in 0..=*index {
                    header.uint()?;
                    offset = header.uint()?;
                }
                let start = usize::try_from(offset).ok().and_then(|o| o.checked_add(first)).unwrap_or(usize::MAX);
                if start > data.len() {
                    return Err(FileError::new(F, *at, format!("object {n} offset past its object stream")));
                }
                Lexer::new(&data, start, *at).object(0).map(Some)
            }
        }
    }

    /// `obj`, or the object it refers to.
    fn resolve(&self, obj: Option<&Obj>) -> Result<Option<Obj>> {
        match obj {
            Some(Obj::Ref(n, _)) => self.get(*n),
            other => Ok(other.cloned()),
        }
    }

    fn dict(&self, obj: Option<&Obj>, what: &str) -> Result<Option<Dict>> {
        match self.resolve(obj)? {
            Some(Obj::Dict(d)) => Ok(Some(d)),
            None | Some(Obj::Null) => Ok(None),
            Some(_) => Err(FileError::new(F, self.startxref, format!("{what} is not a dictionary"))),
        }
    }

    fn catalog(&self) -> Result<(u32, u16, Dict)> {
        match self.trailer.get(b"Root") {
            Some(&Obj::Ref(n, g)) => match self.get(n)? {
                Some(Obj::Dict(d)) => Ok((n, g, d)),
                _ => Err(FileError::new(F, self.startxref, format!("catalog (object {n}) is not a dictionary"))),
            },
            _ => Err(FileError::new(F, self.startxref, "trailer has no /Root reference")),
        }
    }

    /// The catalog's XMP packet, if it has one, and where the stream is.
    fn metadata(&self, catalog: &Dict) -> Result<Option<((u32, u16), String)>> {
        let Some(&Obj::Ref(n, g)) = catalog.get(b"Metadata") else { return Ok(None) };
        let Some(Location::Offset(at)) = self.objects.get(&n) else { return Ok(None) };
        let (_, data) = self.stream_at(*at)?;
        Ok(Some(((n, g), String::from_utf8_lossy(&data).into_owned())))
    }
}

/// A stream's data through its filters: none, or `FlateDecode` with optional PNG predictor.
fn decode(dict: &Dict, raw: &[u8], at: usize, limit: usize) -> Result<Vec<u8>> {
    let filters: Vec<&Obj> = match dict.get(b"Filter") {
        None => Vec::new(),
        Some(Obj::Array(a)) => a.iter().collect(),
        Some(f) => vec![f],
    };
    match filters.as_slice() {
        [] => Ok(raw.to_vec()),
        [Obj::Name(n)] if n == b"FlateDecode" => {
            let data = super::inflate(raw, true, limit).map_err(|e| FileError::new(F, at, e))?;
            let params = match dict.get(b"DecodeParms") {
                Some(Obj::Dict(p)) => Some(p.clone()),
                Some(Obj::Array(a)) => a.iter().find_map(|p| if let Obj::Dict(p) = p { Some(p.clone()) } else { None }),
                _ => None,
            };
            match params.as_ref().and_then(|p| p.int(b"Predictor")) {
                None | Some(1) => Ok(data),
                Some(10..=15) => {
                    let columns = params.as_ref().and_then(|p| p.int(b"Columns")).unwrap_or(1);
                    unpredict(&data, usize::try_from(columns).unwrap_or(0), at)
                }
                Some(p) => Err(FileError::new(F, at, format!("stream predictor {p} is not read"))),
            }
        }
        _ => Err(FileError::new(F, at, "stream filter other than FlateDecode is not read")),
    }
}

pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
    let doc = Document::open(b)?;
    let mut labels = Vec::new();
    if let Some(info) = doc.dict(doc.trailer.get(b"Info"), "/Info")? {
        if let Some(Obj::Str(s)) = doc.resolve(info.get(b"AIGC"))? {
            labels.push(found(Carrier::PdfInfo, text_string(&s)));
        }
    }
    let (_, _, catalog) = doc.catalog()?;
    if let Some((_, packet)) = doc.metadata(&catalog)? {
        labels.extend(xmp::find(&packet).into_iter().map(|j| found(Carrier::Xmp, j)));
    }
    Ok(labels)
}

pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
    let doc = Document::open(b)?;
    let (root, root_gen, catalog) = doc.catalog()?;
    let info = doc.dict(doc.trailer.get(b"Info"), "/Info")?;
    let metadata = doc.metadata(&catalog)?;
    let packet = match &metadata {
        Some((_, old)) => xmp::update(old, json),
        None => xmp::packet(json),
    };
    let info_label = match &info {
        Some(d) => match doc.resolve(d.get(b"AIGC"))? {
            Some(Obj::Str(s)) => Some(text_string(&s)),
            _ => None,
        },
        None => None,
    };
    if info_label.as_deref() == Some(json) && metadata.as_ref().is_some_and(|(_, old)| *old == packet) {
        return Ok(b.to_vec()); // the same label: nothing changes
    }
    let size = doc.trailer.int(b"Size").and_then(|s| u32::try_from(s).ok()).unwrap_or(0);
    let mut next = size.max(doc.objects.keys().max().map_or(1, |m| m + 1));
    let mut fresh = || {
        next += 1;
        (next - 1, 0u16)
    };
    let info_id = match doc.trailer.get(b"Info") {
        Some(&Obj::Ref(n, g)) => (n, g),
        _ => fresh(),
    };
    let (metadata_id, new_catalog) = match metadata.as_ref().map(|(id, _)| *id) {
        Some(id) => (id, false),
        None => (fresh(), true),
    };
    // Room for the update, so the file is copied once.
    let mut out = Vec::with_capacity(b.len() + packet.len() + info.as_ref().map_or(0, |d| d.0.len() * 64) + 1024);
    out.extend_from_slice(b);
    if !matches!(out.last(), Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    let mut written: Vec<((u32, u16), usize)> = Vec::new();
    let mut object = |out: &mut Vec<u8>, id: (u32, u16), body: &[u8]| {
        written.push((id, out.len()));
        out.extend_from_slice(format!("{} {} obj\n", id.0, id.1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    let info_body = info.unwrap_or_default().with(b"AIGC", &string_object(json));
    object(&mut out, info_id, &info_body);
    let stream = [
        format!("<< /Type /Metadata /Subtype /XML /Length {} >>\nstream\n", packet.len()).as_bytes(),
        packet.as_bytes(),
        b"\nendstream",
    ]
    .concat();
    object(&mut out, metadata_id, &stream);
    if new_catalog {
        let body = catalog.with(b"Metadata", format!("{} {} R", metadata_id.0, metadata_id.1).as_bytes());
        object(&mut out, (root, root_gen), &body);
    }
    written.sort_by_key(|((n, _), _)| *n);
    let xref_at = out.len();
    out.extend_from_slice(b"xref\n0 1\n0000000000 65535 f\r\n");
    for ((n, g), at) in &written {
        out.extend_from_slice(format!("{n} 1\n{at:010} {g:05} n\r\n").as_bytes());
    }
    let mut trailer =
        format!("trailer\n<< /Size {next} /Root {root} {root_gen} R /Info {} {} R", info_id.0, info_id.1).into_bytes();
    if let Some((_, _, raw)) = doc.trailer.0.iter().find(|(k, _, _)| k == b"ID") {
        trailer.extend_from_slice(b" /ID ");
        trailer.extend_from_slice(raw);
    }
    trailer.extend_from_slice(format!(" /Prev {} >>\nstartxref\n{xref_at}\n%%EOF\n", doc.startxref).as_bytes());
    out.extend_from_slice(&trailer);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for text in ["plain", "a(b)c\\d", "{\"k\":\"生成\"}", "tab\tnew\nline"] {
            let raw = string_object(text);
            let Obj::Str(s) = Lexer::new(&raw, 0, 0).object(0).unwrap() else { panic!() };
            assert_eq!(text_string(&s), text, "{}", String::from_utf8_lossy(&raw));
        }
        let Obj::Str(s) = Lexer::new(b"(a\\101\\\nb(c))", 0, 0).object(0).unwrap() else { panic!() };
        assert_eq!(s, b"aAb(c)");
    }

    #[test]
    fn references_names_and_depth() {
        let obj = Lexer::new(b"<< /A#20B 12 0 R /N [1 2.5 -3] /T true >>", 0, 0).object(0).unwrap();
        let Obj::Dict(d) = obj else { panic!() };
        assert_eq!(d.get(b"A B"), Some(&Obj::Ref(12, 0)));
        assert_eq!(d.get(b"N"), Some(&Obj::Array(vec![Obj::Int(1), Obj::Real, Obj::Int(-3)])));
        assert_eq!(name(b"A B"), b"/A#20B");
        let deep = "[".repeat(1000);
        assert!(Lexer::new(deep.as_bytes(), 0, 0).object(0).unwrap_err().to_string().contains("nested too deep"));
    }

    #[test]
    fn png_up_predictor() {
        // Two rows of two columns, the second "up"-predicted.
        assert_eq!(unpredict(&[0, 1, 2, 2, 1, 1], 2, 0).unwrap(), vec![1, 2, 2, 3]);
        assert!(unpredict(&[0, 1, 2, 2], 2, 0).is_err());
    }
}
