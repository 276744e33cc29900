//! Who may do what: pure functions of the caller's [`Principal`] and the organization paths
//! involved (docs/authorization.md holds the table).
//!
//! Scope is a materialized path: a role over an organization covers its whole subtree.
//! * **Visibility**: a caller *sees* an organization they manage (admin or secretary over it),
//!   and their own organization when they are a member; they see a member they manage, and
//!   themself.
//! * **Decision**: allowed → [`Decision::Allow`]; not allowed but visible →
//!   [`Decision::Deny`] (PERMISSION_DENIED); not even visible → [`Decision::Hide`] (NOT_FOUND,
//!   so that existence stays private, exactly as for an unknown id).

use jifen_platform::auth::{Principal, RoleName};
use uuid::Uuid;

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The caller sees the target but may not do this (PERMISSION_DENIED).
    Deny,
    /// The caller may not know the target exists (NOT_FOUND).
    Hide,
}

fn decide(visible: bool, allowed: bool) -> Decision {
    match (allowed, visible) {
        (true, _) => Decision::Allow,
        (false, true) => Decision::Deny,
        (false, false) => Decision::Hide,
    }
}

/// An organization as authorization sees it.
#[derive(Debug, Clone, Copy)]
pub struct OrgRef<'a> {
    pub id: Uuid,
    pub path: &'a str,
}

/// A member as authorization sees it.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    pub id: Uuid,
    pub org_path: &'a str,
}

const MANAGERS: &[RoleName] = &[RoleName::Admin, RoleName::Secretary];

/// Admin or secretary over `path`.
pub fn manages(p: &Principal, path: &str) -> bool {
    p.covers(MANAGERS, path)
}

/// The caller sees `org`: they manage it, or it is their own organization (`own_org`: the
/// organization of the member the caller is, if any).
pub fn sees_org(p: &Principal, org: OrgRef<'_>, own_org: Option<Uuid>) -> bool {
    manages(p, org.path) || own_org == Some(org.id)
}

/// The caller sees `m`: they manage the member's organization, or they are the member.
pub fn sees_member(p: &Principal, m: MemberRef<'_>) -> bool {
    p.is_member(m.id) || manages(p, m.org_path)
}

/// GetOrganization.
pub fn get_org(p: &Principal, org: OrgRef<'_>, own_org: Option<Uuid>) -> Decision {
    let visible = sees_org(p, org, own_org);
    decide(visible, visible)
}

/// ListChildOrganizations and ListMembers: admin or secretary over the organization.
pub fn list_in_org(p: &Principal, org: OrgRef<'_>, own_org: Option<Uuid>) -> Decision {
    decide(sees_org(p, org, own_org), manages(p, org.path))
}

/// CreateOrganization: admin over the parent.
pub fn create_org(p: &Principal, parent: OrgRef<'_>, own_org: Option<Uuid>) -> Decision {
    decide(sees_org(p, parent, own_org), p.is_admin_over(parent.path))
}

/// AssignRole: admin over the organization the role is over.
pub fn assign_role(p: &Principal, org: OrgRef<'_>, own_org: Option<Uuid>) -> Decision {
    decide(sees_org(p, org, own_org), p.is_admin_over(org.path))
}

/// CreateMember (and each row of ImportMembers): admin or secretary over the organization.
pub fn create_member(p: &Principal, org: OrgRef<'_>, own_org: Option<Uuid>) -> Decision {
    decide(sees_org(p, org, own_org), manages(p, org.path))
}

/// GetMember, ListTransfers, ListSanctions: the member themself, or admin/secretary over them.
pub fn read_member(p: &Principal, m: MemberRef<'_>) -> Decision {
    let visible = sees_member(p, m);
    decide(visible, visible)
}

/// UpdateMember: admin or secretary over the member's organization.
pub fn update_member(p: &Principal, m: MemberRef<'_>) -> Decision {
    decide(sees_member(p, m), manages(p, m.org_path))
}

/// TransferMember, source side: admin over the member's organization.
pub fn transfer_from(p: &Principal, m: MemberRef<'_>) -> Decision {
    decide(sees_member(p, m), p.is_admin_over(m.org_path))
}

/// TransferMember, destination side: admin over the destination organization too.
pub fn transfer_to(p: &Principal, to: OrgRef<'_>, own_org: Option<Uuid>) -> Decision {
    decide(sees_org(p, to, own_org), p.is_admin_over(to.path))
}

/// RecordSanction: admin over the member's organization.
pub fn sanction(p: &Principal, m: MemberRef<'_>) -> Decision {
    decide(sees_member(p, m), p.is_admin_over(m.org_path))
}

/// ImportMembers at all: the caller is admin or secretary somewhere (each row is then checked
/// with [`create_member`]).
pub fn may_import(p: &Principal) -> bool {
    !p.scope_paths(MANAGERS).is_empty()
}

/// GetPrincipal: only a jifen service acting for itself (the gateway refreshing a token).
pub fn may_get_principal(p: &Principal) -> bool {
    p.is_service()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jifen_platform::auth::RoleClaim;

    fn principal(member_id: Option<Uuid>, roles: &[(RoleName, &str)]) -> Principal {
        Principal {
            subject: "acct".into(),
            username: None,
            member_id,
            roles: roles
                .iter()
                .map(|(role, path)| RoleClaim {
                    role: *role,
                    org_id: Uuid::nil(),
                    org_path: (*path).into(),
                })
                .collect(),
            round_id: None,
        }
    }

    const ROOT: &str = "/r/";
    const A: &str = "/r/a/";
    const A_GROUP: &str = "/r/a/g/";
    const B: &str = "/r/b/";

    fn org(path: &str) -> OrgRef<'_> {
        OrgRef {
            id: Uuid::nil(),
            path,
        }
    }

    #[test]
    fn admin_of_a_subtree() {
        let p = principal(None, &[(RoleName::Admin, A)]);
        assert_eq!(create_org(&p, org(A), None), Decision::Allow);
        assert_eq!(create_org(&p, org(A_GROUP), None), Decision::Allow);
        assert_eq!(create_org(&p, org(B), None), Decision::Hide);
        assert_eq!(create_org(&p, org(ROOT), None), Decision::Hide);
        let m = MemberRef {
            id: Uuid::now_v7(),
            org_path: A_GROUP,
        };
        assert_eq!(sanction(&p, m), Decision::Allow);
        assert_eq!(transfer_from(&p, m), Decision::Allow);
        assert_eq!(transfer_to(&p, org(B), None), Decision::Hide);
    }

    #[test]
    fn secretary_manages_but_does_not_administer() {
        let p = principal(None, &[(RoleName::Secretary, A)]);
        assert_eq!(get_org(&p, org(A), None), Decision::Allow);
        assert_eq!(list_in_org(&p, org(A), None), Decision::Allow);
        assert_eq!(create_member(&p, org(A_GROUP), None), Decision::Allow);
        assert_eq!(create_org(&p, org(A), None), Decision::Deny);
        assert_eq!(assign_role(&p, org(A), None), Decision::Deny);
        let m = MemberRef {
            id: Uuid::now_v7(),
            org_path: A,
        };
        assert_eq!(update_member(&p, m), Decision::Allow);
        assert_eq!(sanction(&p, m), Decision::Deny);
        assert_eq!(transfer_from(&p, m), Decision::Deny);
        // Branch B is invisible.
        let other = MemberRef {
            id: Uuid::now_v7(),
            org_path: B,
        };
        for d in [
            get_org(&p, org(B), None),
            list_in_org(&p, org(B), None),
            create_member(&p, org(B), None),
            create_org(&p, org(B), None),
            read_member(&p, other),
            update_member(&p, other),
            sanction(&p, other),
        ] {
            assert_eq!(d, Decision::Hide);
        }
        assert!(may_import(&p));
        assert!(!may_get_principal(&p));
    }

    #[test]
    fn a_member_reads_self_and_own_org_only() {
        let me = Uuid::now_v7();
        let my_org = Uuid::now_v7();
        let p = principal(Some(me), &[(RoleName::Member, A)]);
        let self_ref = MemberRef {
            id: me,
            org_path: A,
        };
        assert_eq!(read_member(&p, self_ref), Decision::Allow);
        assert_eq!(update_member(&p, self_ref), Decision::Deny);
        assert_eq!(
            read_member(
                &p,
                MemberRef {
                    id: Uuid::now_v7(),
                    org_path: A
                }
            ),
            Decision::Hide
        );
        let own = OrgRef {
            id: my_org,
            path: A,
        };
        assert_eq!(get_org(&p, own, Some(my_org)), Decision::Allow);
        assert_eq!(list_in_org(&p, own, Some(my_org)), Decision::Deny);
        assert_eq!(get_org(&p, org(A_GROUP), Some(my_org)), Decision::Hide);
        assert!(!may_import(&p));
    }

    #[test]
    fn the_service_identity_only_reads_principals() {
        let p = principal(None, &[(RoleName::Service, "/")]);
        assert!(may_get_principal(&p));
        assert_eq!(get_org(&p, org(ROOT), None), Decision::Hide);
        assert!(!may_import(&p));
    }
}
