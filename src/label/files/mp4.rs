//! MP4, M4A, MOV: `moov/udta/meta` `keys` + `ilst`, chunk offsets shifted when `moov` precedes `mdat`.

use super::*;

const F: FileFormat = FileFormat::Mp4;

/// A box: `(start, header length, end, type)`.
#[derive(Clone, Copy)]
struct Bx {
    start: usize,
    header: usize,
    end: usize,
    kind: [u8; 4],
}

impl Bx {
    fn body(&self) -> core::ops::Range<usize> {
        self.start + self.header..self.end
    }
}

fn boxes(b: &[u8], range: core::ops::Range<usize>) -> Result<Vec<Bx>> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at < range.end {
        let size = be32(b, at).ok_or_else(|| FileError::new(F, at, "truncated box header"))? as u64;
        let kind: [u8; 4] = b
            .get(at + 4..at + 8)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| FileError::new(F, at, "truncated box type"))?;
        let (header, size) = match size {
            1 => {
                let hi = be32(b, at + 8).ok_or_else(|| FileError::new(F, at, "truncated large size"))?;
                let lo = be32(b, at + 12).ok_or_else(|| FileError::new(F, at, "truncated large size"))?;
                (16, u64::from(hi) << 32 | u64::from(lo))
            }
            0 => (8, (range.end - at) as u64),
            n => (8, n),
        };
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s))
            .filter(|&e| e <= range.end && e >= at + header)
            .ok_or_else(|| {
                FileError::new(
                    F,
                    at,
                    format!("box {} of {size} bytes runs past its parent", String::from_utf8_lossy(&kind)),
                )
            })?;
        out.push(Bx { start: at, header, end, kind });
        at = end;
    }
    Ok(out)
}

fn child(b: &[u8], parent: &Bx, kind: &[u8; 4], skip: usize) -> Result<Option<Bx>> {
    let body = parent.body();
    Ok(boxes(b, body.start + skip..body.end)?.into_iter().find(|c| &c.kind == kind))
}

/// The `meta` box of `moov/udta`, if any.
fn meta(b: &[u8]) -> Result<Option<(Bx, Bx, Bx)>> {
    let Some(moov) = boxes(b, 0..b.len())?.into_iter().find(|x| &x.kind == b"moov") else {
        return Err(FileError::new(F, 0, "no moov box"));
    };
    let Some(udta) = child(b, &moov, b"udta", 0)? else { return Ok(None) };
    let Some(meta) = child(b, &udta, b"meta", 0)? else { return Ok(None) };
    Ok(Some((moov, udta, meta)))
}

/// `meta` children after its version/flags (QuickTime files omit them: detected).
fn meta_children(b: &[u8], meta: &Bx) -> Result<(usize, Vec<Bx>)> {
    let body = meta.body();
    let full = b.get(body.start + 4..body.start + 8).is_some_and(|k| k != b"hdlr");
    let skip = if full { 4 } else { 0 };
    Ok((skip, boxes(b, body.start + skip..body.end)?))
}

/// Key names of a `keys` box, 1-based order.
fn keys(b: &[u8], keys: &Bx) -> Result<Vec<Vec<u8>>> {
    let body = keys.body();
    let count = be32(b, body.start + 4).ok_or_else(|| FileError::new(F, keys.start, "truncated keys"))? as usize;
    let mut at = body.start + 8;
    let mut out = Vec::new();
    for _ in 0..count.min(4096) {
        let size = be32(b, at).ok_or_else(|| FileError::new(F, at, "truncated key"))? as usize;
        if size < 8 || at + size > body.end {
            return Err(FileError::new(F, at, "key entry runs past the keys box"));
        }
        out.push(b[at + 8..at + size].to_vec());
        at += size;
    }
    Ok(out)
}

/// `(ilst item box, data value range)` for 1-based key `index`.
fn item(b: &[u8], ilst: &Bx, index: usize) -> Result<Option<(Bx, core::ops::Range<usize>)>> {
    for it in boxes(b, ilst.body())? {
        if be32(b, it.start + 4).map(|k| k as usize) == Some(index) {
            if let Some(data) = boxes(b, it.body())?.into_iter().find(|d| &d.kind == b"data") {
                let body = data.body();
                if body.end >= body.start + 8 {
                    return Ok(Some((it, body.start + 8..body.end)));
                }
            }
        }
    }
    Ok(None)
}

pub(super) fn read(b: &[u8]) -> Result<Vec<FoundLabel>> {
    let Some((_, _, meta)) = meta(b)? else { return Ok(Vec::new()) };
    let (_, children) = meta_children(b, &meta)?;
    let (Some(k), Some(ilst)) =
        (children.iter().find(|c| &c.kind == b"keys"), children.iter().find(|c| &c.kind == b"ilst"))
    else {
        return Ok(Vec::new());
    };
    let mut labels = Vec::new();
    for (i, name) in keys(b, k)?.iter().enumerate() {
        if name == b"AIGC" {
            if let Some((_, value)) = item(b, ilst, i + 1)? {
                labels.push(found(Carrier::Mp4Meta, String::from_utf8_lossy(&b[value]).into_owned()));
            }
        }
    }
    Ok(labels)
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn data_item(index: u32, json: &str) -> Vec<u8> {
    let mut data = 1u32.to_be_bytes().to_vec(); // UTF-8
    data.extend_from_slice(&0u32.to_be_bytes());
    data.extend_from_slice(json.as_bytes());
    bx(&index.to_be_bytes(), &bx(b"data", &data))
}

/// The new `meta` box: the label set in `keys` + `ilst`, everything else kept.
fn new_meta(b: &[u8], old: Option<&Bx>, json: &str) -> Result<Vec<u8>> {
    let Some(old) = old else {
        let mut hdlr = vec![0u8; 8];
        hdlr[4..8].copy_from_slice(b"mdta");
        hdlr.extend_from_slice(&[0u8; 13]);
        let mut keys = vec![0u8, 0, 0, 0, 0, 0, 0, 1];
        keys.extend_from_slice(&12u32.to_be_bytes());
        keys.extend_from_slice(b"mdtaAIGC");
        let mut body = vec![0u8; 4];
        body.extend(bx(b"hdlr", &hdlr));
        body.extend(bx(b"keys", &keys));
        body.extend(bx(b"ilst", &data_item(1, json)));
        return Ok(bx(b"meta", &body));
    };
    let (skip, children) = meta_children(b, old)?;
    let mut body = b[old.body().start..old.body().start + skip].to_vec();
    let key_names = match children.iter().find(|c| &c.kind == b"keys") {
        Some(k) => keys(b, k)?,
        None => Vec::new(),
    };
    let index = key_names.iter().position(|k| k == b"AIGC").map(|i| i + 1);
    let new_index = index.unwrap_or(key_names.len() + 1);
    let has_keys = children.iter().any(|c| &c.kind == b"keys");
    let new_keys = || {
        let mut keys = vec![0u8, 0, 0, 0];
        keys.extend_from_slice(&1u32.to_be_bytes());
        keys.extend_from_slice(&12u32.to_be_bytes());
        keys.extend_from_slice(b"mdtaAIGC");
        bx(b"keys", &keys)
    };
    let mut saw_ilst = false;
    for c in &children {
        match &c.kind {
            b"keys" => {
                if index.is_some() {
                    body.extend_from_slice(&b[c.start..c.end]);
                } else {
                    let kb = c.body();
                    let mut keys = b[kb.start..kb.start + 4].to_vec();
                    keys.extend_from_slice(&(new_index as u32).to_be_bytes());
                    keys.extend_from_slice(&b[kb.start + 8..kb.end]);
                    keys.extend_from_slice(&12u32.to_be_bytes());
                    keys.extend_from_slice(b"mdtaAIGC");
                    body.extend(bx(b"keys", &keys));
                }
            }
            b"ilst" => {
                // Readers resolve item indices through `keys`, so it must come first.
                if !has_keys {
                    body.extend(new_keys());
                }
                saw_ilst = true;
                let mut items = Vec::new();
                let mut replaced = false;
                for it in boxes(b, c.body())? {
                    if be32(b, it.start + 4).map(|k| k as usize) == Some(new_index) {
                        if !replaced {
                            items.extend(data_item(new_index as u32, json));
                            replaced = true;
                        }
                    } else {
                        items.extend_from_slice(&b[it.start..it.end]);
                    }
                }
                if !replaced {
                    items.extend(data_item(new_index as u32, json));
                }
                body.extend(bx(b"ilst", &items));
            }
            _ => body.extend_from_slice(&b[c.start..c.end]),
        }
    }
    if !saw_ilst {
        if !has_keys {
            body.extend(new_keys());
        }
        body.extend(bx(b"ilst", &data_item(new_index as u32, json)));
    }
    Ok(bx(b"meta", &body))
}

/// The body of `parent` with its first `kind` child replaced by `new` (appended if none).
fn replace_child(b: &[u8], parent: &Bx, kind: &[u8; 4], new: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(parent.end - parent.start + new.len());
    let mut placed = false;
    for c in boxes(b, parent.body())? {
        if &c.kind == kind && !placed {
            body.extend_from_slice(new);
            placed = true;
        } else {
            body.extend_from_slice(&b[c.start..c.end]);
        }
    }
    if !placed {
        body.extend_from_slice(new);
    }
    Ok(body)
}

/// Adds `delta` to every chunk offset (`stco`, `co64`) inside `moov` bytes.
fn shift_offsets(moov: &mut [u8], delta: i64) -> Result<()> {
    fn walk(m: &mut [u8], range: core::ops::Range<usize>, delta: i64) -> Result<()> {
        for c in boxes(m, range)? {
            match &c.kind {
                b"trak" | b"mdia" | b"minf" | b"stbl" => walk(m, c.body(), delta)?,
                b"stco" | b"co64" => {
                    let body = c.body();
                    let n = be32(m, body.start + 4)
                        .ok_or_else(|| FileError::new(F, c.start, "truncated offset table"))?
                        as usize;
                    let wide = &c.kind == b"co64";
                    let width = if wide { 8 } else { 4 };
                    if body.start + 8 + n.saturating_mul(width) > body.end {
                        return Err(FileError::new(F, c.start, "offset table runs past its box"));
                    }
                    for i in 0..n {
                        let at = body.start + 8 + i * width;
                        if wide {
                            let v = u64::from_be_bytes(m[at..at + 8].try_into().unwrap_or([0; 8]));
                            let nv = (v as i64 + delta) as u64;
                            m[at..at + 8].copy_from_slice(&nv.to_be_bytes());
                        } else {
                            let v = i64::from(u32::from_be_bytes(m[at..at + 4].try_into().unwrap_or([0; 4])));
                            let nv = u32::try_from(v + delta).map_err(|_| {
                                FileError::new(F, at, "chunk offset overflows 32 bits after the label is added")
                            })?;
                            m[at..at + 4].copy_from_slice(&nv.to_be_bytes());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
    let len = moov.len();
    walk(moov, 8..len, delta)
}

pub(super) fn write(b: &[u8], json: &str) -> Result<Vec<u8>> {
    let top = boxes(b, 0..b.len())?;
    let moov = *top.iter().find(|x| &x.kind == b"moov").ok_or_else(|| FileError::new(F, 0, "no moov box"))?;
    if moov.header != 8 {
        return Err(FileError::new(F, moov.start, "64-bit moov size is not supported"));
    }
    let udta = child(b, &moov, b"udta", 0)?;
    let meta_box = match &udta {
        Some(u) => child(b, u, b"meta", 0)?,
        None => None,
    };
    let meta = new_meta(b, meta_box.as_ref(), json)?;
    let udta_new = match &udta {
        Some(u) => bx(b"udta", &replace_child(b, u, b"meta", &meta)?),
        None => bx(b"udta", &meta),
    };
    let moov_body = replace_child(b, &moov, b"udta", &udta_new)?;
    let mut new_moov = bx(b"moov", &moov_body);
    let delta = new_moov.len() as i64 - (moov.end - moov.start) as i64;
    let media_after = top.iter().any(|x| &x.kind == b"mdat" && x.start > moov.start);
    if media_after && delta != 0 {
        shift_offsets(&mut new_moov, delta)?;
    }
    let mut out = Vec::with_capacity(b.len() + new_moov.len());
    out.extend_from_slice(&b[..moov.start]);
    out.extend_from_slice(&new_moov);
    out.extend_from_slice(&b[moov.end..]);
    Ok(out)
}
