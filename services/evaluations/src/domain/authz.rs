//! Who may do what with rounds, as pure functions of the caller's [`Principal`].
//!
//! * Opening, issuing codes, closing and reading a round: an **admin or secretary over the
//!   branch** (the branch itself or an ancestor). Another staff member gets NOT_FOUND
//!   ([`Decision::Hide`]): a round outside one's scope does not exist for them. A caller who is
//!   not staff at all (a member, an evaluator, a service) gets PERMISSION_DENIED.
//! * The ballot: an **evaluator token of that round** only (PERMISSION_DENIED otherwise).
//! * Redeeming a code: any authenticated caller (the gateway's service identity for 群众; a
//!   member's own token for member codes) — the code itself is the credential.

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

/// Open, invite, close, read, list rounds of the organization at `org_path`.
pub fn manage_round(p: &Principal, org_path: &str) -> Decision {
    if p.covers(STAFF, org_path) {
        Decision::Allow
    } else if STAFF.iter().any(|r| p.has_role(*r)) {
        Decision::Hide
    } else {
        Decision::Deny
    }
}

/// Read the ballot of, or vote in, round `round_id`.
pub fn use_ballot(p: &Principal, round_id: Uuid) -> Decision {
    if p.has_role(RoleName::Evaluator) && p.round_id == Some(round_id) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jifen_platform::auth::RoleClaim;

    fn principal(role: RoleName, path: &str, round: Option<Uuid>) -> Principal {
        Principal {
            subject: "x".into(),
            username: None,
            member_id: None,
            roles: vec![RoleClaim {
                role,
                org_id: Uuid::nil(),
                org_path: path.into(),
            }],
            round_id: round,
        }
    }

    #[test]
    fn staff_of_the_branch_or_above() {
        let branch = "/r/c/b/";
        for role in [RoleName::Admin, RoleName::Secretary] {
            assert_eq!(
                manage_round(&principal(role, "/r/c/b/", None), branch),
                Decision::Allow
            );
            assert_eq!(
                manage_round(&principal(role, "/r/", None), branch),
                Decision::Allow
            );
            assert_eq!(
                manage_round(&principal(role, "/r/c/x/", None), branch),
                Decision::Hide
            );
            assert_eq!(
                manage_round(&principal(role, "/r/c/b/g/", None), branch),
                Decision::Hide
            );
        }
        assert_eq!(
            manage_round(&principal(RoleName::Member, branch, None), branch),
            Decision::Deny
        );
        let round = Uuid::now_v7();
        assert_eq!(
            manage_round(&principal(RoleName::Evaluator, branch, Some(round)), branch),
            Decision::Deny
        );
        assert_eq!(
            manage_round(&principal(RoleName::Service, "/", None), branch),
            Decision::Deny
        );
    }

    #[test]
    fn ballots_only_for_the_evaluator_of_the_round() {
        let round = Uuid::now_v7();
        let evaluator = principal(RoleName::Evaluator, "/r/b/", Some(round));
        assert_eq!(use_ballot(&evaluator, round), Decision::Allow);
        assert_eq!(use_ballot(&evaluator, Uuid::now_v7()), Decision::Deny);
        // A secretary of the branch does not vote with a staff token.
        assert_eq!(
            use_ballot(&principal(RoleName::Secretary, "/r/b/", Some(round)), round),
            Decision::Deny
        );
    }
}
