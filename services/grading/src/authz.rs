//! Who may do what in grading, as pure functions of the caller's [`Principal`] (no I/O).
//!
//! * The ledger 积分台账: the member themself; an admin or secretary over the member's
//!   organization.
//! * Computing and reading a grading: an admin or secretary over the organization; a member may
//!   read the grading of their own branch once it is confirmed (公示, publication).
//! * Exporting the ledger of an organization's subtree (台账导出): an admin or secretary over the
//!   organization, as for computing a grading; never a member, not even of that organization.
//! * Reading an organization's dashboard 党建看板 (its month's figures, its ranking): an admin
//!   or secretary over the organization, as for exporting its ledger.
//! * Confirming (支委会/党员大会): the secretary of that very branch only.
//! * Appealing: the member themself.
//! * Deciding appeals and finalizing: the **upper committee** — an admin whose organization is
//!   strictly above the branch.
//!
//! Staff outside the scope get NOT_FOUND ([`Decision::Hide`]): what is outside one's subtree does
//! not exist for them; a caller who sees the target but lacks the role gets PERMISSION_DENIED.

use jifen_platform::auth::{Principal, RoleName};
use uuid::Uuid;

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// PERMISSION_DENIED.
    Deny,
    /// NOT_FOUND, exactly as for an unknown id.
    Hide,
}

const STAFF: &[RoleName] = &[RoleName::Admin, RoleName::Secretary];

fn staff_or_hidden(p: &Principal, org_path: &str) -> Decision {
    if p.covers(STAFF, org_path) {
        Decision::Deny
    } else if STAFF.iter().any(|r| p.has_role(*r)) {
        Decision::Hide
    } else {
        Decision::Deny
    }
}

/// Read the ledger of member `member_id`, whose organization is at `org_path`.
pub fn read_ledger(p: &Principal, member_id: Uuid, org_path: &str) -> Decision {
    if p.is_member(member_id) || p.covers(STAFF, org_path) {
        Decision::Allow
    } else {
        staff_or_hidden(p, org_path)
    }
}

/// Compute the grading of the organization at `org_path` (a branch or above).
pub fn compute(p: &Principal, org_path: &str) -> Decision {
    if p.covers(STAFF, org_path) {
        Decision::Allow
    } else {
        staff_or_hidden(p, org_path)
    }
}

/// Export the ledger of every member of the subtree at `org_path`: staff over it. A member is
/// denied (they see their own organization, so PERMISSION_DENIED, as for a grading they may not
/// read); staff of another subtree do not see it.
pub fn export_ledger(p: &Principal, org_path: &str) -> Decision {
    compute(p, org_path)
}

/// Read the dashboard (figures, ranking) of the subtree at `org_path`: staff over it, as for
/// the ledger export — a member is denied, staff of another subtree do not see it.
pub fn read_dashboard(p: &Principal, org_path: &str) -> Decision {
    export_ledger(p, org_path)
}

/// Name the organization at `ancestor_path` in the breadcrumb of a dashboard below it: only
/// when the caller may read that organization's own dashboard, so an admin of a committee sees
/// the breadcrumb from their committee down, never the city above it.
pub fn name_in_breadcrumb(p: &Principal, ancestor_path: &str) -> bool {
    read_dashboard(p, ancestor_path) == Decision::Allow
}

/// Read the grading of the organization at `org_path`. `published` says whether every branch
/// in it is confirmed or final; `own_branch_path` is the path of the caller's branch when the
/// caller is a member.
pub fn read_grading(
    p: &Principal,
    org_path: &str,
    published: bool,
    own_branch_path: Option<&str>,
) -> Decision {
    if p.covers(STAFF, org_path) || (published && own_branch_path == Some(org_path)) {
        Decision::Allow
    } else {
        staff_or_hidden(p, org_path)
    }
}

/// Confirm the grading of the branch at `branch_path`: its own secretary.
pub fn confirm(p: &Principal, branch_path: &str) -> Decision {
    if p.roles
        .iter()
        .any(|r| r.role == RoleName::Secretary && r.org_path == branch_path)
    {
        Decision::Allow
    } else {
        staff_or_hidden(p, branch_path)
    }
}

/// File an appeal for member `member_id`: the member themself.
pub fn appeal(p: &Principal, member_id: Uuid) -> Decision {
    if p.is_member(member_id) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// Decide an appeal of, or finalize, the grading of the branch at `branch_path`: an admin of a
/// committee strictly above the branch.
pub fn upper_committee(p: &Principal, branch_path: &str) -> Decision {
    if p.roles.iter().any(|r| {
        r.role == RoleName::Admin
            && branch_path.starts_with(&r.org_path)
            && r.org_path != branch_path
    }) {
        Decision::Allow
    } else {
        staff_or_hidden(p, branch_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jifen_platform::auth::RoleClaim;

    fn principal(role: RoleName, path: &str, member: Option<Uuid>) -> Principal {
        Principal {
            subject: "x".into(),
            username: None,
            member_id: member,
            roles: vec![RoleClaim {
                role,
                org_id: Uuid::nil(),
                org_path: path.into(),
            }],
            round_id: None,
        }
    }

    const BRANCH: &str = "/city/c1/b1/";

    #[test]
    fn a_member_reads_only_their_own_ledger() {
        let me = Uuid::now_v7();
        let member = principal(RoleName::Member, BRANCH, Some(me));
        assert_eq!(read_ledger(&member, me, BRANCH), Decision::Allow);
        assert_eq!(read_ledger(&member, Uuid::now_v7(), BRANCH), Decision::Deny);
    }

    #[test]
    fn staff_read_ledgers_in_their_subtree_only() {
        let m = Uuid::now_v7();
        for role in [RoleName::Admin, RoleName::Secretary] {
            assert_eq!(
                read_ledger(&principal(role, BRANCH, None), m, BRANCH),
                Decision::Allow
            );
            assert_eq!(
                read_ledger(&principal(role, "/city/", None), m, BRANCH),
                Decision::Allow
            );
            assert_eq!(
                read_ledger(&principal(role, "/city/c1/b2/", None), m, BRANCH),
                Decision::Hide
            );
        }
        let evaluator = principal(RoleName::Evaluator, BRANCH, None);
        assert_eq!(read_ledger(&evaluator, m, BRANCH), Decision::Deny);
    }

    #[test]
    fn staff_over_the_organization_export_its_ledger() {
        for role in [RoleName::Admin, RoleName::Secretary] {
            assert_eq!(
                export_ledger(&principal(role, BRANCH, None), BRANCH),
                Decision::Allow
            );
            assert_eq!(
                export_ledger(&principal(role, "/city/", None), BRANCH),
                Decision::Allow
            );
            assert_eq!(
                export_ledger(&principal(role, "/city/c1/b2/", None), BRANCH),
                Decision::Hide
            );
        }
        // A secretary of a branch does not export the committee above it.
        assert_eq!(
            export_ledger(&principal(RoleName::Secretary, BRANCH, None), "/city/c1/"),
            Decision::Hide
        );
        assert_eq!(
            export_ledger(
                &principal(RoleName::Member, BRANCH, Some(Uuid::now_v7())),
                BRANCH
            ),
            Decision::Deny
        );
        assert_eq!(
            export_ledger(&principal(RoleName::Evaluator, BRANCH, None), BRANCH),
            Decision::Deny
        );
    }

    #[test]
    fn staff_over_the_organization_read_its_dashboard() {
        for role in [RoleName::Admin, RoleName::Secretary] {
            assert_eq!(
                read_dashboard(&principal(role, "/city/", None), BRANCH),
                Decision::Allow
            );
            assert_eq!(
                read_dashboard(&principal(role, BRANCH, None), BRANCH),
                Decision::Allow
            );
            assert_eq!(
                read_dashboard(&principal(role, "/city/c1/b2/", None), BRANCH),
                Decision::Hide
            );
            assert_eq!(
                read_dashboard(&principal(role, BRANCH, None), "/city/c1/"),
                Decision::Hide
            );
        }
        assert_eq!(
            read_dashboard(
                &principal(RoleName::Member, BRANCH, Some(Uuid::now_v7())),
                BRANCH
            ),
            Decision::Deny
        );
    }

    #[test]
    fn breadcrumbs_stop_at_the_callers_scope() {
        let admin = principal(RoleName::Admin, "/city/c1/", None);
        assert!(!name_in_breadcrumb(&admin, "/city/"));
        assert!(name_in_breadcrumb(&admin, "/city/c1/"));
        assert!(name_in_breadcrumb(&admin, BRANCH));
        let member = principal(RoleName::Member, BRANCH, Some(Uuid::now_v7()));
        assert!(!name_in_breadcrumb(&member, BRANCH));
    }

    #[test]
    fn only_the_branch_secretary_confirms() {
        assert_eq!(
            confirm(&principal(RoleName::Secretary, BRANCH, None), BRANCH),
            Decision::Allow
        );
        // Staff above see the branch but do not confirm for it.
        assert_eq!(
            confirm(&principal(RoleName::Secretary, "/city/c1/", None), BRANCH),
            Decision::Deny
        );
        assert_eq!(
            confirm(&principal(RoleName::Admin, "/city/", None), BRANCH),
            Decision::Deny
        );
        assert_eq!(
            confirm(
                &principal(RoleName::Secretary, "/city/c1/b2/", None),
                BRANCH
            ),
            Decision::Hide
        );
        assert_eq!(
            confirm(
                &principal(RoleName::Member, BRANCH, Some(Uuid::now_v7())),
                BRANCH
            ),
            Decision::Deny
        );
    }

    #[test]
    fn only_an_admin_above_the_branch_decides_and_finalizes() {
        assert_eq!(
            upper_committee(&principal(RoleName::Admin, "/city/c1/", None), BRANCH),
            Decision::Allow
        );
        assert_eq!(
            upper_committee(&principal(RoleName::Admin, "/city/", None), BRANCH),
            Decision::Allow
        );
        assert_eq!(
            upper_committee(&principal(RoleName::Admin, BRANCH, None), BRANCH),
            Decision::Deny
        );
        assert_eq!(
            upper_committee(&principal(RoleName::Secretary, "/city/c1/", None), BRANCH),
            Decision::Deny
        );
        assert_eq!(
            upper_committee(&principal(RoleName::Admin, "/city/c2/", None), BRANCH),
            Decision::Hide
        );
    }

    #[test]
    fn members_appeal_for_themselves_and_read_their_published_grading() {
        let me = Uuid::now_v7();
        let member = principal(RoleName::Member, BRANCH, Some(me));
        assert_eq!(appeal(&member, me), Decision::Allow);
        assert_eq!(appeal(&member, Uuid::now_v7()), Decision::Deny);
        assert_eq!(
            appeal(&principal(RoleName::Secretary, BRANCH, None), me),
            Decision::Deny
        );
        assert_eq!(
            read_grading(&member, BRANCH, true, Some(BRANCH)),
            Decision::Allow
        );
        assert_eq!(
            read_grading(&member, BRANCH, false, Some(BRANCH)),
            Decision::Deny
        );
        assert_eq!(
            read_grading(&member, "/city/c1/b2/", true, Some(BRANCH)),
            Decision::Deny
        );
    }
}
