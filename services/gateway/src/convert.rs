//! The public JSON shapes of API.md and their conversion to and from the services' protobuf
//! messages. Enums travel as API.md's `snake_case` strings; an enum value the gateway does not
//! know (a newer service) renders as `null` rather than failing the answer.

pub mod declarations;

use chrono::NaiveDate;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A public enum mirroring a protobuf enum variant by variant.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident => $proto:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub fn to_proto(self) -> i32 {
                match self {
                    $(Self::$variant => common::$proto::$variant as i32),+
                }
            }

            pub fn from_proto(value: i32) -> Option<Self> {
                match common::$proto::try_from(value).ok()? {
                    $(common::$proto::$variant => Some(Self::$variant),)+
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

api_enum! {
    /// Kind of a party organization.
    OrgKind => OrgKind {
        /// 党委
        Committee,
        /// 党总支
        GeneralBranch,
        /// 党支部
        Branch,
        /// 党小组
        Group,
    }
}

api_enum! {
    /// Type of the unit an organization is set up in.
    UnitType => UnitType {
        GovernmentOrgan,
        PublicInstitution,
        StateEnterprise,
        PrivateEnterprise,
        SocialOrganization,
        Rural,
        Community,
        University,
        Other,
    }
}

api_enum! {
    /// 正式党员 (`full`) or 预备党员 (`probationary`).
    MemberCategory => MemberCategory { Full, Probationary }
}

api_enum! {
    MemberStatus => MemberStatus { Active, TransferredOut, Deceased, Expelled, Left }
}

api_enum! {
    MemberFlag => MemberFlag {
        /// 离退休
        Retired,
        /// 年老体弱
        ElderlyInfirm,
        /// 流动党员
        Mobile,
        /// 出国(境)
        Abroad,
        /// 免于定级
        Exempt,
    }
}

api_enum! {
    /// 党纪处分.
    SanctionKind => SanctionKind { Warning, SeriousWarning, RemovalFromPost, Probation, Expulsion }
}

api_enum! {
    Gender => Gender { Male, Female }
}

api_enum! {
    /// A role that can be assigned over an organization.
    AssignableRole => Role { Secretary, Admin }
}

/// An empty string from a service as `None`.
fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

// ---------------------------------------------------------------------------------------------
// Identity

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The answer of login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// An opaque one-time token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// One role of the caller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeRole {
    /// `admin`, `secretary`, `member` or `evaluator`.
    #[schema(example = "admin")]
    pub role: String,
    pub org_id: String,
}

/// `GET /api/v1/me`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub roles: Vec<MeRole>,
}

impl Me {
    pub fn from_principal(p: &Principal) -> Self {
        Self {
            subject: p.subject.clone(),
            member_id: p.member_id.map(|m| m.to_string()),
            roles: p
                .roles
                .iter()
                .map(|r| MeRole {
                    role: r.role.as_str().to_owned(),
                    org_id: r.org_id.to_string(),
                })
                .collect(),
        }
    }
}

/// The principal the members service answered, as the gateway puts it into tokens. Role grants
/// the gateway cannot represent (unknown role, unparsable organization id) are dropped.
pub fn principal_from_proto(p: common::Principal) -> Principal {
    let roles = p
        .roles
        .into_iter()
        .filter_map(|g| {
            let role = match common::Role::try_from(g.role).ok()? {
                common::Role::Admin => RoleName::Admin,
                common::Role::Secretary => RoleName::Secretary,
                common::Role::Member => RoleName::Member,
                common::Role::Evaluator => RoleName::Evaluator,
                common::Role::Unspecified => return None,
            };
            let org_id = Uuid::parse_str(&g.org_id).ok()?;
            Some(RoleClaim {
                role,
                org_id,
                org_path: g.org_path,
            })
        })
        .collect();
    Principal {
        subject: p.subject,
        username: non_empty(p.username),
        member_id: p.member_id.as_deref().and_then(|m| Uuid::parse_str(m).ok()),
        roles,
        round_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Organizations

/// A party organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Org {
    pub id: String,
    /// `null` for the root.
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: Option<OrgKind>,
    pub unit_type: Option<UnitType>,
    /// Materialized path of ids from the root (`/<root>/<child>/…/`).
    pub path: String,
    /// Active members in the subtree.
    pub member_count: i64,
}

impl From<pb::Organization> for Org {
    fn from(o: pb::Organization) -> Self {
        Self {
            id: o.id,
            parent_id: non_empty(o.parent_id),
            name: o.name,
            kind: OrgKind::from_proto(o.kind),
            unit_type: UnitType::from_proto(o.unit_type),
            path: o.path,
            member_count: o.member_count,
        }
    }
}

/// `POST /api/v1/orgs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateOrg {
    pub parent_id: Uuid,
    pub name: String,
    pub kind: OrgKind,
    pub unit_type: UnitType,
}

impl CreateOrg {
    pub fn into_proto(self) -> pb::CreateOrganizationRequest {
        pb::CreateOrganizationRequest {
            parent_id: self.parent_id.to_string(),
            name: self.name,
            kind: self.kind.to_proto(),
            unit_type: self.unit_type.to_proto(),
        }
    }
}

/// A page of organizations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrgList {
    pub items: Vec<Org>,
    /// Empty at the end.
    pub next_page_token: String,
}

/// `POST /api/v1/orgs/{id}/roles`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignRole {
    pub member_id: Uuid,
    pub role: AssignableRole,
}

// ---------------------------------------------------------------------------------------------
// Members

/// A party member. `phone` and `id_card` appear only to the member themself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub gender: Option<Gender>,
    pub category: Option<MemberCategory>,
    pub status: Option<MemberStatus>,
    #[schema(format = Date, example = "2020-07-01")]
    pub joined_on: String,
    pub phone_masked: String,
    pub id_card_masked: String,
    pub flags: Vec<MemberFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card: Option<String>,
}

impl From<pb::Member> for Member {
    fn from(m: pb::Member) -> Self {
        Self {
            id: m.id,
            org_id: m.org_id,
            name: m.name,
            gender: Gender::from_proto(m.gender),
            category: MemberCategory::from_proto(m.category),
            status: MemberStatus::from_proto(m.status),
            joined_on: m.joined_on,
            phone_masked: m.phone_masked,
            id_card_masked: m.id_card_masked,
            flags: m
                .flags
                .into_iter()
                .filter_map(MemberFlag::from_proto)
                .collect(),
            phone: m.phone,
            id_card: m.id_card,
        }
    }
}

/// A page of members.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<Member>,
    /// Empty at the end.
    pub next_page_token: String,
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `POST /api/v1/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateMember {
    pub org_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub gender: Option<Gender>,
    pub category: MemberCategory,
    pub joined_on: NaiveDate,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub id_card: Option<String>,
    /// With `password`: creates the member's login account.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub flags: Vec<MemberFlag>,
}

impl CreateMember {
    pub fn into_proto(self) -> pb::CreateMemberRequest {
        pb::CreateMemberRequest {
            org_id: self.org_id.to_string(),
            name: self.name,
            gender: self
                .gender
                .map_or(common::Gender::Unspecified as i32, Gender::to_proto),
            category: self.category.to_proto(),
            joined_on: date(self.joined_on),
            phone: self.phone,
            id_card: self.id_card,
            username: self.username,
            password: self.password,
            flags: self.flags.into_iter().map(MemberFlag::to_proto).collect(),
        }
    }
}

/// `PATCH /api/v1/members/{id}`: only the fields present change; `flags` replaces the flags.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateMember {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub gender: Option<Gender>,
    #[serde(default)]
    pub category: Option<MemberCategory>,
    #[serde(default)]
    pub status: Option<MemberStatus>,
    #[serde(default)]
    pub joined_on: Option<NaiveDate>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub id_card: Option<String>,
    #[serde(default)]
    pub flags: Option<Vec<MemberFlag>>,
}

impl UpdateMember {
    pub fn into_proto(self, id: Uuid) -> pb::UpdateMemberRequest {
        pb::UpdateMemberRequest {
            id: id.to_string(),
            name: self.name,
            gender: self.gender.map(Gender::to_proto),
            category: self.category.map(MemberCategory::to_proto),
            status: self.status.map(MemberStatus::to_proto),
            joined_on: self.joined_on.map(date),
            phone: self.phone,
            id_card: self.id_card,
            set_flags: self.flags.is_some(),
            flags: self
                .flags
                .unwrap_or_default()
                .into_iter()
                .map(MemberFlag::to_proto)
                .collect(),
        }
    }
}

/// `POST /api/v1/members/{id}:transfer` (组织关系转接).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferMember {
    pub to_org_id: Uuid,
    pub reason: String,
}

/// One transfer of a member between organizations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    pub id: String,
    pub member_id: String,
    pub from_org_id: String,
    pub to_org_id: String,
    pub reason: String,
    /// RFC 3339.
    pub transferred_at: String,
    /// Account id of whoever made the transfer.
    pub actor: String,
}

impl From<pb::Transfer> for Transfer {
    fn from(t: pb::Transfer) -> Self {
        Self {
            id: t.id,
            member_id: t.member_id,
            from_org_id: t.from_org_id,
            to_org_id: t.to_org_id,
            reason: t.reason,
            transferred_at: t.transferred_at,
            actor: t.actor,
        }
    }
}

/// A member's transfers, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransferList {
    pub items: Vec<Transfer>,
    /// Always empty: the list is complete.
    pub next_page_token: String,
}

/// `POST /api/v1/members/{id}/sanctions` (党纪处分).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordSanction {
    pub kind: SanctionKind,
    pub decided_on: NaiveDate,
    pub reason: String,
}

/// A recorded sanction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sanction {
    pub id: String,
    pub member_id: String,
    pub kind: Option<SanctionKind>,
    #[schema(format = Date, example = "2026-03-01")]
    pub decided_on: String,
    pub reason: String,
    /// RFC 3339.
    pub recorded_at: String,
}

impl From<pb::Sanction> for Sanction {
    fn from(s: pb::Sanction) -> Self {
        Self {
            id: s.id,
            member_id: s.member_id,
            kind: SanctionKind::from_proto(s.kind),
            decided_on: s.decided_on,
            reason: s.reason,
            recorded_at: s.recorded_at,
        }
    }
}

/// A member's sanctions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SanctionList {
    pub items: Vec<Sanction>,
    /// Always empty: the list is complete.
    pub next_page_token: String,
}

/// One rejected row of a CSV import.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportError {
    /// Line number in the file; the header is line 1.
    pub row: i32,
    pub field: String,
    pub message: String,
}

/// The answer of `POST /api/v1/members:import`: all or nothing, so `created` is 0 whenever
/// `errors` is not empty.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub created: i32,
    pub errors: Vec<ImportError>,
}

impl From<pb::ImportMembersResponse> for ImportResult {
    fn from(r: pb::ImportMembersResponse) -> Self {
        Self {
            created: r.created,
            errors: r
                .errors
                .into_iter()
                .map(|e| ImportError {
                    row: e.row,
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn enums_use_api_names_and_round_trip() {
        assert_eq!(
            serde_json::to_string(&OrgKind::GeneralBranch).unwrap(),
            r#""general_branch""#
        );
        assert_eq!(
            serde_json::to_string(&UnitType::GovernmentOrgan).unwrap(),
            r#""government_organ""#
        );
        assert_eq!(
            serde_json::to_string(&MemberStatus::TransferredOut).unwrap(),
            r#""transferred_out""#
        );
        assert_eq!(
            serde_json::to_string(&MemberFlag::ElderlyInfirm).unwrap(),
            r#""elderly_infirm""#
        );
        assert_eq!(
            serde_json::to_string(&SanctionKind::RemovalFromPost).unwrap(),
            r#""removal_from_post""#
        );
        for k in [
            OrgKind::Committee,
            OrgKind::GeneralBranch,
            OrgKind::Branch,
            OrgKind::Group,
        ] {
            assert_eq!(OrgKind::from_proto(k.to_proto()), Some(k));
        }
        assert_eq!(OrgKind::from_proto(0), None);
        assert_eq!(OrgKind::from_proto(99), None);
        assert_eq!(AssignableRole::Admin.to_proto(), common::Role::Admin as i32);
        assert_eq!(
            AssignableRole::from_proto(common::Role::Member as i32),
            None
        );
    }

    #[test]
    fn root_org_has_null_parent() {
        let org = Org::from(pb::Organization {
            id: "r".into(),
            kind: 1,
            unit_type: 1,
            ..Default::default()
        });
        let json = serde_json::to_value(&org).unwrap();
        assert!(json["parent_id"].is_null());
        assert_eq!(json["kind"], "committee");
    }

    #[test]
    fn member_hides_absent_clear_values() {
        let m = Member::from(pb::Member {
            id: "m".into(),
            flags: vec![5, 0],
            ..Default::default()
        });
        let json = serde_json::to_value(&m).unwrap();
        assert!(json.get("phone").is_none());
        assert_eq!(json["flags"], serde_json::json!(["exempt"]));
    }

    #[test]
    fn principal_keeps_known_grants() {
        let root = Uuid::now_v7();
        let p = principal_from_proto(common::Principal {
            subject: "acc".into(),
            username: "admin".into(),
            member_id: None,
            roles: vec![
                common::RoleGrant {
                    role: common::Role::Admin as i32,
                    org_id: root.to_string(),
                    org_path: format!("/{root}/"),
                },
                common::RoleGrant {
                    role: 0,
                    org_id: root.to_string(),
                    org_path: String::new(),
                },
                common::RoleGrant {
                    role: 2,
                    org_id: "bad".into(),
                    org_path: String::new(),
                },
            ],
        });
        assert_eq!(p.roles.len(), 1);
        assert_eq!(p.roles[0].role, RoleName::Admin);
        assert_eq!(Me::from_principal(&p).roles[0].org_id, root.to_string());
    }
}
