//! The deterministic plan of the demo city's history: last year whole, this year up to today.
//!
//! Members have a [`Tier`] that sets how they declare, attend and are rated, so the year's
//! grading gives every grade: stars (about 40% of a branch, the secretary among them) reach the
//! excellent band and the quota trims them; steady members are qualified; weak ones basically
//! qualified; in every fourth branch one failing member, and in the city one vetoed member (V01)
//! and one star capped by X11, are the rest.
//!
//! Every decision draws from its own generator keyed by the seed, a tag and the positions it
//! decides (branch, member, month, quarter), so a service reads any share of the plan in any
//! order and gets the same answers.

use crate::Shape;
use chrono::{Datelike as _, NaiveDate};
use rand::{Rng as _, SeedableRng as _, seq::SliceRandom as _};
use rand_chacha::ChaCha8Rng;

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Self {
        Self { year, month }
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self::new(self.year + 1, 1)
        } else {
            Self::new(self.year, self.month + 1)
        }
    }

    /// Day `day` of this month (clamped to its length).
    pub fn day(self, day: u32) -> NaiveDate {
        (1..=day.max(1))
            .rev()
            .find_map(|d| NaiveDate::from_ymd_opt(self.year, self.month, d))
            .unwrap_or(NaiveDate::MIN)
    }

    /// 1–4.
    pub fn quarter(self) -> u32 {
        (self.month - 1) / 3 + 1
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// How a member lives the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Declares every month, attends everything, rated 好: the excellent band.
    Star,
    /// Misses a few months and meetings: qualified.
    Steady,
    /// Misses a quarter of the year and is rated 一般: basically qualified.
    Weak,
    /// Declares three months, misses dues and meetings: unqualified.
    Failing,
}

/// A rating on a ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rating {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Rating {
    /// The API's name (`excellent` 好, `good` 较好, `fair` 一般, `poor` 差).
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Excellent => "excellent",
            Rating::Good => "good",
            Rating::Fair => "fair",
            Rating::Poor => "poor",
        }
    }

    /// The default standard's score of the rating.
    pub fn score(self) -> u32 {
        match self {
            Rating::Excellent => 100,
            Rating::Good => 80,
            Rating::Fair => 60,
            Rating::Poor => 0,
        }
    }
}

/// One line a member declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePlan {
    pub item: &'static str,
    pub quantity: i64,
    pub note: &'static str,
}

/// How the branch reviews a declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Approved with the claimed points.
    Approve,
    /// Approved with line `line` lowered to half its claimed points, for `reason`.
    Adjust { line: usize, reason: &'static str },
    /// Returned with `comment`; the member saves it again and resubmits; then approved.
    ReturnThenApprove { comment: &'static str },
    /// Rejected with `comment` (the month earns nothing).
    Reject { comment: &'static str },
    /// Submitted and waiting in the secretary's queue (the current month only).
    Pending,
}

/// A member's declaration of one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationPlan {
    pub lines: Vec<LinePlan>,
    pub review: Review,
    /// Declared after the month closed, through the branch reopening it (补报).
    pub late: bool,
}

/// One entry the branch records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlan {
    /// The member's position in the branch.
    pub member: usize,
    pub item: &'static str,
    pub quantity: i64,
    pub note: &'static str,
}

/// Who casts a ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BallotKind {
    /// 群众 with a masses code.
    Masses,
    /// The member at this position, with a member code and their own login.
    Member(usize),
}

/// One ballot of a round: the ratings by member position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot {
    pub kind: BallotKind,
    pub ratings: Vec<(usize, Rating)>,
}

/// Masses ballots per round.
pub const MASSES_BALLOTS: usize = 6;
/// Member ballots per round.
pub const MEMBER_BALLOTS: usize = 3;

/// Secondary items a declaration carries beside F01, in rotation (stars take two a month).
const STAR_ITEMS: [&str; 5] = ["P02", "P03", "P04", "D02", "F04"];
const OTHER_ITEMS: [&str; 4] = ["P02", "P03", "D02", "F04"];

const TAG_TIER: u64 = 1;
const TAG_SKIP: u64 = 2;
const TAG_DECLARE: u64 = 3;
const TAG_REVIEW: u64 = 4;
const TAG_ATTEND: u64 = 5;
const TAG_BALLOT: u64 = 6;
const TAG_VOTERS: u64 = 7;

/// The history of a demo city of `shape`, from `seed`, as of the business date `today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub seed: u64,
    pub shape: Shape,
    pub today: NaiveDate,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn note_of(item: &str) -> &'static str {
    match item {
        "F01" => "本月岗位职责履行到位",
        "F04" => "党员示范岗责任区履职",
        "P02" => "学习笔记一篇",
        "P03" => "支部研讨发言",
        "P04" => "学习强国月度达标",
        "D02" => "向支部书面汇报思想",
        "B06" => "收到服务对象表扬信",
        "B07" => "合理化建议被单位采纳",
        "B08" => "宣传稿件被市直机关党建网采用",
        "D01" => "按月足额交纳党费",
        "O02" => "参加党小组会",
        "P01" => "参加支部集中学习",
        "O01" => "参加支部党员大会",
        "M01" => "全年遵纪守法,无负面记录",
        "X12" => "组织生活迟到",
        "X02" => "党费逾期未交超过一个月",
        "X01" => "无故缺席主题党日",
        "X11" => "受政务警告处分",
        "V01" => "受记大过政务处分",
        _ => "",
    }
}

impl Plan {
    pub fn new(seed: u64, shape: Shape, today: NaiveDate) -> Self {
        Self { seed, shape, today }
    }

    fn rng(&self, tag: u64, parts: &[u64]) -> ChaCha8Rng {
        let mut x = splitmix(self.seed ^ splitmix(tag));
        for p in parts {
            x = splitmix(x ^ p.wrapping_mul(0x100_0000_01B3));
        }
        ChaCha8Rng::seed_from_u64(x)
    }

    /// The year graded in full.
    pub fn last_year(&self) -> i32 {
        self.today.year() - 1
    }

    pub fn this_year(&self) -> i32 {
        self.today.year()
    }

    /// The current month (of `today`).
    pub fn current(&self) -> YearMonth {
        YearMonth::new(self.today.year(), self.today.month())
    }

    /// Every month of the history, oldest first: last year's twelve, then this year's up to the
    /// current one.
    pub fn months(&self) -> Vec<YearMonth> {
        let mut out = Vec::new();
        let mut m = YearMonth::new(self.last_year(), 1);
        while m <= self.current() {
            out.push(m);
            m = m.next();
        }
        out
    }

    /// The quarters that have ended by today, oldest first: `(year, 1–4)`.
    pub fn ended_quarters(&self) -> Vec<(i32, u32)> {
        let mut out: Vec<(i32, u32)> = (1..=4).map(|q| (self.last_year(), q)).collect();
        for q in 1..=4 {
            let last_month = YearMonth::new(self.this_year(), q * 3);
            if last_month < self.current() {
                out.push((self.this_year(), q));
            }
        }
        out
    }

    /// The branch (global number) whose secretary moves a qualified member down at confirmation,
    /// and whose member appeals.
    pub fn override_down_branch(&self) -> usize {
        0
    }

    /// The branch whose secretary moves a basically qualified member up.
    pub fn override_up_branch(&self) -> usize {
        1 % self.shape.branch_count().max(1)
    }

    /// The branch that lags this year (60% participation).
    pub fn lagging_branch(&self) -> usize {
        2 % self.shape.branch_count().max(1)
    }

    /// The member vetoed (V01) last year: `(branch, position)`.
    pub fn vetoed(&self) -> (usize, usize) {
        (0, self.members_of_tier(0, Tier::Steady)[0])
    }

    /// The star capped by X11 last year: `(branch, position)`.
    pub fn capped(&self) -> (usize, usize) {
        let b = 1 % self.shape.branch_count().max(1);
        let stars = self.members_of_tier(b, Tier::Star);
        // Never the secretary (position 0): they lead the branch's grading.
        let pick = stars.iter().copied().find(|&i| i != 0).unwrap_or(stars[0]);
        (b, pick)
    }

    /// Positions of branch `gb`'s members of `tier`, in the plan's order.
    pub fn members_of_tier(&self, gb: usize, tier: Tier) -> Vec<usize> {
        self.order(gb)
            .into_iter()
            .filter(|&i| self.tier(gb, i) == tier)
            .collect()
    }

    /// The branch's members but the secretary, in a seeded order: the first are stars, the last
    /// weak or failing.
    fn order(&self, gb: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (1..self.shape.members).collect();
        order.shuffle(&mut self.rng(TAG_TIER, &[gb as u64]));
        order
    }

    /// How many of a branch's members are of each tier: (stars, weak, failing).
    fn tier_counts(&self, gb: usize) -> (usize, usize, usize) {
        let m = self.shape.members;
        let stars = (m * 2).div_ceil(5).max(1);
        let weak = ((m * 12 + 50) / 100).max(1);
        let failing = usize::from(gb.is_multiple_of(4));
        (stars, weak, failing)
    }

    /// The tier of member `i` of branch `gb`; the secretary (position 0) is a star.
    pub fn tier(&self, gb: usize, i: usize) -> Tier {
        if i == 0 {
            return Tier::Star;
        }
        let (stars, weak, failing) = self.tier_counts(gb);
        let order = self.order(gb);
        let rank = order.iter().position(|&x| x == i).unwrap_or(0);
        let others = order.len();
        if rank + 1 < stars {
            Tier::Star
        } else if rank >= others - failing {
            Tier::Failing
        } else if rank >= others - failing - weak {
            Tier::Weak
        } else {
            Tier::Steady
        }
    }

    /// This year's participation target of branch `gb`: one lags at 60%, the others 85–95%.
    pub fn participation(&self, gb: usize) -> f64 {
        if gb == self.lagging_branch() {
            0.60
        } else {
            [0.95, 0.92, 0.88, 0.95, 0.90][gb % 5]
        }
    }

    /// Months of last year member `i` skips (by tier).
    fn skipped_months(&self, gb: usize, i: usize, tier: Tier, tag: u64, count: usize) -> Vec<u32> {
        let mut months: Vec<u32> = (1..=12).collect();
        months.shuffle(&mut self.rng(tag, &[gb as u64, i as u64, tier as u64]));
        months.truncate(count);
        months
    }

    /// Whether a late declaration of `month` could be handled before today: the reopening runs
    /// from the 10th to the 20th of the next month.
    fn late_possible(&self, month: YearMonth) -> bool {
        month.next().day(14) < self.today
    }

    /// Member `i` of branch `gb`'s declaration of `month`, if they declare.
    pub fn declaration(&self, gb: usize, i: usize, month: YearMonth) -> Option<DeclarationPlan> {
        if month > self.current() || month.year < self.last_year() {
            return None;
        }
        let tier = self.tier(gb, i);
        let mut draw = self.rng(
            TAG_DECLARE,
            &[gb as u64, i as u64, month.year as u64, month.month as u64],
        );
        let declares = if month.year == self.last_year() {
            let skip = match tier {
                Tier::Star => 0,
                Tier::Steady => 2,
                Tier::Weak => 3,
                Tier::Failing => 9,
            };
            !self
                .skipped_months(gb, i, tier, TAG_SKIP, skip)
                .contains(&month.month)
        } else {
            let rate = if month == self.current() {
                self.participation(gb) * 0.5
            } else {
                self.participation(gb)
            };
            draw.gen_bool(rate)
        };
        if !declares {
            return None;
        }
        let slot = (month.month as usize + i) % 20;
        let mut lines = vec![LinePlan {
            item: "F01",
            quantity: 1,
            note: note_of("F01"),
        }];
        if tier == Tier::Star {
            for k in 0..2 {
                let item = STAR_ITEMS[(slot + k) % STAR_ITEMS.len()];
                lines.push(LinePlan {
                    item,
                    quantity: 1,
                    note: note_of(item),
                });
            }
            let bonus = match month.month as usize {
                m if m == 3 + i % 4 => Some("B08"),
                m if m == 8 + i % 3 => Some("B06"),
                11 => Some("B07"),
                _ => None,
            };
            if let Some(item) = bonus {
                lines.push(LinePlan {
                    item,
                    quantity: 1,
                    note: note_of(item),
                });
            }
        } else {
            let item = OTHER_ITEMS[slot % OTHER_ITEMS.len()];
            lines.push(LinePlan {
                item,
                quantity: 1,
                note: note_of(item),
            });
        }
        let mut review_draw = self.rng(
            TAG_REVIEW,
            &[gb as u64, i as u64, month.year as u64, month.month as u64],
        );
        let roll: f64 = review_draw.r#gen();
        let review = if month == self.current() {
            if roll < 0.5 {
                Review::Pending
            } else {
                Review::Approve
            }
        } else if roll < 0.04 {
            Review::ReturnThenApprove {
                comment: "请补充本月履职的具体内容后重新提交",
            }
        } else if roll < 0.09 {
            Review::Adjust {
                line: 1,
                reason: "材料内容较简略,按一半计分",
            }
        } else if roll < 0.10 && matches!(tier, Tier::Star | Tier::Steady) {
            Review::Reject {
                comment: "所报事项与本月实际不符,不予认定",
            }
        } else {
            Review::Approve
        };
        let late =
            month != self.current() && self.late_possible(month) && review_draw.gen_bool(0.03);
        // A late declaration is approved as it comes (the branch reopened the month for it).
        let review = if late { Review::Approve } else { review };
        Some(DeclarationPlan {
            lines,
            review,
            late,
        })
    }

    /// What branch `gb` records for `month`: dues, attendance, December's M01, and last year's
    /// deductions and the veto. Nothing for the current month (it has just begun).
    pub fn branch_entries(&self, gb: usize, month: YearMonth) -> Vec<EntryPlan> {
        let mut out = Vec::new();
        if month >= self.current() || month.year < self.last_year() {
            return out;
        }
        let last_year = month.year == self.last_year();
        let m = month.month;
        let vetoed = self.vetoed();
        let capped = self.capped();
        for i in 0..self.shape.members {
            let tier = self.tier(gb, i);
            let entry = |item: &'static str| EntryPlan {
                member: i,
                item,
                quantity: 1,
                note: note_of(item),
            };
            let misses = |count: usize, salt: u64| {
                self.skipped_months(gb, i, tier, TAG_ATTEND + salt * 16, count)
                    .contains(&m)
            };
            let pays = tier != Tier::Failing || !m.is_multiple_of(3);
            if pays {
                out.push(entry("D01"));
            }
            let group = match tier {
                Tier::Star => true,
                Tier::Steady => !misses(1, 1),
                Tier::Weak => !misses(2, 1),
                Tier::Failing => m.is_multiple_of(2),
            };
            if group {
                out.push(entry("O02"));
            }
            if m % 2 == 1 {
                let study = match tier {
                    Tier::Star => true,
                    Tier::Steady => !misses(2, 2),
                    Tier::Weak => !misses(6, 2),
                    Tier::Failing => m == 1,
                };
                if study {
                    out.push(entry("P01"));
                }
            }
            if m.is_multiple_of(3) {
                let meeting = match tier {
                    Tier::Star | Tier::Steady => true,
                    Tier::Weak => !misses(3, 3),
                    Tier::Failing => m == 3,
                };
                if meeting {
                    out.push(entry("O01"));
                }
            }
            let special = (gb, i) == vetoed || (gb, i) == capped;
            if m == 12 && tier != Tier::Failing && !(last_year && special) {
                out.push(entry("M01"));
            }
            if last_year {
                if tier == Tier::Weak && m == 4 {
                    out.push(entry("X12"));
                }
                if tier == Tier::Failing && m == 6 {
                    out.push(entry("X02"));
                }
                if tier == Tier::Failing && m == 9 {
                    out.push(entry("X01"));
                }
                if (gb, i) == vetoed && m == 9 {
                    out.push(entry("V01"));
                }
                if (gb, i) == capped && m == 5 {
                    out.push(entry("X11"));
                }
            }
        }
        out
    }

    /// The ballots of branch `gb`'s round of `(year, quarter)`: masses ballots rating everyone,
    /// then member ballots rating everyone but the voter.
    pub fn ballots(&self, gb: usize, year: i32, quarter: u32) -> Vec<Ballot> {
        let mut voters: Vec<usize> = (0..self.shape.members).collect();
        voters.shuffle(&mut self.rng(TAG_VOTERS, &[gb as u64, year as u64, u64::from(quarter)]));
        let kinds = (0..MASSES_BALLOTS).map(|_| BallotKind::Masses).chain(
            voters
                .into_iter()
                .take(MEMBER_BALLOTS)
                .map(BallotKind::Member),
        );
        kinds
            .enumerate()
            .map(|(k, kind)| {
                let mut draw = self.rng(
                    TAG_BALLOT,
                    &[gb as u64, year as u64, u64::from(quarter), k as u64],
                );
                let ratings = (0..self.shape.members)
                    .filter(|&i| kind != BallotKind::Member(i))
                    .map(|i| {
                        let roll: f64 = draw.r#gen();
                        let rating = match self.tier(gb, i) {
                            Tier::Star if roll < 0.85 => Rating::Excellent,
                            Tier::Star => Rating::Good,
                            Tier::Steady if roll < 0.3 => Rating::Excellent,
                            Tier::Steady if roll < 0.8 => Rating::Good,
                            Tier::Steady => Rating::Fair,
                            Tier::Weak if roll < 0.3 => Rating::Good,
                            Tier::Weak if roll < 0.9 => Rating::Fair,
                            Tier::Weak => Rating::Poor,
                            Tier::Failing if roll < 0.5 => Rating::Fair,
                            Tier::Failing => Rating::Poor,
                        };
                        (i, rating)
                    })
                    .collect();
                Ballot { kind, ratings }
            })
            .collect()
    }

    /// How many rounds the history closes in `year`.
    pub fn rounds_in(&self, year: i32) -> usize {
        self.ended_quarters()
            .iter()
            .filter(|(y, _)| *y == year)
            .count()
            * self.shape.branch_count()
    }

    /// Last year's ledger as grading will hold it once every event has arrived: (approved
    /// declaration lines, branch entries). Grading's step waits for these counts.
    pub fn last_year_ledger_counts(&self) -> (usize, usize) {
        let year = self.last_year();
        let mut lines = 0;
        let mut entries = 0;
        for gb in 0..self.shape.branch_count() {
            for m in 1..=12 {
                let month = YearMonth::new(year, m);
                entries += self.branch_entries(gb, month).len();
                for i in 0..self.shape.members {
                    if let Some(d) = self.declaration(gb, i, month)
                        && !matches!(d.review, Review::Reject { .. } | Review::Pending)
                    {
                        lines += d.lines.len();
                    }
                }
            }
        }
        (lines, entries)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    fn plan(shape: Shape) -> Plan {
        Plan::new(crate::DEFAULT_SEED, shape, today())
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a = plan(Shape::SMALL);
        let b = plan(Shape::SMALL);
        let c = Plan::new(7, Shape::SMALL, today());
        let mut differs = false;
        for gb in 0..4 {
            for month in a.months() {
                assert_eq!(a.branch_entries(gb, month), b.branch_entries(gb, month));
                for i in 0..12 {
                    assert_eq!(a.declaration(gb, i, month), b.declaration(gb, i, month));
                    differs |= a.declaration(gb, i, month) != c.declaration(gb, i, month);
                }
            }
            assert_eq!(a.ballots(gb, 2025, 2), b.ballots(gb, 2025, 2));
        }
        assert!(differs, "another seed must give another history");
    }

    #[test]
    fn months_and_quarters_run_to_today() {
        let p = plan(Shape::SMALL);
        let months = p.months();
        assert_eq!(months.len(), 24);
        assert_eq!(months[0].to_string(), "2025-01");
        assert_eq!(months[23].to_string(), "2026-12");
        let quarters = p.ended_quarters();
        assert_eq!(quarters.len(), 7, "{quarters:?}");
        assert_eq!(quarters[6], (2026, 3));
    }

    #[test]
    fn participation_lags_in_one_branch_only_and_the_current_month_is_partly_pending() {
        let p = plan(Shape::FULL);
        let this_year: Vec<YearMonth> = p.months().into_iter().filter(|m| m.year == 2026).collect();
        let mut pending = 0;
        let mut approved_now = 0;
        for gb in 0..p.shape.branch_count() {
            let mut declared = 0;
            let mut slots = 0;
            for &month in this_year.iter().filter(|m| **m != p.current()) {
                for i in 0..p.shape.members {
                    slots += 1;
                    declared += usize::from(p.declaration(gb, i, month).is_some());
                }
            }
            let rate = declared as f64 / slots as f64;
            let target = p.participation(gb);
            assert!(
                (rate - target).abs() < 0.06,
                "branch {gb}: {rate} vs {target}"
            );
            if gb == p.lagging_branch() {
                assert!(rate < 0.7);
            } else {
                assert!(rate > 0.8, "branch {gb}: {rate}");
            }
            for i in 0..p.shape.members {
                match p.declaration(gb, i, p.current()).map(|d| d.review) {
                    Some(Review::Pending) => pending += 1,
                    Some(Review::Approve) => approved_now += 1,
                    Some(other) => {
                        panic!("the current month is only approved or pending: {other:?}")
                    }
                    None => {}
                }
            }
        }
        assert!(
            pending > 100 && approved_now > 100,
            "{pending} {approved_now}"
        );
    }

    #[test]
    fn last_year_has_returns_adjustments_rejections_and_late_declarations() {
        let p = plan(Shape::FULL);
        let mut kinds: HashMap<&str, usize> = HashMap::new();
        let mut late = 0;
        let mut total = 0;
        for gb in 0..p.shape.branch_count() {
            for m in 1..=12 {
                for i in 0..p.shape.members {
                    if let Some(d) = p.declaration(gb, i, YearMonth::new(2025, m)) {
                        total += 1;
                        late += usize::from(d.late);
                        assert!((2..=4).contains(&d.lines.len()));
                        let kind = match d.review {
                            Review::Approve => "approve",
                            Review::Adjust { .. } => "adjust",
                            Review::ReturnThenApprove { .. } => "return",
                            Review::Reject { .. } => "reject",
                            Review::Pending => "pending",
                        };
                        *kinds.entry(kind).or_default() += 1;
                    }
                }
            }
        }
        assert!(kinds["approve"] * 10 > total * 8, "{kinds:?}");
        assert!(kinds["adjust"] > 100 && kinds["return"] > 100 && kinds["reject"] > 10);
        assert!(!kinds.contains_key("pending"));
        assert!(late > 50, "{late}");
    }

    /// Last year's totals as RULES.md §5 computes them, from the default standard's numbers:
    /// yearly caps per item, category caps, base and bonus caps, the evaluation's mean.
    fn estimate(
        standard: &jifen_standard::Standard,
        p: &Plan,
        gb: usize,
        i: usize,
        branch_entries: &[Vec<EntryPlan>],
    ) -> (f64, bool, bool) {
        let year = p.last_year();
        let mut by_item: HashMap<String, f64> = HashMap::new();
        let mut veto = false;
        let mut capped = false;
        let mut add = |code: &str, quantity: f64, share: f64| {
            let item = standard.items().iter().find(|it| it.code == code).unwrap();
            if item.kind == jifen_standard::ItemKind::Veto {
                veto = true;
                return;
            }
            if item.grade_cap.is_some() {
                capped = true;
            }
            *by_item.entry(code.to_owned()).or_default() += item.points.as_f64() * quantity * share;
        };
        for m in 1..=12 {
            let month = YearMonth::new(year, m);
            if let Some(d) = p.declaration(gb, i, month) {
                for (k, line) in d.lines.iter().enumerate() {
                    let share = match &d.review {
                        Review::Reject { .. } | Review::Pending => 0.0,
                        Review::Adjust { line, .. } if *line == k => 0.5,
                        _ => 1.0,
                    };
                    add(line.item, line.quantity as f64, share);
                }
            }
            for e in branch_entries[m as usize - 1]
                .iter()
                .filter(|e| e.member == i)
            {
                add(e.item, e.quantity as f64, 1.0);
            }
        }
        let mut categories: HashMap<String, f64> = HashMap::new();
        let mut bonus = 0.0;
        let mut deductions = 0.0;
        for (code, points) in &by_item {
            let item = standard.items().iter().find(|it| &it.code == code).unwrap();
            let capped_points = item
                .yearly_cap
                .map_or(*points, |cap| points.min(cap.as_f64()));
            match item.kind {
                jifen_standard::ItemKind::Base => {
                    *categories.entry(item.category.clone()).or_default() += capped_points;
                }
                jifen_standard::ItemKind::Bonus => bonus += capped_points,
                jifen_standard::ItemKind::Deduction => deductions += capped_points,
                jifen_standard::ItemKind::Veto => {}
            }
        }
        let base: f64 = categories
            .iter()
            .map(|(c, v)| {
                let cap = standard
                    .category(c)
                    .and_then(|c| c.cap)
                    .map_or(f64::MAX, |c| c.as_f64());
                v.min(cap)
            })
            .sum::<f64>()
            .min(70.0);
        let mut quarter_means = Vec::new();
        for q in 1..=4 {
            let ratings: Vec<u32> = p
                .ballots(gb, year, q)
                .iter()
                .flat_map(|b| {
                    b.ratings
                        .iter()
                        .filter(|(m, _)| *m == i)
                        .map(|(_, r)| r.score())
                })
                .collect();
            quarter_means.push(f64::from(ratings.iter().sum::<u32>()) / ratings.len() as f64);
        }
        let evaluation = quarter_means.iter().sum::<f64>() / 4.0 * 0.2;
        let total = (base + bonus.min(10.0) + deductions + evaluation).clamp(0.0, 100.0);
        (total, veto, capped)
    }

    #[test]
    fn last_year_gives_every_grade_in_both_shapes_and_the_quota_bites() {
        let standard = jifen_standard::default_2026().unwrap();
        for shape in [Shape::SMALL, Shape::FULL] {
            let p = plan(shape);
            // The grade each member's estimated year gives before the quota (veto, cap, bands).
            let mut grades: HashMap<&str, usize> = HashMap::new();
            // Per tier: members, and those in the tier's own band.
            let mut in_band: HashMap<Tier, (usize, usize)> = HashMap::new();
            for gb in 0..shape.branch_count() {
                let mut excellent_band = 0;
                let entries: Vec<Vec<EntryPlan>> = (1..=12)
                    .map(|m| p.branch_entries(gb, YearMonth::new(p.last_year(), m)))
                    .collect();
                for i in 0..shape.members {
                    let (total, veto, capped) = estimate(&standard, &p, gb, i, &entries);
                    let tier = p.tier(gb, i);
                    let band = match total {
                        t if t >= 90.0 => "excellent",
                        t if t >= 70.0 => "qualified",
                        t if t >= 60.0 => "basically_qualified",
                        _ => "unqualified",
                    };
                    let grade = if veto {
                        "unqualified"
                    } else if capped && band != "unqualified" {
                        "basically_qualified"
                    } else {
                        band
                    };
                    if !veto && !capped {
                        let own = match tier {
                            Tier::Star => "excellent",
                            Tier::Steady => "qualified",
                            Tier::Weak => "basically_qualified",
                            Tier::Failing => "unqualified",
                        };
                        let counts = in_band.entry(tier).or_default();
                        counts.0 += 1;
                        counts.1 += usize::from(band == own);
                    }
                    excellent_band += usize::from(grade == "excellent");
                    *grades.entry(grade).or_default() += 1;
                }
                // The quota trims the stars, but where X11 caps one of them.
                assert!(
                    gb == p.capped().0 || excellent_band > shape.members / 3,
                    "{shape} branch {gb}: the quota must trim the stars ({excellent_band})"
                );
            }
            // Most of each tier lands in its own band (weak members spread most: a few fall
            // to 不合格 or reach 合格, as in a real branch).
            for (tier, (members, own)) in &in_band {
                let least = match tier {
                    Tier::Weak => 0.6,
                    _ => 0.9,
                };
                assert!(
                    *own as f64 >= least * *members as f64,
                    "{shape}: only {own} of {members} {tier:?} members in their band"
                );
            }
            for g in [
                "excellent",
                "qualified",
                "basically_qualified",
                "unqualified",
            ] {
                assert!(
                    grades.get(g).copied().unwrap_or(0) > 0,
                    "{shape}: no {g}: {grades:?}"
                );
            }
        }
    }

    #[test]
    fn ballots_are_enough_for_a_valid_quarter_and_members_never_rate_themselves() {
        let p = plan(Shape::SMALL);
        let ballots = p.ballots(1, 2025, 4);
        assert_eq!(ballots.len(), MASSES_BALLOTS + MEMBER_BALLOTS);
        for b in &ballots {
            if let BallotKind::Member(voter) = b.kind {
                assert!(b.ratings.iter().all(|(m, _)| *m != voter));
            }
        }
        for i in 0..12 {
            let n = ballots
                .iter()
                .filter(|b| b.ratings.iter().any(|(m, _)| *m == i))
                .count();
            assert!(n >= 5, "member {i}: {n} ballots");
        }
    }

    #[test]
    fn the_special_members_are_distinct_and_never_a_secretary() {
        for shape in [Shape::SMALL, Shape::FULL] {
            let p = plan(shape);
            assert_ne!(p.vetoed(), p.capped());
            assert_ne!(p.vetoed().1, 0);
            assert_ne!(p.capped().1, 0);
            assert_eq!(p.tier(p.capped().0, p.capped().1), Tier::Star);
        }
    }
}
