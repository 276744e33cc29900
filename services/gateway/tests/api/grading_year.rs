//! A whole year 2026 of one branch (党支部), through the gateway's HTTP API only (plus moving the
//! shared clock and waiting for projections), graded to the deci-point against numbers worked
//! out by hand from RULES.md §1–§5 and the default standard (standards/2026.toml).
//!
//! Thirteen graded members (N = 13, so the excellent quota is ⌊13 / 3⌋ = 4):
//!
//! | who | profile                                                        | total | grade               | reasons                              |
//! |-----|----------------------------------------------------------------|-------|---------------------|--------------------------------------|
//! | S   | the secretary: branch records only                             |  70.0 | qualified (70 incl.)|                                      |
//! | A   | model member: bonus over the bonus cap, Q2 all poor (invalid)  | 100.0 | excellent           |                                      |
//! | B   | B01 over its yearly cap, a rejected B05, Q1 poor share = 1/3   |  93.5 | excellent           |                                      |
//! | C   | May returned (B07 dropped), corrected, approved; B06 yearly cap|  93.8 | excellent           |                                      |
//! | L   | X01 −3, an X12 revoked; ties W on total and evaluation         |  91.6 | qualified           | excellent_quota                      |
//! | W   | ties L, smaller deductions: the 4th excellent                  |  91.6 | excellent           |                                      |
//! | N   | probationary; no dues in July (base 69.5); 0.1 below W/L       |  91.5 | qualified           | excellent_quota, probation:on_time   |
//! | P   | two poor of five in Q3 (valid)                                 |  97.3 | qualified           | poor_mass_rating                     |
//! | H   | Party sanction `warning` decided 2026-06-18                    |  92.8 | basically_qualified | capped:warning                       |
//! | V   | veto V02 in September                                          |  92.0 | unqualified         | veto:V02                             |
//! | E   | X11 in July (−20, grade cap)                                   |  74.0 | basically_qualified | capped:X11                           |
//! | Q   | F02 lowered 4 → 2; May over the monthly cap refused; Q3 invalid|  88.3 | qualified           |                                      |
//! | U   | no organizational life after June; never rated                 |  62.0 | basically_qualified | no_valid_evaluation, lapse_suspected |
//!
//! Every member but S declares the same base package (February, May, August); the secretary
//! records the same branch package for everyone (with the exceptions in [`branch_entries`]):
//!
//! * P: P01 2 × 2 in Jan, Apr, Jul, Oct = 16 → yearly cap 12; P06 2 in Jun, Dec = 4;
//!   declared P05 2 (Feb) + 2 (May) + P02 1 (Aug) = 5 → 12 + 4 + 5 = 21 → category cap 20;
//! * O: O02 1 × 12 = 12; O01 3 in Mar, Jun, Sep, Dec = 12 → 24 → category cap 20;
//! * D: D01 0.5 × 12 = 6 (its yearly cap); D03 1 × 2 in Mar, Sep = 4 → 10;
//! * M: M01 5 in December;
//! * F: F02 4 (Feb) + 4 (May) = 8; F03 2 (May) + 2 (Aug) = 4; F04 1 × 3 = 3; F05 1 = 16 →
//!   category cap 15;
//! * base 20 + 20 + 10 + 5 + 15 = 70 (`base_cap`); S has no F and no declared P: 16 + 20 + 10 + 5 = 51.
//!
//! Monthly caps: every line sits exactly at its item's monthly cap (P01 2 × 2 = 4, F02 2 × 2 = 4,
//! D03 1 × 2 = 2 …) and counts in full; one submission over it is refused (422).
//!
//! Evaluation (群众评议): Q1 6 ballots, Q2 4 ballots (under `min_ballots` 5: not valid for anyone,
//! not counted), Q3 5 ballots, Q4 8 ballots; a quarter's score is the mean of 好 100, 较好 80,
//! 一般 60, 差 0 (shown rounded half up to 0.1); the year's evaluation points are the mean of the
//! valid quarters' exact scores × 20 / 100, rounded half up to 0.1 once (RULES.md §5 step 4; see
//! the rating tables below — here rounding each quarter first would give the same figures, the
//! case where it does not is crates/e2e/tests/e2e/evaluation.rs).
#![allow(clippy::unwrap_used)]

use self::Who::{A, B, C, E, H, L, N, P, Q, S, U, V, W};
use crate::helpers::{PROJECTION_DEADLINE, TestApp, assert_problem, spawn_app_with};
use crate::support::{png, upload};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const YEAR: i32 = 2026;

/// The branch's members. Enrolled in this order, so their ids (UUIDv7) ascend in it: `L` has a
/// smaller id than `W`, so the last tie-break (member id) would favour `L` — the deductions
/// decide before it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    S,
    A,
    B,
    C,
    L,
    W,
    N,
    P,
    H,
    V,
    E,
    Q,
    U,
}

const EVERYONE: [Who; 13] = [S, A, B, C, L, W, N, P, H, V, E, Q, U];

/// Name and category of each, in enrolment order.
const ROLL: [(Who, &str, &str); 13] = [
    (S, "书记", "full"),
    (A, "模范", "full"),
    (B, "急难险重", "full"),
    (C, "退回重报", "full"),
    (L, "扣分者", "full"),
    (W, "并列者", "full"),
    (N, "预备党员", "probationary"),
    (P, "差评较多", "full"),
    (H, "受警告处分", "full"),
    (V, "违法犯罪", "full"),
    (E, "政务警告", "full"),
    (Q, "核减者", "full"),
    (U, "失联者", "full"),
];

// ---------------------------------------------------------------------------------------------
// The year's plan

/// The lines `who` declares in `month` (1–12): the base package in February, May and August,
/// and the bonus items.
fn declared_lines(month: u32, who: Who) -> Vec<(&'static str, i64)> {
    if who == S {
        return Vec::new();
    }
    let mut lines = match month {
        2 => vec![("P05", 1), ("F02", 2), ("F04", 1)],
        5 => vec![("P05", 1), ("F02", 2), ("F03", 1), ("F04", 1)],
        8 => vec![("P02", 1), ("F03", 1), ("F04", 1), ("F05", 1)],
        _ => Vec::new(),
    };
    lines.extend(match (who, month) {
        (A, 10) => vec![("B02", 1)],
        (A, 11) => vec![("B04", 1), ("B03", 1)],
        (B, 3 | 7 | 10) => vec![("B01", 1)],
        (B, 12) => vec![("B05", 1)], // rejected
        (C, 4 | 6 | 9 | 11) => vec![("B06", 1)],
        (C, 5) => vec![("B07", 1)], // returned; the corrected declaration drops it
        (C, 12) => vec![("B08", 1)],
        (W, 6) => vec![("B10", 1)],
        (L, 7) => vec![("B05", 1)],
        (L, 9) => vec![("B10", 1)],
        (N, 9) => vec![("B02", 1)],
        (P, 4) => vec![("B04", 1)],
        (E, 3) => vec![("B03", 1)],
        (V, 3 | 6) => vec![("B08", 1)],
        (H, 1 | 3 | 4) => vec![("B06", 1)],
        _ => Vec::new(),
    });
    lines
}

/// How the secretary decides a declaration.
enum Review {
    Approve,
    /// Approve with the line of this item lowered to these points, for this reason.
    Lower(&'static str, f64, &'static str),
    Reject(&'static str),
    /// Return for correction; the member then declares again without the lines of this item.
    Return(&'static str, &'static str),
}

fn review_of(month: u32, who: Who) -> Review {
    match (who, month) {
        (Q, 2) => Review::Lower("F02", 2.0, "只参加了一次志愿服务，核减2分"),
        (C, 5) => Review::Return("B07 建议尚未被采纳，请删除后重新提交", "B07"),
        (B, 12) => Review::Reject("见义勇为事迹未经通报表扬，不予认定"),
        _ => Review::Approve,
    }
}

/// What the secretary records in `month`: the branch package for everyone, and the year's
/// deductions, veto and branch bonus.
fn branch_entries(month: u32) -> Vec<(Who, &'static str, i64)> {
    let mut out = Vec::new();
    for who in EVERYONE {
        // U stops coming to organizational life after June (O entries), but pays dues.
        let gone = who == U && month > 6;
        if !(who == N && month == 7) {
            out.push((who, "D01", 1)); // dues 0.5 (N forgot July)
        }
        if !gone {
            out.push((who, "O02", 1)); // group meeting 1
        }
        if [1, 4, 7, 10].contains(&month) {
            out.push((who, "P01", 2)); // two study sessions: 4, the monthly cap
        }
        if [3, 6, 9, 12].contains(&month) && !gone {
            out.push((who, "O01", 1)); // branch assembly 3
        }
        if [3, 9].contains(&month) {
            out.push((who, "D03", 2)); // two tasks: 2, the monthly cap
        }
        if [6, 12].contains(&month) {
            out.push((who, "P06", 1)); // test passed 2
        }
        if month == 12 {
            out.push((who, "M01", 1)); // a clean year 5
        }
    }
    match month {
        4 => out.push((L, "X01", 1)),      // −3
        6 | 12 => out.push((P, "B11", 1)), // +2 each
        7 => out.push((E, "X11", 1)),      // −20, grade cap
        9 => out.push((V, "V02", 1)),      // veto
        10 => out.push((L, "X12", 1)),     // −1, revoked in November
        _ => {}
    }
    out
}

/// Ratings of one quarter: one character per ballot (`E` 好, `G` 较好, `F` 一般, `P` 差,
/// `-` not rated by that ballot).
type Ratings = [(Who, &'static str); 13];

/// Q1, 6 ballots.
const Q1: Ratings = [
    (S, "EEEEGG"), // (4 × 100 + 2 × 80) / 6 = 93.33 → 93.3
    (A, "EEEEEE"), // 100
    (B, "EEEEPP"), // 400 / 6 = 66.67 → 66.7; poor 2/6, exactly 1/3: not over
    (C, "EEEEEE"),
    (L, "EEEEEE"),
    (W, "EEEEEE"),
    (N, "EEEEEE"),
    (P, "EEEEEE"),
    (H, "EEEEEG"), // 580 / 6 = 96.67 → 96.7
    (V, "EEEEEE"),
    (E, "EEEEEE"),
    (Q, "EEEEEE"),
    (U, "------"),
];

/// Q2, 4 ballots: under `min_ballots`, so nobody's quarter is valid — A's all-poor would
/// otherwise ruin A.
const Q2: Ratings = [
    (S, "GGGG"),
    (A, "PPPP"),
    (B, "GGGG"),
    (C, "GGGG"),
    (L, "GGGG"),
    (W, "GGGG"),
    (N, "FFFF"),
    (P, "GGGG"),
    (H, "GGGG"),
    (V, "GGGG"),
    (E, "GGGG"),
    (Q, "FFFF"),
    (U, "----"),
];

/// Q3, 5 ballots.
const Q3: Ratings = [
    (S, "EEEEG"), // 480 / 5 = 96
    (A, "EEEEE"),
    (B, "EEEEG"), // 96
    (C, "EEEEE"),
    (L, "EEGEE"), // 96
    (W, "EEEEG"), // 96
    (N, "EEEEE"),
    (P, "EPEPE"), // 300 / 5 = 60; poor 2/5 = 0.4 > 1/3
    (H, "EEEEE"),
    (V, "EEEEE"),
    (E, "EEEEE"),
    (Q, "PPPP-"), // 4 ballots: not valid for Q (nor its poor share)
    (U, "-----"),
];

/// Q4, 8 ballots.
const Q4: Ratings = [
    (S, "EEEEEEGG"), // 760 / 8 = 95
    (A, "EEEEEEEE"),
    (B, "EEEEEEEE"),
    (C, "EEEEEEEG"), // 780 / 8 = 97.5
    (L, "EEEGEEEE"), // 97.5
    (W, "EEEEEEEG"), // 97.5
    (N, "EEEEEEEE"),
    (P, "EEEEEEEE"),
    (H, "EEEEEEEE"),
    (V, "EEEEEEEE"),
    (E, "EEEEEEEE"),
    (Q, "EEEEEEGF"), // 740 / 8 = 92.5
    (U, "--------"),
];

// ---------------------------------------------------------------------------------------------
// What the year must give, by hand

struct Expect {
    who: Who,
    base: f64,
    bonus: f64,
    deductions: f64,
    evaluation: f64,
    total: f64,
    /// base + bonus + deductions.
    declared: f64,
    grade: &'static str,
    reasons: &'static [&'static str],
}

const EXPECTED: [Expect; 13] = [
    // S: branch only: P 16 + O 20 + D 10 + M 5 = 51. Eval (93.3 + 96 + 95) / 3 = 94.77 × 0.2 =
    // 18.95 → 19.0. 51 + 19.0 = 70.0 ≥ 70: qualified (lower bounds are inclusive).
    Expect {
        who: S,
        base: 51.0,
        bonus: 0.0,
        deductions: 0.0,
        evaluation: 19.0,
        total: 70.0,
        declared: 51.0,
        grade: "qualified",
        reasons: &[],
    },
    // A: base 70. Bonus B02 2 + B04 6 + B03 4 = 12 → bonus cap 10. Eval 100 × 0.2 = 20.0
    // (Q2 not valid). 70 + 10 + 20 = 100.
    Expect {
        who: A,
        base: 70.0,
        bonus: 10.0,
        deductions: 0.0,
        evaluation: 20.0,
        total: 100.0,
        declared: 80.0,
        grade: "excellent",
        reasons: &[],
    },
    // B: base 70. Bonus B01 3 × 3 = 9 → yearly cap 6 (B05 3 rejected). Eval (66.7 + 96 + 100)
    // / 3 = 87.57 × 0.2 = 17.51 → 17.5. 70 + 6 + 17.5 = 93.5; Q1 poor share exactly 1/3 does
    // not block.
    Expect {
        who: B,
        base: 70.0,
        bonus: 6.0,
        deductions: 0.0,
        evaluation: 17.5,
        total: 93.5,
        declared: 76.0,
        grade: "excellent",
        reasons: &[],
    },
    // C: base 70. Bonus B06 1 × 4 → yearly cap 3, + B08 1 = 4 (the returned B07 2 never
    // counts). Eval (100 + 100 + 97.5) / 3 = 99.17 × 0.2 = 19.83 → 19.8. 70 + 4 + 19.8 = 93.8.
    Expect {
        who: C,
        base: 70.0,
        bonus: 4.0,
        deductions: 0.0,
        evaluation: 19.8,
        total: 93.8,
        declared: 74.0,
        grade: "excellent",
        reasons: &[],
    },
    // L: base 70. Bonus B05 3 + B10 2 = 5. Deductions X01 −3 (X12 −1 revoked). Eval (100 + 96
    // + 97.5) / 3 = 97.83 × 0.2 = 19.57 → 19.6. 70 + 5 − 3 + 19.6 = 91.6: ties W on total and
    // evaluation, larger deductions → 5th candidate, over the quota of 4.
    Expect {
        who: L,
        base: 70.0,
        bonus: 5.0,
        deductions: -3.0,
        evaluation: 19.6,
        total: 91.6,
        declared: 72.0,
        grade: "qualified",
        reasons: &["excellent_quota"],
    },
    // W: base 70. Bonus B10 2. Eval as L's: 19.6. 70 + 2 + 19.6 = 91.6, deductions 0: 4th.
    Expect {
        who: W,
        base: 70.0,
        bonus: 2.0,
        deductions: 0.0,
        evaluation: 19.6,
        total: 91.6,
        declared: 72.0,
        grade: "excellent",
        reasons: &[],
    },
    // N: D01 0.5 × 11 = 5.5, D 9.5 → base 69.5. Bonus B02 2. Eval 20.0. 69.5 + 2 + 20 = 91.5:
    // 0.1 below W although its evaluation is higher → 6th candidate. Probationary, ≥ 85.
    Expect {
        who: N,
        base: 69.5,
        bonus: 2.0,
        deductions: 0.0,
        evaluation: 20.0,
        total: 91.5,
        declared: 71.5,
        grade: "qualified",
        reasons: &["excellent_quota", "probation:on_time"],
    },
    // P: base 70. Bonus B04 6 + B11 2 × 2 = 10. Eval (100 + 60 + 100) / 3 = 86.67 × 0.2 =
    // 17.33 → 17.3. 70 + 10 + 17.3 = 97.3, but Q3's poor share 0.4 > 1/3: not excellent.
    Expect {
        who: P,
        base: 70.0,
        bonus: 10.0,
        deductions: 0.0,
        evaluation: 17.3,
        total: 97.3,
        declared: 80.0,
        grade: "qualified",
        reasons: &["poor_mass_rating"],
    },
    // H: base 70. Bonus B06 1 × 3 = 3. Eval (96.7 + 100 + 100) / 3 = 98.9 × 0.2 = 19.78 →
    // 19.8. 70 + 3 + 19.8 = 92.8, a warning in 2026: at most basically qualified.
    Expect {
        who: H,
        base: 70.0,
        bonus: 3.0,
        deductions: 0.0,
        evaluation: 19.8,
        total: 92.8,
        declared: 73.0,
        grade: "basically_qualified",
        reasons: &["capped:warning"],
    },
    // V: base 70. Bonus B08 1 × 2 = 2. Eval 20.0. 70 + 2 + 20 = 92.0, V02: unqualified.
    Expect {
        who: V,
        base: 70.0,
        bonus: 2.0,
        deductions: 0.0,
        evaluation: 20.0,
        total: 92.0,
        declared: 72.0,
        grade: "unqualified",
        reasons: &["veto:V02"],
    },
    // E: base 70. Bonus B03 4. X11 −20. Eval 20.0. 70 + 4 − 20 + 20 = 74.0: qualified by the
    // bands, X11 caps it at basically qualified.
    Expect {
        who: E,
        base: 70.0,
        bonus: 4.0,
        deductions: -20.0,
        evaluation: 20.0,
        total: 74.0,
        declared: 54.0,
        grade: "basically_qualified",
        reasons: &["capped:X11"],
    },
    // Q: F02 2 (lowered from 4) + 4 + F03 4 + F04 3 + F05 1 = 14, under the F cap → base 69.
    // Eval: Q3 not valid (4 ballots) → (100 + 92.5) / 2 = 96.25 × 0.2 = 19.25 → half up 19.3.
    // 69 + 19.3 = 88.3.
    Expect {
        who: Q,
        base: 69.0,
        bonus: 0.0,
        deductions: 0.0,
        evaluation: 19.3,
        total: 88.3,
        declared: 69.0,
        grade: "qualified",
        reasons: &[],
    },
    // U: O02 1 × 6 + O01 3 × 2 = 12; P 20, D 10, M 5, F 15 → 62. Never rated → 0. 62.0:
    // basically qualified; no O entry from July to December (6 months).
    Expect {
        who: U,
        base: 62.0,
        bonus: 0.0,
        deductions: 0.0,
        evaluation: 0.0,
        total: 62.0,
        declared: 62.0,
        grade: "basically_qualified",
        reasons: &["no_valid_evaluation", "lapse_suspected"],
    },
];

// ---------------------------------------------------------------------------------------------
// Helpers

/// Points as the API renders them: a whole number, or one decimal.
fn pts(points: f64) -> Value {
    let tenths = (points * 10.0).round() as i64;
    if tenths % 10 == 0 {
        json!(tenths / 10)
    } else {
        json!(tenths as f64 / 10.0)
    }
}

fn month_of(m: u32) -> String {
    format!("{YEAR}-{m:02}")
}

fn rating(c: u8) -> Option<&'static str> {
    match c {
        b'E' => Some("excellent"),
        b'G' => Some("good"),
        b'F' => Some("fair"),
        b'P' => Some("poor"),
        _ => None,
    }
}

struct Person {
    id: String,
    token: String,
    /// An uploaded evidence reference of theirs.
    evidence: String,
}

/// The branch through the year, and what the ledger should hold.
struct Year<'a> {
    app: &'a TestApp,
    branch: String,
    /// S's token: the branch secretary.
    sec: String,
    people: Vec<Person>,
    /// Items whose lines need evidence (from `GET /standards/2026`).
    needs_evidence: HashSet<String>,
    /// Ledger entries each member should end with: approved lines and standing records.
    entries: [usize; 13],
}

impl Year<'_> {
    fn id(&self, who: Who) -> &str {
        &self.people[who as usize].id
    }

    fn name(&self, id: &str) -> Who {
        EVERYONE
            .into_iter()
            .find(|w| self.id(*w) == id)
            .unwrap_or_else(|| panic!("{id} is nobody of the branch"))
    }

    /// `PUT` the member's month with `lines` (evidence attached where the item needs it).
    async fn put(&self, who: Who, month: &str, lines: &[(&str, i64)]) -> Value {
        let p = &self.people[who as usize];
        let lines: Vec<Value> = lines
            .iter()
            .map(|(item, quantity)| {
                let mut line = json!({"item_code": item, "quantity": quantity, "note": format!("{month} {item}")});
                if self.needs_evidence.contains(*item) {
                    line["evidence"] = json!([p.evidence]);
                }
                line
            })
            .collect();
        let (status, draft) = self
            .app
            .put(
                &format!("/api/v1/members/{}/declarations/{month}", p.id),
                Some(&p.token),
                &json!({ "lines": lines }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{who:?} {month}: {draft}");
        assert_eq!(draft["status"], "draft", "{draft}");
        draft
    }

    async fn submit(&self, who: Who, id: &str) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/v1/declarations/{id}:submit"),
                Some(&self.people[who as usize].token),
                &json!({}),
            )
            .await
    }

    /// Saves and submits; answers the submitted declaration.
    async fn declare(&self, who: Who, month: &str, lines: &[(&str, i64)]) -> Value {
        let draft = self.put(who, month, lines).await;
        let (status, submitted) = self.submit(who, draft["id"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{who:?} {month}: {submitted}");
        assert_eq!(submitted["status"], "submitted", "{submitted}");
        submitted
    }

    async fn review(&self, declaration: &Value, body: Value) -> Value {
        let id = declaration["id"].as_str().unwrap();
        let (status, reviewed) = self
            .app
            .post(
                &format!("/api/v1/declarations/{id}:review"),
                Some(&self.sec),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reviewed}");
        reviewed
    }

    /// Counts the approved member lines of `declaration` into the member's ledger.
    fn count_approved(&mut self, who: Who, declaration: &Value) {
        assert_eq!(declaration["status"], "approved", "{declaration}");
        let approved = declaration["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["source"] == "member" && l["approved_points"].is_number())
            .count();
        self.entries[who as usize] += approved;
    }

    /// The branch secretary approves these submitted declarations in one batch.
    async fn batch_approve(&mut self, month: &str, submitted: &[(Who, Value)]) {
        if submitted.is_empty() {
            return;
        }
        let ids: Vec<&str> = submitted
            .iter()
            .map(|(_, d)| d["id"].as_str().unwrap())
            .collect();
        let (status, result) = self
            .app
            .post(
                &format!("/api/v1/orgs/{}/declarations:batch-approve", self.branch),
                Some(&self.sec),
                &json!({"month": month, "declaration_ids": ids}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert_eq!(result["approved"], ids.len(), "{result}");
        assert_eq!(result["skipped"], json!([]), "{result}");
        for (who, d) in submitted {
            let (status, approved) = self
                .app
                .get(
                    &format!("/api/v1/members/{}/declarations/{month}", self.id(*who)),
                    Some(&self.sec),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{approved}");
            assert_eq!(approved["id"], d["id"]);
            self.count_approved(*who, &approved);
        }
    }

    /// The secretary records branch entries of `month`, except their own, which the admin
    /// above records (nobody records their own points); answers the records.
    async fn record(&mut self, month: &str, entries: &[(Who, &str, i64)]) -> Vec<Value> {
        let mut records = Vec::new();
        let (own, others): (Vec<_>, Vec<_>) = entries.iter().partition(|(who, ..)| *who == S);
        for (batch, token) in [
            (others, self.sec.clone()),
            (own, self.app.admin_token.clone()),
        ] {
            if batch.is_empty() {
                continue;
            }
            let body: Vec<Value> = batch
                .iter()
                .map(|(who, item, quantity)| {
                    json!({"member_id": self.id(*who), "item_code": item, "quantity": quantity, "note": format!("{month} {item}")})
                })
                .collect();
            let (status, recorded) = self
                .app
                .post(
                    &format!("/api/v1/orgs/{}/branch-records", self.branch),
                    Some(&token),
                    &json!({"month": month, "entries": body}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{month}: {recorded}");
            let batch_records = recorded["records"].as_array().unwrap();
            assert_eq!(batch_records.len(), batch.len());
            records.extend(batch_records.iter().cloned());
        }
        for (who, ..) in entries {
            self.entries[*who as usize] += 1;
        }
        records
    }

    async fn revoke(&mut self, record: &Value, reason: &str) {
        let id = record["id"].as_str().unwrap();
        let (status, revoked) = self
            .app
            .post(
                &format!("/api/v1/branch-records/{id}:revoke"),
                Some(&self.sec),
                &json!({ "reason": reason }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{revoked}");
        assert_eq!(revoked["revoked"], true, "{revoked}");
        let who = self.name(record["member_id"].as_str().unwrap());
        self.entries[who as usize] -= 1;
    }

    /// One quarter's mass evaluation: the secretary opens the round and issues one code per
    /// ballot; each evaluator redeems a code and rates; the secretary closes the round.
    /// Answers the closed round.
    async fn evaluate(&self, quarter: &str, ratings: &Ratings) -> Value {
        let ballots = ratings[0].1.len();
        assert!(ratings.iter().all(|(_, r)| r.len() == ballots));
        let (status, round) = self
            .app
            .post(
                &format!("/api/v1/orgs/{}/evaluation-rounds", self.branch),
                Some(&self.sec),
                &json!({ "quarter": quarter }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{round}");
        assert_eq!(round["roster_size"], 13, "{round}");
        let rid = round["id"].as_str().unwrap().to_owned();
        let (status, issued) = self
            .app
            .post(
                &format!("/api/v1/evaluation-rounds/{rid}/invitations"),
                Some(&self.sec),
                &json!({"count": ballots, "evaluator_kind": "masses"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        let codes = issued["codes"].as_array().unwrap();
        assert_eq!(codes.len(), ballots);
        for (j, code) in codes.iter().enumerate() {
            let (status, login) = self
                .app
                .post("/api/v1/auth/evaluator", None, &json!({ "code": code }))
                .await;
            assert_eq!(status, StatusCode::OK, "{login}");
            let token = login["access_token"].as_str().unwrap();
            let rated: Vec<Value> = ratings
                .iter()
                .filter_map(|(who, r)| {
                    rating(r.as_bytes()[j])
                        .map(|rating| json!({"member_id": self.id(*who), "rating": rating}))
                })
                .collect();
            let (status, body) = self
                .app
                .post(
                    &format!("/api/v1/evaluation-rounds/{rid}/ballots"),
                    Some(token),
                    &json!({ "ratings": rated }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{quarter} ballot {j}: {body}");
        }
        let (status, closed) = self
            .app
            .post(
                &format!("/api/v1/evaluation-rounds/{rid}:close"),
                Some(&self.sec),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{closed}");
        assert_eq!(closed["ballots"], ballots, "{closed}");
        closed
    }

    /// `who`'s result in a closed round: (score, ballots, valid).
    fn result(&self, round: &Value, who: Who) -> (Option<f64>, Option<i64>, Option<bool>) {
        let r = round["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["member_id"] == self.id(who))
            .unwrap_or_else(|| panic!("{who:?} not in {round}"));
        (
            r["score"].as_f64(),
            r["ballots"].as_i64(),
            r["valid"].as_bool(),
        )
    }
}

/// Enrols the committee, the branch and its thirteen members (S its secretary), each with a
/// login and one evidence upload; waits until the declarations and evaluations services know
/// them all.
async fn enrol(app: &TestApp) -> Year<'_> {
    let committee = app.org(&app.root_id, "全年定级 党委", "committee").await;
    let branch = app
        .org(
            committee["id"].as_str().unwrap(),
            "全年定级 党支部",
            "branch",
        )
        .await;
    let branch = branch["id"].as_str().unwrap().to_owned();
    let mut people = Vec::new();
    for (i, (who, name, category)) in ROLL.iter().enumerate() {
        assert_eq!(*who as usize, i);
        let username = format!("gy-{who:?}").to_lowercase();
        let password = format!("password-{username}");
        let joined_on = if *category == "probationary" {
            "2025-12-01"
        } else {
            "2012-07-01"
        };
        let (status, member) = app
            .post(
                "/api/v1/members",
                Some(&app.admin_token),
                &json!({
                    "org_id": branch, "name": name, "gender": "male", "category": category,
                    "joined_on": joined_on, "phone": crate::helpers::phone(),
                    "id_card": crate::helpers::id_card(), "username": username, "password": password,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        let id = member["id"].as_str().unwrap().to_owned();
        if *who == S {
            let (status, body) = app
                .post(
                    &format!("/api/v1/orgs/{branch}/roles"),
                    Some(&app.admin_token),
                    &json!({"member_id": id, "role": "secretary"}),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        }
        let token = app.login(&username, &password).await;
        let (status, evidence) =
            upload(app, &token, &png(u8::try_from(i).unwrap()), "image/png").await;
        assert_eq!(status, StatusCode::CREATED, "{evidence}");
        let evidence = evidence["reference"].as_str().unwrap().to_owned();
        people.push(Person {
            id,
            token,
            evidence,
        });
    }
    // The quota tie below relies on the id order of L and W.
    assert!(people[L as usize].id < people[W as usize].id);

    for p in &people {
        app.wait_member(&p.id).await;
    }
    app.wait_org(&branch).await;
    wait_evaluations_roster(app, &branch, EVERYONE.len()).await;

    let (status, standard) = app
        .get(&format!("/api/v1/standards/{YEAR}"), Some(&app.admin_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{standard}");
    let needs_evidence = standard["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["evidence_required"] == true)
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect();
    let sec = people[S as usize].token.clone();
    Year {
        app,
        branch,
        sec,
        people,
        needs_evidence,
        entries: [0; 13],
    }
}

/// Polls the evaluations service's replica until it holds `n` active members of the branch.
async fn wait_evaluations_roster(app: &TestApp, branch: &str, n: usize) {
    let org: uuid::Uuid = branch.parse().unwrap();
    let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
    loop {
        let row = app
            .evaluations_db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) FROM replica_members WHERE org_id = $1 AND status = 'active'",
                [org.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        let count: i64 = row.try_get_by_index(0).unwrap();
        if count == i64::try_from(n).unwrap() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the evaluations replica holds {count} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the grading service's projection until it holds a sanction of the member.
async fn wait_grading_sanction(app: &TestApp, member: &str) {
    let id: uuid::Uuid = member.parse().unwrap();
    let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
    loop {
        let row = app
            .grading_db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT coalesce((SELECT jsonb_array_length(sanctions) FROM members WHERE id = $1), 0)",
                [id.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        let count: i32 = row.try_get_by_index(0).unwrap();
        if count > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grading projection never got the sanction"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ledger totals of an expectation, as the ledger answers them.
fn expected_ledger(e: &Expect) -> Value {
    json!({
        "who": format!("{:?}", e.who),
        "base_points": pts(e.base),
        "bonus_points": pts(e.bonus),
        "deduction_points": pts(e.deductions),
        "evaluation_points": pts(e.evaluation),
        "total": pts(e.total),
    })
}

fn actual_ledger(who: Who, ledger: &Value) -> Value {
    json!({
        "who": format!("{who:?}"),
        "base_points": ledger["base_points"],
        "bonus_points": ledger["bonus_points"],
        "deduction_points": ledger["deduction_points"],
        "evaluation_points": ledger["evaluation_points"],
        "total": ledger["total"],
    })
}

// ---------------------------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_year_of_a_branch_is_graded_to_the_deci_point() {
    // A year squeezed into seconds: 36 logins and evaluator codes, and a busy secretary, would
    // trip the per-minute rate limits meant for people.
    let app = spawn_app_with(|s| {
        s.code_exchanges_per_minute = 10_000;
        s.rate_limit_per_minute = 100_000;
    })
    .await;
    let mut y = enrol(&app).await;
    let mut revoke_in_november = None;

    for m in 1..=12 {
        let month = month_of(m);
        // The 20th, 10:00 in Shanghai: the month is open for the members' own declarations.
        app.clock
            .set(format!("{month}-20T02:00:00Z").parse().unwrap());

        // May: Q first claims F02 × 3 = 6 points, over its monthly cap of 4: refused on submit.
        if m == 5 {
            let over = [("P05", 1), ("F02", 3), ("F03", 1), ("F04", 1)];
            let draft = y.put(Q, &month, &over).await;
            let (status, body) = y.submit(Q, draft["id"].as_str().unwrap()).await;
            assert_problem(
                status,
                &body,
                422,
                "monthly_cap_exceeded",
                Some("lines[1].quantity"),
            );
            assert!(body["detail"].as_str().unwrap().contains("F02"), "{body}");
        }

        // The members declare; the secretary reviews.
        let mut plain = Vec::new();
        for who in EVERYONE {
            let lines = declared_lines(m, who);
            if lines.is_empty() {
                continue;
            }
            let submitted = y.declare(who, &month, &lines).await;
            match review_of(m, who) {
                Review::Approve => plain.push((who, submitted)),
                Review::Lower(item, points, reason) => {
                    let line = submitted["lines"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|l| l["source"] == "member" && l["item_code"] == item)
                        .unwrap();
                    let approved = y
                        .review(
                            &submitted,
                            json!({"decision": "approve", "lines": [
                                {"line_id": line["line_id"], "approved_points": points, "reason": reason}
                            ]}),
                        )
                        .await;
                    assert_eq!(approved["claimed_total"], 7, "{approved}"); // P05 2 + F02 4 + F04 1
                    assert_eq!(approved["approved_total"], 5, "{approved}"); // P05 2 + F02 2 + F04 1
                    y.count_approved(who, &approved);
                }
                Review::Reject(comment) => {
                    let rejected = y
                        .review(
                            &submitted,
                            json!({"decision": "reject", "comment": comment}),
                        )
                        .await;
                    assert_eq!(rejected["status"], "rejected", "{rejected}");
                }
                Review::Return(comment, dropped) => {
                    let returned = y
                        .review(
                            &submitted,
                            json!({"decision": "return", "comment": comment}),
                        )
                        .await;
                    assert_eq!(returned["status"], "returned", "{returned}");
                    // Two days later the member corrects it, submits again, and it is approved.
                    app.clock.advance(chrono::Duration::days(2));
                    let corrected: Vec<(&str, i64)> = lines
                        .iter()
                        .copied()
                        .filter(|(item, _)| *item != dropped)
                        .collect();
                    let resubmitted = y.declare(who, &month, &corrected).await;
                    assert_eq!(resubmitted["id"], submitted["id"]);
                    let approved = y.review(&resubmitted, json!({"decision": "approve"})).await;
                    y.count_approved(who, &approved);
                }
            }
        }
        y.batch_approve(&month, &plain).await;

        // The branch's own records of the month.
        let records = y.record(&month, &branch_entries(m)).await;
        if m == 10 {
            revoke_in_november = records.into_iter().find(|r| r["item_code"] == "X12");
        }
        if m == 11 {
            let record = revoke_in_november.take().unwrap();
            assert_eq!(record["member_id"], y.id(L));
            y.revoke(&record, "记录有误：当天请假已获批准").await;
        }

        // June: the committee's sanction of H (a warning, decided in the graded year).
        if m == 6 {
            let (status, sanction) = app
                .post(
                    &format!("/api/v1/members/{}/sanctions", y.id(H)),
                    Some(&app.admin_token),
                    &json!({"kind": "warning", "decided_on": "2026-06-18", "reason": "违反组织纪律"}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{sanction}");
        }

        // The quarter's mass evaluation, at the end of its last month.
        match m {
            3 => {
                let round = y.evaluate("2026-Q1", &Q1).await;
                assert_eq!(y.result(&round, B), (Some(66.7), Some(6), Some(true)));
            }
            6 => {
                let round = y.evaluate("2026-Q2", &Q2).await;
                // Four ballots: nobody's quarter is valid.
                assert_eq!(y.result(&round, A), (Some(0.0), Some(4), Some(false)));
                assert!(
                    round["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|r| r["valid"] == false),
                    "{round}"
                );
            }
            9 => {
                let round = y.evaluate("2026-Q3", &Q3).await;
                assert_eq!(y.result(&round, P), (Some(60.0), Some(5), Some(true)));
                assert_eq!(y.result(&round, Q), (Some(0.0), Some(4), Some(false)));
            }
            12 => {
                let round = y.evaluate("2026-Q4", &Q4).await;
                assert_eq!(y.result(&round, Q), (Some(92.5), Some(8), Some(true)));
                assert_eq!(y.result(&round, S), (Some(95.0), Some(8), Some(true)));
            }
            _ => {}
        }
    }

    // January 2027: the whole of 2026 is past. Wait until the grading service has every event:
    // each ledger holds exactly its entries, the four quarters, and the totals worked out by hand.
    app.clock.set("2027-01-10T02:00:00Z".parse().unwrap());
    wait_grading_sanction(&app, y.id(H)).await;
    let deadline = tokio::time::Instant::now() + PROJECTION_DEADLINE;
    for e in &EXPECTED {
        let path = format!("/api/v1/members/{}/ledger?year={YEAR}", y.id(e.who));
        let want_entries = y.entries[e.who as usize];
        loop {
            let (status, ledger) = app.get(&path, Some(&y.sec)).await;
            assert_eq!(status, StatusCode::OK, "{ledger}");
            let entries = ledger["entries"].as_array().unwrap().len();
            let quarters = ledger["quarters"].as_array().unwrap().len();
            let settled = entries == want_entries
                && quarters == 4
                && actual_ledger(e.who, &ledger) == expected_ledger(e);
            if settled {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                assert_eq!(
                    (entries, quarters),
                    (want_entries, 4),
                    "{:?}'s ledger entries and quarters: {ledger}",
                    e.who
                );
                assert_eq!(
                    actual_ledger(e.who, &ledger),
                    expected_ledger(e),
                    "{:?}'s ledger totals: {ledger}",
                    e.who
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The grading, computed by the branch's secretary.
    let path = format!("/api/v1/orgs/{}/gradings/{YEAR}", y.branch);
    let (status, grading) = app
        .post(&format!("{path}:compute"), Some(&y.sec), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{grading}");
    assert_eq!(grading["status"], "proposed", "{grading}");
    let rows = grading["members"].as_array().unwrap();
    assert_eq!(rows.len(), 13, "{grading}");
    let summary = |row: &Value| {
        json!({
            "who": format!("{:?}", y.name(row["member_id"].as_str().unwrap())),
            "total": row["total"],
            "declared_points": row["declared_points"],
            "evaluation_points": row["evaluation_points"],
            "proposed_grade": row["proposed_grade"],
            "reasons": row["reasons"],
        })
    };
    let mut actual: Vec<Value> = rows.iter().map(summary).collect();
    actual.sort_by_key(|r| {
        let who = r["who"].as_str().unwrap().to_owned();
        EVERYONE.iter().position(|w| format!("{w:?}") == who)
    });
    let expected: Vec<Value> = EXPECTED
        .iter()
        .map(|e| {
            json!({
                "who": format!("{:?}", e.who),
                "total": pts(e.total),
                "declared_points": pts(e.declared),
                "evaluation_points": pts(e.evaluation),
                "proposed_grade": e.grade,
                "reasons": e.reasons,
            })
        })
        .collect();
    assert_eq!(actual, expected, "{grading}");
    // The quota: exactly ⌊13 / 3⌋ = 4 excellent — A 100, C 93.8, B 93.5, W 91.6.
    let excellent = rows
        .iter()
        .filter(|r| r["proposed_grade"] == "excellent")
        .count();
    assert_eq!(excellent, 4);

    // The branch confirms without overrides: every grade is the proposed one.
    let (status, confirmed) = app
        .post(&format!("{path}:confirm"), Some(&y.sec), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
    let confirmed_rows = confirmed["members"].as_array().unwrap();
    assert_eq!(confirmed_rows.len(), 13);
    for e in &EXPECTED {
        let row = confirmed_rows
            .iter()
            .find(|r| r["member_id"] == y.id(e.who))
            .unwrap();
        assert_eq!(row["proposed_grade"], e.grade, "{:?}: {row}", e.who);
        assert_eq!(row["grade"], e.grade, "{:?}: {row}", e.who);
        assert_eq!(row["total"], pts(e.total), "{:?}: {row}", e.who);
    }
}
