//! The standard's vocabulary: kinds, grades, categories, items and the yearly settings.
//!
//! Responsibilities: the typed form of RULES.md §1, with serde keys exactly as the document spells
//! them (TOML and JSON alike) and unknown keys rejected. [`Standard`] itself is only built by the
//! parsers in [`crate::validate`], so a `Standard` value is always valid; its parts are plain data
//! with public fields that services copy around freely.
//!
//! Invariants of a `Standard` (checked by validation, relied on everywhere else):
//! * item codes are unique among the 共性 items and within each overlay; every item's category
//!   exists and has the item's kind;
//! * base categories have a cap, other categories none; caps are at least one occurrence;
//! * vetoes carry zero points, deductions negative points, base and bonus items positive points;
//! * bands are ordered within 0–100, fractions are at most 1 with a non-zero denominator;
//! * overlay keys are known unit types and lapse watch targets name known categories or items.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::points::DeciPoints;

/// The organization unit types of API.md (`unit_type`), the only valid overlay keys.
pub const UNIT_TYPES: [&str; 9] = [
    "government_organ",
    "public_institution",
    "state_enterprise",
    "private_enterprise",
    "social_organization",
    "rural",
    "community",
    "university",
    "other",
];

/// A string that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownValue {
    /// What was being parsed (`"kind"`, `"grade"`, …).
    pub what: &'static str,
    /// The string given.
    pub value: String,
    /// The accepted values, comma separated.
    pub expected: &'static str,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, $expected:literal,
     { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: s.to_owned(), expected: $expected }),
                }
            }
        }
    };
}

string_enum!(
    /// What an item (or a category) counts towards.
    ItemKind, "kind", "base, bonus, deduction, veto", {
        /// 基础分: capped per category and by `base_cap`.
        Base = "base",
        /// 奖励分: capped by `bonus_cap`.
        Bonus = "bonus",
        /// 扣分: negative points, no cap.
        Deduction = "deduction",
        /// 否决项: no points; one entry makes the year `unqualified`.
        Veto = "veto",
    }
);

string_enum!(
    /// Who records an item: the member (reviewed by the branch) or the branch itself.
    DeclaredBy, "declared_by", "member, branch", {
        /// Declared by the member in the monthly declaration.
        Member = "member",
        /// Recorded by the branch (attendance, dues, deductions, vetoes).
        Branch = "branch",
    }
);

string_enum!(
    /// A yearly grade. Ordered from worst to best, so `grade.min(cap)` applies a grade cap.
    #[derive(PartialOrd, Ord)]
    Grade, "grade", "excellent, qualified, basically_qualified, unqualified", {
        /// 不合格.
        Unqualified = "unqualified",
        /// 基本合格.
        BasicallyQualified = "basically_qualified",
        /// 合格.
        Qualified = "qualified",
        /// 优秀.
        Excellent = "excellent",
    }
);

/// A category of items (`[[categories]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// One letter by convention (`P`, `O`, `D`, `M`, `F`, `B`, `X`, `V`).
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// The kind every item of the category has.
    pub kind: ItemKind,
    /// Ceiling of the category's points; present exactly for base categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<DeciPoints>,
}

/// One item of the standard (`[[items]]`, or an overlay's item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Unique code (`P01`).
    pub code: String,
    /// Code of its category.
    pub category: String,
    /// Chinese name (名称).
    pub name: String,
    /// English name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// Same as its category's kind.
    pub kind: ItemKind,
    /// Points per unit of quantity: positive for base and bonus, negative for deductions, zero for
    /// vetoes (which the document may omit).
    #[serde(default)]
    pub points: DeciPoints,
    /// The unit of quantity (次, 月, 篇, 项, 年).
    pub unit: String,
    /// Ceiling of the item's points per month, in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_cap: Option<DeciPoints>,
    /// Ceiling of the item's points per year, in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly_cap: Option<DeciPoints>,
    /// Whether a declaration line for it must carry evidence.
    pub evidence_required: bool,
    /// Who records it.
    pub declared_by: DeclaredBy,
    /// A member with an entry of this item in the year is graded at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_cap: Option<Grade>,
}

/// `numerator / denominator`, a share between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fraction {
    /// Top.
    pub numerator: u32,
    /// Bottom, never 0 in a valid standard.
    pub denominator: u32,
}

impl Fraction {
    /// ⌊n × numerator / denominator⌋, exactly (0 for a zero denominator).
    pub fn floor_of(self, n: u32) -> u32 {
        (u64::from(n) * u64::from(self.numerator))
            .checked_div(u64::from(self.denominator))
            .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
    }

    /// Whether `part / whole` is strictly above this fraction, exactly (false when `whole` is 0).
    pub fn is_exceeded_by(self, part: u32, whole: u32) -> bool {
        whole != 0
            && u64::from(part) * u64::from(self.denominator)
                > u64::from(self.numerator) * u64::from(whole)
    }
}

/// Scores of the four ratings of the mass evaluation, 0–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingScores {
    /// 好.
    pub excellent: DeciPoints,
    /// 较好.
    pub good: DeciPoints,
    /// 一般.
    pub fair: DeciPoints,
    /// 差.
    pub poor: DeciPoints,
}

/// `[evaluation]`: the quarterly mass evaluation 群众评议.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// Points at a perfect score.
    pub weight: DeciPoints,
    /// With fewer ballots a quarter is not valid for that member; at least 1.
    pub min_ballots: u32,
    /// Score of each rating.
    pub rating_scores: RatingScores,
    /// A valid quarter whose poor share exceeds this keeps the member from `excellent`.
    pub poor_share_blocks_excellent: Fraction,
}

/// Lower bounds (inclusive) of the grades, in points; excellent > qualified > basically_qualified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    /// 优秀 from here.
    pub excellent: DeciPoints,
    /// 合格 from here.
    pub qualified: DeciPoints,
    /// 基本合格 from here; below is 不合格.
    pub basically_qualified: DeciPoints,
}

impl Bands {
    /// The grade of a total by the bands alone (before caps, vetoes and the quota).
    pub fn grade_for(&self, total: DeciPoints) -> Grade {
        if total >= self.excellent {
            Grade::Excellent
        } else if total >= self.qualified {
            Grade::Qualified
        } else if total >= self.basically_qualified {
            Grade::BasicallyQualified
        } else {
            Grade::Unqualified
        }
    }
}

/// `[grading]`: yearly grading settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grading {
    /// Grade bands.
    pub bands: Bands,
    /// Share of graded members per branch that may be excellent; `None` = no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excellent_share_cap: Option<Fraction>,
    /// Days of 公示 before a grading may be finalized.
    pub publication_days: u32,
}

/// A category or item watched for the 党章第九条 lapse advice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchTarget {
    /// `category:<code>`: any entry of an item of the category.
    Category(String),
    /// `item:<code>`: an entry of that item.
    Item(String),
}

impl WatchTarget {
    /// Parses `category:<code>` or `item:<code>` (without checking that the code exists).
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            Some(("category", code)) if !code.is_empty() => Some(Self::Category(code.to_owned())),
            Some(("item", code)) if !code.is_empty() => Some(Self::Item(code.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for WatchTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Category(code) => write!(f, "category:{code}"),
            Self::Item(code) => write!(f, "item:{code}"),
        }
    }
}

impl Serialize for WatchTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WatchTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is neither \"category:<code>\" nor \"item:<code>\""
            ))
        })
    }
}

/// `[lapse]`: the 党章第九条 watch (advice only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lapse {
    /// Consecutive months without an entry that raise the advice, 1–12.
    pub months: u32,
    /// What is watched.
    pub watch: Vec<WatchTarget>,
}

/// 个性 items of one unit type (`[[overlays.<unit_type>.items]]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    /// Items replacing 共性 items of the same code, or added.
    pub items: Vec<Item>,
}

/// A validated yearly standard (积分标准), RULES.md §1.
///
/// Built only by [`Standard::parse_toml`], [`Standard::parse_json`], [`Standard::parse_for_year`]
/// or deserialization (which validates too), so every value satisfies the module invariants.
/// Serializes with exactly the document's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standard {
    pub(crate) year: i32,
    pub(crate) base_cap: DeciPoints,
    pub(crate) bonus_cap: DeciPoints,
    pub(crate) deadline_day: u32,
    pub(crate) evaluation: Evaluation,
    pub(crate) grading: Grading,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lapse: Option<Lapse>,
    pub(crate) categories: Vec<Category>,
    pub(crate) items: Vec<Item>,
    pub(crate) overlays: BTreeMap<String, Overlay>,
}

impl Standard {
    /// The year the standard applies to.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// 基础分 ceiling.
    pub fn base_cap(&self) -> DeciPoints {
        self.base_cap
    }

    /// 奖励分 ceiling.
    pub fn bonus_cap(&self) -> DeciPoints {
        self.bonus_cap
    }

    /// Day (1–28) of month M+1 on which month M's own declarations close (Asia/Shanghai).
    pub fn deadline_day(&self) -> u32 {
        self.deadline_day
    }

    /// Mass evaluation settings.
    pub fn evaluation(&self) -> &Evaluation {
        &self.evaluation
    }

    /// Grading settings.
    pub fn grading(&self) -> &Grading {
        &self.grading
    }

    /// The lapse watch; `None` = no watch.
    pub fn lapse(&self) -> Option<&Lapse> {
        self.lapse.as_ref()
    }

    /// Categories, in document order (the order items are listed in).
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category with that code.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// The 共性 items, in document order (for one unit type see [`Standard::items_for`]).
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Overlays by unit type.
    pub fn overlays(&self) -> &BTreeMap<String, Overlay> {
        &self.overlays
    }

    /// The TOML form of the standard (same keys as the document).
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// The JSON form of the standard (same keys as the document).
    pub fn to_json_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn enums_parse_and_print_their_wire_spelling() {
        for kind in ItemKind::ALL {
            assert_eq!(kind.as_str().parse::<ItemKind>().unwrap(), *kind);
            assert_eq!(serde_json::to_string(kind).unwrap(), format!("\"{kind}\""));
        }
        for grade in Grade::ALL {
            assert_eq!(grade.as_str().parse::<Grade>().unwrap(), *grade);
        }
        for by in DeclaredBy::ALL {
            assert_eq!(by.as_str().parse::<DeclaredBy>().unwrap(), *by);
        }
        let err = "superb".parse::<Grade>().unwrap_err();
        assert_eq!(err.what, "grade");
        assert!(err.to_string().contains("basically_qualified"));
        assert_eq!(
            serde_json::from_str::<Grade>("\"basically_qualified\"").unwrap(),
            Grade::BasicallyQualified
        );
    }

    #[test]
    fn grades_are_ordered_worst_to_best() {
        assert!(Grade::Unqualified < Grade::BasicallyQualified);
        assert!(Grade::BasicallyQualified < Grade::Qualified);
        assert!(Grade::Qualified < Grade::Excellent);
        assert_eq!(
            Grade::Excellent.min(Grade::BasicallyQualified),
            Grade::BasicallyQualified
        );
    }

    #[test]
    fn bands_grade_totals_with_inclusive_lower_bounds() {
        let bands = Bands {
            excellent: DeciPoints::from_tenths(900),
            qualified: DeciPoints::from_tenths(700),
            basically_qualified: DeciPoints::from_tenths(600),
        };
        let t = DeciPoints::from_tenths;
        assert_eq!(bands.grade_for(t(1000)), Grade::Excellent);
        assert_eq!(bands.grade_for(t(900)), Grade::Excellent);
        assert_eq!(bands.grade_for(t(899)), Grade::Qualified);
        assert_eq!(bands.grade_for(t(700)), Grade::Qualified);
        assert_eq!(bands.grade_for(t(699)), Grade::BasicallyQualified);
        assert_eq!(bands.grade_for(t(600)), Grade::BasicallyQualified);
        assert_eq!(bands.grade_for(t(599)), Grade::Unqualified);
        assert_eq!(bands.grade_for(t(0)), Grade::Unqualified);
    }

    #[test]
    fn fractions_compute_exactly() {
        let third = Fraction {
            numerator: 1,
            denominator: 3,
        };
        assert_eq!(third.floor_of(0), 0);
        assert_eq!(third.floor_of(2), 0);
        assert_eq!(third.floor_of(3), 1);
        assert_eq!(third.floor_of(10), 3);
        assert_eq!(third.floor_of(u32::MAX), u32::MAX / 3);
        assert!(!third.is_exceeded_by(1, 3));
        assert!(third.is_exceeded_by(2, 5));
        assert!(!third.is_exceeded_by(0, 0));
        assert_eq!(
            Fraction {
                numerator: 1,
                denominator: 0
            }
            .floor_of(9),
            0
        );
    }

    #[test]
    fn watch_targets_parse_and_print() {
        assert_eq!(
            WatchTarget::parse("category:O"),
            Some(WatchTarget::Category("O".into()))
        );
        assert_eq!(
            WatchTarget::parse("item:D01"),
            Some(WatchTarget::Item("D01".into()))
        );
        assert_eq!(WatchTarget::parse("item:"), None);
        assert_eq!(WatchTarget::parse("items:D01"), None);
        assert_eq!(WatchTarget::parse("D01"), None);
        assert_eq!(WatchTarget::Item("D01".into()).to_string(), "item:D01");
        assert_eq!(
            serde_json::to_string(&WatchTarget::Category("O".into())).unwrap(),
            "\"category:O\""
        );
    }

    #[test]
    fn item_json_has_the_api_shape() {
        let item = Item {
            code: "D01".into(),
            category: "D".into(),
            name: "按月足额交纳党费".into(),
            name_en: None,
            kind: ItemKind::Base,
            points: DeciPoints::from_tenths(5),
            unit: "月".into(),
            monthly_cap: Some(DeciPoints::from_tenths(5)),
            yearly_cap: None,
            evidence_required: false,
            declared_by: DeclaredBy::Branch,
            grade_cap: None,
        };
        let value = serde_json::to_value(&item).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "code": "D01", "category": "D", "name": "按月足额交纳党费", "kind": "base",
                "points": 0.5, "unit": "月", "monthly_cap": 0.5, "evidence_required": false,
                "declared_by": "branch"
            })
        );
        assert_eq!(serde_json::from_value::<Item>(value).unwrap(), item);
    }
}
