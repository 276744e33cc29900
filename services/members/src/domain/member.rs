//! The member aggregate and the rules of its changes. Every accepted change bumps `version` by
//! exactly one; a change that changes nothing leaves the member (and its version) untouched.

use super::kinds::{Category, Flag, Gender, OrgKind, SanctionKind, Status};
use super::tree;
use super::values::{IdCard, PersonName, Phone};
use chrono::NaiveDate;
use uuid::Uuid;

/// A rule of the members domain that a request broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Status `expelled` comes only from an expulsion sanction, never from an update.
    #[error("status expelled is set only by recording an expulsion sanction")]
    ExpelledOnlyBySanction,
    /// The member was expelled: their status no longer changes and no sanction can be added.
    #[error("the member has been expelled")]
    MemberExpelled,
    /// Transfers and sanctions apply to active members only.
    #[error("the member is not active (status {0})")]
    MemberNotActive(Status),
    #[error("the member already belongs to that organization")]
    SameOrganization,
    #[error("a {0} holds no members: members belong to a branch or a group")]
    OrgHoldsNoMembers(OrgKind),
    #[error("a {child} cannot be created under a {parent}")]
    KindNotAllowedUnder { parent: OrgKind, child: OrgKind },
    #[error("roles are not granted over a {0}")]
    NoRolesOver(OrgKind),
    #[error("a secretary must be a member of the organization they lead")]
    SecretaryOutsideOrg,
    #[error("the sanction cannot be decided before the member joined")]
    SanctionBeforeJoining,
}

/// A party member as the service holds them (personal data in clear, in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: Uuid,
    pub org_id: Uuid,
    pub org_path: String,
    pub name: PersonName,
    pub gender: Gender,
    pub category: Category,
    pub status: Status,
    pub joined_on: NaiveDate,
    /// Sorted, without duplicates.
    pub flags: Vec<Flag>,
    pub phone: Option<Phone>,
    pub id_card: Option<IdCard>,
    pub version: i64,
}

/// A partial update: `None` leaves a field as it is. For phone and ID card, `Some(None)` clears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPatch {
    pub name: Option<PersonName>,
    pub gender: Option<Gender>,
    pub category: Option<Category>,
    pub status: Option<Status>,
    pub joined_on: Option<NaiveDate>,
    pub phone: Option<Option<Phone>>,
    pub id_card: Option<Option<IdCard>>,
    pub flags: Option<Vec<Flag>>,
}

/// Flags sorted and deduplicated, so equal sets compare equal.
pub fn normalize_flags(mut flags: Vec<Flag>) -> Vec<Flag> {
    flags.sort();
    flags.dedup();
    flags
}

impl Member {
    /// A new active member at version 1, in an organization of kind `org_kind`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: Uuid,
        org_id: Uuid,
        org_path: String,
        org_kind: OrgKind,
        name: PersonName,
        gender: Gender,
        category: Category,
        joined_on: NaiveDate,
        flags: Vec<Flag>,
        phone: Option<Phone>,
        id_card: Option<IdCard>,
    ) -> Result<Self, RuleError> {
        if !tree::holds_members(org_kind) {
            return Err(RuleError::OrgHoldsNoMembers(org_kind));
        }
        Ok(Self {
            id,
            org_id,
            org_path,
            name,
            gender,
            category,
            status: Status::Active,
            joined_on,
            flags: normalize_flags(flags),
            phone,
            id_card,
            version: 1,
        })
    }

    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// Applies `patch`; returns whether anything changed (and then the version is bumped).
    pub fn apply(&mut self, patch: MemberPatch) -> Result<bool, RuleError> {
        if let Some(status) = patch.status
            && status != self.status
        {
            if self.status == Status::Expelled {
                return Err(RuleError::MemberExpelled);
            }
            if status == Status::Expelled {
                return Err(RuleError::ExpelledOnlyBySanction);
            }
        }
        let before = self.clone();
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.gender {
            self.gender = v;
        }
        if let Some(v) = patch.category {
            self.category = v;
        }
        if let Some(v) = patch.status {
            self.status = v;
        }
        if let Some(v) = patch.joined_on {
            self.joined_on = v;
        }
        if let Some(v) = patch.phone {
            self.phone = v;
        }
        if let Some(v) = patch.id_card {
            self.id_card = v;
        }
        if let Some(v) = patch.flags {
            self.flags = normalize_flags(v);
        }
        let changed = *self != before;
        if changed {
            self.version += 1;
        }
        Ok(changed)
    }

    /// 组织关系转接 to organization `to_id` (path `to_path`, kind `to_kind`).
    pub fn transfer(
        &mut self,
        to_id: Uuid,
        to_path: &str,
        to_kind: OrgKind,
    ) -> Result<(), RuleError> {
        if !self.is_active() {
            return Err(RuleError::MemberNotActive(self.status));
        }
        if to_id == self.org_id {
            return Err(RuleError::SameOrganization);
        }
        if !tree::holds_members(to_kind) {
            return Err(RuleError::OrgHoldsNoMembers(to_kind));
        }
        self.org_id = to_id;
        self.org_path = to_path.to_owned();
        self.version += 1;
        Ok(())
    }

    /// Records a sanction decided on `decided_on`; an expulsion sets the status `expelled`.
    pub fn sanction(&mut self, kind: SanctionKind, decided_on: NaiveDate) -> Result<(), RuleError> {
        if self.status == Status::Expelled {
            return Err(RuleError::MemberExpelled);
        }
        if !self.is_active() {
            return Err(RuleError::MemberNotActive(self.status));
        }
        if decided_on < self.joined_on {
            return Err(RuleError::SanctionBeforeJoining);
        }
        if kind.expels() {
            self.status = Status::Expelled;
        }
        self.version += 1;
        Ok(())
    }
}

/// A recorded sanction (党纪处分).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanctionRecord {
    pub id: Uuid,
    pub member_id: Uuid,
    pub kind: SanctionKind,
    pub decided_on: NaiveDate,
    pub reason: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Account id of whoever recorded it.
    pub actor: String,
}

/// A recorded transfer (组织关系转接).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub id: Uuid,
    pub member_id: Uuid,
    pub from_org_id: Uuid,
    pub to_org_id: Uuid,
    pub reason: String,
    pub transferred_at: chrono::DateTime<chrono::Utc>,
    /// Account id of whoever did it.
    pub actor: String,
}

/// Checks a new organization of kind `child` under a parent of kind `parent`.
pub fn check_new_org(parent: OrgKind, child: OrgKind) -> Result<(), RuleError> {
    if tree::may_contain(parent, child) {
        Ok(())
    } else {
        Err(RuleError::KindNotAllowedUnder { parent, child })
    }
}

/// Checks granting a role over an organization of kind `org_kind` at `org_path` to a member at
/// `member_org_path` in status `member_status`.
pub fn check_grant(
    role: super::kinds::GrantRole,
    org_kind: OrgKind,
    org_path: &str,
    member_org_path: &str,
    member_status: Status,
) -> Result<(), RuleError> {
    if member_status != Status::Active {
        return Err(RuleError::MemberNotActive(member_status));
    }
    if !tree::grants_roles(org_kind) {
        return Err(RuleError::NoRolesOver(org_kind));
    }
    if role == super::kinds::GrantRole::Secretary && !tree::in_subtree(member_org_path, org_path) {
        return Err(RuleError::SecretaryOutsideOrg);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::kinds::GrantRole;

    fn member() -> Member {
        Member::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "/r/b/".into(),
            OrgKind::Branch,
            PersonName::parse("张三").unwrap(),
            Gender::Male,
            Category::Full,
            NaiveDate::from_ymd_opt(2001, 7, 1).unwrap(),
            vec![Flag::Mobile, Flag::Retired, Flag::Mobile],
            Some(Phone::parse("13812345678").unwrap()),
            None,
        )
        .unwrap()
    }

    #[test]
    fn new_members_are_active_at_version_one_in_branches_only() {
        let m = member();
        assert_eq!(m.status, Status::Active);
        assert_eq!(m.version, 1);
        assert_eq!(m.flags, vec![Flag::Retired, Flag::Mobile]);
        let err = Member::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "/r/".into(),
            OrgKind::Committee,
            m.name.clone(),
            Gender::Unspecified,
            Category::Full,
            m.joined_on,
            vec![],
            None,
            None,
        );
        assert_eq!(err, Err(RuleError::OrgHoldsNoMembers(OrgKind::Committee)));
    }

    #[test]
    fn updates_bump_the_version_only_when_something_changes() {
        let mut m = member();
        assert!(!m.apply(MemberPatch::default()).unwrap());
        assert_eq!(m.version, 1);
        assert!(
            !m.apply(MemberPatch {
                flags: Some(vec![Flag::Mobile, Flag::Retired]),
                ..Default::default()
            })
            .unwrap()
        );
        assert!(
            m.apply(MemberPatch {
                category: Some(Category::Probationary),
                ..Default::default()
            })
            .unwrap()
        );
        assert_eq!(m.version, 2);
        assert!(
            m.apply(MemberPatch {
                phone: Some(None),
                ..Default::default()
            })
            .unwrap()
        );
        assert_eq!(m.phone, None);
        assert_eq!(m.version, 3);
    }

    #[test]
    fn expulsion_only_by_sanction_and_final() {
        let mut m = member();
        assert_eq!(
            m.apply(MemberPatch {
                status: Some(Status::Expelled),
                ..Default::default()
            }),
            Err(RuleError::ExpelledOnlyBySanction)
        );
        m.sanction(
            SanctionKind::Warning,
            NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        )
        .unwrap();
        assert_eq!((m.status, m.version), (Status::Active, 2));
        assert_eq!(
            m.sanction(
                SanctionKind::Warning,
                NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
            ),
            Err(RuleError::SanctionBeforeJoining)
        );
        m.sanction(
            SanctionKind::Expulsion,
            NaiveDate::from_ymd_opt(2021, 1, 1).unwrap(),
        )
        .unwrap();
        assert_eq!((m.status, m.version), (Status::Expelled, 3));
        assert_eq!(
            m.apply(MemberPatch {
                status: Some(Status::Active),
                ..Default::default()
            }),
            Err(RuleError::MemberExpelled)
        );
        assert_eq!(
            m.sanction(
                SanctionKind::Warning,
                NaiveDate::from_ymd_opt(2022, 1, 1).unwrap()
            ),
            Err(RuleError::MemberExpelled)
        );
        // Other corrections stay possible.
        assert!(
            m.apply(MemberPatch {
                gender: Some(Gender::Female),
                ..Default::default()
            })
            .unwrap()
        );
    }

    #[test]
    fn transfers() {
        let mut m = member();
        let to = Uuid::now_v7();
        assert_eq!(
            m.transfer(m.org_id, "/r/b/", OrgKind::Branch),
            Err(RuleError::SameOrganization)
        );
        assert_eq!(
            m.transfer(to, "/r/c/", OrgKind::Committee),
            Err(RuleError::OrgHoldsNoMembers(OrgKind::Committee))
        );
        m.transfer(to, "/r/b2/g/", OrgKind::Group).unwrap();
        assert_eq!(
            (m.org_id, m.org_path.as_str(), m.version),
            (to, "/r/b2/g/", 2)
        );
        m.apply(MemberPatch {
            status: Some(Status::Deceased),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            m.transfer(Uuid::now_v7(), "/r/x/", OrgKind::Branch),
            Err(RuleError::MemberNotActive(Status::Deceased))
        );
    }

    #[test]
    fn org_and_grant_rules() {
        assert!(check_new_org(OrgKind::Branch, OrgKind::Group).is_ok());
        assert_eq!(
            check_new_org(OrgKind::Committee, OrgKind::Group),
            Err(RuleError::KindNotAllowedUnder {
                parent: OrgKind::Committee,
                child: OrgKind::Group
            })
        );
        assert!(
            check_grant(
                GrantRole::Secretary,
                OrgKind::Branch,
                "/r/b/",
                "/r/b/g/",
                Status::Active
            )
            .is_ok()
        );
        assert_eq!(
            check_grant(
                GrantRole::Secretary,
                OrgKind::Branch,
                "/r/b/",
                "/r/c/",
                Status::Active
            ),
            Err(RuleError::SecretaryOutsideOrg)
        );
        assert!(
            check_grant(
                GrantRole::Admin,
                OrgKind::Committee,
                "/r/",
                "/x/",
                Status::Active
            )
            .is_ok()
        );
        assert_eq!(
            check_grant(
                GrantRole::Admin,
                OrgKind::Group,
                "/r/b/g/",
                "/r/b/g/",
                Status::Active
            ),
            Err(RuleError::NoRolesOver(OrgKind::Group))
        );
        assert_eq!(
            check_grant(
                GrantRole::Admin,
                OrgKind::Branch,
                "/r/b/",
                "/r/b/",
                Status::Left
            ),
            Err(RuleError::MemberNotActive(Status::Left))
        );
    }
}
