//! The tonic implementation of `jifen.grading.v1.GradingService`: authenticates the caller from
//! the forwarded JWT, parses request fields (every bad field at once, named as the public API
//! names them), calls the use-case and maps the answer back to protobuf. [`to_status`] is the one
//! place where use-case errors become statuses.

use crate::store::gradings::AppealRow;
use crate::usecases::{
    AppError, BranchesView, DashboardView, ExportedMember, Figures, Grading, GradingView,
    HistogramView, LedgerExport, LedgerView, RankingView, RuleKind, TrendView, reasons_of,
};
use jifen_platform::auth::{Principal, TokenVerifier};
use jifen_platform::grpc as status;
use jifen_proto::grading::v1 as pb;
use jifen_proto::grading::v1::grading_service_server::{GradingService, GradingServiceServer};
use jifen_standard::Grade;
use std::str::FromStr as _;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// The gRPC face of the grading use-cases.
#[derive(Clone)]
pub struct GradingApi {
    app: Grading,
    verifier: TokenVerifier,
}

impl GradingApi {
    pub fn new(app: Grading, verifier: TokenVerifier) -> Self {
        Self { app, verifier }
    }

    pub fn into_service(self) -> GradingServiceServer<Self> {
        GradingServiceServer::new(self)
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
        AppError::Rule {
            kind,
            code,
            message,
            field,
        } => {
            let grpc = match kind {
                RuleKind::Conflict => Code::FailedPrecondition,
                RuleKind::Unprocessable => Code::OutOfRange,
            };
            match field {
                Some(f) => status::failure_with_fields(grpc, code, message.clone(), [(f, message)]),
                None => status::failure(grpc, code, message),
            }
        }
        AppError::Db(sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)) => {
            status::failure(
                Code::Unavailable,
                "unavailable",
                "the database is unavailable",
            )
        }
        other => status::internal(&other),
    }
}

fn id(field: &'static str, text: &str) -> Result<Uuid, Status> {
    if text.trim().is_empty() {
        return Err(status::invalid_argument([(field, "is required")]));
    }
    Uuid::parse_str(text.trim()).map_err(|_| status::invalid_argument([(field, "must be a UUID")]))
}

/// `org_id` and `year` of an org-level request, every bad field at once.
fn org_and_year(org_id: &str, year: i32) -> Result<(Uuid, i32), Status> {
    let mut bad: Vec<(&str, &str)> = Vec::new();
    let org = match org_id.trim() {
        "" => {
            bad.push(("org_id", "is required"));
            None
        }
        text => Uuid::parse_str(text)
            .map_err(|_| bad.push(("org_id", "must be a UUID")))
            .ok(),
    };
    if crate::usecases::check_year(year).is_err() {
        bad.push(("year", "must be a year between 2000 and 2100"));
    }
    match org {
        Some(org) if bad.is_empty() => Ok((org, year)),
        _ => Err(status::invalid_argument(bad)),
    }
}

/// `org_id` and `month` of a dashboard request, every bad field at once.
fn org_and_month(org_id: &str, month: &str) -> Result<(Uuid, i32, u32), Status> {
    let mut bad: Vec<(String, String)> = Vec::new();
    let org = match org_id.trim() {
        "" => {
            bad.push(("org_id".into(), "is required".into()));
            None
        }
        text => Uuid::parse_str(text)
            .map_err(|_| bad.push(("org_id".into(), "must be a UUID".into())))
            .ok(),
    };
    let period = match crate::usecases::parse_month(month) {
        Ok(p) => Some(p),
        Err(AppError::Invalid(v)) => {
            bad.extend(v.into_iter().map(|f| (f.field, f.message)));
            None
        }
        Err(_) => None,
    };
    match (org, period) {
        (Some(org), Some((year, month))) if bad.is_empty() => Ok((org, year, month)),
        _ => Err(status::invalid_argument(bad)),
    }
}

fn figures_pb(f: Figures) -> pb::DashboardFigures {
    pb::DashboardFigures {
        org_id: f.org_id.to_string(),
        name: f.name,
        members: i32::try_from(f.members).unwrap_or(i32::MAX),
        declared: i32::try_from(f.declared).unwrap_or(i32::MAX),
        participation_permille: f.participation_permille,
        approved_points: f.points,
        approved_points_avg: f.points_avg,
        kind: f.kind,
    }
}

fn dashboard_pb(v: DashboardView) -> pb::Dashboard {
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::Dashboard {
        org_id: v.total.org_id.to_string(),
        org_path: v.org_path,
        month: format!("{:04}-{:02}", v.year, v.month),
        grade_distribution: v.grades.map(|g| pb::GradeCounts {
            excellent: count(g.excellent),
            qualified: count(g.qualified),
            basically_qualified: count(g.basically_qualified),
            unqualified: count(g.unqualified),
        }),
        total: Some(figures_pb(v.total)),
        children: v.children.into_iter().map(figures_pb).collect(),
        parent_id: v.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        ancestors: v
            .ancestors
            .into_iter()
            .map(|(id, name)| pb::OrgRef {
                org_id: id.to_string(),
                name,
            })
            .collect(),
    }
}

fn histogram_pb(v: HistogramView) -> pb::DashboardHistogram {
    let int = |n: i64| i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX });
    pb::DashboardHistogram {
        org_id: v.org_id.to_string(),
        org_path: v.org_path,
        year: v.year,
        members: int(v.members),
        bin_width: int(v.bin_width),
        bins: v
            .bins
            .into_iter()
            .map(|b| pb::HistogramBin {
                from: int(b.from),
                to: int(b.to),
                count: int(b.count),
            })
            .collect(),
    }
}

fn branches_pb(v: BranchesView) -> pb::DashboardBranches {
    pb::DashboardBranches {
        org_id: v.org_id.to_string(),
        org_path: v.org_path,
        month: format!("{:04}-{:02}", v.year, v.month),
        threshold_permille: v.threshold_permille,
        items: v
            .items
            .into_iter()
            .map(|l| {
                let (parent_id, parent_name) = l
                    .parent
                    .map(|(id, name)| (id.to_string(), name))
                    .unwrap_or_default();
                pb::BranchLine {
                    figures: Some(figures_pb(l.figures)),
                    parent_id,
                    parent_name,
                    lagging: l.lagging,
                }
            })
            .collect(),
    }
}

fn trend_pb(v: TrendView) -> pb::DashboardTrend {
    let year = v.year;
    pb::DashboardTrend {
        org_id: v.org_id.to_string(),
        org_path: v.org_path,
        name: v.name,
        year,
        months: v
            .months
            .into_iter()
            .map(|(month, f)| pb::TrendMonth {
                month: format!("{year:04}-{month:02}"),
                figures: Some(figures_pb(f)),
            })
            .collect(),
    }
}

fn ranking_pb(org_id: Uuid, v: RankingView) -> pb::Ranking {
    pb::Ranking {
        org_id: org_id.to_string(),
        org_path: v.org_path,
        year: v.year,
        items: v
            .items
            .into_iter()
            .map(|r| {
                let (branch_id, branch_name) = r
                    .branch
                    .map(|(id, name)| (id.to_string(), name))
                    .unwrap_or_default();
                pb::RankedMember {
                    member_id: r.member_id.to_string(),
                    name: r.name,
                    total: r.total,
                    branch_id,
                    branch_name,
                }
            })
            .collect(),
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ledger_pb(v: LedgerView) -> pb::Ledger {
    pb::Ledger {
        member_id: v.member_id.to_string(),
        year: v.year,
        entries: v
            .entries
            .into_iter()
            .map(|e| pb::LedgerEntry {
                month: format!("{:04}-{:02}", v.year, e.month),
                source: if e.source == "branch" {
                    pb::EntrySource::Branch
                } else {
                    pb::EntrySource::Declaration
                }
                .into(),
                r#ref: e.reference.to_string(),
                item_code: e.item_code,
                points: e.points,
                note: e.note,
            })
            .collect(),
        quarters: v
            .quarters
            .into_iter()
            .map(|q| pb::LedgerQuarter {
                quarter: format!("{:04}-Q{}", v.year, q.quarter),
                score: q.score,
                ballots: q.ballots,
                valid: q.valid,
            })
            .collect(),
        base_points: v.totals.base.tenths(),
        bonus_points: v.totals.bonus.tenths(),
        deduction_points: v.totals.deductions.tenths(),
        evaluation_points: v.totals.evaluation.tenths(),
        total: v.totals.total.tenths(),
    }
}

fn exported_member_pb(m: ExportedMember) -> pb::ExportMember {
    pb::ExportMember {
        member_id: m.member.id.to_string(),
        name: m.member.name,
        org_id: m.member.org_id.to_string(),
        org_name: m.org_name,
        category: m.member.category,
        status: m.member.status,
        entries: m
            .entries
            .into_iter()
            .map(|e| pb::ExportEntry {
                month: i32::from(e.month),
                item_code: e.item_code.to_string(),
                points: e.points,
                source: if e.branch {
                    pb::EntrySource::Branch
                } else {
                    pb::EntrySource::Declaration
                }
                .into(),
            })
            .collect(),
        base_points: m.totals.base.tenths(),
        bonus_points: m.totals.bonus.tenths(),
        deduction_points: m.totals.deductions.tenths(),
        evaluation_points: m.totals.evaluation.tenths(),
        total: m.totals.total.tenths(),
    }
}

/// The stream `ExportLedger` answers: the item names first (with the first chunk of members, or
/// alone when the subtree has none), then one message per chunk of members.
fn export_stream(
    export: LedgerExport,
) -> impl futures::Stream<Item = Result<pb::ExportLedgerResponse, Status>> + Send + 'static {
    let LedgerExport {
        year,
        items,
        mut members,
    } = export;
    let mut items = Some(
        items
            .into_iter()
            .map(|i| pb::ExportItem {
                code: i.code,
                name: i.name,
                category: i.category,
            })
            .collect::<Vec<_>>(),
    );
    futures::stream::poll_fn(move |cx| {
        use std::task::Poll;
        match members.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(pb::ExportLedgerResponse {
                year,
                items: items.take().unwrap_or_default(),
                members: chunk.into_iter().map(exported_member_pb).collect(),
            }))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(to_status(e)))),
            // The end: the item names alone when no member came.
            Poll::Ready(None) => Poll::Ready(items.take().map(|items| {
                Ok(pb::ExportLedgerResponse {
                    year,
                    items,
                    members: Vec::new(),
                })
            })),
        }
    })
}

fn grading_pb(v: GradingView) -> pb::Grading {
    let latest =
        |f: fn(&crate::store::gradings::GradingRow) -> Option<chrono::DateTime<chrono::Utc>>| {
            v.branches
                .iter()
                .filter_map(f)
                .max()
                .map(rfc3339)
                .unwrap_or_default()
        };
    pb::Grading {
        org_id: v.org_id.to_string(),
        year: v.year,
        status: match v.status.as_str() {
            "proposed" => pb::GradingStatus::Proposed,
            "confirmed" => pb::GradingStatus::Confirmed,
            _ => pb::GradingStatus::Final,
        }
        .into(),
        computed_at: latest(|b| Some(b.computed_at)),
        confirmed_at: latest(|b| b.confirmed_at),
        finalizable_at: latest(|b| b.finalizable_at),
        finalized_at: latest(|b| b.finalized_at),
        members: v
            .members
            .iter()
            .map(|m| pb::MemberGrade {
                member_id: m.member_id.to_string(),
                org_id: m.branch_id.to_string(),
                total: m.total,
                declared_points: m.base_points + m.bonus_points + m.deduction_points,
                evaluation_points: m.evaluation_points,
                proposed_grade: m.proposed_grade.clone(),
                grade: m.grade.clone(),
                reasons: reasons_of(m),
                override_reason: m.override_reason.clone(),
            })
            .collect(),
    }
}

fn appeal_pb(a: AppealRow) -> pb::Appeal {
    pb::Appeal {
        id: a.id.to_string(),
        member_id: a.member_id.to_string(),
        org_id: a.branch_id.to_string(),
        year: a.year,
        status: match a.status.as_str() {
            "open" => pb::AppealStatus::Open,
            "upheld" => pb::AppealStatus::Upheld,
            _ => pb::AppealStatus::Changed,
        }
        .into(),
        reason: a.reason,
        decision_reason: a.decision_reason.unwrap_or_default(),
        grade: a.grade,
        filed_at: rfc3339(a.filed_at),
        decided_at: a.decided_at.map(rfc3339).unwrap_or_default(),
    }
}

/// The stream of `ExportLedger`.
pub type ExportLedgerStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::ExportLedgerResponse, Status>> + Send + 'static>,
>;

#[tonic::async_trait]
impl GradingService for GradingApi {
    type ExportLedgerStream = ExportLedgerStream;

    /// A server stream rather than pages: the subtree is read by one statement in path order
    /// (no page token to re-seek, no repeated reads of the organizations and standard), and
    /// HTTP/2 flow control plus a bounded channel make a slow reader slow the database read
    /// down instead of filling memory (`usecases::export`).
    async fn export_ledger(
        &self,
        request: Request<pb::ExportLedgerRequest>,
    ) -> Result<Response<Self::ExportLedgerStream>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let (org, year) = org_and_year(&r.org_id, r.year)?;
        let export = self
            .app
            .export_ledger(&caller, org, year, crate::usecases::EXPORT_CHUNK)
            .await
            .map_err(to_status)?;
        Ok(Response::new(Box::pin(export_stream(export))))
    }

    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::Dashboard>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let (org, year, month) = org_and_month(&r.org_id, &r.month)?;
        self.app
            .dashboard(&caller, org, year, month)
            .await
            .map(|v| Response::new(dashboard_pb(v)))
            .map_err(to_status)
    }

    async fn get_dashboard_trend(
        &self,
        request: Request<pb::GetDashboardTrendRequest>,
    ) -> Result<Response<pb::DashboardTrend>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let (org, year) = org_and_year(&r.org_id, r.year)?;
        self.app
            .dashboard_trend(&caller, org, year)
            .await
            .map(|v| Response::new(trend_pb(v)))
            .map_err(to_status)
    }

    async fn get_dashboard_histogram(
        &self,
        request: Request<pb::GetDashboardHistogramRequest>,
    ) -> Result<Response<pb::DashboardHistogram>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        // Every bad field at once: org_id and year, then bins.
        let checked = org_and_year(&r.org_id, r.year);
        let bins = crate::usecases::check_bins(r.bins);
        let (org, year, bins) = match (checked, bins) {
            (Ok((org, year)), Ok(bins)) => (org, year, bins),
            (checked, bins) => {
                let mut bad: Vec<(String, String)> = Vec::new();
                if let Err(status) = checked {
                    bad.extend(status::status_details(&status).1);
                }
                if let Err(AppError::Invalid(v)) = bins {
                    bad.extend(v.into_iter().map(|f| (f.field, f.message)));
                }
                return Err(status::invalid_argument(bad));
            }
        };
        self.app
            .dashboard_histogram(&caller, org, year, bins)
            .await
            .map(|v| Response::new(histogram_pb(v)))
            .map_err(to_status)
    }

    async fn get_dashboard_branches(
        &self,
        request: Request<pb::GetDashboardBranchesRequest>,
    ) -> Result<Response<pb::DashboardBranches>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let (org, year, month) = org_and_month(&r.org_id, &r.month)?;
        self.app
            .dashboard_branches(&caller, org, year, month)
            .await
            .map(|v| Response::new(branches_pb(v)))
            .map_err(to_status)
    }

    async fn get_ranking(
        &self,
        request: Request<pb::GetRankingRequest>,
    ) -> Result<Response<pb::Ranking>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        // Every bad field at once: org_id and year, then limit.
        let checked = org_and_year(&r.org_id, r.year);
        let limit = crate::usecases::check_limit(r.limit);
        let (org, year, limit) = match (checked, limit) {
            (Ok((org, year)), Ok(limit)) => (org, year, limit),
            (checked, limit) => {
                let mut bad: Vec<(String, String)> = Vec::new();
                if let Err(status) = checked {
                    bad.extend(status::status_details(&status).1);
                }
                if let Err(AppError::Invalid(v)) = limit {
                    bad.extend(v.into_iter().map(|f| (f.field, f.message)));
                }
                return Err(status::invalid_argument(bad));
            }
        };
        self.app
            .ranking(&caller, org, year, limit)
            .await
            .map(|v| Response::new(ranking_pb(org, v)))
            .map_err(to_status)
    }

    async fn get_ledger(
        &self,
        request: Request<pb::GetLedgerRequest>,
    ) -> Result<Response<pb::Ledger>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let member = id("member_id", &r.member_id)?;
        self.app
            .ledger(&caller, member, r.year)
            .await
            .map(|v| Response::new(ledger_pb(v)))
            .map_err(to_status)
    }

    async fn compute_grading(
        &self,
        request: Request<pb::ComputeGradingRequest>,
    ) -> Result<Response<pb::Grading>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let org = id("org_id", &r.org_id)?;
        self.app
            .compute(&caller, org, r.year)
            .await
            .map(|v| Response::new(grading_pb(v)))
            .map_err(to_status)
    }

    async fn get_grading(
        &self,
        request: Request<pb::GetGradingRequest>,
    ) -> Result<Response<pb::Grading>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let org = id("org_id", &r.org_id)?;
        self.app
            .get(&caller, org, r.year)
            .await
            .map(|v| Response::new(grading_pb(v)))
            .map_err(to_status)
    }

    async fn confirm_grading(
        &self,
        request: Request<pb::ConfirmGradingRequest>,
    ) -> Result<Response<pb::Grading>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul(
            r.overrides
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("overrides[{i}].reason"), o.reason.as_str())),
        )?;
        let org = id("org_id", &r.org_id)?;
        let overrides = r
            .overrides
            .into_iter()
            .map(|o| (o.member_id, o.grade, o.reason))
            .collect();
        self.app
            .confirm(&caller, org, r.year, overrides)
            .await
            .map(|v| Response::new(grading_pb(v)))
            .map_err(to_status)
    }

    async fn file_appeal(
        &self,
        request: Request<pb::FileAppealRequest>,
    ) -> Result<Response<pb::Appeal>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("reason", &r.reason)])?;
        let member = id("member_id", &r.member_id)?;
        self.app
            .file_appeal(&caller, member, r.year, &r.reason)
            .await
            .map(|a| Response::new(appeal_pb(a)))
            .map_err(to_status)
    }

    async fn decide_appeal(
        &self,
        request: Request<pb::DecideAppealRequest>,
    ) -> Result<Response<pb::Appeal>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        jifen_platform::text::reject_nul([("reason", &r.reason)])?;
        let appeal = id("appeal_id", &r.appeal_id)?;
        let change_to = match pb::AppealDecision::try_from(r.decision) {
            Ok(pb::AppealDecision::Uphold) => None,
            Ok(pb::AppealDecision::Change) => {
                let text = r.grade.unwrap_or_default();
                Some(Grade::from_str(&text).map_err(|_| {
                    status::invalid_argument([(
                        "grade",
                        "a change needs the new grade: excellent, qualified, basically_qualified or unqualified",
                    )])
                })?)
            }
            _ => {
                return Err(status::invalid_argument([(
                    "decision",
                    "must be one of: uphold, change",
                )]));
            }
        };
        self.app
            .decide_appeal(&caller, appeal, change_to, &r.reason)
            .await
            .map(|a| Response::new(appeal_pb(a)))
            .map_err(to_status)
    }

    async fn finalize_grading(
        &self,
        request: Request<pb::FinalizeGradingRequest>,
    ) -> Result<Response<pb::Grading>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let org = id("org_id", &r.org_id)?;
        self.app
            .finalize(&caller, org, r.year)
            .await
            .map(|v| Response::new(grading_pb(v)))
            .map_err(to_status)
    }
}
