//! Parsing and validating a standard document, naming every problem at once.
//!
//! Responsibilities: turn TOML or JSON text into a [`Standard`], or into the complete list of
//! [`Problem`]s that keep it from being one. A document that cannot be read at all (syntax error,
//! wrong type, unknown or missing key) yields exactly one `malformed` problem with the path
//! serde_path_to_error found; a readable document is checked against every rule below and every
//! violation is reported, each with its path (`items[3].monthly_cap`,
//! `overlays.rural.items[0].category`) and a stable machine code from [`codes`].
//!
//! Rules (RULES.md §1 and common sense):
//! * `year` within 2000–2999 and, for [`Standard::parse_for_year`], the expected year;
//! * `base_cap` within 1–100, `bonus_cap` within 0–100, `deadline_day` within 1–28;
//! * evaluation: `weight` within 0–100, `min_ballots` ≥ 1, rating scores within 0–100 and not
//!   increasing from excellent to poor; fractions with a non-zero denominator and a value 0–1;
//! * grading: bands within 0–100 with excellent > qualified > basically_qualified,
//!   `publication_days` within 0–366;
//! * categories: non-empty unique codes, known kinds, a positive cap on base categories and none
//!   on the others;
//! * items (共性 and per overlay): non-empty code/name/unit, codes unique, known category, known
//!   kind equal to the category's, known `declared_by`, points positive for base and bonus,
//!   negative for deductions, zero or absent for vetoes; caps at least one occurrence
//!   (`|points|`), the yearly cap at least the monthly cap, no caps on vetoes; deductions and
//!   vetoes recorded by the branch; `grade_cap` a grade;
//! * overlay keys are unit types of API.md; lapse `months` within 1–12 and `watch` entries
//!   `category:<known code>` or `item:<known code>`.
//!
//! Paths use `.` between keys and `[i]` for list positions; the empty path is the whole document.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::model::{
    Category, DeclaredBy, Evaluation, Fraction, Grade, Grading, Item, ItemKind, Lapse, Overlay,
    Standard, UNIT_TYPES, WatchTarget,
};
use crate::points::DeciPoints;
use crate::raw::{RawCategory, RawFraction, RawItem, RawStandard};

/// Machine codes of [`Problem`]s.
pub mod codes {
    /// The text could not be read as a standard document (syntax, type, unknown or missing key).
    pub const MALFORMED: &str = "malformed";
    /// A required string is empty.
    pub const EMPTY: &str = "empty";
    /// `year` is not plausible.
    pub const YEAR_OUT_OF_RANGE: &str = "year_out_of_range";
    /// `year` is not the year the caller expected.
    pub const YEAR_MISMATCH: &str = "year_mismatch";
    /// `base_cap` or `bonus_cap` outside its range.
    pub const CAP_OUT_OF_RANGE: &str = "cap_out_of_range";
    /// `deadline_day` outside 1–28.
    pub const DEADLINE_DAY_OUT_OF_RANGE: &str = "deadline_day_out_of_range";
    /// `evaluation.weight` outside 0–100.
    pub const WEIGHT_OUT_OF_RANGE: &str = "weight_out_of_range";
    /// `evaluation.min_ballots` below 1.
    pub const MIN_BALLOTS_OUT_OF_RANGE: &str = "min_ballots_out_of_range";
    /// A rating score outside 0–100.
    pub const SCORE_OUT_OF_RANGE: &str = "score_out_of_range";
    /// Rating scores increase from excellent towards poor.
    pub const SCORES_OUT_OF_ORDER: &str = "scores_out_of_order";
    /// A fraction with denominator 0.
    pub const ZERO_DENOMINATOR: &str = "zero_denominator";
    /// A fraction below 0 or above 1.
    pub const FRACTION_OUT_OF_RANGE: &str = "fraction_out_of_range";
    /// A band outside 0–100.
    pub const BAND_OUT_OF_RANGE: &str = "band_out_of_range";
    /// Bands not strictly decreasing from excellent to basically_qualified.
    pub const BANDS_OUT_OF_ORDER: &str = "bands_out_of_order";
    /// `grading.publication_days` outside 0–366.
    pub const PUBLICATION_DAYS_OUT_OF_RANGE: &str = "publication_days_out_of_range";
    /// A category code used twice.
    pub const DUPLICATE_CATEGORY: &str = "duplicate_category";
    /// A `kind` that is not base, bonus, deduction or veto.
    pub const UNKNOWN_KIND: &str = "unknown_kind";
    /// A base category without a cap.
    pub const MISSING_CAP: &str = "missing_cap";
    /// A cap where none is allowed (bonus/deduction/veto category, veto item).
    pub const CAP_NOT_ALLOWED: &str = "cap_not_allowed";
    /// A category cap of zero or less.
    pub const CAP_NOT_POSITIVE: &str = "cap_not_positive";
    /// An item code used twice (among the 共性 items, or within one overlay).
    pub const DUPLICATE_CODE: &str = "duplicate_code";
    /// An item of a category that does not exist.
    pub const UNKNOWN_CATEGORY: &str = "unknown_category";
    /// An item whose kind differs from its category's.
    pub const KIND_MISMATCH: &str = "kind_mismatch";
    /// A `declared_by` that is not member or branch.
    pub const UNKNOWN_DECLARED_BY: &str = "unknown_declared_by";
    /// A deduction or veto declared by the member.
    pub const PENALTY_DECLARED_BY_MEMBER: &str = "penalty_declared_by_member";
    /// A base/bonus/deduction item without points.
    pub const MISSING_POINTS: &str = "missing_points";
    /// Points of the wrong sign for the item's kind.
    pub const POINTS_SIGN: &str = "points_sign";
    /// A veto item with non-zero points.
    pub const VETO_WITH_POINTS: &str = "veto_with_points";
    /// A monthly or yearly cap below one occurrence.
    pub const CAP_BELOW_ONE_OCCURRENCE: &str = "cap_below_one_occurrence";
    /// A yearly cap below the monthly cap.
    pub const YEARLY_BELOW_MONTHLY: &str = "yearly_below_monthly";
    /// A `grade_cap` that is not a grade.
    pub const UNKNOWN_GRADE: &str = "unknown_grade";
    /// An overlay key that is not a unit type.
    pub const UNKNOWN_UNIT_TYPE: &str = "unknown_unit_type";
    /// `lapse.months` outside 1–12.
    pub const LAPSE_MONTHS_OUT_OF_RANGE: &str = "lapse_months_out_of_range";
    /// A `lapse.watch` entry that is not `category:<known>` or `item:<known>`.
    pub const UNKNOWN_WATCH_TARGET: &str = "unknown_watch_target";
    /// change_only_adds_items: an item of the old standard is missing from the new one.
    pub const ITEM_REMOVED: &str = "item_removed";
    /// change_only_adds_items: an item of the old standard differs in the new one.
    pub const ITEM_CHANGED: &str = "item_changed";
    /// change_only_adds_items: a setting other than the items differs.
    pub const SETTING_CHANGED: &str = "setting_changed";
}

/// One thing wrong with a standard document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `items[3].monthly_cap`, `overlays.rural.items[0].category`; empty for the document.
    pub path: String,
    /// What, for machines: one of [`codes`].
    pub code: &'static str,
    /// What, for people.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} ({})", self.message, self.code)
        } else {
            write!(f, "{}: {} ({})", self.path, self.message, self.code)
        }
    }
}

/// A document that is not a valid standard, with every problem found (used where an error type
/// is needed, e.g. when a `Standard` is deserialized inside another document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid standard: {}", display_all(.0))]
pub struct InvalidStandard(pub Vec<Problem>);

fn display_all(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The text format of a standard document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `standards/<year>.toml`.
    Toml,
    /// The body of `PUT /api/v1/standards/{year}`.
    Json,
}

impl Standard {
    /// Parses and validates a TOML document.
    pub fn parse_toml(text: &str) -> Result<Self, Vec<Problem>> {
        Self::parse(text, Format::Toml, None)
    }

    /// Parses and validates a JSON document.
    pub fn parse_json(text: &str) -> Result<Self, Vec<Problem>> {
        Self::parse(text, Format::Json, None)
    }

    /// Parses and validates a document that must be the standard of `year` (a mismatch is one
    /// more problem, reported with the others).
    pub fn parse_for_year(text: &str, format: Format, year: i32) -> Result<Self, Vec<Problem>> {
        Self::parse(text, format, Some(year))
    }

    fn parse(text: &str, format: Format, year: Option<i32>) -> Result<Self, Vec<Problem>> {
        let raw = match format {
            Format::Toml => read_toml(text),
            Format::Json => read_json(text),
        }
        .map_err(|problem| vec![problem])?;
        validate(raw, year)
    }
}

impl<'de> Deserialize<'de> for Standard {
    /// Deserializes and validates; the error lists every problem.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawStandard::deserialize(deserializer)?;
        validate(raw, None).map_err(|problems| serde::de::Error::custom(InvalidStandard(problems)))
    }
}

fn path_of(path: &serde_path_to_error::Path) -> String {
    let path = path.to_string();
    if path == "." { String::new() } else { path }
}

fn read_toml(text: &str) -> Result<RawStandard, Problem> {
    let located = |error: &toml::de::Error| match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
            format!("{} at line {line}, column {column}", error.message())
        }
        None => error.message().to_owned(),
    };
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|e| Problem::new("", codes::MALFORMED, located(&e)))?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| Problem::new(path_of(e.path()), codes::MALFORMED, located(e.inner())))
}

fn read_json(text: &str) -> Result<RawStandard, Problem> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw: RawStandard = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| Problem::new(path_of(e.path()), codes::MALFORMED, e.inner().to_string()))?;
    deserializer
        .end()
        .map_err(|e| Problem::new("", codes::MALFORMED, e.to_string()))?;
    Ok(raw)
}

/// Collects problems while a raw document is turned into a [`Standard`].
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, path: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.problems.push(Problem::new(path, code, message));
    }

    fn non_empty(&mut self, path: String, value: &str) {
        if value.trim().is_empty() {
            self.push(path, codes::EMPTY, "must not be empty");
        }
    }

    /// `value` within `low..=high` (in whole points), else `code`.
    fn points_within(
        &mut self,
        path: impl Into<String>,
        code: &'static str,
        value: DeciPoints,
        low: i32,
        high: i32,
    ) {
        if value.tenths() < low * 10 || value.tenths() > high * 10 {
            self.push(path, code, format!("{value} is outside {low}–{high}"));
        }
    }

    /// An integer setting within `low..=high`, as `u32`.
    fn int_within(
        &mut self,
        path: &str,
        code: &'static str,
        value: i64,
        low: u32,
        high: u32,
    ) -> u32 {
        match u32::try_from(value) {
            Ok(v) if (low..=high).contains(&v) => v,
            _ => {
                self.push(path, code, format!("{value} is outside {low}–{high}"));
                0
            }
        }
    }

    fn fraction(&mut self, path: &str, raw: RawFraction) -> Fraction {
        let (numerator, denominator) = (raw.numerator, raw.denominator);
        if denominator == 0 {
            self.push(
                path,
                codes::ZERO_DENOMINATOR,
                "the denominator must not be 0",
            );
        }
        match (u32::try_from(numerator), u32::try_from(denominator)) {
            (Ok(numerator), Ok(denominator)) if numerator <= denominator => Fraction {
                numerator,
                denominator,
            },
            _ => {
                if denominator != 0 {
                    self.push(
                        path,
                        codes::FRACTION_OUT_OF_RANGE,
                        format!("{numerator}/{denominator} is not a share between 0 and 1"),
                    );
                }
                Fraction {
                    numerator: 0,
                    denominator: 1,
                }
            }
        }
    }

    fn evaluation(&mut self, raw: crate::raw::RawEvaluation) -> Evaluation {
        self.points_within(
            "evaluation.weight",
            codes::WEIGHT_OUT_OF_RANGE,
            raw.weight,
            0,
            100,
        );
        let min_ballots = match u32::try_from(raw.min_ballots) {
            Ok(n) if n >= 1 => n,
            _ => {
                self.push(
                    "evaluation.min_ballots",
                    codes::MIN_BALLOTS_OUT_OF_RANGE,
                    format!("{} is below 1", raw.min_ballots),
                );
                1
            }
        };
        let scores = raw.rating_scores;
        let named = [
            ("excellent", scores.excellent),
            ("good", scores.good),
            ("fair", scores.fair),
            ("poor", scores.poor),
        ];
        for (name, score) in named {
            self.points_within(
                format!("evaluation.rating_scores.{name}"),
                codes::SCORE_OUT_OF_RANGE,
                score,
                0,
                100,
            );
        }
        if named.windows(2).any(|w| w[0].1 < w[1].1) {
            self.push(
                "evaluation.rating_scores",
                codes::SCORES_OUT_OF_ORDER,
                "scores must not increase from excellent to good, fair and poor",
            );
        }
        let poor_share_blocks_excellent = self.fraction(
            "evaluation.poor_share_blocks_excellent",
            raw.poor_share_blocks_excellent,
        );
        Evaluation {
            weight: raw.weight,
            min_ballots,
            rating_scores: scores,
            poor_share_blocks_excellent,
        }
    }

    fn grading(&mut self, raw: crate::raw::RawGrading) -> Grading {
        let bands = raw.bands;
        for (name, band) in [
            ("excellent", bands.excellent),
            ("qualified", bands.qualified),
            ("basically_qualified", bands.basically_qualified),
        ] {
            self.points_within(
                format!("grading.bands.{name}"),
                codes::BAND_OUT_OF_RANGE,
                band,
                0,
                100,
            );
        }
        if !(bands.excellent > bands.qualified && bands.qualified > bands.basically_qualified) {
            self.push(
                "grading.bands",
                codes::BANDS_OUT_OF_ORDER,
                format!(
                    "bands must satisfy excellent > qualified > basically_qualified, got {} / {} / {}",
                    bands.excellent, bands.qualified, bands.basically_qualified
                ),
            );
        }
        let excellent_share_cap = raw
            .excellent_share_cap
            .map(|f| self.fraction("grading.excellent_share_cap", f));
        let publication_days = self.int_within(
            "grading.publication_days",
            codes::PUBLICATION_DAYS_OUT_OF_RANGE,
            raw.publication_days,
            0,
            366,
        );
        Grading {
            bands,
            excellent_share_cap,
            publication_days,
        }
    }

    fn categories(&mut self, raw: Vec<RawCategory>) -> Vec<Option<Category>> {
        if raw.is_empty() {
            self.push("categories", codes::EMPTY, "a standard needs categories");
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, category) in raw.into_iter().enumerate() {
            let path = format!("categories[{i}]");
            self.non_empty(format!("{path}.code"), &category.code);
            self.non_empty(format!("{path}.name"), &category.name);
            if !seen.insert(category.code.clone()) {
                self.push(
                    format!("{path}.code"),
                    codes::DUPLICATE_CATEGORY,
                    format!("category {} is defined twice", category.code),
                );
            }
            let kind = match category.kind.parse::<ItemKind>() {
                Ok(kind) => Some(kind),
                Err(e) => {
                    self.push(format!("{path}.kind"), codes::UNKNOWN_KIND, e.to_string());
                    None
                }
            };
            match (kind, category.cap) {
                (Some(ItemKind::Base), None) => self.push(
                    format!("{path}.cap"),
                    codes::MISSING_CAP,
                    format!("base category {} needs a cap", category.code),
                ),
                (Some(ItemKind::Base), Some(cap)) if !cap.is_positive() => self.push(
                    format!("{path}.cap"),
                    codes::CAP_NOT_POSITIVE,
                    format!("cap {cap} must be above 0"),
                ),
                (Some(kind), Some(_)) if kind != ItemKind::Base => self.push(
                    format!("{path}.cap"),
                    codes::CAP_NOT_ALLOWED,
                    format!("{kind} category {} has no cap", category.code),
                ),
                _ => {}
            }
            out.push(kind.map(|kind| Category {
                code: category.code,
                name: category.name,
                kind,
                cap: category.cap,
            }));
        }
        out
    }

    /// Validates a list of items (共性 or one overlay's) under `prefix` (`items`,
    /// `overlays.rural.items`).
    fn items(
        &mut self,
        prefix: &str,
        raw: Vec<RawItem>,
        categories: &HashMap<String, Option<ItemKind>>,
    ) -> Vec<Item> {
        let mut first_index: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, item) in raw.into_iter().enumerate() {
            let path = format!("{prefix}[{i}]");
            if let Some(first) = first_index.get(&item.code) {
                self.push(
                    format!("{path}.code"),
                    codes::DUPLICATE_CODE,
                    format!(
                        "item code {} is already used by {prefix}[{first}]",
                        item.code
                    ),
                );
            } else {
                first_index.insert(item.code.clone(), i);
            }
            if let Some(item) = self.item(&path, item, categories) {
                out.push(item);
            }
        }
        out
    }

    fn item(
        &mut self,
        path: &str,
        raw: RawItem,
        categories: &HashMap<String, Option<ItemKind>>,
    ) -> Option<Item> {
        let before = self.problems.len();
        self.non_empty(format!("{path}.code"), &raw.code);
        self.non_empty(format!("{path}.name"), &raw.name);
        self.non_empty(format!("{path}.unit"), &raw.unit);
        let kind = raw
            .kind
            .parse::<ItemKind>()
            .map_err(|e| self.push(format!("{path}.kind"), codes::UNKNOWN_KIND, e.to_string()))
            .ok();
        match categories.get(&raw.category) {
            None => self.push(
                format!("{path}.category"),
                codes::UNKNOWN_CATEGORY,
                format!(
                    "item {} names unknown category {:?}",
                    raw.code, raw.category
                ),
            ),
            Some(Some(category_kind)) => {
                if let Some(kind) = kind.filter(|kind| kind != category_kind) {
                    self.push(
                        format!("{path}.kind"),
                        codes::KIND_MISMATCH,
                        format!(
                            "item {} is {kind} but category {} is {category_kind}",
                            raw.code, raw.category
                        ),
                    );
                }
            }
            // The category's own kind is already reported.
            Some(None) => {}
        }
        let declared_by = raw
            .declared_by
            .parse::<DeclaredBy>()
            .map_err(|e| {
                self.push(
                    format!("{path}.declared_by"),
                    codes::UNKNOWN_DECLARED_BY,
                    e.to_string(),
                );
            })
            .ok();
        let grade_cap = match raw.grade_cap.as_deref().map(str::parse::<Grade>) {
            None => None,
            Some(Ok(grade)) => Some(grade),
            Some(Err(e)) => {
                self.push(
                    format!("{path}.grade_cap"),
                    codes::UNKNOWN_GRADE,
                    e.to_string(),
                );
                None
            }
        };
        let points = self.item_points(path, &raw, kind);
        if matches!(kind, Some(ItemKind::Deduction | ItemKind::Veto))
            && declared_by == Some(DeclaredBy::Member)
        {
            self.push(
                format!("{path}.declared_by"),
                codes::PENALTY_DECLARED_BY_MEMBER,
                format!(
                    "{} item {} must be recorded by the branch",
                    raw.kind, raw.code
                ),
            );
        }
        self.item_caps(path, &raw, kind, points);
        match (kind, declared_by) {
            (Some(kind), Some(declared_by)) if self.problems.len() == before => Some(Item {
                code: raw.code,
                category: raw.category,
                name: raw.name,
                name_en: raw.name_en,
                kind,
                points,
                unit: raw.unit,
                monthly_cap: raw.monthly_cap,
                yearly_cap: raw.yearly_cap,
                evidence_required: raw.evidence_required,
                declared_by,
                grade_cap,
            }),
            _ => None,
        }
    }

    fn item_points(&mut self, path: &str, raw: &RawItem, kind: Option<ItemKind>) -> DeciPoints {
        let points_path = format!("{path}.points");
        match (kind, raw.points) {
            (Some(ItemKind::Veto), Some(points)) if !points.is_zero() => {
                self.push(
                    points_path,
                    codes::VETO_WITH_POINTS,
                    format!("veto item {} carries no points, got {points}", raw.code),
                );
            }
            (Some(ItemKind::Veto), _) | (None, _) => {}
            (Some(kind), None) => self.push(
                points_path,
                codes::MISSING_POINTS,
                format!("{kind} item {} needs points", raw.code),
            ),
            (Some(ItemKind::Deduction), Some(points)) if !points.is_negative() => self.push(
                points_path,
                codes::POINTS_SIGN,
                format!(
                    "deduction item {} needs negative points, got {points}",
                    raw.code
                ),
            ),
            (Some(kind @ (ItemKind::Base | ItemKind::Bonus)), Some(points))
                if !points.is_positive() =>
            {
                self.push(
                    points_path,
                    codes::POINTS_SIGN,
                    format!(
                        "{kind} item {} needs positive points, got {points}",
                        raw.code
                    ),
                );
            }
            (Some(_), Some(_)) => {}
        }
        raw.points.unwrap_or(DeciPoints::ZERO)
    }

    fn item_caps(&mut self, path: &str, raw: &RawItem, kind: Option<ItemKind>, points: DeciPoints) {
        let caps = [
            ("monthly_cap", raw.monthly_cap),
            ("yearly_cap", raw.yearly_cap),
        ];
        if kind == Some(ItemKind::Veto) {
            for (name, cap) in caps {
                if cap.is_some() {
                    self.push(
                        format!("{path}.{name}"),
                        codes::CAP_NOT_ALLOWED,
                        format!("veto item {} has no caps", raw.code),
                    );
                }
            }
            return;
        }
        let one = points.abs();
        for (name, cap) in caps {
            if let Some(cap) = cap.filter(|cap| *cap < one || !cap.is_positive()) {
                self.push(
                    format!("{path}.{name}"),
                    codes::CAP_BELOW_ONE_OCCURRENCE,
                    format!(
                        "{name} {cap} of item {} is below one occurrence ({one} points)",
                        raw.code
                    ),
                );
            }
        }
        if let (Some(monthly), Some(yearly)) = (raw.monthly_cap, raw.yearly_cap)
            && yearly < monthly
        {
            self.push(
                format!("{path}.yearly_cap"),
                codes::YEARLY_BELOW_MONTHLY,
                format!(
                    "yearly_cap {yearly} of item {} is below its monthly_cap {monthly}",
                    raw.code
                ),
            );
        }
    }

    fn lapse(
        &mut self,
        raw: crate::raw::RawLapse,
        categories: &HashMap<String, Option<ItemKind>>,
        item_codes: &HashSet<String>,
    ) -> Lapse {
        let months = self.int_within(
            "lapse.months",
            codes::LAPSE_MONTHS_OUT_OF_RANGE,
            raw.months,
            1,
            12,
        );
        let mut watch = Vec::with_capacity(raw.watch.len());
        for (i, entry) in raw.watch.iter().enumerate() {
            let path = format!("lapse.watch[{i}]");
            match WatchTarget::parse(entry) {
                Some(WatchTarget::Category(code)) if !categories.contains_key(&code) => self.push(
                    path,
                    codes::UNKNOWN_WATCH_TARGET,
                    format!("{entry:?} names an unknown category"),
                ),
                Some(WatchTarget::Item(code)) if !item_codes.contains(&code) => self.push(
                    path,
                    codes::UNKNOWN_WATCH_TARGET,
                    format!("{entry:?} names an unknown item"),
                ),
                Some(target) => watch.push(target),
                None => self.push(
                    path,
                    codes::UNKNOWN_WATCH_TARGET,
                    format!("{entry:?} is neither \"category:<code>\" nor \"item:<code>\""),
                ),
            }
        }
        Lapse { months, watch }
    }
}

/// Checks a raw document against every rule; all problems or the standard.
fn validate(raw: RawStandard, expected_year: Option<i32>) -> Result<Standard, Vec<Problem>> {
    let mut check = Checker::default();

    let year = match i32::try_from(raw.year) {
        Ok(year) if (2000..=2999).contains(&year) => year,
        _ => {
            check.push(
                "year",
                codes::YEAR_OUT_OF_RANGE,
                format!("{} is outside 2000–2999", raw.year),
            );
            0
        }
    };
    if let Some(expected) = expected_year.filter(|expected| i64::from(*expected) != raw.year) {
        check.push(
            "year",
            codes::YEAR_MISMATCH,
            format!("the document is for {}, expected {expected}", raw.year),
        );
    }
    check.points_within("base_cap", codes::CAP_OUT_OF_RANGE, raw.base_cap, 1, 100);
    check.points_within("bonus_cap", codes::CAP_OUT_OF_RANGE, raw.bonus_cap, 0, 100);
    let deadline_day = check.int_within(
        "deadline_day",
        codes::DEADLINE_DAY_OUT_OF_RANGE,
        raw.deadline_day,
        1,
        28,
    );
    let evaluation = check.evaluation(raw.evaluation);
    let grading = check.grading(raw.grading);

    let raw_category_kinds: Vec<(String, Option<ItemKind>)> = raw
        .categories
        .iter()
        .map(|c| (c.code.clone(), c.kind.parse::<ItemKind>().ok()))
        .collect();
    let category_kinds: HashMap<String, Option<ItemKind>> =
        raw_category_kinds.into_iter().collect();
    let categories = check.categories(raw.categories);

    if raw.items.is_empty() {
        check.push("items", codes::EMPTY, "a standard needs items");
    }
    let mut item_codes: HashSet<String> = raw.items.iter().map(|i| i.code.clone()).collect();
    let items = check.items("items", raw.items, &category_kinds);

    let mut overlays = std::collections::BTreeMap::new();
    for (unit_type, overlay) in raw.overlays {
        if !UNIT_TYPES.contains(&unit_type.as_str()) {
            check.push(
                format!("overlays.{unit_type}"),
                codes::UNKNOWN_UNIT_TYPE,
                format!(
                    "{unit_type:?} is not a unit type; expected one of {}",
                    UNIT_TYPES.join(", ")
                ),
            );
        }
        item_codes.extend(overlay.items.iter().map(|i| i.code.clone()));
        let prefix = format!("overlays.{unit_type}.items");
        let items = check.items(&prefix, overlay.items, &category_kinds);
        overlays.insert(unit_type, Overlay { items });
    }

    let lapse = raw
        .lapse
        .map(|lapse| check.lapse(lapse, &category_kinds, &item_codes));

    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    Ok(Standard {
        year,
        base_cap: raw.base_cap,
        bonus_cap: raw.bonus_cap,
        deadline_day,
        evaluation,
        grading,
        lapse,
        // Without problems every category converted.
        categories: categories.into_iter().flatten().collect(),
        items,
        overlays,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;
    use crate::test_support::minimal_toml;

    fn minimal_json() -> Value {
        toml::from_str(&minimal_toml()).unwrap()
    }

    /// The (path, code) of every problem of the minimal document after `edit`.
    fn problems_after(edit: fn(&mut Value)) -> Vec<(String, &'static str)> {
        let mut doc = minimal_json();
        edit(&mut doc);
        match Standard::parse_json(&doc.to_string()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| (p.path, p.code)).collect(),
        }
    }

    fn push_category(doc: &mut Value, code: &str, kind: &str) {
        let category = json!({"code": code, "name": "名称", "kind": kind});
        doc["categories"].as_array_mut().unwrap().push(category);
    }

    fn push_item(doc: &mut Value, item: Value) {
        let mut base = json!({
            "code": "Z01", "category": "B", "name": "名称", "kind": "bonus", "points": 1,
            "unit": "次", "evidence_required": false, "declared_by": "branch"
        });
        for (key, value) in item.as_object().unwrap() {
            base[key] = value.clone();
        }
        doc["items"].as_array_mut().unwrap().push(base);
    }

    fn rural_overlay(doc: &mut Value, items: Value) {
        doc["overlays"] = json!({ "rural": { "items": items } });
    }

    fn overlay_item(code: &str) -> Value {
        json!({
            "code": code, "category": "A", "name": "个性", "kind": "base", "points": 1,
            "unit": "月", "monthly_cap": 1, "yearly_cap": 12, "evidence_required": false,
            "declared_by": "member"
        })
    }

    #[test]
    fn the_minimal_document_parses_from_toml_and_json() {
        let from_toml = Standard::parse_toml(&minimal_toml()).unwrap();
        let from_json = Standard::parse_json(&minimal_json().to_string()).unwrap();
        assert_eq!(from_toml, from_json);
        assert_eq!(from_toml.items().len(), 3);
        assert_eq!(from_toml.items()[1].points, DeciPoints::from_tenths(5));
        assert!(from_toml.lapse().is_none());
        assert!(from_toml.overlays().is_empty());
    }

    #[test]
    fn every_rule_has_a_failing_case() {
        type Case = (
            &'static str,
            fn(&mut Value),
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            (
                "duplicate item code",
                |d| d["items"][1]["code"] = json!("A02"),
                &[("items[1].code", codes::DUPLICATE_CODE)],
            ),
            (
                "duplicate code within an overlay",
                |d| rural_overlay(d, json!([overlay_item("A09"), overlay_item("A09")])),
                &[("overlays.rural.items[1].code", codes::DUPLICATE_CODE)],
            ),
            (
                "unknown category",
                |d| d["items"][0]["category"] = json!("Z"),
                &[("items[0].category", codes::UNKNOWN_CATEGORY)],
            ),
            (
                "unknown category in an overlay",
                |d| {
                    let mut item = overlay_item("A09");
                    item["category"] = json!("Z");
                    rural_overlay(d, json!([item]));
                },
                &[("overlays.rural.items[0].category", codes::UNKNOWN_CATEGORY)],
            ),
            (
                "item kind differs from its category's",
                |d| d["items"][2]["kind"] = json!("base"),
                &[("items[2].kind", codes::KIND_MISMATCH)],
            ),
            (
                "unknown item kind",
                |d| d["items"][2]["kind"] = json!("extra"),
                &[("items[2].kind", codes::UNKNOWN_KIND)],
            ),
            (
                "monthly cap below one occurrence",
                |d| d["items"][0]["monthly_cap"] = json!(0.5),
                &[("items[0].monthly_cap", codes::CAP_BELOW_ONE_OCCURRENCE)],
            ),
            (
                "yearly cap below one occurrence",
                |d| d["items"][1]["yearly_cap"] = json!(0.2),
                &[("items[1].yearly_cap", codes::CAP_BELOW_ONE_OCCURRENCE)],
            ),
            (
                "yearly cap below monthly cap",
                |d| {
                    d["items"][0]["monthly_cap"] = json!(4);
                    d["items"][0]["yearly_cap"] = json!(2);
                },
                &[("items[0].yearly_cap", codes::YEARLY_BELOW_MONTHLY)],
            ),
            (
                "veto item with points",
                |d| {
                    push_category(d, "V", "veto");
                    push_item(
                        d,
                        json!({"code": "V01", "category": "V", "kind": "veto", "points": 1}),
                    );
                },
                &[("items[3].points", codes::VETO_WITH_POINTS)],
            ),
            (
                "veto item with caps",
                |d| {
                    push_category(d, "V", "veto");
                    push_item(
                        d,
                        json!({"code": "V01", "category": "V", "kind": "veto", "points": 0, "yearly_cap": 1}),
                    );
                },
                &[("items[3].yearly_cap", codes::CAP_NOT_ALLOWED)],
            ),
            (
                "deduction with positive points",
                |d| {
                    push_category(d, "X", "deduction");
                    push_item(
                        d,
                        json!({"code": "X01", "category": "X", "kind": "deduction", "points": 1}),
                    );
                },
                &[("items[3].points", codes::POINTS_SIGN)],
            ),
            (
                "deduction declared by the member",
                |d| {
                    push_category(d, "X", "deduction");
                    push_item(
                        d,
                        json!({"code": "X01", "category": "X", "kind": "deduction", "points": -1, "declared_by": "member"}),
                    );
                },
                &[("items[3].declared_by", codes::PENALTY_DECLARED_BY_MEMBER)],
            ),
            (
                "base item with zero points",
                |d| d["items"][0]["points"] = json!(0),
                &[("items[0].points", codes::POINTS_SIGN)],
            ),
            (
                "bonus item with negative points",
                |d| d["items"][2]["points"] = json!(-2),
                &[("items[2].points", codes::POINTS_SIGN)],
            ),
            (
                "base item without points",
                |d| {
                    d["items"][0].as_object_mut().unwrap().remove("points");
                },
                &[("items[0].points", codes::MISSING_POINTS)],
            ),
            (
                "unknown declared_by",
                |d| d["items"][0]["declared_by"] = json!("secretary"),
                &[("items[0].declared_by", codes::UNKNOWN_DECLARED_BY)],
            ),
            (
                "grade_cap not a grade",
                |d| d["items"][2]["grade_cap"] = json!("superb"),
                &[("items[2].grade_cap", codes::UNKNOWN_GRADE)],
            ),
            (
                "empty item name",
                |d| d["items"][0]["name"] = json!(" "),
                &[("items[0].name", codes::EMPTY)],
            ),
            (
                "no items",
                |d| d["items"] = json!([]),
                &[("items", codes::EMPTY)],
            ),
            (
                "bands out of order",
                |d| d["grading"]["bands"]["qualified"] = json!(95),
                &[("grading.bands", codes::BANDS_OUT_OF_ORDER)],
            ),
            (
                "equal bands",
                |d| d["grading"]["bands"]["basically_qualified"] = json!(70),
                &[("grading.bands", codes::BANDS_OUT_OF_ORDER)],
            ),
            (
                "band above 100",
                |d| d["grading"]["bands"]["excellent"] = json!(100.5),
                &[("grading.bands.excellent", codes::BAND_OUT_OF_RANGE)],
            ),
            (
                "base category without cap",
                |d| {
                    d["categories"][1].as_object_mut().unwrap().remove("cap");
                },
                &[("categories[1].cap", codes::MISSING_CAP)],
            ),
            (
                "base category with a zero cap",
                |d| d["categories"][1]["cap"] = json!(0),
                &[("categories[1].cap", codes::CAP_NOT_POSITIVE)],
            ),
            (
                "cap on a bonus category",
                |d| d["categories"][0]["cap"] = json!(5),
                &[("categories[0].cap", codes::CAP_NOT_ALLOWED)],
            ),
            (
                "duplicate category",
                |d| push_category(d, "B", "bonus"),
                &[("categories[2].code", codes::DUPLICATE_CATEGORY)],
            ),
            (
                "unknown category kind",
                |d| push_category(d, "Q", "bonsu"),
                &[("categories[2].kind", codes::UNKNOWN_KIND)],
            ),
            (
                "fraction with denominator 0",
                |d| d["evaluation"]["poor_share_blocks_excellent"]["denominator"] = json!(0),
                &[(
                    "evaluation.poor_share_blocks_excellent",
                    codes::ZERO_DENOMINATOR,
                )],
            ),
            (
                "fraction above 1",
                |d| d["grading"]["excellent_share_cap"] = json!({"numerator": 4, "denominator": 3}),
                &[("grading.excellent_share_cap", codes::FRACTION_OUT_OF_RANGE)],
            ),
            (
                "negative fraction",
                |d| d["grading"]["excellent_share_cap"]["numerator"] = json!(-1),
                &[("grading.excellent_share_cap", codes::FRACTION_OUT_OF_RANGE)],
            ),
            (
                "deadline day 0",
                |d| d["deadline_day"] = json!(0),
                &[("deadline_day", codes::DEADLINE_DAY_OUT_OF_RANGE)],
            ),
            (
                "deadline day 29",
                |d| d["deadline_day"] = json!(29),
                &[("deadline_day", codes::DEADLINE_DAY_OUT_OF_RANGE)],
            ),
            (
                "min ballots 0",
                |d| d["evaluation"]["min_ballots"] = json!(0),
                &[("evaluation.min_ballots", codes::MIN_BALLOTS_OUT_OF_RANGE)],
            ),
            (
                "rating score above 100",
                |d| d["evaluation"]["rating_scores"]["excellent"] = json!(101),
                &[(
                    "evaluation.rating_scores.excellent",
                    codes::SCORE_OUT_OF_RANGE,
                )],
            ),
            (
                "rating score below 0",
                |d| d["evaluation"]["rating_scores"]["poor"] = json!(-1),
                &[("evaluation.rating_scores.poor", codes::SCORE_OUT_OF_RANGE)],
            ),
            (
                "rating scores out of order",
                |d| d["evaluation"]["rating_scores"]["fair"] = json!(90),
                &[("evaluation.rating_scores", codes::SCORES_OUT_OF_ORDER)],
            ),
            (
                "weight above 100",
                |d| d["evaluation"]["weight"] = json!(120),
                &[("evaluation.weight", codes::WEIGHT_OUT_OF_RANGE)],
            ),
            (
                "base cap 0",
                |d| d["base_cap"] = json!(0),
                &[("base_cap", codes::CAP_OUT_OF_RANGE)],
            ),
            (
                "year implausible",
                |d| d["year"] = json!(26),
                &[("year", codes::YEAR_OUT_OF_RANGE)],
            ),
            (
                "publication days negative",
                |d| d["grading"]["publication_days"] = json!(-1),
                &[(
                    "grading.publication_days",
                    codes::PUBLICATION_DAYS_OUT_OF_RANGE,
                )],
            ),
            (
                "overlay key not a unit type",
                |d| d["overlays"] = json!({"factory": {"items": [overlay_item("A09")]}}),
                &[("overlays.factory", codes::UNKNOWN_UNIT_TYPE)],
            ),
            (
                "lapse watching an unknown category",
                |d| d["lapse"] = json!({"months": 6, "watch": ["category:Q"]}),
                &[("lapse.watch[0]", codes::UNKNOWN_WATCH_TARGET)],
            ),
            (
                "lapse watching an unknown item",
                |d| d["lapse"] = json!({"months": 6, "watch": ["category:A", "item:Z99"]}),
                &[("lapse.watch[1]", codes::UNKNOWN_WATCH_TARGET)],
            ),
            (
                "lapse watch entry without a prefix",
                |d| d["lapse"] = json!({"months": 6, "watch": ["A01"]}),
                &[("lapse.watch[0]", codes::UNKNOWN_WATCH_TARGET)],
            ),
            (
                "lapse months 0",
                |d| d["lapse"] = json!({"months": 0, "watch": []}),
                &[("lapse.months", codes::LAPSE_MONTHS_OUT_OF_RANGE)],
            ),
        ];
        for (name, edit, expected) in cases {
            let got = problems_after(*edit);
            let expected: Vec<(String, &str)> = expected
                .iter()
                .map(|(path, code)| ((*path).to_owned(), *code))
                .collect();
            assert_eq!(got, expected, "case {name:?}");
        }
    }

    #[test]
    fn lapse_may_watch_an_overlay_only_item() {
        let got = problems_after(|d| {
            rural_overlay(d, json!([overlay_item("A09")]));
            d["lapse"] = json!({"months": 6, "watch": ["item:A09", "category:B"]});
        });
        assert_eq!(got, []);
    }

    #[test]
    fn one_bad_document_reports_every_problem_with_its_path() {
        let mut doc = minimal_json();
        doc["year"] = json!(2025);
        doc["deadline_day"] = json!(31);
        doc["evaluation"]["min_ballots"] = json!(0);
        doc["evaluation"]["rating_scores"]["poor"] = json!(120);
        doc["evaluation"]["poor_share_blocks_excellent"]["denominator"] = json!(0);
        doc["grading"]["bands"] =
            json!({"excellent": 60, "qualified": 70, "basically_qualified": 90});
        doc["grading"]["excellent_share_cap"] = json!({"numerator": 4, "denominator": 3});
        doc["categories"][0]["cap"] = json!(5);
        doc["categories"][1].as_object_mut().unwrap().remove("cap");
        doc["items"][0]["monthly_cap"] = json!(0.5);
        doc["items"][0]["yearly_cap"] = json!(0.2);
        doc["items"][1]["code"] = json!("A02");
        doc["items"][1]["category"] = json!("Q");
        doc["items"][2]["kind"] = json!("base");
        doc["items"][2]["grade_cap"] = json!("superb");
        push_category(&mut doc, "V", "veto");
        push_item(
            &mut doc,
            json!({"code": "V01", "category": "V", "kind": "veto", "points": 3}),
        );
        push_category(&mut doc, "X", "deduction");
        push_item(
            &mut doc,
            json!({"code": "X01", "category": "X", "kind": "deduction", "points": 2, "declared_by": "nobody"}),
        );
        let mut bad_overlay_item = overlay_item("A09");
        bad_overlay_item["category"] = json!("Z");
        doc["overlays"] = json!({
            "rural": {"items": [bad_overlay_item]},
            "factory": {"items": []},
        });
        doc["lapse"] = json!({"months": 13, "watch": ["category:O", "item:D01", "item:A01"]});

        let problems = Standard::parse_for_year(&doc.to_string(), Format::Json, 2026).unwrap_err();
        let expected = [
            ("year", codes::YEAR_MISMATCH),
            ("deadline_day", codes::DEADLINE_DAY_OUT_OF_RANGE),
            ("evaluation.min_ballots", codes::MIN_BALLOTS_OUT_OF_RANGE),
            ("evaluation.rating_scores.poor", codes::SCORE_OUT_OF_RANGE),
            ("evaluation.rating_scores", codes::SCORES_OUT_OF_ORDER),
            (
                "evaluation.poor_share_blocks_excellent",
                codes::ZERO_DENOMINATOR,
            ),
            ("grading.bands", codes::BANDS_OUT_OF_ORDER),
            ("grading.excellent_share_cap", codes::FRACTION_OUT_OF_RANGE),
            ("categories[0].cap", codes::CAP_NOT_ALLOWED),
            ("categories[1].cap", codes::MISSING_CAP),
            ("items[0].monthly_cap", codes::CAP_BELOW_ONE_OCCURRENCE),
            ("items[0].yearly_cap", codes::CAP_BELOW_ONE_OCCURRENCE),
            ("items[0].yearly_cap", codes::YEARLY_BELOW_MONTHLY),
            ("items[1].code", codes::DUPLICATE_CODE),
            ("items[1].category", codes::UNKNOWN_CATEGORY),
            ("items[2].kind", codes::KIND_MISMATCH),
            ("items[2].grade_cap", codes::UNKNOWN_GRADE),
            ("items[3].points", codes::VETO_WITH_POINTS),
            ("items[4].points", codes::POINTS_SIGN),
            ("items[4].declared_by", codes::UNKNOWN_DECLARED_BY),
            ("overlays.factory", codes::UNKNOWN_UNIT_TYPE),
            ("overlays.rural.items[0].category", codes::UNKNOWN_CATEGORY),
            ("lapse.months", codes::LAPSE_MONTHS_OUT_OF_RANGE),
            ("lapse.watch[0]", codes::UNKNOWN_WATCH_TARGET),
            ("lapse.watch[1]", codes::UNKNOWN_WATCH_TARGET),
            // A01 was renamed to A02 above, so it is unknown too.
            ("lapse.watch[2]", codes::UNKNOWN_WATCH_TARGET),
        ];
        for (path, code) in expected {
            assert!(
                problems.iter().any(|p| p.path == path && p.code == code),
                "missing {path} {code} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        assert!(problems.iter().all(|p| !p.message.is_empty()));
    }

    #[test]
    fn the_year_must_match_when_expected() {
        let text = minimal_toml();
        assert!(Standard::parse_for_year(&text, Format::Toml, 2026).is_ok());
        let problems = Standard::parse_for_year(&text, Format::Toml, 2027).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            (problems[0].path.as_str(), problems[0].code),
            ("year", codes::YEAR_MISMATCH)
        );
        assert!(
            problems[0].message.contains("2027"),
            "{}",
            problems[0].message
        );
    }

    fn single(result: Result<Standard, Vec<Problem>>) -> Problem {
        let mut problems = result.unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        problems.remove(0)
    }

    #[test]
    fn a_malformed_document_is_one_problem_naming_the_path() {
        let toml_syntax = single(Standard::parse_toml("year = = 2026"));
        assert_eq!(
            (toml_syntax.path.as_str(), toml_syntax.code),
            ("", codes::MALFORMED)
        );
        assert!(
            toml_syntax.message.contains("line 1"),
            "{}",
            toml_syntax.message
        );

        let wrong_type = minimal_toml().replacen("points = 1\n", "points = \"one\"\n", 1);
        let problem = single(Standard::parse_toml(&wrong_type));
        assert_eq!(
            (problem.path.as_str(), problem.code),
            ("items[0].points", codes::MALFORMED)
        );

        let too_precise = minimal_toml().replacen("points = 0.5", "points = 0.25", 1);
        let problem = single(Standard::parse_toml(&too_precise));
        assert_eq!(problem.path, "items[1].points");
        assert!(
            problem.message.contains("more than one decimal"),
            "{}",
            problem.message
        );

        let typo = minimal_toml().replacen("monthly_cap = 1", "monthy_cap = 1", 1);
        let problem = single(Standard::parse_toml(&typo));
        assert_eq!(problem.code, codes::MALFORMED);
        assert_eq!(problem.path, "items[0].monthy_cap");
        assert!(
            problem.message.contains("monthy_cap"),
            "{}",
            problem.message
        );

        let missing = minimal_toml().replacen("deadline_day = 5\n", "", 1);
        let problem = single(Standard::parse_toml(&missing));
        assert!(
            problem.message.contains("deadline_day"),
            "{}",
            problem.message
        );

        let mut doc = minimal_json();
        doc["evaluation"]["rating_scores"]["superb"] = json!(100);
        let problem = single(Standard::parse_json(&doc.to_string()));
        assert!(
            problem.path.starts_with("evaluation.rating_scores"),
            "{problem:?}"
        );

        let mut doc = minimal_json();
        doc["items"][2]["evidence_required"] = json!("yes");
        let problem = single(Standard::parse_json(&doc.to_string()));
        assert_eq!(problem.path, "items[2].evidence_required");

        let problem = single(Standard::parse_json("{\"year\": 2026,"));
        assert_eq!(problem.code, codes::MALFORMED);
        let problem = single(Standard::parse_json(&format!("{} []", minimal_json())));
        assert_eq!(
            (problem.path.as_str(), problem.code),
            ("", codes::MALFORMED)
        );
        let problem = single(Standard::parse_json("[]"));
        assert_eq!(problem.code, codes::MALFORMED);
    }

    #[test]
    fn deserializing_a_standard_validates_it() {
        let ok: Standard = serde_json::from_value(minimal_json()).unwrap();
        assert_eq!(ok.year(), 2026);
        let mut doc = minimal_json();
        doc["deadline_day"] = json!(30);
        doc["items"][0]["category"] = json!("Z");
        let err = serde_json::from_value::<Standard>(doc)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("deadline_day") && err.contains("items[0].category"),
            "{err}"
        );
    }

    #[test]
    fn problems_display_and_serialize_for_the_api() {
        let problem = Problem::new(
            "items[3].monthly_cap",
            codes::CAP_BELOW_ONE_OCCURRENCE,
            "too low",
        );
        assert_eq!(
            problem.to_string(),
            "items[3].monthly_cap: too low (cap_below_one_occurrence)"
        );
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            json!({"path": "items[3].monthly_cap", "code": "cap_below_one_occurrence", "message": "too low"})
        );
        assert_eq!(
            Problem::new("", codes::MALFORMED, "bad").to_string(),
            "bad (malformed)"
        );
        let all = InvalidStandard(vec![problem.clone(), problem]).to_string();
        assert!(
            all.starts_with("invalid standard: items[3]") && all.contains("; "),
            "{all}"
        );
    }
}
