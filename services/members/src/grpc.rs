//! The tonic implementation of `jifen.members.v1.MembersService`: authenticates the caller from
//! the forwarded JWT, parses every request field into domain values (reporting every bad field
//! at once, named as the public API names them), calls the use-case, and maps the answer back
//! to protobuf. [`to_status`] is the one place where use-case errors become gRPC statuses.

use crate::convert;
use crate::domain::values::{parse_id, parse_past_date};
use crate::domain::{
    IdCard, MemberPatch, OrgName, Page, Password, PersonName, Phone, Reason, RuleError, Username,
    ValueError, Violations,
};
use crate::usecases::{
    AppError, ImportOutcome, MemberView, Members, NewAccount, NewMember, NewOrganization, OrgView,
    PrincipalView,
};
use jifen_platform::auth::{Principal, TokenVerifier};
use jifen_platform::grpc as status;
use jifen_proto::common::v1 as common;
use jifen_proto::members::v1 as pb;
use jifen_proto::members::v1::members_service_server::{MembersService, MembersServiceServer};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// Largest request accepted (a CSV import of 10 000 rows fits comfortably).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The gRPC face of the members use-cases.
#[derive(Clone)]
pub struct MembersApi {
    app: Members,
    verifier: TokenVerifier,
}

impl MembersApi {
    pub fn new(app: Members, verifier: TokenVerifier) -> Self {
        Self { app, verifier }
    }

    /// The tonic service, ready for [`jifen_platform::grpc::GrpcServer::add_service`].
    pub fn into_service(self) -> MembersServiceServer<Self> {
        MembersServiceServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES)
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        status::principal(request, &self.verifier)
    }
}

/// The one mapping from use-case errors to gRPC statuses (docs/decisions/0001-errors.md).
pub fn to_status(error: AppError) -> Status {
    match error {
        AppError::Invalid(violations) => {
            status::invalid_argument(violations.into_iter().map(|v| (v.field, v.message)))
        }
        AppError::BadCredentials => status::failure(
            Code::Unauthenticated,
            "invalid_credentials",
            "wrong username or password",
        ),
        AppError::Denied => status::failure(
            Code::PermissionDenied,
            "permission_denied",
            "not allowed for your role and scope",
        ),
        AppError::NotFound { field, what } => status::failure_with_fields(
            Code::NotFound,
            "not_found",
            format!("{what} not found"),
            [(field, format!("{what} not found"))],
        ),
        AppError::Rule { rule, field } => {
            let (code, reason) = rule_code(&rule);
            let message = rule.to_string();
            match field {
                Some(f) => {
                    status::failure_with_fields(code, reason, message.clone(), [(f, message)])
                }
                None => status::failure(code, reason, message),
            }
        }
        AppError::Taken {
            code,
            field,
            message,
        } => status::failure_with_fields(Code::AlreadyExists, code, message, [(field, message)]),
        AppError::Conflict { code, message } => {
            status::failure(Code::FailedPrecondition, code, message)
        }
        AppError::Db(e) if is_unavailable(&e) => {
            tracing::warn!(error = %e, "database unavailable");
            status::failure(
                Code::Unavailable,
                "unavailable",
                "the database is unavailable",
            )
        }
        other => status::internal(&other),
    }
}

/// gRPC code and machine code of a rule: rule violations answer OUT_OF_RANGE (422), state
/// conflicts FAILED_PRECONDITION (409).
fn rule_code(rule: &RuleError) -> (Code, &'static str) {
    match rule {
        RuleError::ExpelledOnlyBySanction => (Code::OutOfRange, "expelled_only_by_sanction"),
        RuleError::OrgHoldsNoMembers(_) => (Code::OutOfRange, "org_holds_no_members"),
        RuleError::KindNotAllowedUnder { .. } => {
            (Code::OutOfRange, "kind_not_allowed_under_parent")
        }
        RuleError::NoRolesOver(_) => (Code::OutOfRange, "no_roles_over_kind"),
        RuleError::SecretaryOutsideOrg => (Code::OutOfRange, "secretary_outside_org"),
        RuleError::SanctionBeforeJoining => (Code::OutOfRange, "decided_before_joining"),
        RuleError::MemberExpelled => (Code::FailedPrecondition, "member_expelled"),
        RuleError::MemberNotActive(_) => (Code::FailedPrecondition, "member_not_active"),
        RuleError::SameOrganization => (Code::FailedPrecondition, "same_organization"),
    }
}

fn is_unavailable(e: &sea_orm::DbErr) -> bool {
    matches!(
        e,
        sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
    )
}

fn invalid(v: Violations) -> Status {
    to_status(AppError::Invalid(v.into_vec()))
}

/// Fails with every violation when there is any.
fn finish(v: Violations) -> Result<(), Status> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(invalid(v))
    }
}

fn one_id(field: &str, text: &str) -> Result<Uuid, Status> {
    let mut v = Violations::new();
    let id = v.check(field, parse_id(text));
    match id {
        Some(id) => Ok(id),
        None => Err(invalid(v)),
    }
}

fn page(v: &mut Violations, size: i32, token: &str) -> Option<Page> {
    let size = v.check("page_size", Page::parse_size(size));
    let after = v.check("page_token", Page::parse_token(token));
    Some(Page {
        size: size?,
        after: after?,
    })
}

/// An optional clearable value: absent → unchanged, empty → cleared, else parsed.
fn clearable<T>(
    v: &mut Violations,
    field: &str,
    value: Option<&str>,
    parse: fn(&str) -> Result<T, ValueError>,
) -> Option<Option<T>> {
    match value {
        None => None,
        Some(t) if t.trim().is_empty() => Some(None),
        Some(t) => v.check(field, parse(t)).map(Some),
    }
}

fn flags(v: &mut Violations, values: &[i32]) -> Vec<crate::domain::Flag> {
    let mut out = Vec::with_capacity(values.len());
    for n in values {
        if let Some(f) = v.check("flags", convert::flag(*n)) {
            out.push(f);
        }
    }
    out
}

fn org_pb(v: OrgView) -> pb::Organization {
    let o = v.org;
    pb::Organization {
        id: o.id.to_string(),
        parent_id: o.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        name: o.name.as_str().to_owned(),
        kind: convert::org_kind_pb(o.kind).into(),
        unit_type: convert::unit_type_pb(o.unit_type).into(),
        path: o.path,
        member_count: v.member_count,
        version: o.version,
    }
}

fn member_pb(v: MemberView) -> pb::Member {
    let m = v.member;
    pb::Member {
        id: m.id.to_string(),
        org_id: m.org_id.to_string(),
        org_path: m.org_path.clone(),
        name: m.name.as_str().to_owned(),
        gender: convert::gender_pb(m.gender).into(),
        category: convert::category_pb(m.category).into(),
        status: convert::status_pb(m.status).into(),
        joined_on: m.joined_on.format("%Y-%m-%d").to_string(),
        phone_masked: m.phone.as_ref().map(Phone::masked).unwrap_or_default(),
        id_card_masked: m.id_card.as_ref().map(IdCard::masked).unwrap_or_default(),
        flags: m
            .flags
            .iter()
            .map(|f| convert::flag_pb(*f).into())
            .collect(),
        phone: if v.reveal {
            m.phone.as_ref().map(|p| p.as_str().to_owned())
        } else {
            None
        },
        id_card: if v.reveal {
            m.id_card.as_ref().map(|c| c.as_str().to_owned())
        } else {
            None
        },
        username: v.username,
        version: m.version,
    }
}

fn principal_pb(p: PrincipalView) -> common::Principal {
    common::Principal {
        subject: p.subject.to_string(),
        username: p.username,
        member_id: p.member_id.map(|m| m.to_string()),
        roles: p
            .roles
            .into_iter()
            .map(|r| common::RoleGrant {
                role: convert::role_pb(r.role).into(),
                org_id: r.org_id.to_string(),
                org_path: r.org_path,
            })
            .collect(),
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn import_pb(o: ImportOutcome) -> pb::ImportMembersResponse {
    pb::ImportMembersResponse {
        created: i32::try_from(o.created).unwrap_or(i32::MAX),
        errors: o
            .errors
            .into_iter()
            .map(|e| pb::ImportError {
                row: i32::try_from(e.row).unwrap_or(i32::MAX),
                field: e.field,
                message: e.message,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl MembersService for MembersApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("name", &r.name)])?;
        let mut v = Violations::new();
        let parent_id = v.check("parent_id", parse_id(&r.parent_id));
        let name = v.check("name", OrgName::parse(&r.name));
        let kind = v.check("kind", convert::org_kind(r.kind));
        let unit_type = match r.unit_type {
            0 => Some(None),
            n => v.check("unit_type", convert::unit_type(n)).map(Some),
        };
        let (Some(parent_id), Some(name), Some(kind), Some(unit_type)) =
            (parent_id, name, kind, unit_type)
        else {
            return Err(invalid(v));
        };
        let view = self
            .app
            .create_organization(
                &actor,
                NewOrganization {
                    parent_id,
                    name,
                    kind,
                    unit_type,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(org_pb(view)))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let actor = self.caller(&request)?;
        let id = one_id("id", &request.get_ref().id)?;
        let view = self
            .app
            .get_organization(&actor, id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(org_pb(view)))
    }

    async fn list_child_organizations(
        &self,
        request: Request<pb::ListChildOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let id = v.check("id", parse_id(&r.id));
        let page = page(&mut v, r.page_size, &r.page_token);
        let (Some(id), Some(page)) = (id, page) else {
            return Err(invalid(v));
        };
        let (orgs, next) = self
            .app
            .list_children(&actor, id, page)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: orgs.into_iter().map(org_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::AssignRoleResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let org_id = v.check("org_id", parse_id(&r.org_id));
        let member_id = v.check("member_id", parse_id(&r.member_id));
        let role = v.check("role", convert::grant_role(r.role));
        let (Some(org_id), Some(member_id), Some(role)) = (org_id, member_id, role) else {
            return Err(invalid(v));
        };
        self.app
            .assign_role(&actor, org_id, member_id, role)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AssignRoleResponse {}))
    }

    async fn create_member(
        &self,
        request: Request<pb::CreateMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([
            ("name", r.name.as_str()),
            ("joined_on", &r.joined_on),
            ("phone", r.phone.as_deref().unwrap_or_default()),
            ("id_card", r.id_card.as_deref().unwrap_or_default()),
            ("username", r.username.as_deref().unwrap_or_default()),
            ("password", r.password.as_deref().unwrap_or_default()),
        ])?;
        let today = crate::usecases::today();
        let mut v = Violations::new();
        let org_id = v.check("org_id", parse_id(&r.org_id));
        let name = v.check("name", PersonName::parse(&r.name));
        let gender = v.check("gender", convert::gender(r.gender));
        let category = v.check("category", convert::category(r.category));
        let joined_on = v.check("joined_on", parse_past_date(&r.joined_on, today));
        let phone = clearable(&mut v, "phone", r.phone.as_deref(), Phone::parse);
        let id_card = clearable(&mut v, "id_card", r.id_card.as_deref(), IdCard::parse);
        let member_flags = flags(&mut v, &r.flags);
        let account = match (
            r.username.as_deref().filter(|u| !u.is_empty()),
            r.password.as_deref().filter(|p| !p.is_empty()),
        ) {
            (None, None) => Some(None),
            (Some(_), None) => {
                v.add("password", "is required with a username");
                None
            }
            (None, Some(_)) => {
                v.add("username", "is required with a password");
                None
            }
            (Some(u), Some(p)) => {
                let username = v.check("username", Username::parse(u));
                let password = v.check("password", Password::parse(p));
                match (username, password) {
                    (Some(username), Some(password)) => {
                        Some(Some(NewAccount { username, password }))
                    }
                    _ => None,
                }
            }
        };
        let (
            Some(org_id),
            Some(name),
            Some(gender),
            Some(category),
            Some(joined_on),
            Some(account),
        ) = (org_id, name, gender, category, joined_on, account)
        else {
            return Err(invalid(v));
        };
        finish(v)?;
        let cmd = NewMember {
            org_id,
            name,
            gender,
            category,
            joined_on,
            phone: phone.flatten(),
            id_card: id_card.flatten(),
            flags: member_flags,
            account,
        };
        let view = self
            .app
            .create_member(&actor, cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(member_pb(view)))
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = self.caller(&request)?;
        let id = one_id("id", &request.get_ref().id)?;
        let view = self.app.get_member(&actor, id).await.map_err(to_status)?;
        Ok(Response::new(member_pb(view)))
    }

    async fn update_member(
        &self,
        request: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([
            ("name", r.name.as_deref().unwrap_or_default()),
            ("joined_on", r.joined_on.as_deref().unwrap_or_default()),
            ("phone", r.phone.as_deref().unwrap_or_default()),
            ("id_card", r.id_card.as_deref().unwrap_or_default()),
        ])?;
        let today = crate::usecases::today();
        let mut v = Violations::new();
        let id = v.check("id", parse_id(&r.id));
        let patch = MemberPatch {
            name: r
                .name
                .as_deref()
                .and_then(|t| v.check("name", PersonName::parse(t))),
            gender: r.gender.and_then(|n| v.check("gender", convert::gender(n))),
            category: r
                .category
                .and_then(|n| v.check("category", convert::category(n))),
            status: r.status.and_then(|n| v.check("status", convert::status(n))),
            joined_on: r
                .joined_on
                .as_deref()
                .and_then(|t| v.check("joined_on", parse_past_date(t, today))),
            phone: clearable(&mut v, "phone", r.phone.as_deref(), Phone::parse),
            id_card: clearable(&mut v, "id_card", r.id_card.as_deref(), IdCard::parse),
            flags: if r.set_flags {
                Some(flags(&mut v, &r.flags))
            } else {
                None
            },
        };
        finish(v)?;
        let Some(id) = id else {
            return Err(Status::internal("unreachable: id checked"));
        };
        let view = self
            .app
            .update_member(&actor, id, patch)
            .await
            .map_err(to_status)?;
        Ok(Response::new(member_pb(view)))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let org_id = v.check("org_id", parse_id(&r.org_id));
        let page = page(&mut v, r.page_size, &r.page_token);
        let (Some(org_id), Some(page)) = (org_id, page) else {
            return Err(invalid(v));
        };
        let (members, next) = self
            .app
            .list_members(&actor, org_id, r.recursive, page)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: members.into_iter().map(member_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn transfer_member(
        &self,
        request: Request<pb::TransferMemberRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("reason", &r.reason)])?;
        let mut v = Violations::new();
        let id = v.check("id", parse_id(&r.id));
        let to = v.check("to_org_id", parse_id(&r.to_org_id));
        let reason = v.check("reason", Reason::parse(&r.reason));
        let (Some(id), Some(to), Some(reason)) = (id, to, reason) else {
            return Err(invalid(v));
        };
        let view = self
            .app
            .transfer_member(&actor, id, to, reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(member_pb(view)))
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let actor = self.caller(&request)?;
        let member_id = one_id("member_id", &request.get_ref().member_id)?;
        let transfers = self
            .app
            .list_transfers(&actor, member_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListTransfersResponse {
            transfers: transfers
                .into_iter()
                .map(|t| pb::Transfer {
                    id: t.id.to_string(),
                    member_id: t.member_id.to_string(),
                    from_org_id: t.from_org_id.to_string(),
                    to_org_id: t.to_org_id.to_string(),
                    reason: t.reason,
                    transferred_at: rfc3339(t.transferred_at),
                    actor: t.actor,
                })
                .collect(),
        }))
    }

    async fn record_sanction(
        &self,
        request: Request<pb::RecordSanctionRequest>,
    ) -> Result<Response<pb::Sanction>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("reason", &r.reason)])?;
        let today = crate::usecases::today();
        let mut v = Violations::new();
        let member_id = v.check("member_id", parse_id(&r.member_id));
        let kind = v.check("kind", convert::sanction_kind(r.kind));
        let decided_on = v.check("decided_on", parse_past_date(&r.decided_on, today));
        let reason = v.check("reason", Reason::parse(&r.reason));
        let (Some(member_id), Some(kind), Some(decided_on), Some(reason)) =
            (member_id, kind, decided_on, reason)
        else {
            return Err(invalid(v));
        };
        let s = self
            .app
            .record_sanction(&actor, member_id, kind, decided_on, reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(sanction_pb(s)))
    }

    async fn list_sanctions(
        &self,
        request: Request<pb::ListSanctionsRequest>,
    ) -> Result<Response<pb::ListSanctionsResponse>, Status> {
        let actor = self.caller(&request)?;
        let member_id = one_id("member_id", &request.get_ref().member_id)?;
        let sanctions = self
            .app
            .list_sanctions(&actor, member_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListSanctionsResponse {
            sanctions: sanctions.into_iter().map(sanction_pb).collect(),
        }))
    }

    async fn import_members(
        &self,
        request: Request<pb::ImportMembersRequest>,
    ) -> Result<Response<pb::ImportMembersResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        if let Some(at) = r.csv.iter().position(|&b| b == 0) {
            let line = r.csv[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(jifen_platform::grpc::invalid_argument([(
                "csv",
                format!("line {line}: {}", jifen_platform::text::NUL_MESSAGE),
            )]));
        }
        let outcome = self
            .app
            .import_members(&actor, &r.csv)
            .await
            .map_err(to_status)?;
        Ok(Response::new(import_pb(outcome)))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<common::Principal>, Status> {
        let r = request.into_inner();
        // A NUL cannot be in any stored username; looking it up would fail the query.
        jifen_platform::text::reject_nul([("username", &r.username), ("password", &r.password)])?;
        let mut v = Violations::new();
        if r.username.trim().is_empty() {
            v.add("username", ValueError::Missing.to_string());
        }
        if r.password.is_empty() {
            v.add("password", ValueError::Missing.to_string());
        }
        finish(v)?;
        let p = self
            .app
            .authenticate(&r.username, &r.password)
            .await
            .map_err(to_status)?;
        Ok(Response::new(principal_pb(p)))
    }

    async fn get_principal(
        &self,
        request: Request<pb::GetPrincipalRequest>,
    ) -> Result<Response<common::Principal>, Status> {
        let actor = self.caller(&request)?;
        let subject = one_id("subject", &request.get_ref().subject)?;
        let p = self
            .app
            .get_principal(&actor, subject)
            .await
            .map_err(to_status)?;
        Ok(Response::new(principal_pb(p)))
    }
}

fn sanction_pb(s: crate::domain::SanctionRecord) -> pb::Sanction {
    pb::Sanction {
        id: s.id.to_string(),
        member_id: s.member_id.to_string(),
        kind: convert::sanction_kind_pb(s.kind).into(),
        decided_on: s.decided_on.format("%Y-%m-%d").to_string(),
        reason: s.reason,
        recorded_at: rfc3339(s.recorded_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_violations_are_422_and_conflicts_409() {
        assert_eq!(
            rule_code(&RuleError::OrgHoldsNoMembers(
                crate::domain::OrgKind::Committee
            ))
            .0,
            Code::OutOfRange
        );
        assert_eq!(
            rule_code(&RuleError::MemberExpelled).0,
            Code::FailedPrecondition
        );
        let s = to_status(AppError::Taken {
            code: "id_card_taken",
            field: "id_card",
            message: "taken",
        });
        assert_eq!(s.code(), Code::AlreadyExists);
        let (code, fields) = status::status_details(&s);
        assert_eq!(code.as_deref(), Some("id_card_taken"));
        assert_eq!(fields, vec![("id_card".to_owned(), "taken".to_owned())]);
    }

    #[test]
    fn unknown_user_and_wrong_password_look_the_same() {
        let s = to_status(AppError::BadCredentials);
        assert_eq!(s.code(), Code::Unauthenticated);
        assert_eq!(s.message(), "wrong username or password");
    }
}
