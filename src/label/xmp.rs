//! The TC260 AIGC property in XMP packets: `TC260:AIGC` in namespace
//! `http://www.tc260.org.cn/ns/AIGC/1.0/`, attribute or element form, entity-encoded.

pub(crate) const NAMESPACE: &str = "http://www.tc260.org.cn/ns/AIGC/1.0/";

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A fresh XMP packet holding only the label.
pub(crate) fn packet(json: &str) -> String {
    format!(
        "<?xpacket begin=\"\u{FEFF}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
<rdf:Description rdf:about=\"\" xmlns:TC260=\"{NAMESPACE}\" TC260:AIGC=\"{}\"/>\
</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>",
        escape(json)
    )
}

/// The prefixes bound to the TC260 namespace (`TC260` when none is declared).
fn prefixes(xmp: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = xmp;
    while let Some(at) = rest.find("xmlns:") {
        rest = &rest[at + 6..];
        let Some(eq) = rest.find('=') else { break };
        let prefix = rest[..eq].trim();
        let value = rest[eq + 1..].trim_start();
        let quote = value.chars().next().unwrap_or('"');
        if value[quote.len_utf8()..].starts_with(NAMESPACE) && !prefix.is_empty() {
            found.push(prefix.to_string());
        }
    }
    if found.is_empty() {
        found.push("TC260".to_string());
    }
    found
}

/// Where a label value sits: byte range of the (still escaped) value in the packet.
fn locate(xmp: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for prefix in prefixes(xmp) {
        let name = format!("{prefix}:AIGC");
        let mut from = 0;
        while let Some(at) = xmp[from..].find(&name).map(|a| a + from) {
            from = at + name.len();
            let before = xmp[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == ':' || c == '/') {
                // Part of another name, or a closing tag.
                continue;
            }
            let after = &xmp[from..];
            let trimmed = after.trim_start();
            if let Some(v) = trimmed.strip_prefix('=') {
                let v = v.trim_start();
                let Some(quote) = v.chars().next().filter(|q| *q == '"' || *q == '\'') else { continue };
                let start = xmp.len() - v.len() + 1;
                if let Some(len) = xmp[start..].find(quote) {
                    spans.push((start, start + len));
                }
            } else if let Some(body) = after.strip_prefix('>') {
                let start = xmp.len() - body.len();
                if let Some(len) = xmp[start..].find(&format!("</{name}>")) {
                    spans.push((start, start + len));
                }
            }
        }
    }
    spans.sort_unstable();
    spans.dedup();
    spans
}

/// Every TC260 AIGC value in the packet, entity-decoded.
pub(crate) fn find(xmp: &str) -> Vec<String> {
    locate(xmp).into_iter().map(|(s, e)| unescape(xmp[s..e].trim())).collect()
}

/// The packet with its label set to `json`: the existing value replaced in place, or the
/// property added to the first `rdf:Description`, or a fresh packet when there is no RDF.
pub(crate) fn update(xmp: &str, json: &str) -> String {
    let spans = locate(xmp);
    if let Some(&(start, end)) = spans.first() {
        let mut out = String::with_capacity(xmp.len() + json.len());
        out.push_str(&xmp[..start]);
        out.push_str(&escape(json));
        out.push_str(&xmp[end..]);
        return out;
    }
    if let Some(at) = xmp.find("<rdf:Description") {
        let insert = at + "<rdf:Description".len();
        return format!(
            "{} xmlns:TC260=\"{NAMESPACE}\" TC260:AIGC=\"{}\"{}",
            &xmp[..insert],
            escape(json),
            &xmp[insert..]
        );
    }
    packet(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forms() {
        let json = r#"{"AIGC":{"Label":"1","ContentProducer":"P&Q"}}"#;
        let p = packet(json);
        assert_eq!(find(&p), [json]);
        assert_eq!(find(&update(&p, "{}")), ["{}"]);
        let element =
            format!("<rdf:Description xmlns:ai=\"{NAMESPACE}\"><ai:AIGC>{}</ai:AIGC></rdf:Description>", escape(json));
        assert_eq!(find(&element), [json]);
        let other = "<x:xmpmeta><rdf:RDF><rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"/></rdf:RDF></x:xmpmeta>";
        let added = update(other, json);
        assert_eq!(find(&added), [json]);
        assert!(added.contains("xmlns:dc"));
        assert_eq!(unescape("&#x4E2D;&#25991;&bogus;&"), "中文&bogus;&");
    }
}
