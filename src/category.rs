//! The 31 risk categories of TC260-003 / GB/T 45654-2025 Annex A, and the actions a policy
//! assigns to them.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One of the 31 risks of TC260-003 Annex A, written `A.1a` … `A.5b`.
///
/// ```
/// use aigc_edge::Category;
/// let c: Category = "A.1f".parse().unwrap();
/// assert_eq!(c.to_string(), "A.1f");
/// assert_eq!(c.description(), "violence, obscenity, pornography");
/// assert!("A.6a".parse::<Category>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Category(u8);

/// `(group, letters, descriptions)` per Annex A group; the order is the bit order of
/// [`CategorySet`].
const GROUPS: [(u8, &[&str]); 5] = [
    (
        1,
        &[
            "subversion of state power",
            "endangering national security or image",
            "separatism, undermining national unity",
            "terrorism or extremism",
            "ethnic hatred",
            "violence, obscenity, pornography",
            "false harmful information",
            "other content prohibited by law",
        ],
    ),
    (
        2,
        &[
            "discrimination by ethnicity",
            "discrimination by belief",
            "discrimination by nationality",
            "discrimination by region",
            "discrimination by gender",
            "discrimination by age",
            "discrimination by occupation",
            "discrimination by health",
            "other discrimination",
        ],
    ),
    (
        3,
        &[
            "intellectual property infringement",
            "violating business ethics",
            "leaking trade secrets",
            "monopoly or unfair competition",
            "other commercial violations",
        ],
    ),
    (
        4,
        &[
            "endangering physical or mental health",
            "infringing portrait rights",
            "infringing reputation",
            "infringing honour",
            "infringing privacy",
            "infringing personal information",
            "other infringement of rights",
        ],
    ),
    (5, &["inaccurate content", "unreliable content"]),
];

impl Category {
    /// Number of categories (31).
    pub const COUNT: usize = 31;

    /// All categories in Annex A order.
    pub fn all() -> impl Iterator<Item = Category> {
        (0..Self::COUNT as u8).map(Category)
    }

    /// Position in Annex A order, 0 for `A.1a` … 30 for `A.5b`.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Category at `index` in Annex A order.
    pub fn from_index(index: usize) -> Option<Category> {
        (index < Self::COUNT).then_some(Category(index as u8))
    }

    fn group_and_letter(self) -> (u8, u8, &'static str) {
        let mut rest = usize::from(self.0);
        for (group, names) in GROUPS {
            if rest < names.len() {
                return (group, b'a' + rest as u8, names[rest]);
            }
            rest -= names.len();
        }
        (0, b'?', "")
    }

    /// The Annex A wording, in English.
    pub fn description(self) -> &'static str {
        self.group_and_letter().2
    }

    /// True for the 17 risks of A.1 and A.2 that the keyword library must cover.
    pub fn needs_keywords(self) -> bool {
        self.group_and_letter().0 <= 2
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (group, letter, _) = self.group_and_letter();
        write!(f, "A.{}{}", group, letter as char)
    }
}

/// The error when a string is not a category id such as `A.1a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseCategoryError(String);

impl fmt::Display for ParseCategoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown risk category {:?} (expected A.1a … A.5b)", self.0)
    }
}

impl std::error::Error for ParseCategoryError {}

impl FromStr for Category {
    type Err = ParseCategoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCategoryError(s.to_string());
        let rest = s.strip_prefix("A.").ok_or_else(err)?;
        let mut chars = rest.chars();
        let group = chars.next().and_then(|c| c.to_digit(10)).ok_or_else(err)?;
        let letter = chars.next().ok_or_else(err)?;
        if chars.next().is_some() || !letter.is_ascii_lowercase() {
            return Err(err());
        }
        let mut index = 0usize;
        for (g, names) in GROUPS {
            if u32::from(g) == group {
                let offset = (letter as u8 - b'a') as usize;
                return if offset < names.len() { Ok(Category((index + offset) as u8)) } else { Err(err()) };
            }
            index += names.len();
        }
        Err(err())
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of categories, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CategorySet(u32);

impl CategorySet {
    /// The empty set.
    pub const EMPTY: CategorySet = CategorySet(0);

    /// The set holding only `category`.
    pub fn single(category: Category) -> CategorySet {
        CategorySet(1 << category.0)
    }

    /// The set as a bit mask, bit `i` for [`Category::from_index`]`(i)`.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The set from a bit mask; bits past the 31 categories are dropped.
    pub fn from_bits(bits: u32) -> CategorySet {
        CategorySet(bits & ((1u32 << Category::COUNT) - 1))
    }

    /// Adds `category`.
    pub fn insert(&mut self, category: Category) {
        self.0 |= 1 << category.0;
    }

    /// Both sets together.
    pub fn union(self, other: CategorySet) -> CategorySet {
        CategorySet(self.0 | other.0)
    }

    /// True when the set holds no category.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The categories in Annex A order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::all().filter(move |c| self.0 & (1 << c.0) != 0)
    }
}

/// What a policy does with a hit. Ordered by severity: the decision over a text is the most
/// severe action among its hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let the text through unchanged and do not report the hit.
    #[default]
    Pass,
    /// Let the text through unchanged but report the hit (log only).
    Flag,
    /// Replace the matched text by the policy's mask.
    Mask,
    /// Refuse the whole text (or stop the stream before the hit).
    Block,
}

impl Action {
    /// The lowercase name used in policies and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Flag => "flag",
            Action::Mask => "mask",
            Action::Block => "block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pass" => Ok(Action::Pass),
            "flag" => Ok(Action::Flag),
            "mask" => Ok(Action::Mask),
            "block" => Ok(Action::Block),
            _ => Err(format!("unknown action {s:?} (expected pass, flag, mask or block)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_round_trips() {
        let ids: Vec<String> = Category::all().map(|c| c.to_string()).collect();
        assert_eq!(ids.len(), 31);
        assert_eq!(ids[0], "A.1a");
        assert_eq!(ids[7], "A.1h");
        assert_eq!(ids[8], "A.2a");
        assert_eq!(ids[16], "A.2i");
        assert_eq!(ids[30], "A.5b");
        for id in &ids {
            assert_eq!(&id.parse::<Category>().unwrap().to_string(), id);
        }
        assert_eq!(Category::all().filter(|c| c.needs_keywords()).count(), 17);
    }

    #[test]
    fn bad_category_ids_are_refused() {
        for bad in ["", "A.", "A.1", "A.1i", "A.2j", "A.5c", "A.6a", "B.1a", "A.1A", "A.1ab", "a.1a"] {
            assert!(bad.parse::<Category>().is_err(), "{bad:?} parsed");
        }
    }
}
