//! `jifen-standard`: the yearly points standard (积分标准) as data.
//!
//! Responsibilities: the model of RULES.md §1 ([`Standard`] and its parts), exact point amounts
//! ([`DeciPoints`]), reading a document from TOML or JSON with validation that names every
//! problem at once ([`Standard::parse_toml`], [`Standard::parse_json`],
//! [`Standard::parse_for_year`]), the unit-type overlays ([`Standard::items_for`],
//! [`Standard::item`]), the only-adds rule for republishing ([`Standard::change_only_adds_items`])
//! and the shipped default ([`default_2026`], from `standards/2026.toml`).
//!
//! Invariants: the crate is pure — no I/O beyond parsing strings, no runtime, no database — so the
//! services that own the declaration and grading rules can test them exhaustively. A [`Standard`]
//! value is always valid (it is only built by the validating parsers); numbers are in
//! deci-points, never floats.

mod change;
mod model;
mod overlay;
mod points;
mod raw;
mod validate;

#[cfg(test)]
mod test_support;

pub use model::{
    Bands, Category, DeclaredBy, Evaluation, Fraction, Grade, Grading, Item, ItemKind, Lapse,
    Overlay, RatingScores, Standard, UNIT_TYPES, UnknownValue, WatchTarget,
};
pub use points::{DeciPoints, DeciPointsError};
pub use validate::{Format, InvalidStandard, Problem, codes};

/// The text of the shipped default standard, `standards/2026.toml`.
pub const DEFAULT_2026_TOML: &str = include_str!("../../../standards/2026.toml");

/// The shipped default standard of 2026 (RULES.md §2), parsed and validated.
///
/// The crate's tests guarantee that this is `Ok`; callers may still treat an `Err` as a start-up
/// failure rather than panicking.
pub fn default_2026() -> Result<Standard, Vec<Problem>> {
    Standard::parse_for_year(DEFAULT_2026_TOML, Format::Toml, 2026)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_default_parses() {
        let standard = default_2026().unwrap();
        assert_eq!(standard.year(), 2026);
        assert_eq!(standard.items().len(), 50);
    }
}
