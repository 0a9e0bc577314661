//! The TIFF structure inside EXIF blocks (JPEG APP1 `Exif\0\0`, PNG `eXIf`): just enough to find
//! a tag of IFD0 or the EXIF IFD, bounds-checked at every step.

use super::{be32, le32};

/// An EXIF block: a TIFF header, then image file directories.
pub(super) struct Tiff<'a> {
    b: &'a [u8],
    little: bool,
}

/// One directory entry: its type, count, and the value field (the value itself when it fits in
/// four bytes, else an offset); `at` is where the entry starts.
pub(super) struct Entry {
    pub(super) kind: u16,
    pub(super) count: u32,
    pub(super) value: u32,
    pub(super) at: usize,
}

/// Tag of the orientation in IFD0.
pub(super) const ORIENTATION: u16 = 0x0112;
/// Tag of the pointer to the EXIF IFD in IFD0.
pub(super) const EXIF_IFD: u16 = 0x8769;
/// Tag of the user comment in the EXIF IFD.
pub(super) const USER_COMMENT: u16 = 0x9286;
/// TIFF type SHORT.
pub(super) const SHORT: u16 = 3;

impl<'a> Tiff<'a> {
    pub(super) fn new(b: &'a [u8]) -> Option<Tiff<'a>> {
        let little = match b.get(..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        Some(Tiff { b, little })
    }

    pub(super) fn u16_at(&self, at: usize) -> Option<u16> {
        let s = self.b.get(at..at.checked_add(2)?)?;
        Some(if self.little { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) })
    }

    pub(super) fn u32_at(&self, at: usize) -> Option<u32> {
        if self.little {
            le32(self.b, at)
        } else {
            be32(self.b, at)
        }
    }

    /// The offset of IFD0.
    pub(super) fn ifd0(&self) -> Option<usize> {
        self.u32_at(4).map(|o| o as usize)
    }

    /// The entry for `tag` in the directory at `ifd` (at most 512 entries are looked at).
    pub(super) fn find(&self, ifd: usize, tag: u16) -> Option<Entry> {
        let n = usize::from(self.u16_at(ifd)?);
        (0..n.min(512)).find_map(|i| {
            let at = ifd.checked_add(2 + i * 12)?;
            (self.u16_at(at)? == tag).then_some(())?;
            Some(Entry { kind: self.u16_at(at + 2)?, count: self.u32_at(at + 4)?, value: self.u32_at(at + 8)?, at })
        })
    }

    /// The byte offset of IFD0's orientation value, when it is a single SHORT.
    pub(super) fn orientation_at(&self) -> Option<usize> {
        let entry = self.find(self.ifd0()?, ORIENTATION)?;
        (entry.kind == SHORT && entry.count == 1).then_some(entry.at + 8)
    }

    /// A SHORT stored in `s` (two bytes), in this block's byte order.
    pub(super) fn u16_of(&self, s: &[u8]) -> Option<u16> {
        let s: [u8; 2] = s.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    }

    /// Writes a LONG in this block's byte order.
    pub(super) fn long_bytes(&self, value: u32) -> [u8; 4] {
        if self.little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }
    }

    /// Writes a SHORT in this block's byte order.
    pub(super) fn short_bytes(&self, value: u16) -> [u8; 2] {
        if self.little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }
    }
}

/// Sets the orientation in an EXIF block to 1 (upright), in place, when it has one.
pub(super) fn make_upright(tiff: &mut [u8]) {
    let Some((at, one)) = Tiff::new(tiff).and_then(|t| Some((t.orientation_at()?, t.short_bytes(1)))) else {
        return;
    };
    if let Some(value) = tiff.get_mut(at..at + 2) {
        value.copy_from_slice(&one);
    }
}
