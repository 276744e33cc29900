//! Unit-type overlays: the items that apply to one organization's unit type.
//!
//! Responsibilities: combine the 共性 items with the 个性 items of a unit type's overlay. An overlay
//! item replaces the 共性 item with the same code, or is added when no 共性 item has its code.
//!
//! Invariants: the result has exactly one item per code; it is ordered by the categories' order in
//! the document and by code within a category; a unit type without an overlay (or one that is not
//! a unit type at all) gets the 共性 items unchanged.

use std::collections::BTreeMap;

use crate::model::{Item, Standard};

impl Standard {
    /// The items for organizations of `unit_type` (共性 items with that overlay applied), ordered
    /// by category (document order) and then by code.
    pub fn items_for(&self, unit_type: &str) -> Vec<Item> {
        let mut by_code: BTreeMap<&str, &Item> = self
            .items
            .iter()
            .map(|item| (item.code.as_str(), item))
            .collect();
        if let Some(overlay) = self.overlays.get(unit_type) {
            for item in &overlay.items {
                by_code.insert(item.code.as_str(), item);
            }
        }
        let mut items: Vec<Item> = by_code.into_values().cloned().collect();
        // Stable sort: within a category the BTreeMap's code order is kept. Every item's category
        // exists in a valid standard; `usize::MAX` is only a total-order fallback.
        items.sort_by_key(|item| {
            self.categories
                .iter()
                .position(|c| c.code == item.category)
                .unwrap_or(usize::MAX)
        });
        items
    }

    /// The item `code` as it applies to `unit_type` (the overlay's item if it has one).
    pub fn item(&self, code: &str, unit_type: &str) -> Option<&Item> {
        self.overlays
            .get(unit_type)
            .and_then(|overlay| overlay.items.iter().find(|item| item.code == code))
            .or_else(|| self.items.iter().find(|item| item.code == code))
    }

    /// Whether the item `code` of `unit_type` comes from that unit type's overlay.
    pub fn is_overlay_item(&self, code: &str, unit_type: &str) -> bool {
        self.overlays
            .get(unit_type)
            .is_some_and(|overlay| overlay.items.iter().any(|item| item.code == code))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::model::Standard;
    use crate::test_support::minimal_toml;

    fn with_overlay() -> Standard {
        let text = format!(
            "{}{}",
            minimal_toml(),
            r#"
[[overlays.rural.items]]
code = "A02"
category = "A"
name = "Rural A02"
kind = "base"
points = 1
unit = "次"
evidence_required = false
declared_by = "member"

[[overlays.rural.items]]
code = "A00"
category = "A"
name = "Rural added"
kind = "base"
points = 1
unit = "次"
evidence_required = false
declared_by = "member"

[[overlays.rural.items]]
code = "B99"
category = "B"
name = "Rural bonus"
kind = "bonus"
points = 1
unit = "次"
evidence_required = false
declared_by = "member"
"#
        );
        Standard::parse_toml(&text).unwrap()
    }

    #[test]
    fn overlay_items_replace_by_code_and_add_in_category_then_code_order() {
        let standard = with_overlay();
        let codes: Vec<String> = standard
            .items_for("rural")
            .into_iter()
            .map(|i| i.code)
            .collect();
        // Categories in document order (B before A in the minimal document), codes within.
        assert_eq!(codes, ["B01", "B99", "A00", "A01", "A02"]);
        let a02 = standard.item("A02", "rural").unwrap();
        assert_eq!(a02.name, "Rural A02");
        assert!(standard.is_overlay_item("A02", "rural"));
        assert!(!standard.is_overlay_item("A01", "rural"));
    }

    #[test]
    fn other_unit_types_get_the_common_items() {
        let standard = with_overlay();
        for unit_type in ["community", "no_such_type", ""] {
            let codes: Vec<String> = standard
                .items_for(unit_type)
                .into_iter()
                .map(|i| i.code)
                .collect();
            assert_eq!(codes, ["B01", "A01", "A02"]);
            assert_eq!(standard.item("A02", unit_type).unwrap().name, "Common A02");
            assert!(standard.item("A00", unit_type).is_none());
        }
    }
}
