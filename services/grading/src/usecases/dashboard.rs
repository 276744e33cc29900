//! The dashboard 党建看板 of an organization's subtree for one month
//! (docs/decisions/0008-dashboard.md): how many active members, how many of them declared, the
//! mean of their month's ledger points, the year's published grades, and the same figures for
//! each direct child organization.
//!
//! Invariants:
//! * set-based: three statements whatever the size of the subtree (figures grouped by child,
//!   the children's names, the grade counts), never a statement per member;
//! * the organization's figures are the sums of its groups' (its own members and each child's),
//!   so a child's members and declarations always add up to the parent's;
//! * authorization (staff over the organization) is checked before anything is read.

use super::{AppError, Grading, authorize};
use crate::authz;
use crate::domain::dashboard::{mean_tenths, participation_permille};
use crate::store::dashboard as store;
use jifen_platform::auth::Principal;
use std::collections::HashMap;
use uuid::Uuid;

/// The month's figures of one subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub org_id: Uuid,
    pub name: String,
    pub members: i64,
    pub declared: i64,
    /// Sum of the month's ledger points, deci-points.
    pub points: i64,
    pub participation_permille: i32,
    /// Mean points per member, deci-points.
    pub points_avg: i32,
}

impl Figures {
    fn new(org_id: Uuid, name: String, members: i64, declared: i64, points: i64) -> Self {
        Self {
            org_id,
            name,
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
    pub year: i32,
    pub month: u32,
    pub total: Figures,
    pub grades: Option<GradeCounts>,
    pub children: Vec<Figures>,
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
            .map(|(id, name)| match by_child.get(&id) {
                Some(g) => Figures::new(id, name, g.members, g.declared, g.points),
                None => Figures::new(id, name, 0, 0, 0),
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
        Ok(DashboardView {
            total: Figures::new(org.id, org.name, members, declared, points),
            org_path: org.path,
            year,
            month,
            grades,
            children,
        })
    }
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
}
