//! The document as written, before validation.
//!
//! Responsibilities: the serde shape of RULES.md §1 with every key of the typed model, but with
//! enum-like values kept as strings and integers as `i64`, so that an unknown kind, an unknown
//! grade or a negative day becomes a validation problem named next to all the others instead of
//! stopping deserialization at the first one. Unknown keys are rejected here (typos are caught).
//! Nothing outside [`crate::validate`] sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{Bands, RatingScores};
use crate::points::DeciPoints;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStandard {
    pub year: i64,
    pub base_cap: DeciPoints,
    pub bonus_cap: DeciPoints,
    pub deadline_day: i64,
    pub evaluation: RawEvaluation,
    pub grading: RawGrading,
    #[serde(default)]
    pub lapse: Option<RawLapse>,
    pub categories: Vec<RawCategory>,
    pub items: Vec<RawItem>,
    #[serde(default)]
    pub overlays: BTreeMap<String, RawOverlay>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvaluation {
    pub weight: DeciPoints,
    pub min_ballots: i64,
    pub rating_scores: RatingScores,
    pub poor_share_blocks_excellent: RawFraction,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFraction {
    pub numerator: i64,
    pub denominator: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrading {
    pub bands: Bands,
    #[serde(default)]
    pub excellent_share_cap: Option<RawFraction>,
    pub publication_days: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLapse {
    pub months: i64,
    pub watch: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCategory {
    pub code: String,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub cap: Option<DeciPoints>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawItem {
    pub code: String,
    pub category: String,
    pub name: String,
    #[serde(default)]
    pub name_en: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub points: Option<DeciPoints>,
    pub unit: String,
    #[serde(default)]
    pub monthly_cap: Option<DeciPoints>,
    #[serde(default)]
    pub yearly_cap: Option<DeciPoints>,
    pub evidence_required: bool,
    pub declared_by: String,
    #[serde(default)]
    pub grade_cap: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverlay {
    pub items: Vec<RawItem>,
}
