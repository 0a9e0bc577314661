//! OOXML (docx, xlsx, pptx): the custom property `AIGC` in `docProps/custom.xml`
//! (ECMA-376 part 1 §22.3), a `vt:lpwstr` holding the label's JSON.
//!
//! Writing rebuilds the ZIP container around the same members: every member but the three the
//! label needs (`docProps/custom.xml`, `[Content_Types].xml` for its content type and
//! `_rels/.rels` for the package relationship) is copied byte for byte, compressed data and all;
//! those three are written stored (uncompressed), in their old places. So the document, sheet
//! and slide XML are the very same bytes. ZIP64, encrypted members and duplicate member names
//! are refused: the first two cannot be rewritten faithfully, the third lets two readers see two
//! different documents.

use super::xmp::{escape, unescape};
use super::*;

const F: FileFormat = FileFormat::Ooxml;
/// Most bytes one of the XML parts the label touches may inflate to.
const MAX_PART: usize = 16 << 20;
const CUSTOM: &str = "docProps/custom.xml";
const CONTENT_TYPES: &str = "[Content_Types].xml";
const RELS: &str = "_rels/.rels";
const CUSTOM_TYPE: &str = "application/vnd.openxmlformats-officedocument.custom-properties+xml";
const CUSTOM_REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties";
const VT: &str = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes";
/// The format ID custom properties use (ECMA-376 part 1 §22.3.2.2).
const FMTID: &str = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}";

fn le16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

/// One member, from its central directory record.
struct Member<'a> {
    name: &'a str,
    /// The whole central directory record.
    central: &'a [u8],
    /// The local header, data and data descriptor, as stored.
    local: core::ops::Range<usize>,
    /// The compressed data.
    data: core::ops::Range<usize>,
    method: u16,
}

struct Archive<'a> {
    b: &'a [u8],
    members: Vec<Member<'a>>,
    /// The end-of-central-directory comment.
    comment: &'a [u8],
}

impl<'a> Archive<'a> {
    fn open(b: &'a [u8]) -> Result<Archive<'a>> {
        let from = b.len().saturating_sub(22 + 0xFFFF);
        let eocd = b[from..]
            .windows(4)
            .rposition(|w| w == b"PK\x05\x06")
            .map(|p| from + p)
            .ok_or_else(|| FileError::new(F, b.len(), "no end of central directory: truncated or not a ZIP"))?;
        let field16 =
            |off| le16(b, eocd + off).ok_or_else(|| FileError::new(F, eocd, "truncated end of central directory"));
        let count = field16(10)?;
        let (size, offset) = (le32(b, eocd + 12), le32(b, eocd + 16));
        let (Some(size), Some(offset)) = (size, offset) else {
            return Err(FileError::new(F, eocd, "truncated end of central directory"));
        };
        if count == 0xFFFF || size == u32::MAX || offset == u32::MAX {
            return Err(FileError::new(F, eocd, "ZIP64 archive: not rewritten"));
        }
        if field16(4)? != 0 || field16(6)? != 0 {
            return Err(FileError::new(F, eocd, "multi-disk ZIP"));
        }
        let comment_len = usize::from(field16(20)?);
        let comment = b
            .get(eocd + 22..eocd + 22 + comment_len)
            .ok_or_else(|| FileError::new(F, eocd, "truncated ZIP comment"))?;
        let mut at = offset as usize;
        let mut members: Vec<Member<'a>> = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let m = Self::member(b, at)?;
            if members.iter().any(|o| o.name == m.name) {
                return Err(FileError::new(F, at, format!("two members named {:?}", m.name)));
            }
            at += m.central.len();
            members.push(m);
        }
        if at != offset as usize + size as usize {
            return Err(FileError::new(F, at, "central directory size does not match its records"));
        }
        Ok(Archive { b, members, comment })
    }

    fn member(b: &'a [u8], at: usize) -> Result<Member<'a>> {
        let bad = |m: &str| FileError::new(F, at, m.to_string());
        if b.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Err(bad("central directory record expected"));
        }
        let f16 = |off| le16(b, at + off).map(usize::from).ok_or_else(|| bad("truncated central directory record"));
        let f32 = |off| le32(b, at + off).map(|v| v as usize).ok_or_else(|| bad("truncated central directory record"));
        let (flags, method, csize) = (f16(8)?, f16(10)?, f32(20)?);
        let (name_len, extra_len, comment_len, local_at) = (f16(28)?, f16(30)?, f16(32)?, f32(42)?);
        let central = b
            .get(at..at + 46 + name_len + extra_len + comment_len)
            .ok_or_else(|| bad("truncated central directory record"))?;
        let name = core::str::from_utf8(&central[46..46 + name_len]).map_err(|_| bad("member name is not UTF-8"))?;
        if flags & 1 != 0 {
            return Err(bad("encrypted member"));
        }
        if b.get(local_at..local_at + 4) != Some(b"PK\x03\x04") {
            return Err(FileError::new(F, local_at, format!("local header of {name:?} expected")));
        }
        let l16 = |off| {
            le16(b, local_at + off)
                .map(usize::from)
                .ok_or_else(|| FileError::new(F, local_at, "truncated local header"))
        };
        let data_at = local_at + 30 + l16(26)? + l16(28)?;
        let data_end = data_at.checked_add(csize).filter(|&e| e <= b.len());
        let data_end =
            data_end.ok_or_else(|| FileError::new(F, local_at, format!("data of {name:?} runs past the end")))?;
        let mut end = data_end;
        if flags & 8 != 0 {
            // The data descriptor: crc, sizes, with or without its signature.
            end += if b.get(end..end + 4) == Some(b"PK\x07\x08") { 16 } else { 12 };
            if end > b.len() {
                return Err(FileError::new(F, data_end, format!("data descriptor of {name:?} runs past the end")));
            }
        }
        Ok(Member { name, central, local: local_at..end, data: data_at..data_end, method: method as u16 })
    }

    fn find(&self, name: &str) -> Option<&Member<'a>> {
        self.members.iter().find(|m| m.name == name)
    }

    /// A member's content as text.
    fn text(&self, name: &str) -> Result<Option<String>> {
        let Some(m) = self.find(name) else { return Ok(None) };
        let raw = &self.b[m.data.clone()];
        let data = match m.method {
            0 => raw.to_vec(),
            8 => super::inflate(raw, false, MAX_PART)
                .map_err(|e| FileError::new(F, m.data.start, format!("{name}: {e}")))?,
            k => return Err(FileError::new(F, m.local.start, format!("{name}: compression method {k} is not read"))),
        };
        let text =
            String::from_utf8(data).map_err(|_| FileError::new(F, m.data.start, format!("{name} is not UTF-8")))?;
        Ok(Some(text.trim_start_matches('\u{FEFF}').to_string()))
    }
}

/// The value of attribute `name` in the start tag `tag`.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else { continue };
        let value = value.trim_start();
        let quote = value.chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        return value[1..].find(quote).map(|end| &value[1..1 + end]);
    }
    None
}

/// Every element `<local …>…</…local>` (any prefix), as (start, end) byte ranges, with its start tag.
fn elements<'t>(xml: &'t str, local: &str) -> Vec<(core::ops::Range<usize>, &'t str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = xml[from..].find('<').map(|p| from + p) {
        from = open + 1;
        let Some(tag_end) = xml[open..].find('>').map(|p| open + p + 1) else { break };
        let tag = &xml[open..tag_end];
        let name = tag[1..].split(|c: char| c.is_whitespace() || c == '/' || c == '>').next().unwrap_or("");
        if name.rsplit(':').next() != Some(local) || name.starts_with('/') {
            continue;
        }
        if tag.ends_with("/>") {
            out.push((open..tag_end, tag));
        } else {
            let close = format!("</{name}>");
            let Some(end) = xml[tag_end..].find(&close).map(|p| tag_end + p + close.len()) else { break };
            out.push((open..end, tag));
            from = end;
        }
    }
    out
}

/// The text inside an element (its first child's text for `<property><vt:lpwstr>…`).
fn inner_text(element: &str) -> String {
    let inner = element.split_once('>').map_or("", |(_, r)| r);
    let inner = inner.strip_prefix('<').and_then(|r| r.split_once('>')).map_or(inner, |(_, r)| r);
    unescape(inner.split('<').next().unwrap_or(""))
}

/// The label properties of a custom.xml, with their ranges.
fn labels(custom: &str) -> Vec<(core::ops::Range<usize>, String)> {
    elements(custom, "property")
        .into_iter()
        .filter(|(_, tag)| attribute(tag, "name") == Some("AIGC"))
        .map(|(range, _)| {
            let json = inner_text(&custom[range.clone()]);
            (range, json)
        })
        .collect()
}

/// `xml` with `insert` placed before its closing root tag `</…root>`.
fn before_close(xml: &str, root: &str, insert: &str, part: &str) -> Result<String> {
    let close =
        xml.rfind("</").filter(|&at| xml[at + 2..].trim_end().trim_end_matches('>').rsplit(':').next() == Some(root));
    match close {
        Some(at) => Ok(format!("{}{insert}{}", &xml[..at], &xml[at..])),
        None => {
            // A root with no children yet: `<Root …/>`.
            let at =
                xml.rfind("/>").ok_or_else(|| FileError::new(F, 0, format!("{part}: root element not understood")))?;
            let tag_start = xml[..at].rfind('<').unwrap_or(0);
            let name = xml[tag_start + 1..at].split_whitespace().next().unwrap_or(root).to_string();
            Ok(format!("{}>{insert}</{name}>{}", &xml[..at], &xml[at + 2..]))
        }
    }
}

pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
    let zip = Archive::open(b)?;
    if zip.find(CONTENT_TYPES).is_none() {
        return Err(FileError::new(F, 0, "ZIP archive without [Content_Types].xml: not an OOXML document"));
    }
    Ok(match zip.text(CUSTOM)? {
        Some(custom) => labels(&custom).into_iter().map(|(_, json)| found(Carrier::OoxmlCustom, json)).collect(),
        None => Vec::new(),
    })
}

pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
    let zip = Archive::open(b)?;
    let types = zip
        .text(CONTENT_TYPES)?
        .ok_or_else(|| FileError::new(F, 0, "ZIP archive without [Content_Types].xml: not an OOXML document"))?;
    let rels = zip.text(RELS)?.unwrap_or_else(|| {
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships \
         xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"></Relationships>"
            .to_string()
    });
    let old = zip.text(CUSTOM)?;
    let custom_xml = old.clone().unwrap_or_else(|| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Properties \
             xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties\" xmlns:vt=\"{VT}\"></Properties>"
        )
    });
    // The label property: the old one's place and pid when there is one, else the next pid.
    let found = labels(&custom_xml);
    let pid = match found.first() {
        Some((range, _)) => attribute(&custom_xml[range.clone()], "pid").and_then(|p| p.parse::<u32>().ok()),
        None => None,
    };
    let next_pid = elements(&custom_xml, "property")
        .iter()
        .filter_map(|(_, tag)| attribute(tag, "pid")?.parse::<u32>().ok())
        .max()
        .map_or(2, |p| p.saturating_add(1).max(2));
    let property = format!(
        "<property fmtid=\"{FMTID}\" pid=\"{}\" name=\"AIGC\"><vt:lpwstr xmlns:vt=\"{VT}\">{}</vt:lpwstr></property>",
        pid.unwrap_or(next_pid),
        escape(json)
    );
    let custom = match found.as_slice() {
        [] => before_close(&custom_xml, "Properties", &property, CUSTOM)?,
        _ => {
            // One label: the first property rewritten, any others (a second label) dropped.
            let mut out = String::with_capacity(custom_xml.len() + property.len());
            let mut at = 0;
            for (i, (range, _)) in found.iter().enumerate() {
                out.push_str(&custom_xml[at..range.start]);
                if i == 0 {
                    out.push_str(&property);
                }
                at = range.end;
            }
            out.push_str(&custom_xml[at..]);
            out
        }
    };
    let has_type = elements(&types, "Override")
        .iter()
        .any(|(_, tag)| attribute(tag, "PartName").is_some_and(|p| p.eq_ignore_ascii_case("/docProps/custom.xml")));
    let types = if has_type {
        types
    } else {
        before_close(
            &types,
            "Types",
            &format!("<Override PartName=\"/{CUSTOM}\" ContentType=\"{CUSTOM_TYPE}\"/>"),
            CONTENT_TYPES,
        )?
    };
    let relationships = elements(&rels, "Relationship");
    let has_rel = relationships.iter().any(|(_, tag)| attribute(tag, "Type") == Some(CUSTOM_REL));
    let rels = if has_rel {
        rels
    } else {
        let ids: Vec<&str> = relationships.iter().filter_map(|(_, tag)| attribute(tag, "Id")).collect();
        let id = (0..)
            .map(|i| if i == 0 { "rIdAIGC".to_string() } else { format!("rIdAIGC{i}") })
            .find(|id| !ids.contains(&id.as_str()));
        let id = id.unwrap_or_default();
        before_close(
            &rels,
            "Relationships",
            &format!("<Relationship Id=\"{id}\" Type=\"{CUSTOM_REL}\" Target=\"{CUSTOM}\"/>"),
            RELS,
        )?
    };
    if old.as_deref() == Some(custom.as_str()) && has_type && has_rel {
        return Ok(b.to_vec()); // the same label: nothing changes
    }
    let replaced: [(&str, &str); 3] = [(CONTENT_TYPES, &types), (RELS, &rels), (CUSTOM, &custom)];
    let mut out = Vec::with_capacity(b.len() + custom.len() + 1024);
    let mut central = Vec::new();
    let mut count: u16 = 0;
    let add_stored = |out: &mut Vec<u8>, central: &mut Vec<u8>, name: &str, content: &str| -> Result<()> {
        let at = u32::try_from(out.len()).map_err(|_| FileError::new(F, 0, "archive too large without ZIP64"))?;
        let (crc, size) = (super::crc32(content.as_bytes()), content.len() as u32);
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&0u16.to_le_bytes()); // stored
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(content.as_bytes());
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(central);
        central.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
        central.extend_from_slice(&at.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        Ok(())
    };
    for m in &zip.members {
        count = count.checked_add(1).ok_or_else(|| FileError::new(F, 0, "too many members without ZIP64"))?;
        if let Some((name, content)) = replaced.iter().find(|(n, _)| *n == m.name) {
            add_stored(&mut out, &mut central, name, content)?;
            continue;
        }
        let at = u32::try_from(out.len()).map_err(|_| FileError::new(F, 0, "archive too large without ZIP64"))?;
        out.extend_from_slice(&b[m.local.clone()]);
        let record = central.len();
        central.extend_from_slice(m.central);
        central[record + 42..record + 46].copy_from_slice(&at.to_le_bytes());
    }
    for (name, content) in replaced {
        if zip.find(name).is_none() {
            count = count.checked_add(1).ok_or_else(|| FileError::new(F, 0, "too many members without ZIP64"))?;
            add_stored(&mut out, &mut central, name, content)?;
        }
    }
    let cd_at = u32::try_from(out.len()).map_err(|_| FileError::new(F, 0, "archive too large without ZIP64"))?;
    let cd_len = u32::try_from(central.len()).map_err(|_| FileError::new(F, 0, "central directory too large"))?;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&(zip.comment.len() as u16).to_le_bytes());
    out.extend_from_slice(zip.comment);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_and_elements() {
        let tag = r#"<property fmtid="{X}" pid='3' name="AIGC">"#;
        assert_eq!(attribute(tag, "pid"), Some("3"));
        assert_eq!(attribute(tag, "name"), Some("AIGC"));
        assert_eq!(attribute(tag, "id"), None);
        let xml = r#"<Properties><property name="A"><vt:lpwstr>x &amp; y</vt:lpwstr></property><property name="AIGC"/></Properties>"#;
        let found = elements(xml, "property");
        assert_eq!(found.len(), 2);
        assert_eq!(inner_text(&xml[found[0].0.clone()]), "x & y");
        assert_eq!(before_close("<a:Types x='1'/>", "Types", "<b/>", "t").unwrap(), "<a:Types x='1'><b/></a:Types>");
    }
}
