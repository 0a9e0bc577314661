//! The fast path for the common chat chunk — text deltas only — without building a tree: the
//! event's JSON is scanned once, the delta strings located and decoded, and the settled text
//! spliced back in. It reads a strict subset and bails out on anything else (tool calls, a
//! finish reason, a key that is not an identifier, any string that is neither a delta nor the
//! value of a structural key, lone surrogates, deep nesting), which the general path reads: so
//! deny by default holds here too.

use core::ops::Range;
use std::borrow::Cow;

use crate::inspect::{is_identifier, is_structural};

/// A delta text: choice position, field, byte range of the string literal, decoded text
/// (borrowed from the chunk unless it had escapes: most events allocate nothing here).
pub(crate) struct Delta<'a> {
    pub(crate) choice: usize,
    pub(crate) field: &'static str,
    pub(crate) literal: Range<usize>,
    pub(crate) text: Cow<'a, str>,
}

/// `(choice position, its "index")` pairs.
pub(crate) type Indexes = Vec<(usize, u64)>;

/// The chunk's deltas and each choice's `index`, or `None` when the chunk is not a plain
/// text-delta chunk.
pub(crate) fn scan(data: &str) -> Option<(Vec<Delta<'_>>, Indexes)> {
    let mut p = Parser { s: data, b: data.as_bytes(), at: 0, deltas: Vec::new(), indexes: Vec::new() };
    p.ws();
    p.value(&mut Vec::new(), 0)?;
    p.ws();
    (p.at == p.b.len()).then_some((p.deltas, p.indexes))
}

/// The bytes of a chunk around its one delta string, kept from the last chunk [`scan`] read:
/// a chunk equal to it outside that string (the usual stream, where only the text changes) is
/// read without parsing it again. Sound because JSON is read left to right: with the same
/// bytes up to the string's opening quote, a string body with no unescaped quote ends where
/// the old one did, and the same bytes after it parse the same.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    data: String,
    literal: Range<usize>,
    choice: usize,
    field: &'static str,
    indexes: Indexes,
}

impl Shape {
    /// The shape of a chunk [`scan`] read, when it has one delta.
    pub(crate) fn of(data: &str, deltas: &[Delta], indexes: &Indexes) -> Option<Shape> {
        let [d] = deltas else { return None };
        let (choice, field, literal) = (d.choice, d.field, d.literal.clone());
        Some(Shape { data: data.to_string(), literal, choice, field, indexes: indexes.clone() })
    }

    /// The one delta [`scan`] would give for `data`, when `data` has this shape (its indexes
    /// are [`Shape::indexes`]).
    pub(crate) fn read<'a>(&self, data: &'a str) -> Option<Delta<'a>> {
        let before = self.data.get(..self.literal.start + 1)?;
        let after = self.data.get(self.literal.end - 1..)?;
        let end = data.len().checked_sub(after.len()).filter(|&e| e >= before.len())?;
        if !data.starts_with(before) || !data.ends_with(after) {
            return None;
        }
        let body = data.get(before.len()..end)?;
        let bytes = body.as_bytes();
        let (mut i, mut escaped) = (0, false);
        while i < bytes.len() {
            match bytes[i] {
                // An unescaped quote would end the string early; a raw control character goes
                // the general way, as in `scan`.
                b'"' | 0..=0x1F => return None,
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        if i > bytes.len() {
            return None; // a last backslash escapes the closing quote
        }
        let text = if escaped { Cow::Owned(unescape(body)?) } else { Cow::Borrowed(body) };
        Some(Delta { choice: self.choice, field: self.field, literal: before.len() - 1..end + 1, text })
    }

    /// Each choice's `index` in a chunk of this shape.
    pub(crate) fn indexes(&self) -> &Indexes {
        &self.indexes
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Parser<'a> {
    /// The text; positions are always at ASCII delimiters, so slicing it cannot split a
    /// character.
    s: &'a str,
    b: &'a [u8],
    at: usize,
    deltas: Vec<Delta<'a>>,
    indexes: Indexes,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.b.get(self.at).is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.at) == Some(&c)).then(|| self.at += 1)
    }

    /// Where a value at `path` sits, by the chat chunk layout.
    fn role(path: &[Seg<'_>]) -> Option<(&'static str, usize)> {
        match path {
            [Seg::Key("choices"), Seg::Index(i), Seg::Key("delta"), Seg::Key("content")] => Some(("content", *i)),
            [Seg::Key("choices"), Seg::Index(i), Seg::Key("delta"), Seg::Key("reasoning_content")] => {
                Some(("reasoning_content", *i))
            }
            _ => None,
        }
    }

    fn value(&mut self, path: &mut Vec<Seg<'a>>, depth: usize) -> Option<()> {
        if depth > 32 {
            return None;
        }
        self.ws();
        match *self.b.get(self.at)? {
            b'{' => {
                self.at += 1;
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    let (raw, escaped) = self.literal()?;
                    if escaped {
                        return None; // escaped keys: not a chunk we rewrite here
                    }
                    let key = self.s.get(raw.start + 1..raw.end - 1)?;
                    if !is_identifier(key) {
                        return None;
                    }
                    self.eat(b':')?;
                    path.push(Seg::Key(key));
                    match path.as_slice() {
                        [Seg::Key("choices"), Seg::Index(_), Seg::Key("delta"), Seg::Key("tool_calls" | "function_call")] => {
                            return None
                        }
                        [Seg::Key("choices"), Seg::Index(_), Seg::Key("finish_reason")] => {
                            self.ws();
                            if !self.b.get(self.at..)?.starts_with(b"null") {
                                return None;
                            }
                        }
                        _ => {}
                    }
                    self.value(path, depth + 1)?;
                    path.pop();
                    if self.eat(b',').is_none() {
                        return self.eat(b'}');
                    }
                }
            }
            b'[' => {
                self.at += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                let mut i = 0;
                loop {
                    path.push(Seg::Index(i));
                    self.value(path, depth + 1)?;
                    path.pop();
                    i += 1;
                    if self.eat(b',').is_none() {
                        return self.eat(b']');
                    }
                }
            }
            b'"' => {
                let (literal, escaped) = self.literal()?;
                if let Some((field, choice)) = Self::role(path) {
                    let body = self.s.get(literal.start + 1..literal.end - 1)?;
                    let text = if escaped { Cow::Owned(unescape(body)?) } else { Cow::Borrowed(body) };
                    self.deltas.push(Delta { choice, field, literal, text });
                    return Some(());
                }
                // Any other string must be the value of a structural key.
                match path.last() {
                    Some(Seg::Key(k)) if is_structural(k) => Some(()),
                    _ => None,
                }
            }
            _ => {
                let start = self.at;
                while self
                    .b
                    .get(self.at)
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                {
                    self.at += 1;
                }
                let token = self.s.get(start..self.at)?;
                if let [Seg::Key("choices"), Seg::Index(i), Seg::Key("index")] = path.as_slice() {
                    self.indexes.push((*i, token.parse().ok()?));
                } else if !matches!(token, "null" | "true" | "false") && token.parse::<f64>().is_err() {
                    return None;
                }
                Some(())
            }
        }
    }

    /// The byte range of the string literal at `at` (quotes included), and whether it
    /// holds escapes.
    fn literal(&mut self) -> Option<(Range<usize>, bool)> {
        if self.b.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            self.at += memchr::memchr2(b'"', b'\\', self.b.get(self.at..)?)?;
            if self.b.get(self.at) == Some(&b'"') {
                self.at += 1;
                let literal = start..self.at;
                // A raw control character: read by the general path, leniently.
                return (!self.b.get(literal.clone())?.iter().any(|&c| c < 0x20)).then_some((literal, escaped));
            }
            escaped = true;
            self.at += 2;
        }
    }
}

fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
    let h: String = chars.take(4).collect();
    (h.len() == 4).then_some(()).and_then(|_| u32::from_str_radix(&h, 16).ok())
}

/// The text of a JSON string body with escapes.
fn unescape(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let unit = hex4(&mut chars)?;
                let c = if (0xD800..0xDC00).contains(&unit) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let low = hex4(&mut chars)?.checked_sub(0xDC00).filter(|l| *l < 0x400)?;
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + low)?
                } else {
                    char::from_u32(unit)?
                };
                out.push(c);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{scan, Delta, Indexes, Shape};

    #[test]
    fn fast_scan_table() {
        /// A chunk and the `(field, text)` deltas found in it; `None`: not a fast-path chunk.
        type Case = (&'static str, Option<Vec<(&'static str, &'static str)>>);
        let cases: [Case; 8] = [
            (
                r#"{"id":"c","choices":[{"index":0,"delta":{"content":"你好"},"finish_reason":null}]}"#,
                Some(vec![("content", "你好")]),
            ),
            (
                r#"{"choices":[{"delta":{"content":"a\"b\\c\n\u4e2d\ud83d\ude00"}}]}"#,
                Some(vec![("content", "a\"b\\c\n中😀")]),
            ),
            (
                r#"{"choices":[{"index":1,"delta":{"reasoning_content":"想","content":"答"}}],"usage":null}"#,
                Some(vec![("reasoning_content", "想"), ("content", "答")]),
            ),
            (r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#, None),
            (r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#, None),
            (r#"{"choices":[{"delta":{"content":"x"}}]} trailing"#, None),
            (r#"{"choices":[{"delta":{"content":"x"#, None),
            (r#"{"choices":[],"created":1.5e3,"flag":true}"#, Some(vec![])),
        ];
        for (json, want) in cases {
            let got =
                scan(json).map(|(d, _)| d.into_iter().map(|d| (d.field, d.text.into_owned())).collect::<Vec<_>>());
            let want = want.map(|w| w.into_iter().map(|(f, t)| (f, t.to_string())).collect::<Vec<_>>());
            assert_eq!(got, want, "{json}");
        }
        let (deltas, indexes) = scan(r#"{"choices":[{"delta":{"content":"a"},"index":3}]}"#).unwrap();
        assert_eq!((deltas[0].choice, indexes), (0, vec![(0, 3)]));
    }

    #[test]
    fn a_chunk_of_the_same_shape_reads_as_scan_reads_it() {
        let first = r#"{"id":"c","choices":[{"index":2,"delta":{"content":"你好"},"finish_reason":null}]}"#;
        let (deltas, indexes) = scan(first).unwrap();
        let shape = Shape::of(first, &deltas, &indexes).unwrap();
        let shaped = |content: &str| {
            format!(r#"{{"id":"c","choices":[{{"index":2,"delta":{{"content":"{content}"}},"finish_reason":null}}]}}"#)
        };
        // Every body, read by the shape and by a full scan: the same deltas, or both refuse.
        let bodies = [
            "世界",
            "",
            r#"a"b"#,
            r#"\"#,
            r#"中
"#,
            r#"x"#,
            r#"a","x":"b"#,
            "tab	here",
            r#"\q"#,
            r#"\"#,
        ];
        for body in bodies {
            let data = shaped(body);
            let read = |r: Option<(Vec<Delta>, Indexes)>| {
                r.map(|(d, i)| {
                    (d.into_iter().map(|d| (d.choice, d.field, d.literal, d.text.into_owned())).collect::<Vec<_>>(), i)
                })
            };
            let by_shape = read(shape.read(&data).map(|d| (vec![d], shape.indexes().clone())));
            let by_scan = read(scan(&data));
            assert_eq!(by_shape, by_scan, "{data}");
        }
        // Anything else changed: not this shape.
        for other in [first.replace("\"c\"", "\"d\""), first.replace("null", "\"stop\""), format!("{first} ")] {
            assert!(shape.read(&other).is_none(), "{other}");
        }
    }
}
