//! JSON read as leniently as the most lenient real client, with the byte range of every string,
//! so a body is edited in place: only changed strings are spliced, and numbers, key order and
//! white space stay byte for byte.
//!
//! Accepted beyond RFC 8259, because real parsers accept it and a filter that refused to read
//! what a client reads would let it through unread: `NaN`, `Infinity` and `-Infinity` (Python's
//! `json`), numbers of any size (`1e400`, 30-digit integers), lone surrogate escapes (JavaScript;
//! read as U+FFFD), raw control characters in strings (Python with `strict=False`), nesting of
//! any depth (the parser keeps its own stack), and UTF-16 or UTF-32 bodies, with or without a
//! byte-order mark (RFC 4627 §3). Duplicate keys are all kept, so every copy is inspected.
//! What is still not JSON is an [`Unreadable`] error, which the filter refuses under
//! `fail_closed`.
//!
//! `serde_json` keeps no byte ranges and refuses most of the above, and no span-keeping crate
//! reads them, hence this small reader.

use core::fmt;
use core::ops::Range;

mod encoding;

pub use encoding::{decode_text, encode_text, Encoding};

/// Why a body could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// What was wrong.
    pub message: String,
    /// Byte offset in the (UTF-8) text.
    pub offset: usize,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

fn unreadable(message: impl Into<String>, offset: usize) -> Unreadable {
    Unreadable { message: message.into(), offset }
}

/// A JSON value, as positions in the text. Nothing on it recurses (dropping included), so no
/// depth of nesting can exhaust the VM's stack.
#[derive(Debug)]
pub enum Node {
    /// Members in order (the key's string index and the value), and the object's byte range.
    Object(Vec<(usize, Node)>, Range<usize>),
    /// Elements in order, and the array's byte range.
    Array(Vec<Node>, Range<usize>),
    /// The string with this index in [`Doc::strings`].
    Str(usize),
    /// A number, `true`, `false`, `null`, `NaN` or an infinity: its byte range.
    Scalar(Range<usize>),
}

/// One string literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Str {
    /// The literal's byte range, quotes included.
    pub range: Range<usize>,
    /// The decoded text (lone surrogates as U+FFFD) when it has escapes; without any, the
    /// text is the literal's inside, read from the document ([`Doc::str`]).
    decoded: Option<String>,
    /// Where it stands: an object's key, a member's value (with its key's index), or an array
    /// element or the root.
    pub place: Place,
}

/// Where a string stands in its document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// An object's key.
    Key,
    /// The value of the member whose key is string `usize`.
    Value(usize),
    /// An array element, or the whole document.
    Element,
}

/// A parsed JSON document.
#[derive(Debug)]
pub struct Doc {
    /// The text, as UTF-8.
    pub text: String,
    /// How it was encoded.
    pub encoding: Encoding,
    /// The root value.
    pub root: Node,
    /// Every string literal, keys included, in text order.
    pub strings: Vec<Str>,
}

impl Doc {
    /// Reads a JSON body (any encoding [`decode_text`] knows).
    pub fn parse(bytes: &[u8]) -> Result<Doc, Unreadable> {
        let (text, encoding) = decode_text(bytes)?;
        Doc::parse_text(text, encoding)
    }

    /// Reads JSON text.
    pub fn parse_str(text: &str) -> Result<Doc, Unreadable> {
        Doc::parse_text(text.to_string(), Encoding::Utf8 { bom: false })
    }

    /// Reads JSON text it takes over (no copy).
    pub fn parse_string(text: String) -> Result<Doc, Unreadable> {
        Doc::parse_text(text, Encoding::Utf8 { bom: false })
    }

    fn parse_text(text: String, encoding: Encoding) -> Result<Doc, Unreadable> {
        let mut p = Parser { s: &text, b: text.as_bytes(), at: 0, strings: Vec::with_capacity(16) };
        let root = p.document()?;
        let strings = p.strings;
        Ok(Doc { text, encoding, root, strings })
    }

    /// The text of string `index`.
    pub fn str(&self, index: usize) -> &str {
        match self.strings.get(index) {
            Some(Str { decoded: Some(text), .. }) => text,
            Some(Str { range, decoded: None, .. }) => self.text.get(range.start + 1..range.end - 1).unwrap_or(""),
            None => "",
        }
    }

    /// The raw text of a scalar.
    pub fn scalar<'a>(&'a self, range: &Range<usize>) -> &'a str {
        self.text.get(range.clone()).unwrap_or("")
    }

    /// The document with `edits` applied (byte range of the UTF-8 text → replacement), in its
    /// original encoding. Edits must not overlap; an insertion is an empty range.
    pub fn rewrite(&self, edits: &mut [(Range<usize>, String)]) -> Vec<u8> {
        encode_text(&self.rewrite_text(edits), self.encoding)
    }

    /// The same, as UTF-8 text.
    pub fn rewrite_text(&self, edits: &mut [(Range<usize>, String)]) -> String {
        edits.sort_by_key(|(r, _)| (r.start, r.end));
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut at = 0;
        for (range, with) in edits.iter() {
            if range.start < at {
                continue; // overlapping edits: the first wins
            }
            out.push_str(self.text.get(at..range.start).unwrap_or(""));
            out.push_str(with);
            at = range.end;
        }
        out.push_str(self.text.get(at..).unwrap_or(""));
        out
    }
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// [`quote`] appended to `out`.
pub fn write_quoted(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

impl Node {
    /// The value of `key` in an object (the last, when a key repeats, as most parsers take).
    pub fn get<'a>(&'a self, doc: &Doc, key: &str) -> Option<&'a Node> {
        match self {
            Node::Object(members, _) => members.iter().rev().find(|(k, _)| doc.str(*k) == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The element at `index` of an array.
    pub fn at(&self, index: usize) -> Option<&Node> {
        match self {
            Node::Array(items, _) => items.get(index),
            _ => None,
        }
    }

    /// The elements of an array (none for anything else).
    pub fn items(&self) -> &[Node] {
        match self {
            Node::Array(items, _) => items,
            _ => &[],
        }
    }

    /// The text of a string value.
    pub fn as_str<'a>(&self, doc: &'a Doc) -> Option<&'a str> {
        match self {
            Node::Str(i) => Some(doc.str(*i)),
            _ => None,
        }
    }

    /// A non-negative integer value.
    pub fn as_u64(&self, doc: &Doc) -> Option<u64> {
        match self {
            Node::Scalar(r) => doc.scalar(r).parse().ok(),
            _ => None,
        }
    }

    /// True for `null` (and for no value at all).
    pub fn is_null(&self, doc: &Doc) -> bool {
        matches!(self, Node::Scalar(r) if doc.scalar(r) == "null")
    }

    /// The value's byte range.
    pub fn range(&self, doc: &Doc) -> Range<usize> {
        match self {
            Node::Object(_, r) | Node::Array(_, r) | Node::Scalar(r) => r.clone(),
            Node::Str(i) => doc.strings.get(*i).map_or(0..0, |s| s.range.clone()),
        }
    }

    /// The edit that adds member `"key": raw` first in this object (`raw` is JSON text).
    pub fn insert_first(&self, key: &str, raw: &str) -> Option<(Range<usize>, String)> {
        let Node::Object(members, range) = self else { return None };
        let at = range.start + 1;
        let comma = if members.is_empty() { "" } else { "," };
        Some((at..at, format!("{}:{raw}{comma}", quote(key))))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let container = |n: &Node| matches!(n, Node::Object(..) | Node::Array(..));
        let nested = match self {
            Node::Array(items, _) => items.iter().any(container),
            Node::Object(members, _) => members.iter().any(|(_, v)| container(v)),
            _ => false,
        };
        if !nested {
            return; // only leaves below: dropping them recurses no further
        }
        fn children(node: &mut Node, into: &mut Vec<Node>) {
            match node {
                Node::Array(items, _) => into.append(items),
                Node::Object(members, _) => into.extend(members.drain(..).map(|(_, v)| v)),
                _ => {}
            }
        }
        let mut pending = Vec::new();
        children(self, &mut pending);
        while let Some(mut node) = pending.pop() {
            children(&mut node, &mut pending);
        }
    }
}

/// A step of a path from the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// An object member, by key.
    Key(&'a str),
    /// An array element, by position.
    Index(usize),
}

/// Every string of `root` — values, and keys with `is_key` — with its path (a key's path is
/// its object's), in document order, walked with a stack of its own.
pub fn walk<'d>(doc: &'d Doc, root: &'d Node, mut f: impl FnMut(&[Seg<'d>], usize, bool)) {
    enum Item<'d> {
        Value(&'d Node, Option<Seg<'d>>),
        Key(usize),
    }
    // Each item with the path length it sits at.
    let mut pending: Vec<(Item<'d>, usize)> = Vec::with_capacity(32);
    pending.push((Item::Value(root, None), 0));
    let mut path: Vec<Seg<'d>> = Vec::with_capacity(8);
    while let Some((item, depth)) = pending.pop() {
        path.truncate(depth);
        let node = match item {
            Item::Key(k) => {
                f(&path, k, true);
                continue;
            }
            Item::Value(node, seg) => {
                path.extend(seg);
                node
            }
        };
        match node {
            Node::Str(i) => f(&path, *i, false),
            Node::Scalar(_) => {}
            Node::Array(items, _) => {
                for (i, item) in items.iter().enumerate().rev() {
                    pending.push((Item::Value(item, Some(Seg::Index(i))), path.len()));
                }
            }
            Node::Object(members, _) => {
                for (k, v) in members.iter().rev() {
                    pending.push((Item::Value(v, Some(Seg::Key(doc.str(*k)))), path.len()));
                    pending.push((Item::Key(*k), path.len()));
                }
            }
        }
    }
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    at: usize,
    strings: Vec<Str>,
}

/// A container being filled.
enum Open {
    Object(Vec<(usize, Node)>, Option<usize>, usize),
    Array(Vec<Node>, usize),
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.b.get(self.at).is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.at).copied()
    }

    fn document(&mut self) -> Result<Node, Unreadable> {
        let root = self.value()?;
        if self.peek().is_some() {
            return Err(unreadable("text after the JSON value", self.at));
        }
        Ok(root)
    }

    /// One value, containers included, without recursion: the stack lives on the heap, so no
    /// nesting depth makes the filter give up reading.
    fn value(&mut self) -> Result<Node, Unreadable> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // Read the start of a value.
            let mut done = match self.peek() {
                Some(b'{') => {
                    let start = self.at;
                    self.at += 1;
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                        Some(Node::Object(Vec::new(), start..self.at))
                    } else {
                        let key = self.key()?;
                        stack.push(Open::Object(Vec::with_capacity(4), Some(key), start));
                        None
                    }
                }
                Some(b'[') => {
                    let start = self.at;
                    self.at += 1;
                    if self.peek() == Some(b']') {
                        self.at += 1;
                        Some(Node::Array(Vec::new(), start..self.at))
                    } else {
                        stack.push(Open::Array(Vec::with_capacity(4), start));
                        None
                    }
                }
                Some(b'"') => {
                    let i = self.string()?;
                    if let (Some(Open::Object(_, Some(key), _)), Some(s)) = (stack.last(), self.strings.get_mut(i)) {
                        s.place = Place::Value(*key);
                    }
                    Some(Node::Str(i))
                }
                Some(_) => Some(Node::Scalar(self.scalar()?)),
                None => return Err(unreadable("unexpected end of JSON", self.at)),
            };
            // Close what the value completes.
            while let Some(node) = done.take() {
                let Some(top) = stack.last_mut() else { return Ok(node) };
                match top {
                    Open::Object(members, key, _) => {
                        let k = key.take().ok_or_else(|| unreadable("value without a key", self.at))?;
                        members.push((k, node));
                        match self.peek() {
                            Some(b',') => {
                                self.at += 1;
                                *key = Some(self.key()?);
                            }
                            Some(b'}') => {
                                self.at += 1;
                                if let Some(Open::Object(members, _, start)) = stack.pop() {
                                    done = Some(Node::Object(members, start..self.at));
                                }
                            }
                            _ => return Err(unreadable("expected `,` or `}`", self.at)),
                        }
                    }
                    Open::Array(items, _) => {
                        items.push(node);
                        match self.peek() {
                            Some(b',') => self.at += 1,
                            Some(b']') => {
                                self.at += 1;
                                if let Some(Open::Array(items, start)) = stack.pop() {
                                    done = Some(Node::Array(items, start..self.at));
                                }
                            }
                            _ => return Err(unreadable("expected `,` or `]`", self.at)),
                        }
                    }
                }
            }
        }
    }

    /// A key and its colon.
    fn key(&mut self) -> Result<usize, Unreadable> {
        if self.peek() != Some(b'"') {
            return Err(unreadable("expected a string key", self.at));
        }
        let key = self.string()?;
        if let Some(s) = self.strings.get_mut(key) {
            s.place = Place::Key;
        }
        if self.peek() != Some(b':') {
            return Err(unreadable("expected `:`", self.at));
        }
        self.at += 1;
        Ok(key)
    }

    fn scalar(&mut self) -> Result<Range<usize>, Unreadable> {
        let start = self.at;
        for word in ["true", "false", "null", "NaN", "Infinity", "-Infinity"] {
            if self.b[start..].starts_with(word.as_bytes()) {
                self.at += word.len();
                return Ok(start..self.at);
            }
        }
        // A number: -?digits(.digits)?([eE][+-]?digits)?, of any size.
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.b.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at > from
        };
        if self.b.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        if !digits(self) {
            return Err(unreadable("not a JSON value", start));
        }
        if self.b.get(self.at) == Some(&b'.') {
            self.at += 1;
            if !digits(self) {
                return Err(unreadable("digits expected after `.`", self.at));
            }
        }
        if matches!(self.b.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.b.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return Err(unreadable("digits expected in the exponent", self.at));
            }
        }
        Ok(start..self.at)
    }

    /// A string literal at `at`; returns its index in `strings`.
    fn string(&mut self) -> Result<usize, Unreadable> {
        let start = self.at;
        self.at += 1;
        let mut decoded: Option<String> = None;
        let mut run = self.at; // start of the current run of plain bytes
        loop {
            // Skip plain bytes in one go: most strings have no escape at all.
            let rest = self.b.get(self.at..).unwrap_or(&[]);
            self.at += memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
            let Some(&c) = self.b.get(self.at) else {
                return Err(unreadable("unterminated string", start));
            };
            if c == b'"' {
                if let Some(text) = decoded.as_mut() {
                    text.push_str(self.slice(run, self.at));
                }
                self.at += 1;
                self.strings.push(Str { range: start..self.at, decoded, place: Place::Element });
                return Ok(self.strings.len() - 1);
            }
            let text = decoded.get_or_insert_with(String::new);
            text.push_str(self.slice(run, self.at));
            self.escape(text)?;
            run = self.at;
        }
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        // Positions are at ASCII bytes of valid UTF-8, so the slice is whole characters.
        self.s.get(from..to).unwrap_or("")
    }

    fn escape(&mut self, text: &mut String) -> Result<(), Unreadable> {
        let at = self.at;
        let Some(&c) = self.b.get(self.at + 1) else { return Err(unreadable("unterminated escape", at)) };
        self.at += 2;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                if (0xD800..0xDC00).contains(&unit) && self.b.get(self.at..self.at + 2) == Some(b"\\u") {
                    let save = self.at;
                    self.at += 2;
                    let low = self.hex4()?;
                    if (0xDC00..0xE000).contains(&low) {
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)).unwrap_or('\u{FFFD}')
                    } else {
                        // Not a pair: the high surrogate stands alone, the next escape is read anew.
                        self.at = save;
                        '\u{FFFD}'
                    }
                } else {
                    char::from_u32(unit).unwrap_or('\u{FFFD}')
                }
            }
            _ => return Err(unreadable("bad escape", at)),
        };
        text.push(ch);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, Unreadable> {
        let digits = self.b.get(self.at..self.at + 4).ok_or_else(|| unreadable("short \\u escape", self.at))?;
        let s = std::str::from_utf8(digits).map_err(|_| unreadable("bad \\u escape", self.at))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| unreadable("bad \\u escape", self.at))?;
        self.at += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(json: &str) -> Vec<String> {
        let doc = Doc::parse_str(json).unwrap();
        (0..doc.strings.len()).map(|i| doc.str(i).to_string()).collect()
    }

    #[test]
    fn lenient_values_are_read() {
        let cases: [(&str, &[&str]); 9] = [
            (r#"{"a": NaN, "b": "x"}"#, &["a", "b", "x"]),
            (r#"[-Infinity, Infinity, 1e400, 123456789012345678901234567890, "y"]"#, &["y"]),
            (r#"["\ud800", "\udc00z", "\ud83d\ude00"]"#, &["\u{FFFD}", "\u{FFFD}z", "😀"]),
            (r#"["\ud800\u0041"]"#, &["\u{FFFD}A"]),
            (r#"{"k": "\u8d4c\u535a"}"#, &["k", "赌博"]),
            ("[\"raw\ttab\nline\"]", &["raw\ttab\nline"]),
            (r#"{"a":1,"a":"dup"}"#, &["a", "a", "dup"]),
            ("  [ ]  ", &[]),
            (r#"{"x":{"y":[{"z":"deep"}]}}"#, &["x", "y", "z", "deep"]),
        ];
        for (json, want) in cases {
            assert_eq!(strings(json), want, "{json}");
        }
        let deep = format!("{}\"自制炸药\"{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(strings(&deep), ["自制炸药"]);
    }

    #[test]
    fn walk_gives_paths_in_document_order() {
        let doc = Doc::parse_str(r#"{"m":[{"role":"user","content":["a",{"text":"b"}]}],"z":"c"}"#).unwrap();
        let mut seen = Vec::new();
        walk(&doc, &doc.root, |path, i, key| {
            let p: Vec<String> = path
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => k.to_string(),
                    Seg::Index(i) => i.to_string(),
                })
                .collect();
            seen.push(format!("{}{}={}", p.join("/"), if key { "#key" } else { "" }, doc.str(i)));
        });
        assert_eq!(
            seen,
            [
                "#key=m",
                "m/0#key=role",
                "m/0/role=user",
                "m/0#key=content",
                "m/0/content/0=a",
                "m/0/content/1#key=text",
                "m/0/content/1/text=b",
                "#key=z",
                "z=c"
            ]
        );
    }

    #[test]
    fn what_is_not_json_is_unreadable() {
        for bad in ["", "{", r#"{"a" 1}"#, r#"{"a":1,}"#, "[1 2]", r#""\x""#, "tru", "{} {}", "-", "1.", "'a'"] {
            assert!(Doc::parse_str(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodings_round_trip() {
        let text = r#"{"k":"自制炸药😀"}"#;
        let encodings = [
            Encoding::Utf8 { bom: false },
            Encoding::Utf8 { bom: true },
            Encoding::Utf16 { big_endian: true, bom: false },
            Encoding::Utf16 { big_endian: false, bom: false },
            Encoding::Utf16 { big_endian: true, bom: true },
            Encoding::Utf16 { big_endian: false, bom: true },
            Encoding::Utf32 { big_endian: true, bom: false },
            Encoding::Utf32 { big_endian: false, bom: false },
            Encoding::Utf32 { big_endian: true, bom: true },
            Encoding::Utf32 { big_endian: false, bom: true },
        ];
        for e in encodings {
            let bytes = encode_text(text, e);
            let doc = Doc::parse(&bytes).unwrap();
            assert_eq!((doc.encoding, doc.str(1)), (e, "自制炸药😀"), "{e:?}");
            assert_eq!(doc.rewrite(&mut []), bytes, "{e:?}");
        }
        assert!(decode_text(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn edits_splice_only_what_changed() {
        let json = r#"{ "n": 123456789012345678901234567890, "t" :"a\u0062c" ,"f":1.50}"#;
        let doc = Doc::parse_str(json).unwrap();
        let t = (0..doc.strings.len()).position(|i| doc.str(i) == "abc").unwrap();
        let mut edits = vec![(doc.strings[t].range.clone(), quote("x\"y"))];
        assert_eq!(doc.rewrite_text(&mut edits), r#"{ "n": 123456789012345678901234567890, "t" :"x\"y" ,"f":1.50}"#);
        let obj = &doc.root;
        assert_eq!(obj.get(&doc, "t").and_then(|n| n.as_str(&doc)), Some("abc"));
        let mut insert = [obj.insert_first("AIGC", "{}").unwrap()];
        assert!(doc.rewrite_text(&mut insert).starts_with(r#"{"AIGC":{}, "n""#));
        let empty = Doc::parse_str("{ }").unwrap();
        assert_eq!(empty.rewrite_text(&mut [empty.root.insert_first("k", "1").unwrap()]), r#"{"k":1 }"#);
    }
}
