//! The only-adds rule for republishing a standard (API.md `PUT /api/v1/standards/{year}`, 409).
//!
//! Responsibilities: once a declaration of a year exists, a new document for that year may only
//! add items. [`Standard::change_only_adds_items`] names every difference that breaks this.
//!
//! Invariants of an accepted change:
//! * every 共性 item of the old standard is in the new one, unchanged (same code, every field equal);
//! * for every unit type, the item each code resolves to is unchanged: an overlay item may not be
//!   removed or changed, and a new overlay item may not replace an existing 共性 item;
//! * every setting other than the items is equal: year, caps, deadline day, evaluation, grading,
//!   lapse and the categories (a new category is a new setting, not an item).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::{Item, Standard};
use crate::validate::{Problem, codes};

impl Standard {
    /// `Ok` when `new` only adds items to `self`; otherwise every item removed or changed and
    /// every setting changed. Paths of removed items point into `self`, all others into `new`.
    pub fn change_only_adds_items(&self, new: &Standard) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        self.settings_unchanged(new, &mut problems);
        common_items_unchanged(&self.items, &new.items, &mut problems);
        self.overlay_items_unchanged(new, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn settings_unchanged(&self, new: &Standard, problems: &mut Vec<Problem>) {
        let mut setting = |path: &str, changed: Option<(String, String)>| {
            if let Some((old, new)) = changed {
                problems.push(Problem::new(
                    path,
                    codes::SETTING_CHANGED,
                    format!("{path} changed from {old} to {new}; only items may be added"),
                ));
            }
        };
        setting("year", diff(&self.year, &new.year));
        setting("base_cap", diff(&self.base_cap, &new.base_cap));
        setting("bonus_cap", diff(&self.bonus_cap, &new.bonus_cap));
        setting("deadline_day", diff(&self.deadline_day, &new.deadline_day));
        let (old_eval, new_eval) = (&self.evaluation, &new.evaluation);
        setting(
            "evaluation.weight",
            diff(&old_eval.weight, &new_eval.weight),
        );
        setting(
            "evaluation.min_ballots",
            diff(&old_eval.min_ballots, &new_eval.min_ballots),
        );
        setting(
            "evaluation.rating_scores",
            diff(&old_eval.rating_scores, &new_eval.rating_scores),
        );
        setting(
            "evaluation.poor_share_blocks_excellent",
            diff(
                &old_eval.poor_share_blocks_excellent,
                &new_eval.poor_share_blocks_excellent,
            ),
        );
        let (old_grading, new_grading) = (&self.grading, &new.grading);
        setting(
            "grading.bands",
            diff(&old_grading.bands, &new_grading.bands),
        );
        setting(
            "grading.excellent_share_cap",
            diff(
                &old_grading.excellent_share_cap,
                &new_grading.excellent_share_cap,
            ),
        );
        setting(
            "grading.publication_days",
            diff(&old_grading.publication_days, &new_grading.publication_days),
        );
        setting("lapse", diff(&self.lapse, &new.lapse));
        for (i, old_category) in self.categories.iter().enumerate() {
            match new
                .categories
                .iter()
                .position(|c| c.code == old_category.code)
            {
                None => setting(
                    &format!("categories[{i}]"),
                    Some((
                        format!("category {}", old_category.code),
                        "nothing".to_owned(),
                    )),
                ),
                Some(j) => setting(
                    &format!("categories[{j}]"),
                    diff(old_category, &new.categories[j]),
                ),
            }
        }
        for (j, new_category) in new.categories.iter().enumerate() {
            if self.category(&new_category.code).is_none() {
                setting(
                    &format!("categories[{j}]"),
                    Some((
                        "nothing".to_owned(),
                        format!("category {}", new_category.code),
                    )),
                );
            }
        }
    }

    fn overlay_items_unchanged(&self, new: &Standard, problems: &mut Vec<Problem>) {
        let unit_types: BTreeSet<&String> =
            self.overlays.keys().chain(new.overlays.keys()).collect();
        for unit_type in unit_types {
            for old_item in self.items_for(unit_type) {
                let code = old_item.code.as_str();
                let from_old_overlay = self.is_overlay_item(code, unit_type);
                let from_new_overlay = new.is_overlay_item(code, unit_type);
                if !from_old_overlay && !from_new_overlay {
                    continue; // a 共性 item on both sides: checked with the 共性 items
                }
                let overlay_path = |standard: &Standard| {
                    let index = standard
                        .overlays
                        .get(unit_type)
                        .and_then(|o| o.items.iter().position(|i| i.code == code))
                        .unwrap_or_default();
                    format!("overlays.{unit_type}.items[{index}]")
                };
                match new.item(code, unit_type) {
                    None => problems.push(Problem::new(
                        overlay_path(self),
                        codes::ITEM_REMOVED,
                        format!("item {code} of unit type {unit_type} was removed"),
                    )),
                    Some(new_item) if *new_item != old_item => {
                        let path = if from_new_overlay {
                            overlay_path(new)
                        } else {
                            overlay_path(self)
                        };
                        problems.push(Problem::new(
                            path,
                            codes::ITEM_CHANGED,
                            format!(
                                "item {code} of unit type {unit_type} changed ({})",
                                changed_fields(&old_item, new_item)
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

fn common_items_unchanged(old: &[Item], new: &[Item], problems: &mut Vec<Problem>) {
    for (i, old_item) in old.iter().enumerate() {
        match new.iter().position(|item| item.code == old_item.code) {
            None => problems.push(Problem::new(
                format!("items[{i}]"),
                codes::ITEM_REMOVED,
                format!("item {} was removed", old_item.code),
            )),
            Some(j) if new[j] != *old_item => problems.push(Problem::new(
                format!("items[{j}]"),
                codes::ITEM_CHANGED,
                format!(
                    "item {} changed ({})",
                    old_item.code,
                    changed_fields(old_item, &new[j])
                ),
            )),
            Some(_) => {}
        }
    }
}

/// The names of the fields that differ, from the items' JSON forms.
fn changed_fields(old: &Item, new: &Item) -> String {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return "fields differ".to_owned();
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `None` when equal, else both values in their JSON form (for the message).
fn diff<T: PartialEq + Serialize>(old: &T, new: &T) -> Option<(String, String)> {
    let show = |value: &T| serde_json::to_string(value).unwrap_or_else(|_| "?".to_owned());
    (old != new).then(|| (show(old), show(new)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;
    use crate::default_2026;

    fn default_json() -> Value {
        default_2026().unwrap().to_json_value().unwrap()
    }

    fn changed(edit: impl FnOnce(&mut Value)) -> Standard {
        let mut doc = default_json();
        edit(&mut doc);
        Standard::parse_json(&doc.to_string()).unwrap()
    }

    fn item_index(doc: &Value, code: &str) -> usize {
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .position(|i| i["code"] == code)
            .unwrap()
    }

    fn new_item(code: &str, category: &str, kind: &str) -> Value {
        json!({
            "code": code, "category": category, "name": "新增", "kind": kind, "points": 1,
            "unit": "次", "yearly_cap": 2, "evidence_required": true, "declared_by": "member"
        })
    }

    fn paths_and_codes(result: Result<(), Vec<Problem>>) -> Vec<(String, &'static str)> {
        result
            .unwrap_err()
            .into_iter()
            .map(|p| (p.path, p.code))
            .collect()
    }

    #[test]
    fn the_same_standard_only_adds_nothing() {
        let old = default_2026().unwrap();
        assert_eq!(old.change_only_adds_items(&old.clone()), Ok(()));
    }

    #[test]
    fn adding_items_is_allowed() {
        let old = default_2026().unwrap();
        let new = changed(|d| {
            d["items"]
                .as_array_mut()
                .unwrap()
                .push(new_item("B12", "B", "bonus"));
            // A 个性 item with a new code, for an existing overlay and for a new unit type.
            let rural = d["overlays"]["rural"]["items"].as_array_mut().unwrap();
            rural.push(new_item("F06", "F", "base"));
            d["overlays"]["university"] = json!({"items": [new_item("F07", "F", "base")]});
        });
        assert_eq!(new.items().len(), 51);
        assert_eq!(old.change_only_adds_items(&new), Ok(()));
        // The other direction removes them.
        let back = paths_and_codes(new.change_only_adds_items(&old));
        assert!(
            back.contains(&("items[50]".to_owned(), codes::ITEM_REMOVED)),
            "{back:?}"
        );
        assert!(back.contains(&("overlays.rural.items[1]".to_owned(), codes::ITEM_REMOVED)));
        assert!(back.contains(&(
            "overlays.university.items[0]".to_owned(),
            codes::ITEM_REMOVED
        )));
    }

    #[test]
    fn changing_a_point_value_is_refused() {
        let old = default_2026().unwrap();
        let doc = default_json();
        let p01 = item_index(&doc, "P01");
        let new = changed(|d| d["items"][p01]["points"] = json!(3));
        let problems = old.change_only_adds_items(&new).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].path.clone(), problems[0].code),
            (format!("items[{p01}]"), codes::ITEM_CHANGED)
        );
        assert!(problems[0].message.contains("P01") && problems[0].message.contains("points"));
    }

    #[test]
    fn removing_an_item_is_refused() {
        let old = default_2026().unwrap();
        let doc = default_json();
        let x12 = item_index(&doc, "X12");
        let new = changed(|d| {
            d["items"].as_array_mut().unwrap().remove(x12);
        });
        assert_eq!(
            paths_and_codes(old.change_only_adds_items(&new)),
            [(format!("items[{x12}]"), codes::ITEM_REMOVED)]
        );
    }

    #[test]
    fn changing_a_band_or_another_setting_is_refused() {
        let old = default_2026().unwrap();
        let new = changed(|d| {
            d["grading"]["bands"]["excellent"] = json!(85);
            d["deadline_day"] = json!(10);
            d["evaluation"]["min_ballots"] = json!(3);
            d["lapse"]["months"] = json!(3);
        });
        assert_eq!(
            paths_and_codes(old.change_only_adds_items(&new)),
            [
                ("deadline_day".to_owned(), codes::SETTING_CHANGED),
                ("evaluation.min_ballots".to_owned(), codes::SETTING_CHANGED),
                ("grading.bands".to_owned(), codes::SETTING_CHANGED),
                ("lapse".to_owned(), codes::SETTING_CHANGED),
            ]
        );
    }

    #[test]
    fn categories_are_settings() {
        let old = default_2026().unwrap();
        let new = changed(|d| {
            d["categories"][0]["cap"] = json!(25);
            let extra = json!({"code": "E", "name": "额外", "kind": "bonus"});
            d["categories"].as_array_mut().unwrap().push(extra);
        });
        assert_eq!(
            paths_and_codes(old.change_only_adds_items(&new)),
            [
                ("categories[0]".to_owned(), codes::SETTING_CHANGED),
                ("categories[8]".to_owned(), codes::SETTING_CHANGED),
            ]
        );
    }

    #[test]
    fn overlay_items_may_not_change_or_replace_common_items() {
        let old = default_2026().unwrap();
        // Changing the rural F01.
        let new = changed(|d| d["overlays"]["rural"]["items"][0]["name"] = json!("别的"));
        assert_eq!(
            paths_and_codes(old.change_only_adds_items(&new)),
            [("overlays.rural.items[0]".to_owned(), codes::ITEM_CHANGED)]
        );
        // Removing the community overlay: community's F01 falls back to the 共性 F01.
        let new = changed(|d| {
            d["overlays"].as_object_mut().unwrap().remove("community");
        });
        assert_eq!(
            paths_and_codes(old.change_only_adds_items(&new)),
            [(
                "overlays.community.items[0]".to_owned(),
                codes::ITEM_CHANGED
            )]
        );
        // A new overlay replacing the 共性 F01 changes government_organ's F01.
        let new = changed(|d| {
            let mut f01 = d["overlays"]["rural"]["items"][0].clone();
            f01["name"] = json!("机关岗位履职");
            d["overlays"]["government_organ"] = json!({"items": [f01]});
        });
        assert_eq!(
            paths_and_codes(old.change_only_adds_items(&new)),
            [(
                "overlays.government_organ.items[0]".to_owned(),
                codes::ITEM_CHANGED
            )]
        );
    }
}
