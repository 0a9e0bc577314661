//! Personal information: detection and stable redaction (Interim Measures art. 11).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A kind of personal information the detector knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// Mainland resident ID number: 17 digits and a check character (GB 11643), checksum and
    /// birth date verified.
    IdCard,
    /// Mainland mobile number: 11 digits starting `13`–`19`, optionally after `+86`.
    Mobile,
    /// Bank card number: 13–19 digits, optionally grouped by single spaces or dashes, Luhn
    /// checksum verified.
    BankCard,
    /// E-mail address.
    Email,
    /// IPv4 address in dotted-quad form.
    Ipv4,
    /// IPv6 address (anything `std::net::Ipv6Addr` parses, with at least two colons).
    Ipv6,
    /// Mainland passport number: `E`/`G` and 8 digits, or `E`, a letter and 7 digits.
    Passport,
}

impl PiiKind {
    /// Every kind, in detection priority order.
    pub const ALL: [PiiKind; 7] = [
        PiiKind::IdCard,
        PiiKind::Mobile,
        PiiKind::BankCard,
        PiiKind::Email,
        PiiKind::Ipv6,
        PiiKind::Ipv4,
        PiiKind::Passport,
    ];

    /// The snake_case name used in policies and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::IdCard => "id_card",
            PiiKind::Mobile => "mobile",
            PiiKind::BankCard => "bank_card",
            PiiKind::Email => "email",
            PiiKind::Ipv4 => "ipv4",
            PiiKind::Ipv6 => "ipv6",
            PiiKind::Passport => "passport",
        }
    }

    /// What a value of this kind is made of beyond the ASCII letters and digits that bound
    /// every kind (`prev` is the character before `c`). A stream holds back runs of these
    /// characters until they end and checks them whole ([`HoldBack`]): a new kind states its
    /// characters here, and `every_kind_is_found_in_streams` proves it.
    fn joins(self, c: char, prev: char) -> bool {
        match self {
            PiiKind::IdCard | PiiKind::Passport => false,
            PiiKind::Mobile => c == '+',
            PiiKind::BankCard => matches!(c, ' ' | '-') && prev.is_ascii_digit(),
            PiiKind::Email => matches!(c, '@' | '.' | '_' | '%' | '+' | '-'),
            PiiKind::Ipv4 => c == '.',
            PiiKind::Ipv6 => matches!(c, ':' | '.'),
        }
    }

    /// The longest value of this kind, in bytes.
    const fn max_len(self) -> usize {
        match self {
            PiiKind::IdCard => 18,
            PiiKind::Mobile => 14,        // +86 and 11 digits
            PiiKind::BankCard => 19 + 18, // 19 digits, single separators between them
            PiiKind::Email => 254,        // RFC 5321 path limit
            PiiKind::Ipv4 => 15,
            PiiKind::Ipv6 => 45,
            PiiKind::Passport => 9,
        }
    }

    fn placeholder_tag(self) -> &'static str {
        match self {
            PiiKind::IdCard => "ID_CARD",
            PiiKind::Mobile => "MOBILE",
            PiiKind::BankCard => "BANK_CARD",
            PiiKind::Email => "EMAIL",
            PiiKind::Ipv4 | PiiKind::Ipv6 => "IP",
            PiiKind::Passport => "PASSPORT",
        }
    }
}

/// What a stream holds back for personal information: runs of the characters any kind is made
/// of (every kind's, so a run has the same bounds it has in a whole text), each at most
/// [`HoldBack::MAX_RUN`] bytes.
pub(crate) struct HoldBack;

impl HoldBack {
    /// A run longer than this is checked in pieces: the longest kind, plus room for the
    /// characters around a value that share its alphabet (a `mailto:`, a label).
    pub(crate) const MAX_RUN: usize = {
        let mut longest = 0;
        let mut i = 0;
        while i < PiiKind::ALL.len() {
            let len = PiiKind::ALL[i].max_len();
            if len > longest {
                longest = len;
            }
            i += 1;
        }
        longest + 64
    };

    /// Does `c` (after `prev`) continue a run that may hold personal information?
    pub(crate) fn holds(c: char, prev: char) -> bool {
        c.is_ascii_alphanumeric() || PiiKind::ALL.iter().any(|k| k.joins(c, prev))
    }
}

/// One piece of personal information found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PiiHit {
    /// What it is.
    pub kind: PiiKind,
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset one past its last byte.
    pub end: usize,
}

/// How redacted personal information reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionStyle {
    /// `[MOBILE_1]`: stable within one text (the same value always gets the same placeholder),
    /// so a response can be restored from [`Redactor::restore_table`].
    #[default]
    Placeholder,
    /// `138****5678`: the first three and last four characters kept.
    Partial,
}

/// Finds personal information of the given kinds, non-overlapping, in text order.
///
/// ```
/// use aigc_edge::pii::{find_pii, PiiKind};
/// let text = "电话13812345678，邮箱 a.b@example.com";
/// let hits = find_pii(text, &PiiKind::ALL);
/// let found: Vec<(&str, &str)> = hits.iter().map(|h| (h.kind.as_str(), &text[h.start..h.end])).collect();
/// assert_eq!(found, [("mobile", "13812345678"), ("email", "a.b@example.com")]);
/// ```
pub fn find_pii(text: &str, kinds: &[PiiKind]) -> Vec<PiiHit> {
    let mut hits: Vec<PiiHit> = Vec::new();
    // Every kind needs an ASCII digit, an `@` or a `:`; most prose has none, so one cheap pass
    // spares the detectors.
    if !text.bytes().any(|b| b.is_ascii_digit() || b == b'@' || b == b':') {
        return hits;
    }
    for kind in PiiKind::ALL.iter().filter(|k| kinds.contains(k)) {
        for (start, end) in find_kind(text, *kind) {
            if hits.iter().all(|h| end <= h.start || start >= h.end) {
                hits.push(PiiHit { kind: *kind, start, end });
            }
        }
    }
    hits.sort_by_key(|h| h.start);
    hits
}

fn is_alnum(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Maximal runs of bytes satisfying `inside`, bounded by bytes that are not ASCII
/// alphanumeric, with trailing `trim` bytes removed.
fn tokens<'a>(
    text: &'a str,
    inside: impl Fn(u8) -> bool + 'a,
    trim: &'a [u8],
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let b = text.as_bytes();
    let mut i = 0;
    core::iter::from_fn(move || {
        while i < b.len() {
            let joins = |c: u8| c.is_ascii_alphanumeric() || (inside(c) && !trim.contains(&c));
            if !inside(b[i]) || trim.contains(&b[i]) || (i > 0 && joins(b[i - 1])) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && inside(b[i]) {
                i += 1;
            }
            let mut end = i;
            while end > start && trim.contains(&b[end - 1]) {
                end -= 1;
            }
            if end > start && !is_alnum(b.get(end).copied().filter(|_| end == i)) {
                return Some((start, end));
            }
        }
        None
    })
}

fn find_kind(text: &str, kind: PiiKind) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    match kind {
        PiiKind::IdCard => tokens(text, |c| c.is_ascii_digit() || c == b'X' || c == b'x', b"")
            .filter(|&(s, e)| valid_id_card(&b[s..e]))
            .collect(),
        PiiKind::Mobile => tokens(text, |c| c.is_ascii_digit() || c == b'+', b"")
            .filter_map(|(s, e)| {
                let t = &b[s..e];
                let digits =
                    t.strip_prefix(b"+86").or_else(|| t.strip_prefix(b"86").filter(|d| d.len() == 11)).unwrap_or(t);
                let ok = digits.len() == 11
                    && digits[0] == b'1'
                    && (b'3'..=b'9').contains(&digits[1])
                    && digits.iter().all(u8::is_ascii_digit);
                ok.then_some((s, e))
            })
            .collect(),
        PiiKind::BankCard => tokens(text, |c| c.is_ascii_digit() || c == b' ' || c == b'-', b" -")
            .flat_map(|(s, e)| card_numbers(b, s, e))
            .collect(),
        PiiKind::Email => emails(b),
        PiiKind::Ipv4 => tokens(text, |c| c.is_ascii_digit() || c == b'.', b".")
            .filter(|&(s, e)| text[s..e].parse::<Ipv4Addr>().is_ok())
            .collect(),
        PiiKind::Ipv6 => tokens(text, |c| c.is_ascii_hexdigit() || c == b':' || c == b'.', b".:")
            .filter(|&(s, e)| {
                let t = &text[s..e];
                t.bytes().filter(|&c| c == b':').count() >= 2 && t.parse::<Ipv6Addr>().is_ok()
            })
            .collect(),
        PiiKind::Passport => tokens(text, |c| c.is_ascii_uppercase() || c.is_ascii_digit(), b"")
            .filter(|&(s, e)| {
                let t = &b[s..e];
                let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
                t.len() == 9
                    && ((matches!(t[0], b'E' | b'G') && digits(&t[1..]))
                        || (t[0] == b'E'
                            && t[1].is_ascii_uppercase()
                            && !matches!(t[1], b'I' | b'O')
                            && digits(&t[2..])))
            })
            .collect(),
    }
}

/// Card numbers inside a run of digits, spaces and dashes: groups joined by single separators.
fn card_numbers(b: &[u8], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    // Split where two separators meet; each piece is a candidate.
    let mut piece_start = start;
    let mut i = start;
    while i <= end {
        let split = i == end || (i + 1 < end && !b[i].is_ascii_digit() && !b[i + 1].is_ascii_digit());
        if split {
            let mut s = piece_start;
            let mut e = i.min(end);
            while s < e && !b[s].is_ascii_digit() {
                s += 1;
            }
            while e > s && !b[e - 1].is_ascii_digit() {
                e -= 1;
            }
            let digits: Vec<u8> = b[s..e].iter().copied().filter(u8::is_ascii_digit).collect();
            if (13..=19).contains(&digits.len()) && luhn(&digits) && !valid_id_card(&b[s..e]) {
                found.push((s, e));
            }
            piece_start = i + 1;
        }
        i += 1;
    }
    found
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                let doubled = v * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                v
            }
        })
        .sum();
    sum % 10 == 0
}

/// GB 11643-1999: weights 2^(17-i) mod 11, check value table `10X98765432`.
fn valid_id_card(t: &[u8]) -> bool {
    if t.len() != 18 || !t[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = t[..17].iter().zip(WEIGHTS).map(|(&d, w)| u32::from(d - b'0') * w).sum();
    let want = CHECK[(sum % 11) as usize];
    if t[17].to_ascii_uppercase() != want {
        return false;
    }
    let num = |r: core::ops::Range<usize>| t[r].iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn emails(b: &[u8]) -> Vec<(usize, usize)> {
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    let mut found = Vec::new();
    let mut from = 0;
    for at in (0..b.len()).filter(|&i| b[i] == b'@') {
        let mut s = at;
        while s > from && local(b[s - 1]) {
            s -= 1;
        }
        while s < at && b[s] == b'.' {
            s += 1;
        }
        let mut e = at + 1;
        while e < b.len() && domain(b[e]) {
            e += 1;
        }
        while e > at + 1 && (b[e - 1] == b'.' || b[e - 1] == b'-') {
            e -= 1;
        }
        let host = &b[at + 1..e];
        let tld_ok = host
            .rsplit(|&c| c == b'.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic));
        if s < at && host.contains(&b'.') && tld_ok && !host.starts_with(b".") && !host.windows(2).any(|w| w == b"..") {
            found.push((s, e));
            from = e;
        }
    }
    found
}

/// Replaces personal information, keeping placeholders stable within one text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    style: RedactionStyle,
    seen: HashMap<(PiiKind, String), String>,
    counters: HashMap<&'static str, usize>,
    table: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor writing `style`.
    pub fn new(style: RedactionStyle) -> Redactor {
        Redactor { style, ..Redactor::default() }
    }

    /// The replacement for `value` of `kind`.
    pub fn replacement(&mut self, kind: PiiKind, value: &str) -> String {
        match self.style {
            RedactionStyle::Partial => partial(value),
            RedactionStyle::Placeholder => {
                if let Some(p) = self.seen.get(&(kind, value.to_string())) {
                    return p.clone();
                }
                let tag = kind.placeholder_tag();
                let n = self.counters.entry(tag).or_default();
                *n += 1;
                let placeholder = format!("[{tag}_{n}]");
                self.seen.insert((kind, value.to_string()), placeholder.clone());
                self.table.push((placeholder.clone(), value.to_string()));
                placeholder
            }
        }
    }

    /// `(placeholder, original value)` pairs handed out so far, for restoring a response.
    pub fn restore_table(&self) -> &[(String, String)] {
        &self.table
    }
}

fn partial(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if let Some(at) = value.find('@') {
        let first: String = value[..at].chars().take(1).collect();
        return format!("{first}***{}", &value[at..]);
    }
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < 3 || i >= chars.len() - 4 || !c.is_ascii_alphanumeric() { c } else { '*' })
        .collect()
}

/// Replaces placeholders in `text` by their original values.
pub fn restore(text: &str, table: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (placeholder, value) in table {
        out = out.replace(placeholder.as_str(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, String)> {
        find_pii(text, &PiiKind::ALL)
            .into_iter()
            .map(|h| (h.kind.as_str().to_string(), text[h.start..h.end].to_string()))
            .collect()
    }

    #[test]
    fn detection_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("身份证11010519491231002X号", &[("id_card", "11010519491231002X")]),
            ("身份证110105194912310021", &[]), // bad checksum
            ("id 110105194913310028", &[]),    // month 13
            ("手机13812345678", &[("mobile", "13812345678")]),
            ("call +8613812345678 now", &[("mobile", "+8613812345678")]),
            ("12812345678", &[]),
            ("138123456789", &[]),
            ("卡号6222021234567890127", &[]), // fails Luhn
            ("卡号6222021234567890128", &[("bank_card", "6222021234567890128")]),
            ("card 4111 1111 1111 1111.", &[("bank_card", "4111 1111 1111 1111")]),
            ("card 4111-1111-1111-1111", &[("bank_card", "4111-1111-1111-1111")]),
            ("4111111111111111", &[("bank_card", "4111111111111111")]),
            ("mail Zhang.San+x@mail.example.cn.", &[("email", "Zhang.San+x@mail.example.cn")]),
            ("not@mail", &[]),
            ("ip 192.168.1.20.", &[("ipv4", "192.168.1.20")]),
            ("version 1.2.3", &[]),
            ("999.1.1.1", &[]),
            ("addr 2001:db8::8a2e:370:7334 ok", &[("ipv6", "2001:db8::8a2e:370:7334")]),
            ("time 12:30:45", &[]),
            ("护照E12345678", &[("passport", "E12345678")]),
            ("护照EA1234567", &[("passport", "EA1234567")]),
            ("E123456789", &[]),
            ("usb13812345678x", &[]),
        ];
        for (text, want) in cases {
            let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(found(text), want, "{text:?}");
        }
    }

    #[test]
    fn placeholders_are_stable_and_restorable() {
        let mut r = Redactor::new(RedactionStyle::Placeholder);
        assert_eq!(r.replacement(PiiKind::Mobile, "13812345678"), "[MOBILE_1]");
        assert_eq!(r.replacement(PiiKind::Mobile, "13900000000"), "[MOBILE_2]");
        assert_eq!(r.replacement(PiiKind::Mobile, "13812345678"), "[MOBILE_1]");
        assert_eq!(r.replacement(PiiKind::Email, "a@b.cn"), "[EMAIL_1]");
        assert_eq!(restore("[MOBILE_2] [MOBILE_1] [EMAIL_1]", r.restore_table()), "13900000000 13812345678 a@b.cn");
        let mut p = Redactor::new(RedactionStyle::Partial);
        assert_eq!(p.replacement(PiiKind::Mobile, "13812345678"), "138****5678");
        assert_eq!(p.replacement(PiiKind::Email, "zhang@b.cn"), "z***@b.cn");
    }
}
