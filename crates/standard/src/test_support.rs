//! Small documents shared by the unit tests.

/// A minimal valid standard: a bonus category `B` (listed first) with `B01`, a base category `A`
/// with `A01` and `A02` (`A02` named "Common A02").
pub(crate) fn minimal_toml() -> String {
    r#"
year = 2026
base_cap = 70
bonus_cap = 10
deadline_day = 5

[evaluation]
weight = 20
min_ballots = 5
rating_scores = { excellent = 100, good = 80, fair = 60, poor = 0 }
poor_share_blocks_excellent = { numerator = 1, denominator = 3 }

[grading]
bands = { excellent = 90, qualified = 70, basically_qualified = 60 }
excellent_share_cap = { numerator = 1, denominator = 3 }
publication_days = 7

[[categories]]
code = "B"
name = "奖励"
kind = "bonus"

[[categories]]
code = "A"
name = "基础"
kind = "base"
cap = 20

[[items]]
code = "A02"
category = "A"
name = "Common A02"
kind = "base"
points = 1
unit = "次"
monthly_cap = 1
yearly_cap = 4
evidence_required = false
declared_by = "member"

[[items]]
code = "A01"
category = "A"
name = "Common A01"
kind = "base"
points = 0.5
unit = "月"
evidence_required = false
declared_by = "branch"

[[items]]
code = "B01"
category = "B"
name = "Common B01"
kind = "bonus"
points = 2
unit = "项"
evidence_required = true
declared_by = "member"
"#
    .to_owned()
}
