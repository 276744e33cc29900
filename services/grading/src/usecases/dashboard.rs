//! The dashboard 党建看板 of an organization's subtree for one month
//! (docs/decisions/0008-dashboard.md): how many active members, how many of them declared, the
//! mean of their month's ledger points, the year's published grades, and the same figures for
//! each direct child organization.
//!
//! Invariants:
//! * set-based: three statements whatever the size of the subtree (figures grouped by child,
//!   the children's names, the grade counts), never a statement per member; the figures are
//!   read from the rollup, one row per organization path (docs/decisions/0018);
//! * the organization's figures are the sums of its groups' (its own members and each child's),
//!   so a child's members and declarations always add up to the parent's;
//! * authorization (staff over the organization) is checked before anything is read.

use super::{AppError, Grading, authorize, check_year};
use crate::authz;
use crate::domain::dashboard::{LAGGING_PERMILLE, lagging, mean_tenths, participation_permille};
use crate::store::dashboard as store;
use jifen_platform::auth::Principal;
use std::collections::HashMap;
use uuid::Uuid;

/// The month's figures of one subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub org_id: Uuid,
    pub name: String,
    /// The organization's kind (`committee`, `branch`, `group`, …).
    pub kind: String,
    pub members: i64,
    pub declared: i64,
    /// Sum of the month's ledger points, deci-points.
    pub points: i64,
    pub participation_permille: i32,
    /// Mean points per member, deci-points.
    pub points_avg: i32,
}

impl Figures {
    fn new(org: (Uuid, String, String), members: i64, declared: i64, points: i64) -> Self {
        let (org_id, name, kind) = org;
        Self {
            org_id,
            name,
            kind,
            members,
            declared,
            points,
            participation_permille: participation_permille(declared, members),
            points_avg: mean_tenths(points, members),
        }
    }
}

/// Confirmed or final grades of the year, by grade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GradeCounts {
    pub excellent: i64,
    pub qualified: i64,
    pub basically_qualified: i64,
    pub unqualified: i64,
}

/// What `GetDashboard` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardView {
    pub org_path: String,
    /// The parent organization (`None` at the root).
    pub parent_id: Option<Uuid>,
    /// The organizations above, the root first, up to the parent — only those the caller
    /// manages (a committee's admin does not see the city above).
    pub ancestors: Vec<(Uuid, String)>,
    pub year: i32,
    pub month: u32,
    pub total: Figures,
    pub grades: Option<GradeCounts>,
    pub children: Vec<Figures>,
}

/// What `GetDashboardTrend` answers: the figures of each month of a year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendView {
    pub org_id: Uuid,
    pub org_path: String,
    pub name: String,
    pub year: i32,
    /// (month 1–12, that month's figures), January first.
    pub months: Vec<(u32, Figures)>,
}

/// One branch of `GetDashboardBranches`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchLine {
    pub figures: Figures,
    pub parent: Option<(Uuid, String)>,
    pub lagging: bool,
}

/// What `GetDashboardBranches` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchesView {
    pub org_id: Uuid,
    pub org_path: String,
    pub year: i32,
    pub month: u32,
    pub threshold_permille: i32,
    /// Lowest participation first, then by name and id.
    pub items: Vec<BranchLine>,
}

/// `YYYY-MM` of a year from 2000 to 2100 → (year, month), or a bad `month` field.
pub fn parse_month(text: &str) -> Result<(i32, u32), AppError> {
    let bad = || {
        AppError::invalid(
            "month",
            "must be a month YYYY-MM of a year from 2000 to 2100",
        )
    };
    let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    if !(2000..=2100).contains(&year) || !(1..=12).contains(&month) {
        return Err(bad());
    }
    Ok((year, month))
}

impl Grading {
    /// `GetDashboard`: the figures of `year`-`month` for the subtree of `org_id`.
    pub async fn dashboard(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        month: u32,
    ) -> Result<DashboardView, AppError> {
        let org = self.org(org_id).await?;
        authorize(
            authz::read_dashboard(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let groups = store::figures_by_child(&self.db, &org.path, year, month).await?;
        let children = store::children(&self.db, org.id).await?;
        let above = store::on_path(&self.db, &org.path).await?;
        let grades = store::grade_counts(&self.db, &org.path, year).await?;

        let (mut members, mut declared, mut points) = (0, 0, 0);
        let mut by_child: HashMap<Uuid, &store::ChildFigures> = HashMap::new();
        for g in &groups {
            members += g.members;
            declared += g.declared;
            points += g.points;
            if let Some(child) = g.child {
                by_child.insert(child, g);
            }
        }
        let children = children
            .into_iter()
            .map(|c| match by_child.get(&c.id) {
                Some(g) => Figures::new((c.id, c.name, c.kind), g.members, g.declared, g.points),
                None => Figures::new((c.id, c.name, c.kind), 0, 0, 0),
            })
            .collect();
        let grades = grades.map(|rows| {
            let mut counts = GradeCounts::default();
            for (grade, n) in rows {
                match grade.as_str() {
                    "excellent" => counts.excellent += n,
                    "qualified" => counts.qualified += n,
                    "basically_qualified" => counts.basically_qualified += n,
                    "unqualified" => counts.unqualified += n,
                    _ => {}
                }
            }
            counts
        });
        let ancestors = ancestors(caller, &org.path, above);
        Ok(DashboardView {
            total: Figures::new((org.id, org.name, org.kind), members, declared, points),
            parent_id: org.parent_id,
            ancestors,
            org_path: org.path,
            year,
            month,
            grades,
            children,
        })
    }
}

impl Grading {
    /// `GetDashboardTrend`: the figures of every month of `year` for the subtree of `org_id` —
    /// January to December for a past year, January to the current month (Asia/Shanghai) for
    /// the running one, none for a future year — from one statement over the year.
    pub async fn dashboard_trend(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
    ) -> Result<TrendView, AppError> {
        let year = check_year(year)?;
        let org = self.org(org_id).await?;
        authorize(
            authz::read_dashboard(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let last = match self.through_month(year) {
            Ok(month) => month,
            Err(AppError::Rule {
                code: "year_not_started",
                ..
            }) => 0,
            Err(e) => return Err(e),
        };
        let rows = if last == 0 {
            Vec::new()
        } else {
            store::figures_by_month(&self.db, &org.path, year).await?
        };
        let months = trend_months(&rows, last)
            .into_iter()
            .map(|(month, members, declared, points)| {
                (
                    month,
                    Figures::new(
                        (org.id, org.name.clone(), org.kind.clone()),
                        members,
                        declared,
                        points,
                    ),
                )
            })
            .collect();
        Ok(TrendView {
            org_id: org.id,
            org_path: org.path,
            name: org.name,
            year,
            months,
        })
    }
}

impl Grading {
    /// `GetDashboardBranches`: the figures of `year`-`month` of every branch of the subtree of
    /// `org_id` (itself included when it is one), from one statement, lowest participation
    /// first, each marked lagging below [`LAGGING_PERMILLE`].
    pub async fn dashboard_branches(
        &self,
        caller: &Principal,
        org_id: Uuid,
        year: i32,
        month: u32,
    ) -> Result<BranchesView, AppError> {
        let org = self.org(org_id).await?;
        authorize(
            authz::read_dashboard(caller, &org.path),
            "org_id",
            "organization",
        )?;
        let rows = store::figures_by_branch(&self.db, &org.path, year, month).await?;
        let mut items: Vec<BranchLine> = rows
            .into_iter()
            .map(|r| {
                let figures = Figures::new(
                    (r.id, r.name, "branch".to_owned()),
                    r.members,
                    r.declared,
                    r.points,
                );
                BranchLine {
                    lagging: lagging(figures.members, figures.participation_permille),
                    parent: r.parent_id.map(|p| (p, r.parent_name.unwrap_or_default())),
                    figures,
                }
            })
            .collect();
        items.sort_by(|a, b| {
            let key = |l: &BranchLine| {
                (
                    l.figures.participation_permille,
                    l.figures.name.clone(),
                    l.figures.org_id,
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(BranchesView {
            org_id: org.id,
            org_path: org.path,
            year,
            month,
            threshold_permille: LAGGING_PERMILLE,
            items,
        })
    }
}

/// The organizations above the one at `path` (given as `orgs`, in any order, the organization
/// itself among them), the root first, up to the parent, keeping only those `caller` may read
/// the dashboard of: the breadcrumb never names an organization above the caller's scope.
fn ancestors(caller: &Principal, path: &str, orgs: Vec<store::NamedOrg>) -> Vec<(Uuid, String)> {
    let mut names: HashMap<Uuid, String> = orgs.into_iter().map(|o| (o.id, o.name)).collect();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let above = segments.len().saturating_sub(1);
    let mut prefix = String::from("/");
    let mut chain = Vec::new();
    for segment in &segments[..above] {
        prefix.push_str(segment);
        prefix.push('/');
        let Ok(id) = Uuid::parse_str(segment) else {
            continue;
        };
        if authz::name_in_breadcrumb(caller, &prefix)
            && let Some(name) = names.remove(&id)
        {
            chain.push((id, name));
        }
    }
    chain
}

/// Months 1 to `last` from the rows of [`store::figures_by_month`] as (month, members,
/// declared, points): a month without a row has the subtree's members and nothing else.
fn trend_months(rows: &[store::MonthFigures], last: u32) -> Vec<(u32, i64, i64, i64)> {
    let members = rows.first().map_or(0, |r| r.members);
    (1..=last)
        .map(|month| {
            match rows
                .iter()
                .find(|r| u32::try_from(r.month).is_ok_and(|m| m == month))
            {
                Some(r) => (month, r.members, r.declared, r.points),
                None => (month, members, 0, 0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly_naming_the_field() {
        assert_eq!(parse_month("2026-03").ok(), Some((2026, 3)));
        for bad in ["2026-3", "2026-13", "1999-12", "2026/03", "", "abcd-ef"] {
            match parse_month(bad) {
                Err(AppError::Invalid(v)) => assert_eq!(v[0].field, "month", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_month_up_to_the_last_is_listed_with_the_members() {
        let row = |month, declared, points| store::MonthFigures {
            month,
            members: 5,
            declared,
            points,
        };
        let rows = [row(0, 0, 0), row(2, 3, 40), row(11, 1, -5)];
        let months = trend_months(&rows, 12);
        assert_eq!(months.len(), 12);
        assert_eq!(months[0], (1, 5, 0, 0));
        assert_eq!(months[1], (2, 5, 3, 40));
        assert_eq!(months[10], (11, 5, 1, -5));
        assert!(trend_months(&rows, 0).is_empty());
        assert_eq!(trend_months(&rows, 3).len(), 3);
        assert_eq!(trend_months(&[], 2), vec![(1, 0, 0, 0), (2, 0, 0, 0)]);
    }
}
