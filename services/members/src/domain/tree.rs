//! The organization tree: which kind may sit under which, where members may belong, and the
//! materialized path.
//!
//! Shape rules (docs/authorization.md "Organization tree"):
//! * the root is a committee and the only organization without a parent;
//! * under a committee: committees, general branches and branches;
//! * under a general branch: branches;
//! * under a branch: groups; under a group: nothing;
//! * members belong to a branch or a group, never to a committee or a general branch.
//!
//! A path is `/<root id>/<child id>/…/<own id>/`: an organization's subtree is every
//! organization (and member) whose path starts with its path.

use super::kinds::{OrgKind, UnitType};
use super::values::OrgName;
use uuid::Uuid;

/// A party organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    /// `None` only for the root.
    pub parent_id: Option<Uuid>,
    pub name: OrgName,
    pub kind: OrgKind,
    pub unit_type: UnitType,
    /// `/<root id>/…/<own id>/`.
    pub path: String,
    pub version: i64,
}

/// Whether an organization of kind `child` may be created under one of kind `parent`.
pub fn may_contain(parent: OrgKind, child: OrgKind) -> bool {
    use OrgKind::{Branch, Committee, GeneralBranch, Group};
    matches!(
        (parent, child),
        (Committee, Committee | GeneralBranch | Branch) | (GeneralBranch, Branch) | (Branch, Group)
    )
}

/// Whether members may belong directly to an organization of kind `kind`.
pub fn holds_members(kind: OrgKind) -> bool {
    matches!(kind, OrgKind::Branch | OrgKind::Group)
}

/// Whether a role (admin or secretary) may be granted over an organization of kind `kind`:
/// every kind but a group (a group has a leader, 党小组长, not a secretary).
pub fn grants_roles(kind: OrgKind) -> bool {
    kind != OrgKind::Group
}

/// The path of the root organization `id`.
pub fn root_path(id: Uuid) -> String {
    format!("/{id}/")
}

/// The path of organization `id` under a parent whose path is `parent_path`.
pub fn child_path(parent_path: &str, id: Uuid) -> String {
    format!("{parent_path}{id}/")
}

/// Whether `path` lies in the subtree rooted at `ancestor_path` (itself included).
pub fn in_subtree(path: &str, ancestor_path: &str) -> bool {
    path.starts_with(ancestor_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrgKind::{Branch, Committee, GeneralBranch, Group};

    #[test]
    fn shape_rules() {
        let allowed = [
            (Committee, Committee),
            (Committee, GeneralBranch),
            (Committee, Branch),
            (GeneralBranch, Branch),
            (Branch, Group),
        ];
        for p in OrgKind::ALL {
            for c in OrgKind::ALL {
                assert_eq!(
                    may_contain(*p, *c),
                    allowed.contains(&(*p, *c)),
                    "{p} > {c}"
                );
            }
        }
        assert!(
            !may_contain(Committee, Group),
            "a group only under a branch"
        );
        assert!(
            OrgKind::ALL.iter().all(|c| !may_contain(Group, *c)),
            "nothing under a group"
        );
    }

    #[test]
    fn members_only_in_branches_and_groups() {
        assert!(holds_members(Branch));
        assert!(holds_members(Group));
        assert!(!holds_members(Committee));
        assert!(!holds_members(GeneralBranch));
        assert!(!grants_roles(Group));
    }

    #[test]
    fn paths_nest() {
        let (r, c, g) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let rp = root_path(r);
        let cp = child_path(&rp, c);
        let gp = child_path(&cp, g);
        assert_eq!(gp, format!("/{r}/{c}/{g}/"));
        assert!(in_subtree(&gp, &rp));
        assert!(in_subtree(&cp, &cp));
        assert!(!in_subtree(&rp, &cp));
    }
}
