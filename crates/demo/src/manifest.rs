//! The manifest of a seeded demo city: what `jifen-members seed-demo` created, with the paths and
//! accounts the other services need to act as its people. Written by `jifen-members
//! demo-manifest` (from the members service's own marker and tables) and read by the other
//! services' `seed-demo-history`; they never read the members database.
//!
//! Invariant: positions are the seed's order (committee, branch, member), the same positions the
//! [`crate::Plan`] speaks of; a member's principal is the one its account's login would give
//! (subject = account id, the member role over its branch, the secretary role when it holds it).

use crate::Shape;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An organization: id and materialized path (`/<root>/<committee>/…/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRef {
    pub id: Uuid,
    pub path: String,
}

/// An account that acts: its id (a token's subject) and username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub subject: Uuid,
    pub username: String,
}

/// A member the seed created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    pub id: Uuid,
    /// The demo number (`demo0001` is 1).
    pub n: usize,
    /// The member's account, when it has one (a demo username held by someone else: none).
    pub account: Option<Person>,
    /// Still active (not expelled or transferred since): only active members act.
    pub active: bool,
}

/// A branch with its members in seed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchRef {
    pub org: OrgRef,
    pub members: Vec<MemberRef>,
    /// The position of the member who is the branch's secretary (holds the role), if any.
    pub secretary: Option<usize>,
}

/// A committee with its branches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeRef {
    pub org: OrgRef,
    pub branches: Vec<BranchRef>,
}

/// The whole demo city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The members seed's marker version this city is.
    pub version: String,
    pub shape: Shape,
    pub root: OrgRef,
    /// The bootstrap admin of the root committee.
    pub admin: Person,
    pub committees: Vec<CommitteeRef>,
}

impl Manifest {
    /// Reads a manifest written by `jifen-members demo-manifest`.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the demo manifest {}: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the demo manifest {}: {e}", path.display()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The manifest agrees with its shape (a complete city).
    pub fn check(&self) -> anyhow::Result<()> {
        let ok = self.committees.len() == self.shape.committees
            && self.committees.iter().all(|c| {
                c.branches.len() == self.shape.branches
                    && c.branches
                        .iter()
                        .all(|b| b.members.len() == self.shape.members)
            });
        anyhow::ensure!(
            ok,
            "the demo manifest does not hold a complete {} city",
            self.shape
        );
        Ok(())
    }

    /// Every branch in seed order; the index is the plan's global branch number.
    pub fn branches(&self) -> Vec<&BranchRef> {
        self.committees.iter().flat_map(|c| &c.branches).collect()
    }

    /// The committee holding global branch `gb`.
    pub fn committee_of(&self, gb: usize) -> &CommitteeRef {
        &self.committees[gb / self.shape.branches.max(1)]
    }

    /// The admin of the root committee (工委): publishes the standard, reviews the secretaries'
    /// own declarations, decides appeals and finalizes.
    pub fn admin_principal(&self) -> Principal {
        Principal {
            subject: self.admin.subject.to_string(),
            username: Some(self.admin.username.clone()),
            member_id: None,
            roles: vec![RoleClaim {
                role: RoleName::Admin,
                org_id: self.root.id,
                org_path: self.root.path.clone(),
            }],
            round_id: None,
        }
    }

    /// Member `i` of `branch` as its own login gives it; `None` without an account or when no
    /// longer active.
    pub fn member_principal(&self, branch: &BranchRef, i: usize) -> Option<Principal> {
        let m = branch.members.get(i)?;
        let account = m.account.as_ref().filter(|_| m.active)?;
        let mut roles = Vec::new();
        if branch.secretary == Some(i) {
            roles.push(RoleClaim {
                role: RoleName::Secretary,
                org_id: branch.org.id,
                org_path: branch.org.path.clone(),
            });
        }
        roles.push(RoleClaim {
            role: RoleName::Member,
            org_id: branch.org.id,
            org_path: branch.org.path.clone(),
        });
        Some(Principal {
            subject: account.subject.to_string(),
            username: Some(account.username.clone()),
            member_id: Some(m.id),
            roles,
            round_id: None,
        })
    }

    /// The branch's secretary; the root admin when the branch has none.
    pub fn secretary_principal(&self, branch: &BranchRef) -> Principal {
        branch
            .secretary
            .and_then(|i| self.member_principal(branch, i))
            .unwrap_or_else(|| self.admin_principal())
    }

    /// Who reviews member `i`'s declarations: the secretary, or for the secretary's own, the
    /// root admin (nobody reviews their own).
    pub fn reviewer_of(&self, branch: &BranchRef, i: usize) -> Principal {
        if branch.secretary == Some(i) {
            self.admin_principal()
        } else {
            self.secretary_principal(branch)
        }
    }
}
