//! Who may do what with declarations (defense in depth: the gateway checks too).
//!
//! A decision is [`Decision::Allow`], [`Decision::Deny`] (the caller may know the target exists:
//! 403) or [`Decision::Hide`] (the target is outside everything the caller may see: 404).
//! * a member reads and changes their own declarations, and nobody else's;
//! * a secretary or admin over the member's organization reads them and reviews them — but never
//!   their own (a secretary is a member of their branch too);
//! * branch records, listings, batch approval and reopening need a secretary or admin over the
//!   organization;
//! * publishing a standard needs an admin of the root; reading one needs any signed-in person.

use jifen_platform::auth::{Principal, RoleName};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Hide,
}

/// A person of the organization tree (not an evaluator token, not a bare service).
fn is_person(p: &Principal) -> bool {
    p.member_id.is_some()
        || p.roles
            .iter()
            .any(|r| matches!(r.role, RoleName::Admin | RoleName::Secretary))
}

/// Read a member's declaration, or their month view.
pub fn read_declaration(p: &Principal, member_id: Uuid, org_path: &str) -> Decision {
    if p.is_member(member_id) || p.manages(org_path) {
        Decision::Allow
    } else {
        Decision::Hide
    }
}

/// Change or submit a member's declaration: only the member themself.
pub fn edit_declaration(p: &Principal, member_id: Uuid, org_path: &str) -> Decision {
    if p.is_member(member_id) {
        Decision::Allow
    } else if p.manages(org_path) {
        Decision::Deny
    } else {
        Decision::Hide
    }
}

/// Review a declaration: a manager of the member's organization, never the member themself.
pub fn review_declaration(p: &Principal, member_id: Uuid, org_path: &str) -> Decision {
    if p.is_member(member_id) {
        Decision::Deny
    } else if p.manages(org_path) {
        Decision::Allow
    } else {
        Decision::Hide
    }
}

/// Act on an organization (list, batch-approve, record branch points, reopen a month).
/// `own_path` is the organization path of the member the caller is, if any: a member of the
/// organization may know it exists (403), others may not (404).
pub fn manage_org(p: &Principal, org_path: &str, own_path: Option<&str>) -> Decision {
    if p.manages(org_path) {
        Decision::Allow
    } else if own_path.is_some_and(|own| own.starts_with(org_path)) {
        Decision::Deny
    } else {
        Decision::Hide
    }
}

/// Publish a standard: an admin of the root organization (a root path has one segment).
pub fn publish_standard(p: &Principal) -> Decision {
    let root_admin = p
        .roles
        .iter()
        .any(|r| r.role == RoleName::Admin && r.org_path.matches('/').count() == 2);
    if root_admin {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// Read a standard: any person of the tree.
pub fn read_standard(p: &Principal) -> Decision {
    if is_person(p) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// Upload evidence: any person of the tree.
pub fn upload_evidence(p: &Principal) -> Decision {
    read_standard(p)
}

/// Read an evidence file uploaded by `uploaders` (subject, organization path): the uploader, or a
/// manager of an uploader's organization.
pub fn read_evidence<'a>(
    p: &Principal,
    mut uploaders: impl Iterator<Item = (&'a str, &'a str)>,
) -> Decision {
    if uploaders.any(|(subject, path)| subject == p.subject || p.manages(path)) {
        Decision::Allow
    } else {
        Decision::Hide
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use jifen_platform::auth::RoleClaim;

    const ROOT: &str = "/00000000-0000-0000-0000-000000000001/";
    const A: &str = "/00000000-0000-0000-0000-000000000001/00000000-0000-0000-0000-00000000000a/";
    const B: &str = "/00000000-0000-0000-0000-000000000001/00000000-0000-0000-0000-00000000000b/";

    fn principal(member: Option<u128>, roles: &[(RoleName, &str)]) -> Principal {
        Principal {
            subject: "someone".into(),
            username: None,
            member_id: member.map(Uuid::from_u128),
            roles: roles
                .iter()
                .map(|(role, path)| RoleClaim {
                    role: *role,
                    org_id: Uuid::nil(),
                    org_path: (*path).to_owned(),
                })
                .collect(),
            round_id: None,
        }
    }

    #[test]
    fn a_member_owns_their_declaration_only() {
        let me = principal(Some(1), &[(RoleName::Member, A)]);
        assert_eq!(
            edit_declaration(&me, Uuid::from_u128(1), A),
            Decision::Allow
        );
        assert_eq!(read_declaration(&me, Uuid::from_u128(2), A), Decision::Hide);
        assert_eq!(edit_declaration(&me, Uuid::from_u128(2), A), Decision::Hide);
        assert_eq!(
            review_declaration(&me, Uuid::from_u128(1), A),
            Decision::Deny
        );
        assert_eq!(manage_org(&me, A, Some(A)), Decision::Deny);
        assert_eq!(manage_org(&me, B, Some(A)), Decision::Hide);
    }

    #[test]
    fn a_secretary_reviews_their_branch_but_not_themself() {
        let sec = principal(Some(7), &[(RoleName::Member, A), (RoleName::Secretary, A)]);
        assert_eq!(
            review_declaration(&sec, Uuid::from_u128(1), A),
            Decision::Allow
        );
        assert_eq!(
            review_declaration(&sec, Uuid::from_u128(7), A),
            Decision::Deny
        );
        assert_eq!(
            edit_declaration(&sec, Uuid::from_u128(1), A),
            Decision::Deny
        );
        assert_eq!(
            review_declaration(&sec, Uuid::from_u128(1), B),
            Decision::Hide
        );
        assert_eq!(manage_org(&sec, B, Some(A)), Decision::Hide);
        assert_eq!(publish_standard(&sec), Decision::Deny);
    }

    #[test]
    fn only_a_root_admin_publishes_standards() {
        assert_eq!(
            publish_standard(&principal(None, &[(RoleName::Admin, ROOT)])),
            Decision::Allow
        );
        assert_eq!(
            publish_standard(&principal(None, &[(RoleName::Admin, A)])),
            Decision::Deny
        );
        let evaluator = principal(None, &[(RoleName::Evaluator, A)]);
        assert_eq!(read_standard(&evaluator), Decision::Deny);
        assert_eq!(upload_evidence(&evaluator), Decision::Deny);
    }
}
