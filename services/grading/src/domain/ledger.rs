//! A member's yearly sums (RULES.md §5 steps 1–5): ledger entries (台账) and quarter results of
//! the mass evaluation (群众评议) in, [`Totals`] out.
//!
//! Responsibilities: apply the caps of the yearly standard (积分标准) in the order RULES.md gives
//! them — monthly cap, then yearly cap per item, then category cap, then `base_cap` for base
//! points (基础分); yearly cap, then `bonus_cap` for bonus points (奖励分); no cap for deductions
//! (扣分) — compute the evaluation points and the total, and list the veto items (否决项) and
//! grade-capping items that have an entry.
//!
//! Rules where RULES.md is silent, chosen here:
//! * items are those of the member's unit type ([`Standard::items_for`]: 共性 items with the 个性
//!   overlay applied); entries whose code the standard does not know for that unit type, and
//!   entries whose month is outside 1–12, are ignored everywhere (points, vetoes, caps, lapse);
//! * the [`Source`] of an entry never changes its points: a declaration line and a branch record of
//!   the same item and month count against the same caps;
//! * for base and bonus items a month's amount (the sum of that item's entries of that month) is
//!   clamped at 0 before the monthly cap, so a stray negative entry never lowers other months;
//!   a deduction item's yearly sum is clamped at 0 from above (a deduction never adds points);
//!   caps on deduction items are ignored (RULES.md: no cap); veto items carry no points;
//! * a veto or `grade_cap` item counts when it has at least one entry, whatever its points;
//! * a quarter's score is its **exact** mean (RULES.md §4): the sum of its ballots' rating scores
//!   over their number ([`QuarterResult::exact_score`]), e.g. 4000/6 tenths; the 0.1-point
//!   `score` is for display only and counts just for a record that has no exact sum (a
//!   projection row from before the sums were kept, until the rounds are republished);
//! * a quarter counts for the evaluation when `valid` is true **and** it has a score; a score
//!   outside 0–100 points is clamped into it; quarters outside 1–4 are ignored; when a quarter
//!   appears more than once (a caller bug) the record with the most ballots is used (ties: valid
//!   before not valid, then the higher score, then more poor ballots), so the choice never
//!   depends on the order of `quarters`;
//! * evaluation = round_half_up((Σ tᵢ/bᵢ) × W / (n × 1000)) tenths, tᵢ/bᵢ the counted quarters'
//!   exact scores in tenths, n their number, W = `weight` in tenths: the mean score × weight /
//!   100, rounded half up to 0.1 point **once, at the end** (RULES.md §5 step 4), computed in
//!   integers over the common denominator (`i128`, and big integers should that overflow);
//! * intermediate sums are `i64`; amounts are converted back to [`DeciPoints`] saturating at the
//!   `i32` range (only deductions could get there, and only with absurd input).

use std::collections::BTreeMap;
use std::sync::Arc;

use jifen_standard::{DeciPoints, Grade, Item, ItemKind, Standard};

/// Where a ledger entry comes from. Informational: both count the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// An approved line of the member's monthly declaration (月度申报).
    Declaration,
    /// A record written by the branch (attendance, dues, deductions, vetoes).
    Branch,
}

impl Source {
    /// The wire spelling: `declaration` or `branch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Declaration => "declaration",
            Self::Branch => "branch",
        }
    }
}

/// One entry of a member's ledger in the graded year.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// Month of the year, 1–12 (entries outside are ignored).
    pub month: u32,
    /// Declaration line or branch record.
    pub source: Source,
    /// Code of the item in the standard (`P01`); shared, so a city's millions of entries hold
    /// a few dozen strings.
    pub item_code: Arc<str>,
    /// Approved points: positive for base and bonus items, negative for deductions, 0 for vetoes.
    pub points: DeciPoints,
}

/// A member's result of one quarter's mass evaluation (群众评议), RULES.md §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuarterResult {
    /// Quarter of the year, 1–4 (others are ignored).
    pub quarter: u32,
    /// Mean score rounded half up to 0.1 point, 0–100 points, for display; `None` without
    /// ballots. Enters the evaluation only when `score_total` is unknown.
    pub score: Option<DeciPoints>,
    /// Sum of the ballots' rating scores in tenths: the exact mean is `score_total / ballots`.
    /// `None` when the record predates the exact sums (see [`QuarterResult::exact_score`]).
    pub score_total: Option<i64>,
    /// Ballots that rated the member.
    pub ballots: u32,
    /// Of those, ratings `poor` (差).
    pub poor_ballots: u32,
    /// At least `min_ballots` ballots.
    pub valid: bool,
}

impl QuarterResult {
    /// Whether the quarter counts: valid and with a score.
    pub fn counts(&self) -> bool {
        self.valid && self.exact_score().is_some()
    }

    /// The mean score as the exact fraction `(numerator, denominator)` of tenths, clamped into
    /// 0–100 points: `score_total / ballots` when both are known (`ballots > 0`), else the
    /// rounded `score` over 1 (an old record), else `None` (no ballots).
    pub fn exact_score(&self) -> Option<(i64, u32)> {
        let (numerator, denominator) = match (self.score_total, self.ballots, self.score) {
            (Some(total), ballots @ 1.., _) => (total, ballots),
            (_, _, Some(score)) => (tenths(score), 1),
            _ => return None,
        };
        let most = MAX_SCORE_TENTHS.saturating_mul(i64::from(denominator));
        Some((numerator.clamp(0, most), denominator))
    }

    /// The preference among duplicate records of one quarter (greatest wins).
    fn preference(&self) -> (u32, bool, Option<DeciPoints>, u32, Option<i64>) {
        (
            self.ballots,
            self.valid,
            self.score,
            self.poor_ballots,
            self.score_total,
        )
    }
}

/// A member's yearly sums, RULES.md §5 steps 1–5. All amounts in deci-points.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Totals {
    /// 基础分, 0..=`base_cap`.
    pub base: DeciPoints,
    /// 奖励分, 0..=`bonus_cap`.
    pub bonus: DeciPoints,
    /// 扣分, ≤ 0.
    pub deductions: DeciPoints,
    /// 群众评议 points, 0..=`weight`.
    pub evaluation: DeciPoints,
    /// clamp(base + bonus + deductions + evaluation, 0, 100 points).
    pub total: DeciPoints,
    /// Codes of the veto items (否决项) with an entry, sorted, without duplicates.
    pub vetoes: Vec<String>,
    /// Codes of the items with a `grade_cap` that have an entry, with their cap; sorted by code.
    pub grade_caps: Vec<(String, Grade)>,
    /// No quarter counted: `evaluation` is 0 (reason `no_valid_evaluation`).
    pub no_valid_evaluation: bool,
}

/// RULES.md §5 steps 1–5 for one member. `unit_type` selects the overlay (`None`: the 共性
/// items only). See the module documentation for the choices made where RULES.md is silent.
pub fn totals(
    standard: &Standard,
    unit_type: Option<&str>,
    entries: &[Entry],
    quarters: &[QuarterResult],
) -> Totals {
    compute(
        standard,
        &ItemIndex::new(standard, unit_type),
        entries,
        quarters,
    )
}

/// 100 points, the ceiling of a total.
pub(crate) const MAX_TOTAL_TENTHS: i64 = 1000;
/// 100 points, the best mean score of a quarter.
const MAX_SCORE_TENTHS: i64 = 1000;

/// The items of one unit type, by code, prepared once per branch: each item's position, and its
/// category's position and cap, so a member's totals are sums over small arrays.
pub(crate) struct ItemIndex {
    items: Vec<Item>,
    /// foldhash: item codes are looked up once per entry, millions of times in a batch.
    by_code: foldhash::HashMap<String, usize>,
    /// Per item: the position of its category in `category_caps`.
    category_of: Vec<usize>,
    /// Per category of the unit type's items: its cap (`None`: no cap, or unknown category).
    category_caps: Vec<Option<DeciPoints>>,
}

impl ItemIndex {
    /// The items for `unit_type` (the 共性 items when `None`).
    pub(crate) fn new(standard: &Standard, unit_type: Option<&str>) -> Self {
        let items = match unit_type {
            Some(unit_type) => standard.items_for(unit_type),
            None => standard.items().to_vec(),
        };
        let by_code = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.code.clone(), i))
            .collect();
        let mut categories: Vec<&str> = Vec::new();
        let mut category_caps = Vec::new();
        let category_of = items
            .iter()
            .map(|item| {
                if let Some(i) = categories.iter().position(|c| *c == item.category) {
                    i
                } else {
                    categories.push(item.category.as_str());
                    category_caps.push(standard.category(&item.category).and_then(|c| c.cap));
                    categories.len() - 1
                }
            })
            .collect();
        Self {
            by_code,
            category_of,
            category_caps,
            items,
        }
    }

    /// The item `code`, if the unit type has it.
    pub(crate) fn get(&self, code: &str) -> Option<&Item> {
        self.position(code).map(|i| &self.items[i])
    }

    fn position(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }
}

/// Whether an entry takes part in the rules at all (known month; the item is checked apart).
pub(crate) fn month_in_year(month: u32) -> bool {
    (1..=12).contains(&month)
}

/// Converts an `i64` amount of tenths to [`DeciPoints`], saturating at the `i32` bounds.
pub(crate) fn deci(tenths: i64) -> DeciPoints {
    let clamped = tenths.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    // In range after the clamp, so the conversion cannot fail; 0 is an unreachable fallback.
    DeciPoints::from_tenths(i32::try_from(clamped).unwrap_or_default())
}

fn tenths(points: DeciPoints) -> i64 {
    i64::from(points.tenths())
}

/// `amount` limited by `cap` when there is one.
fn capped(amount: i64, cap: Option<DeciPoints>) -> i64 {
    cap.map_or(amount, |cap| amount.min(tenths(cap)))
}

/// One record per quarter 1–4, sorted by quarter; duplicates resolved by
/// [`QuarterResult::preference`].
pub(crate) fn effective_quarters(quarters: &[QuarterResult]) -> Vec<QuarterResult> {
    let mut by_quarter: BTreeMap<u32, QuarterResult> = BTreeMap::new();
    for q in quarters.iter().filter(|q| (1..=4).contains(&q.quarter)) {
        by_quarter
            .entry(q.quarter)
            .and_modify(|kept| {
                if q.preference() > kept.preference() {
                    *kept = *q;
                }
            })
            .or_insert(*q);
    }
    by_quarter.into_values().collect()
}

/// The evaluation points in tenths and whether no quarter counted.
fn evaluation(standard: &Standard, quarters: &[QuarterResult]) -> (i64, bool) {
    let scores: Vec<(i64, u32)> = effective_quarters(quarters)
        .iter()
        .filter(|q| q.valid)
        .filter_map(QuarterResult::exact_score)
        .collect();
    if scores.is_empty() {
        return (0, true);
    }
    let weight = tenths(standard.evaluation().weight).max(0);
    (exact::mean_times_weight(&scores, weight), false)
}

/// The evaluation's one rounding, in exact integers.
mod exact {
    use num_bigint::BigInt;
    use num_integer::Integer as _;

    use super::MAX_SCORE_TENTHS;

    /// round_half_up((Σ tᵢ/bᵢ) × `weight` / (n × 1000)) for the `n` exact scores tᵢ/bᵢ in tenths
    /// (0 ≤ tᵢ ≤ 1000 bᵢ, bᵢ ≥ 1, n ≥ 1) and `weight` ≥ 0 in tenths: the mean score (tenths)
    /// times the weight over 100 points (1000 tenths). At most `weight`.
    pub(super) fn mean_times_weight(scores: &[(i64, u32)], weight: i64) -> i64 {
        small(scores, weight).unwrap_or_else(|| big(scores, weight))
    }

    /// The usual case: over the least common denominator in `i128`; `None` on overflow (only
    /// with ballot counts in the millions that are pairwise coprime).
    fn small(scores: &[(i64, u32)], weight: i64) -> Option<i64> {
        let mut denominator: i128 = 1;
        for &(_, ballots) in scores {
            let b = i128::from(ballots);
            denominator = (denominator / denominator.gcd(&b)).checked_mul(b)?;
        }
        let mut numerator: i128 = 0;
        for &(total, ballots) in scores {
            let share = i128::from(total).checked_mul(denominator / i128::from(ballots))?;
            numerator = numerator.checked_add(share)?;
        }
        let n = i128::try_from(scores.len()).ok()?;
        let numerator = numerator.checked_mul(i128::from(weight))?;
        let denominator = n
            .checked_mul(i128::from(MAX_SCORE_TENTHS))?
            .checked_mul(denominator)?;
        // Half up: ⌊(2a + b) / 2b⌋ for a ≥ 0, b > 0.
        let rounded =
            numerator.checked_mul(2)?.checked_add(denominator)? / denominator.checked_mul(2)?;
        i64::try_from(rounded).ok()
    }

    /// The same computation in big integers, over the product of the ballot counts.
    fn big(scores: &[(i64, u32)], weight: i64) -> i64 {
        let denominator: BigInt = scores.iter().map(|&(_, b)| BigInt::from(b)).product();
        let numerator: BigInt = scores
            .iter()
            .map(|&(total, b)| BigInt::from(total) * (&denominator / BigInt::from(b)))
            .sum();
        let numerator = numerator * weight;
        let denominator = denominator * (BigInt::from(scores.len()) * MAX_SCORE_TENTHS);
        let rounded = (numerator * 2 + &denominator) / (denominator * 2);
        // At most `weight` (every tᵢ/bᵢ ≤ 1000), so it fits; `weight` is the bound if not.
        i64::try_from(rounded).unwrap_or(weight)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn both_paths_agree_where_both_apply() {
            let cases: [&[(i64, u32)]; 4] = [
                &[(460, 5), (460, 5), (4000, 6), (6600, 7)],
                &[(853, 1), (867, 1)],
                &[(0, 3)],
                &[(7_000_000_000, 9_999_991), (5, 1), (1234, 7)],
            ];
            for scores in cases {
                for weight in [0, 200, 150, 1000] {
                    assert_eq!(
                        small(scores, weight),
                        Some(big(scores, weight)),
                        "{scores:?}"
                    );
                }
            }
        }

        #[test]
        fn coprime_ballot_counts_in_the_billions_take_the_big_path() {
            // Four large primes: their product overflows i128 once scaled by the weight.
            let scores = [
                (4_294_967_291 * 1000, 4_294_967_291_u32),
                (4_294_967_279 * 999, 4_294_967_279),
                (0, 4_294_967_231),
                (4_294_967_197 * 500, 4_294_967_197),
            ];
            assert_eq!(small(&scores, 200), None);
            // (100 + 99.9 + 0 + 50) / 4 = 62.475 → × 20 / 100 = 12.495 → 12.5.
            assert_eq!(big(&scores, 200), 125);
        }
    }
}

/// Steps 1–5 with a prepared item index (shared by every member of a branch).
pub(crate) fn compute(
    standard: &Standard,
    index: &ItemIndex,
    entries: &[Entry],
    quarters: &[QuarterResult],
) -> Totals {
    // Sum each known item's entries per month (item-major, 12 months each); sums are
    // order-independent, so the result does not depend on the order of `entries`.
    let n = index.items.len();
    let mut monthly = vec![0_i64; n * 12];
    let mut seen = vec![false; n];
    for entry in entries.iter().filter(|e| month_in_year(e.month)) {
        if let Some(i) = index.position(&entry.item_code) {
            monthly[i * 12 + (entry.month as usize - 1)] += tenths(entry.points);
            seen[i] = true;
        }
    }

    // Per item: months clamped (base and bonus), summed over the year, then the yearly cap;
    // vetoes and grade caps on any entry of the item, whatever its points.
    let mut per_category = vec![0_i64; index.category_caps.len()];
    let (mut bonus, mut deductions) = (0_i64, 0_i64);
    let mut vetoes = Vec::new();
    let mut grade_caps = Vec::new();
    for (i, item) in index.items.iter().enumerate().filter(|(i, _)| seen[*i]) {
        let months = &monthly[i * 12..(i + 1) * 12];
        match item.kind {
            ItemKind::Base => {
                let year: i64 = months
                    .iter()
                    .map(|&m| capped(m.max(0), item.monthly_cap))
                    .sum();
                per_category[index.category_of[i]] += capped(year, item.yearly_cap);
            }
            ItemKind::Bonus => {
                let year: i64 = months
                    .iter()
                    .map(|&m| capped(m.max(0), item.monthly_cap))
                    .sum();
                bonus += capped(year, item.yearly_cap);
            }
            ItemKind::Deduction => deductions += months.iter().sum::<i64>().min(0),
            ItemKind::Veto => vetoes.push(item.code.clone()),
        }
        if let Some(cap) = item.grade_cap {
            grade_caps.push((item.code.clone(), cap));
        }
    }
    vetoes.sort();
    grade_caps.sort();
    let base: i64 = per_category
        .iter()
        .zip(&index.category_caps)
        .map(|(&amount, &cap)| capped(amount, cap))
        .sum();
    let base = capped(base, Some(standard.base_cap()));
    let bonus = capped(bonus, Some(standard.bonus_cap()));

    let (evaluation, no_valid_evaluation) = evaluation(standard, quarters);
    let total = (base + bonus + deductions + evaluation).clamp(0, MAX_TOTAL_TENTHS);
    Totals {
        base: deci(base),
        bonus: deci(bonus),
        deductions: deci(deductions),
        evaluation: deci(evaluation),
        total: deci(total),
        vetoes,
        grade_caps,
        no_valid_evaluation,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::test_support::*;
    use super::*;

    fn t(tenths: i32) -> DeciPoints {
        DeciPoints::from_tenths(tenths)
    }

    fn base_of(entries: &[Entry]) -> DeciPoints {
        totals(&standard(), None, entries, &[]).base
    }

    #[test]
    fn monthly_cap_clamps_each_month() {
        // P01: 2 points per study, at most 4 a month. Three studies in March: 6 → 4.
        let entries = [
            entry(3, "P01", 20),
            entry(3, "P01", 20),
            entry(3, "P01", 20),
        ];
        assert_eq!(base_of(&entries), t(40));
        // The same three spread over two months: 4 + 2.
        let entries = [
            entry(3, "P01", 20),
            entry(3, "P01", 20),
            entry(4, "P01", 20),
        ];
        assert_eq!(base_of(&entries), t(60));
    }

    #[test]
    fn declaration_and_branch_entries_share_the_monthly_cap() {
        let mut second = entry(5, "D03", 10);
        second.source = Source::Declaration;
        // D03: 1 point, at most 2 a month: 1 + 1 + 1 in May → 2.
        let entries = [entry(5, "D03", 10), second, entry(5, "D03", 10)];
        assert_eq!(base_of(&entries), t(20));
    }

    #[test]
    fn yearly_cap_clamps_the_sum_of_months() {
        // P02: 1 point a month, at most 4 a year: 12 months → 4.
        assert_eq!(base_of(&every_month("P02", 10)), t(40));
        // O01: 3 a month, 12 a year: 5 months → 15 → 12.
        let entries: Vec<Entry> = (1..=5).map(|m| entry(m, "O01", 30)).collect();
        assert_eq!(base_of(&entries), t(120));
    }

    #[test]
    fn category_cap_clamps_the_sum_of_items() {
        // P at its items' yearly caps: 12 + 4 + 4 + 4 + 4 + 4 = 32 → category cap 20.
        let entries = full_items(&["P01", "P02", "P03", "P04", "P05", "P06"]);
        assert_eq!(base_of(&entries), t(200));
        // P01 (12) + P02 (4) = 16 stays under the cap.
        assert_eq!(base_of(&full_items(&["P01", "P02"])), t(160));
    }

    #[test]
    fn base_reaches_base_cap_70_and_no_more() {
        // The default's category caps add up to exactly 70 (20 + 20 + 10 + 5 + 15).
        let totals = totals(&standard(), None, &full_base(), &[]);
        assert_eq!(totals.base, t(700));
        // With base_cap 50 the same ledger is clamped to 50.
        let lower = standard_with(|text| text.replace("base_cap = 70", "base_cap = 50"));
        assert_eq!(totals_of(&lower, &full_base()).base, t(500));
    }

    #[test]
    fn half_point_dues_items_add_up_exactly() {
        // D01 按月足额交纳党费: 0.5 a month, yearly cap 6.
        assert_eq!(base_of(&every_month("D01", 5)), t(60));
        let seven: Vec<Entry> = (1..=7).map(|m| entry(m, "D01", 5)).collect();
        assert_eq!(base_of(&seven), t(35));
        // Two dues records in one month still count 0.5 (monthly cap 0.5).
        assert_eq!(base_of(&[entry(1, "D01", 5), entry(1, "D01", 5)]), t(5));
    }

    #[test]
    fn a_negative_month_of_a_base_item_counts_as_zero() {
        // March nets −2, clamped to 0, so it does not eat April's 2.
        let entries = [
            entry(3, "P01", 20),
            entry(3, "P01", -40),
            entry(4, "P01", 20),
        ];
        assert_eq!(base_of(&entries), t(20));
    }

    #[test]
    fn bonus_has_yearly_caps_and_bonus_cap_10() {
        let s = standard();
        // B06: 1 point, yearly cap 3: five letters → 3.
        let letters: Vec<Entry> = (1..=5).map(|m| entry(m, "B06", 10)).collect();
        assert_eq!(totals(&s, None, &letters, &[]).bonus, t(30));
        // B04 6 + B03 4 + B02 2 = 12 → bonus_cap 10.
        let honours = [
            entry(1, "B04", 60),
            entry(2, "B03", 40),
            entry(3, "B02", 20),
        ];
        assert_eq!(totals(&s, None, &honours, &[]).bonus, t(100));
        // B01 3 × 3 = 9 → yearly cap 6; B02 has no caps: 2 + 2 → 4; together 10.
        let more = [
            entry(1, "B01", 30),
            entry(1, "B01", 30),
            entry(2, "B01", 30),
            entry(6, "B02", 20),
            entry(6, "B02", 20),
        ];
        assert_eq!(totals(&s, None, &more, &[]).bonus, t(100));
        // Bonus never counts towards base.
        assert_eq!(totals(&s, None, &more, &[]).base, t(0));
    }

    #[test]
    fn deductions_add_up_without_cap() {
        let entries = [
            entry(1, "X01", -30),
            entry(2, "X01", -30),
            entry(2, "X12", -10),
        ];
        let totals = totals(&standard(), None, &entries, &[]);
        assert_eq!(totals.deductions, t(-70));
        assert_eq!(totals.base, t(0));
        // X09 + X10 + X11: −40, no cap.
        let heavy = [
            entry(1, "X09", -100),
            entry(1, "X10", -100),
            entry(1, "X11", -200),
        ];
        assert_eq!(totals_of(&standard(), &heavy).deductions, t(-400));
    }

    #[test]
    fn a_positive_deduction_entry_never_adds_points() {
        let entries = [entry(1, "X01", -30), entry(2, "X01", 50)];
        assert_eq!(totals_of(&standard(), &entries).deductions, t(0));
    }

    #[test]
    fn unknown_codes_and_months_outside_the_year_are_ignored() {
        let entries = [
            entry(1, "Z99", 50),
            entry(0, "P01", 20),
            entry(13, "P01", 20),
            entry(13, "V01", 0),
            entry(2, "P01", 20),
        ];
        let totals = totals_of(&standard(), &entries);
        assert_eq!(totals.base, t(20));
        assert!(totals.vetoes.is_empty());
    }

    #[test]
    fn evaluation_is_the_mean_times_weight_rounded_half_up() {
        let s = standard();
        let eval = |scores: &[i32]| {
            let quarters: Vec<QuarterResult> = scores
                .iter()
                .zip(1..)
                .map(|(&score, q)| quarter(q, score))
                .collect();
            totals(&s, None, &[], &quarters).evaluation
        };
        // (85.3 + 86.7) / 2 = 86.0 → × 20 / 100 = 17.2.
        assert_eq!(eval(&[853, 867]), t(172));
        // 85.2, 85.3: mean 85.25 → 17.05 → 17.1 (half up; half-even would give 17.0).
        assert_eq!(eval(&[852, 853]), t(171));
        // 85.3 → 17.06 → 17.1; 85.1 → 17.02 → 17.0.
        assert_eq!(eval(&[853]), t(171));
        assert_eq!(eval(&[851]), t(170));
        // Four quarters: (90 + 80 + 70 + 61.5) / 4 = 75.375 → 15.075 → 15.1.
        assert_eq!(eval(&[900, 800, 700, 615]), t(151));
        assert_eq!(eval(&[1000, 1000]), t(200));
        assert_eq!(eval(&[0]), t(0));
    }

    #[test]
    fn invalid_quarters_do_not_count() {
        let s = standard();
        let mut thin = quarter(2, 0);
        thin.valid = false;
        let mut no_score = quarter(3, 0);
        unscored(&mut no_score);
        let quarters = [quarter(1, 900), thin, no_score];
        let totals = totals(&s, None, &[], &quarters);
        assert_eq!(totals.evaluation, t(180));
        assert!(!totals.no_valid_evaluation);
    }

    #[test]
    fn no_valid_quarter_gives_zero_and_the_flag() {
        let s = standard();
        let none = totals(&s, None, &full_base(), &[]);
        assert_eq!((none.evaluation, none.no_valid_evaluation), (t(0), true));
        let mut thin = quarter(1, 1000);
        thin.valid = false;
        let mut no_score = quarter(2, 1000);
        unscored(&mut no_score);
        let invalid = totals(&s, None, &full_base(), &[thin, no_score]);
        assert_eq!(
            (invalid.evaluation, invalid.no_valid_evaluation),
            (t(0), true)
        );
        assert_eq!(invalid.total, t(700));
    }

    #[test]
    fn a_duplicated_quarter_uses_the_record_with_most_ballots_in_any_order() {
        let s = standard();
        let mut small = quarter(1, 600);
        set_ballots(&mut small, 5);
        let mut large = quarter(1, 900);
        set_ballots(&mut large, 8);
        let one = totals(&s, None, &[], &[small, large]);
        let other = totals(&s, None, &[], &[large, small]);
        assert_eq!(one, other);
        assert_eq!(one.evaluation, t(180));
        // Quarters outside 1–4 are ignored.
        let stray = totals(&s, None, &[], &[quarter(5, 1000), quarter(0, 1000)]);
        assert!(stray.no_valid_evaluation);
    }

    #[test]
    fn scores_outside_0_to_100_are_clamped() {
        let s = standard();
        assert_eq!(
            totals(&s, None, &[], &[quarter(1, 1500)]).evaluation,
            t(200)
        );
        assert_eq!(totals(&s, None, &[], &[quarter(1, -50)]).evaluation, t(0));
    }

    #[test]
    fn total_is_the_sum_clamped_to_0() {
        // 5 (M01) − 10 (X09) − 10 (X10) + 0 = −15 → 0.
        let entries = [
            entry(12, "M01", 50),
            entry(3, "X09", -100),
            entry(4, "X10", -100),
        ];
        let totals = totals(&standard(), None, &entries, &[quarter(1, 0)]);
        assert_eq!(totals.base, t(50));
        assert_eq!(totals.deductions, t(-200));
        assert_eq!(totals.total, t(0));
    }

    #[test]
    fn total_is_the_sum_clamped_to_100() {
        // Default: at most 70 + 10 + 20 = 100 exactly.
        let mut entries = full_base();
        entries.extend([entry(1, "B04", 60), entry(2, "B03", 40)]);
        let perfect = [quarter(1, 1000)];
        assert_eq!(totals(&standard(), None, &entries, &perfect).total, t(1000));
        // bonus_cap 20: 70 + 14 + 20 = 104 → 100.
        let generous = standard_with(|text| text.replace("bonus_cap = 10", "bonus_cap = 20"));
        entries.push(entry(3, "B02", 40));
        let totals = totals(&generous, None, &entries, &perfect);
        assert_eq!(totals.bonus, t(140));
        assert_eq!(totals.total, t(1000));
    }

    #[test]
    fn vetoes_and_grade_caps_are_listed_sorted_once() {
        let entries = [
            entry(9, "V03", 0),
            entry(2, "V01", 0),
            entry(4, "V03", 0),
            entry(6, "X11", -200),
            entry(7, "X11", -200),
        ];
        let totals = totals_of(&standard(), &entries);
        assert_eq!(totals.vetoes, ["V01", "V03"]);
        assert_eq!(
            totals.grade_caps,
            [("X11".to_owned(), Grade::BasicallyQualified)]
        );
        assert_eq!(totals.deductions, t(-400));
    }

    #[test]
    fn overlay_items_apply_for_their_unit_type() {
        let s = standard();
        // The state_enterprise F01 (1 a month, 12 a year) replaces the 共性 F01.
        let months = every_month("F01", 10);
        let state = totals(&s, Some("state_enterprise"), &months, &[]);
        assert_eq!(state.base, t(120));
        // F01 over its monthly cap counts 1 a month either way.
        let doubled: Vec<Entry> = (1..=6).map(|m| entry(m, "F01", 20)).collect();
        assert_eq!(
            totals(&s, Some("state_enterprise"), &doubled, &[]).base,
            t(60)
        );
        // An overlay with its own caps and an item the 共性 items lack.
        let custom = standard_with(|text| format!("{text}{STATE_ENTERPRISE_F06}"));
        let entries = [
            entry(1, "F06", 20),
            entry(1, "F06", 20),
            entry(2, "F06", 20),
        ];
        assert_eq!(
            totals(&custom, Some("state_enterprise"), &entries, &[]).base,
            t(30)
        );
        assert_eq!(totals(&custom, None, &entries, &[]).base, t(0));
        assert_eq!(totals(&custom, Some("rural"), &entries, &[]).base, t(0));
    }
}
