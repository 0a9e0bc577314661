//! Text and Markdown: the front matter key `AIGC`.

use super::*;

const FENCE: &str = "---";

/// `(front matter body range, whole block end)` when the text opens with front matter.
fn front_matter(t: &str) -> Option<(core::ops::Range<usize>, usize)> {
    let first = t.split_inclusive('\n').next()?;
    if first.trim_end() != FENCE {
        return None;
    }
    let mut at = first.len();
    for line in t[at..].split_inclusive('\n') {
        if line.trim_end() == FENCE {
            return Some((first.len()..at, at + line.len()));
        }
        at += line.len();
    }
    None
}

pub(super) fn read(b: &[u8]) -> Vec<FoundLabel> {
    let t = String::from_utf8_lossy(b);
    let Some((body, _)) = front_matter(&t) else { return Vec::new() };
    t[body]
        .lines()
        .filter_map(|l| l.strip_prefix("AIGC:"))
        .map(|v| found(Carrier::FrontMatter, v.trim().trim_matches('\'').to_string()))
        .collect()
}

pub(super) fn write(b: &[u8], json: &str) -> Vec<u8> {
    let t = String::from_utf8_lossy(b);
    let line = format!("AIGC: '{json}'");
    match front_matter(&t) {
        Some((body, end)) => {
            let mut lines: Vec<String> = Vec::new();
            let mut written = false;
            for l in t[body.clone()].lines() {
                if l.starts_with("AIGC:") {
                    if !written {
                        lines.push(line.clone());
                        written = true;
                    }
                } else {
                    lines.push(l.to_string());
                }
            }
            if !written {
                lines.push(line);
            }
            format!("{FENCE}\n{}\n{FENCE}\n{}", lines.join("\n"), &t[end..]).into_bytes()
        }
        None => format!("{FENCE}\n{line}\n{FENCE}\n{t}").into_bytes(),
    }
}
