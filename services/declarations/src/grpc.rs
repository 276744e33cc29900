//! The tonic implementation of `jifen.declarations.v1.DeclarationsService`: authenticates the
//! caller from the forwarded JWT, parses every request field into domain values (reporting every
//! bad field at once, named as the public API names them), calls the use-case, and maps the
//! answer back to protobuf. [`to_status`] is the one place where use-case errors become statuses.

use crate::domain::declaration::{Adjustment, Decision, LineInput, Status as DeclStatus};
use crate::domain::{Month, Violation};
use crate::events;
use crate::usecases::{
    AppError, DeclarationView, Declarations, NewEntry, RecordView, StandardView,
};
use jifen_platform::auth::{Principal, TokenVerifier};
use jifen_platform::grpc as status;
use jifen_proto::declarations::v1 as pb;
use jifen_proto::declarations::v1::declarations_service_server::{
    DeclarationsService, DeclarationsServiceServer,
};
use jifen_proto::events::v1 as ev;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// Largest request accepted: an evidence file of the configured limit plus its envelope.
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// The gRPC face of the declarations use-cases.
#[derive(Clone)]
pub struct DeclarationsApi {
    app: Declarations,
    verifier: TokenVerifier,
}

impl DeclarationsApi {
    pub fn new(app: Declarations, verifier: TokenVerifier) -> Self {
        Self { app, verifier }
    }

    /// The tonic service, ready for [`jifen_platform::grpc::GrpcServer::add_service`].
    pub fn into_service(self) -> DeclarationsServiceServer<Self> {
        DeclarationsServiceServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_REQUEST_BYTES)
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        status::principal(request, &self.verifier)
    }
}

/// The one mapping from use-case errors to gRPC statuses (docs/decisions/0001-errors.md):
/// bad input INVALID_ARGUMENT (400), state conflicts FAILED_PRECONDITION (409), rule violations
/// OUT_OF_RANGE (422).
pub fn to_status(error: AppError) -> Status {
    match error {
        AppError::Invalid(violations) => {
            status::invalid_argument(violations.into_iter().map(|v| (v.field, v.message)))
        }
        AppError::Denied => status::failure(
            Code::PermissionDenied,
            "permission_denied",
            "not allowed for your role and scope",
        ),
        AppError::DeniedOwn { field, message } => status::failure_with_fields(
            Code::PermissionDenied,
            "permission_denied",
            message.clone(),
            [(field, message)],
        ),
        AppError::NotFound { field, what } => status::failure_with_fields(
            Code::NotFound,
            "not_found",
            format!("{what} not found"),
            [(field, format!("{what} not found"))],
        ),
        AppError::Conflict { code, message } => {
            status::failure(Code::FailedPrecondition, code, message)
        }
        AppError::Rule {
            code,
            message,
            field,
        } => match field {
            Some(f) => {
                status::failure_with_fields(Code::OutOfRange, code, message.clone(), [(f, message)])
            }
            None => status::failure(Code::OutOfRange, code, message),
        },
        AppError::Db(e)
            if matches!(
                e,
                sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
            ) =>
        {
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

/// Collects bad fields of one request.
#[derive(Default)]
struct Check(Vec<Violation>);

impl Check {
    fn id(&mut self, field: &str, text: &str) -> Option<Uuid> {
        match Uuid::parse_str(text.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                self.0.push(Violation::new(field, "must be a UUID"));
                None
            }
        }
    }

    fn month(&mut self, field: &str, text: &str) -> Option<Month> {
        match Month::parse(text.trim()) {
            Ok(m) => Some(m),
            Err(e) => {
                self.0.push(Violation::new(field, e.to_string()));
                None
            }
        }
    }

    fn year(&mut self, year: i32) -> Option<i32> {
        if (2000..=2999).contains(&year) {
            Some(year)
        } else {
            self.0
                .push(Violation::new("year", "must be a year from 2000 to 2999"));
            None
        }
    }

    fn page_token(&mut self, token: &str) -> Option<Option<Uuid>> {
        if token.is_empty() {
            Some(None)
        } else {
            match Uuid::parse_str(token) {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    self.0.push(Violation::new(
                        "page_token",
                        "not a token this listing gave",
                    ));
                    None
                }
            }
        }
    }

    fn page_size(&mut self, size: i32) -> Option<u64> {
        match u64::try_from(size) {
            Ok(n) if n <= 1000 => Some(n),
            _ => {
                self.0
                    .push(Violation::new("page_size", "must be from 0 to 1000"));
                None
            }
        }
    }

    fn done(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(to_status(AppError::Invalid(self.0)))
        }
    }
}

/// Unwraps a value whose field was checked; `done()` already failed when it is missing.
fn got<T>(value: Option<T>) -> Result<T, Status> {
    value.ok_or_else(|| Status::internal("a checked field is missing"))
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn standard_pb(v: StandardView) -> Result<pb::Standard, Status> {
    let document = v
        .standard
        .to_json_value()
        .map_err(|e| to_status(AppError::Corrupt(e.to_string())))?;
    Ok(pb::Standard {
        year: v.year,
        items: v
            .items
            .iter()
            .map(|i| pb::StandardItem {
                code: i.code.clone(),
                category: i.category.clone(),
                name: i.name.clone(),
                kind: events::kind_pb(i.kind.as_str()).into(),
                points: i.points.tenths(),
                unit: i.unit.clone(),
                monthly_cap: i.monthly_cap.map(|c| c.tenths()),
                yearly_cap: i.yearly_cap.map(|c| c.tenths()),
                evidence_required: i.evidence_required,
                declared_by: i.declared_by.as_str().to_owned(),
                name_en: i.name_en.clone().unwrap_or_default(),
                grade_cap: i
                    .grade_cap
                    .map(|g| g.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect(),
        document_json: document.to_string(),
        version: v.version,
        unit_type: v.unit_type.unwrap_or_default(),
    })
}

fn record_pb(r: &RecordView) -> pb::BranchRecord {
    pb::BranchRecord {
        id: r.id.to_string(),
        member_id: r.member_id.to_string(),
        org_id: r.org_id.to_string(),
        month: r.month.clone(),
        item_code: r.item_code.clone(),
        quantity: r.quantity,
        points: r.points,
        note: r.note.clone(),
        recorded_by: r.recorded_by.clone(),
        recorded_at: rfc3339(r.recorded_at),
        revoked: r.revoked_at.is_some(),
        revoked_at: r.revoked_at.map(rfc3339).unwrap_or_default(),
        revoke_reason: r.revoke_reason.clone().unwrap_or_default(),
        version: r.version,
    }
}

fn declaration_pb(v: DeclarationView) -> pb::Declaration {
    let mut lines: Vec<pb::DeclarationLine> = v
        .lines
        .iter()
        .map(|l| pb::DeclarationLine {
            line_id: l.line_id.to_string(),
            item_code: l.item_code.clone(),
            quantity: l.quantity,
            claimed_points: l.claimed_points,
            approved_points: l.approved_points,
            note: l.note.clone(),
            evidence: l.evidence.clone(),
            source: pb::LineSource::Member.into(),
            adjust_reason: l.adjust_reason.clone(),
            item_name: l.item_name.clone(),
        })
        .collect();
    lines.extend(v.branch_lines.iter().map(|r| pb::DeclarationLine {
        line_id: r.id.to_string(),
        item_code: r.item_code.clone(),
        quantity: r.quantity,
        claimed_points: r.points,
        approved_points: Some(r.points),
        note: r.note.clone(),
        evidence: Vec::new(),
        source: pb::LineSource::Branch.into(),
        adjust_reason: String::new(),
        item_name: String::new(),
    }));
    pb::Declaration {
        id: v.id.map(|id| id.to_string()).unwrap_or_default(),
        member_id: v.member_id.to_string(),
        org_id: v.org_id.to_string(),
        month: v.month,
        status: events::status_pb(v.status).into(),
        lines,
        claimed_total: v.claimed_total,
        approved_total: v.approved_total,
        submitted_at: v.submitted_at.map(rfc3339).unwrap_or_default(),
        reviewed_at: v.reviewed_at.map(rfc3339).unwrap_or_default(),
        reviewer_id: v.reviewer_id.unwrap_or_default(),
        comment: v.comment,
        version: v.version,
        open_until: v.open_until.map(rfc3339).unwrap_or_default(),
    }
}

fn status_filter(check: &mut Check, value: i32) -> Option<Option<DeclStatus>> {
    match ev::DeclarationStatus::try_from(value) {
        Ok(ev::DeclarationStatus::Unspecified) => Some(None),
        Ok(ev::DeclarationStatus::Draft) => Some(Some(DeclStatus::Draft)),
        Ok(ev::DeclarationStatus::Submitted) => Some(Some(DeclStatus::Submitted)),
        Ok(ev::DeclarationStatus::Approved) => Some(Some(DeclStatus::Approved)),
        Ok(ev::DeclarationStatus::Rejected) => Some(Some(DeclStatus::Rejected)),
        Ok(ev::DeclarationStatus::Returned) => Some(Some(DeclStatus::Returned)),
        Err(_) => {
            check.0.push(Violation::new(
                "status",
                "must be one of draft, submitted, approved, rejected, returned",
            ));
            None
        }
    }
}

#[tonic::async_trait]
impl DeclarationsService for DeclarationsApi {
    async fn get_standard(
        &self,
        request: Request<pb::GetStandardRequest>,
    ) -> Result<Response<pb::Standard>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let year = check.year(r.year);
        let org = if r.org_id.is_empty() {
            Some(None)
        } else {
            check.id("org_id", &r.org_id).map(Some)
        };
        check.done()?;
        let view = self
            .app
            .get_standard(&actor, got(year)?, got(org)?)
            .await
            .map_err(to_status)?;
        Ok(Response::new(standard_pb(view)?))
    }

    async fn put_standard(
        &self,
        request: Request<pb::PutStandardRequest>,
    ) -> Result<Response<pb::Standard>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        if jifen_platform::text::json_has_nul(&r.document_json) {
            return Err(jifen_platform::grpc::invalid_argument([(
                "document",
                jifen_platform::text::NUL_MESSAGE,
            )]));
        }
        let mut check = Check::default();
        let year = check.year(r.year);
        check.done()?;
        let view = self
            .app
            .put_standard(&actor, got(year)?, &r.document_json)
            .await
            .map_err(to_status)?;
        Ok(Response::new(standard_pb(view)?))
    }

    async fn get_declaration(
        &self,
        request: Request<pb::GetDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let member = check.id("member_id", &r.member_id);
        let month = check.month("month", &r.month);
        check.done()?;
        let view = self
            .app
            .get_declaration(&actor, got(member)?, got(month)?)
            .await
            .map_err(to_status)?;
        Ok(Response::new(declaration_pb(view)))
    }

    async fn save_declaration(
        &self,
        request: Request<pb::SaveDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul(r.lines.iter().enumerate().flat_map(|(i, l)| {
            std::iter::once((format!("lines[{i}].item_code"), l.item_code.as_str()))
                .chain(std::iter::once((
                    format!("lines[{i}].note"),
                    l.note.as_str(),
                )))
                .chain(
                    l.evidence
                        .iter()
                        .enumerate()
                        .map(move |(j, e)| (format!("lines[{i}].evidence[{j}]"), e.as_str())),
                )
        }))?;
        let mut check = Check::default();
        let member = check.id("member_id", &r.member_id);
        let month = check.month("month", &r.month);
        check.done()?;
        let lines: Vec<LineInput> = r
            .lines
            .into_iter()
            .map(|l| LineInput {
                item_code: l.item_code.trim().to_owned(),
                quantity: i64::from(l.quantity),
                note: l.note,
                evidence: l
                    .evidence
                    .into_iter()
                    .map(|e| e.trim().to_owned())
                    .collect(),
            })
            .collect();
        let view = self
            .app
            .save_declaration(&actor, got(member)?, got(month)?, &lines)
            .await
            .map_err(to_status)?;
        Ok(Response::new(declaration_pb(view)))
    }

    async fn submit_declaration(
        &self,
        request: Request<pb::SubmitDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let id = check.id("id", &r.id);
        check.done()?;
        let view = self.app.submit(&actor, got(id)?).await.map_err(to_status)?;
        Ok(Response::new(declaration_pb(view)))
    }

    async fn review_declaration(
        &self,
        request: Request<pb::ReviewDeclarationRequest>,
    ) -> Result<Response<pb::Declaration>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("comment", &r.comment)])?;
        let mut check = Check::default();
        let id = check.id("id", &r.id);
        let decision = match pb::ReviewDecision::try_from(r.decision) {
            Ok(pb::ReviewDecision::Approve) => Some(Decision::Approve),
            Ok(pb::ReviewDecision::Reject) => Some(Decision::Reject),
            Ok(pb::ReviewDecision::Return) => Some(Decision::Return),
            _ => {
                check.0.push(Violation::new(
                    "decision",
                    "must be one of approve, reject, return",
                ));
                None
            }
        };
        let mut adjustments = Vec::with_capacity(r.lines.len());
        for (i, l) in r.lines.iter().enumerate() {
            if let Some(line_id) = check.id(&format!("lines[{i}].line_id"), &l.line_id) {
                adjustments.push(Adjustment {
                    line_id,
                    approved_points: l.approved_points,
                    reason: l.reason.clone(),
                });
            }
        }
        check.done()?;
        let view = self
            .app
            .review(&actor, got(id)?, got(decision)?, &adjustments, &r.comment)
            .await
            .map_err(to_status)?;
        Ok(Response::new(declaration_pb(view)))
    }

    async fn batch_approve(
        &self,
        request: Request<pb::BatchApproveRequest>,
    ) -> Result<Response<pb::BatchApproveResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let org = check.id("org_id", &r.org_id);
        let month = check.month("month", &r.month);
        let ids: Vec<Uuid> = r
            .declaration_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| check.id(&format!("declaration_ids[{i}]"), id))
            .collect();
        check.done()?;
        let (approved, skipped) = self
            .app
            .batch_approve(&actor, got(org)?, got(month)?, &ids)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::BatchApproveResponse {
            approved: i32::try_from(approved).unwrap_or(i32::MAX),
            skipped: skipped
                .into_iter()
                .map(|(id, reason)| pb::Skipped {
                    id: id.to_string(),
                    reason: reason.to_owned(),
                })
                .collect(),
        }))
    }

    async fn list_declarations(
        &self,
        request: Request<pb::ListDeclarationsRequest>,
    ) -> Result<Response<pb::ListDeclarationsResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let org = check.id("org_id", &r.org_id);
        let month = if r.month.is_empty() {
            Some(None)
        } else {
            check.month("month", &r.month).map(Some)
        };
        let status = status_filter(&mut check, r.status);
        let size = check.page_size(r.page_size);
        let after = check.page_token(&r.page_token);
        check.done()?;
        let (views, next) = self
            .app
            .list(
                &actor,
                got(org)?,
                got(month)?,
                got(status)?,
                got(size)?,
                got(after)?,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListDeclarationsResponse {
            declarations: views.into_iter().map(declaration_pb).collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_declaration_history(
        &self,
        request: Request<pb::GetDeclarationHistoryRequest>,
    ) -> Result<Response<pb::DeclarationHistory>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let id = check.id("id", &r.id);
        check.done()?;
        let id = got(id)?;
        let transitions = self.app.history(&actor, id).await.map_err(to_status)?;
        Ok(Response::new(pb::DeclarationHistory {
            declaration_id: id.to_string(),
            transitions: transitions
                .into_iter()
                .map(|t| pb::Transition {
                    at: rfc3339(t.at),
                    actor_id: t.actor_id,
                    actor_name: t.actor_name,
                    from_status: t.from_status,
                    to_status: t.to_status,
                    reason: t.reason,
                    version: t.version,
                })
                .collect(),
        }))
    }

    async fn record_branch_entries(
        &self,
        request: Request<pb::RecordBranchEntriesRequest>,
    ) -> Result<Response<pb::RecordBranchEntriesResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul(r.entries.iter().enumerate().flat_map(|(i, e)| {
            [
                (format!("entries[{i}].item_code"), e.item_code.as_str()),
                (format!("entries[{i}].note"), e.note.as_str()),
            ]
        }))?;
        let mut check = Check::default();
        let org = check.id("org_id", &r.org_id);
        let month = check.month("month", &r.month);
        let mut entries = Vec::with_capacity(r.entries.len());
        for (i, e) in r.entries.iter().enumerate() {
            if let Some(member_id) = check.id(&format!("entries[{i}].member_id"), &e.member_id) {
                entries.push(NewEntry {
                    member_id,
                    item_code: e.item_code.trim().to_owned(),
                    quantity: i64::from(e.quantity),
                    note: e.note.clone(),
                });
            }
        }
        check.done()?;
        let records = self
            .app
            .record_branch(&actor, got(org)?, got(month)?, &entries)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RecordBranchEntriesResponse {
            records: records.iter().map(record_pb).collect(),
        }))
    }

    async fn revoke_branch_record(
        &self,
        request: Request<pb::RevokeBranchRecordRequest>,
    ) -> Result<Response<pb::BranchRecord>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("reason", &r.reason)])?;
        let mut check = Check::default();
        let id = check.id("id", &r.id);
        check.done()?;
        let record = self
            .app
            .revoke_record(&actor, got(id)?, &r.reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(record_pb(&record)))
    }

    async fn list_branch_records(
        &self,
        request: Request<pb::ListBranchRecordsRequest>,
    ) -> Result<Response<pb::ListBranchRecordsResponse>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let mut check = Check::default();
        let org = check.id("org_id", &r.org_id);
        let month = if r.month.is_empty() {
            Some(None)
        } else {
            check.month("month", &r.month).map(Some)
        };
        let size = check.page_size(r.page_size);
        let after = check.page_token(&r.page_token);
        check.done()?;
        let (records, next) = self
            .app
            .list_records(&actor, got(org)?, got(month)?, got(size)?, got(after)?)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListBranchRecordsResponse {
            records: records.iter().map(record_pb).collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn reopen_period(
        &self,
        request: Request<pb::ReopenPeriodRequest>,
    ) -> Result<Response<pb::Reopening>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("reason", &r.reason)])?;
        let mut check = Check::default();
        let org = check.id("org_id", &r.org_id);
        let month = check.month("month", &r.month);
        let until = match chrono::DateTime::parse_from_rfc3339(r.until.trim()) {
            Ok(t) => Some(t.with_timezone(&chrono::Utc)),
            Err(_) => {
                check.0.push(Violation::new(
                    "until",
                    "must be an RFC 3339 instant, e.g. 2026-03-10T16:00:00Z",
                ));
                None
            }
        };
        check.done()?;
        let v = self
            .app
            .reopen(&actor, got(org)?, got(month)?, got(until)?, &r.reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::Reopening {
            id: v.id.to_string(),
            org_id: v.org_id.to_string(),
            month: v.month,
            until: rfc3339(v.until),
            reason: v.reason,
            reopened_by: v.reopened_by,
            reopened_at: rfc3339(v.reopened_at),
        }))
    }

    async fn upload_evidence(
        &self,
        request: Request<pb::UploadEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("content_type", &r.content_type)])?;
        let v = self
            .app
            .upload_evidence(&actor, &r.content_type, r.data)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::Evidence {
            reference: v.reference,
            content_type: v.content_type,
            size: v.size,
        }))
    }

    async fn get_evidence(
        &self,
        request: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::EvidenceFile>, Status> {
        let actor = self.caller(&request)?;
        let r = request.into_inner();
        let (v, data) = self
            .app
            .get_evidence(&actor, r.reference.trim())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::EvidenceFile {
            evidence: Some(pb::Evidence {
                reference: v.reference,
                content_type: v.content_type,
                size: v.size,
            }),
            data,
        }))
    }
}
