//! The dashboard 党建看板 for committee staff: `GET /api/v1/dashboard/orgs/{id}?month=` — the
//! month's figures of an organization's subtree and of each direct child, computed by the grading
//! service (`GetDashboard`) — and `GET /api/v1/dashboard/orgs/{id}/ranking?year=&limit=` — the
//! subtree's best members by the year's capped ledger total 积分排行 (`GetRanking`); both cached
//! in Redis (docs/decisions/0008-dashboard.md).
//!
//! Invariants of the cache (a cache: always rebuildable, never a source of truth):
//! * **Scope before the cache.** An answer is kept under the organization and month, and beside
//!   it the organization's materialized path (paths never change: organizations are neither
//!   moved nor deleted). A cached answer is served only to a caller whose token makes them admin
//!   or secretary over that path — the grading service's own rule. Everyone else goes to the
//!   service, which answers 404 or 403 as it always does: a refused caller never receives a
//!   cached answer. Members do not even pass the gateway's staff gate.
//! * **Short-lived.** Answers live `JIFEN_DASHBOARD_CACHE_TTL_SECS` (default 60; 0 turns the
//!   cache off). Within that time an answer may be stale; the `x-dashboard-cache` header says
//!   `hit` or `miss`.
//! * **Optional.** When Redis does not answer, the gateway asks the service (logged), it never
//!   fails the request for the cache's sake.

use crate::auth::StaffCaller;
use crate::convert::declarations::Points;
use crate::extract::PathId;
use crate::problem::Problem;
use crate::routes::standards::query_pairs;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse as _, Response};
use jifen_proto::grading::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The header telling whether the answer came from the cache.
pub const CACHE_HEADER: &str = "x-dashboard-cache";

/// How long an organization's path is kept (it never changes; the TTL only bounds memory).
const PATH_TTL_SECS: u64 = 24 * 3600;

/// A rate from 0 to 1 with three decimals (`0.667`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub i32);

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 1000.0)
    }
}

/// The figures of one direct child organization.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChildFigures {
    pub org_id: Uuid,
    pub name: String,
    /// The child's kind (`committee`, `branch`, `group`, …), as `GET /orgs/{id}` says it.
    pub kind: String,
    /// Active members of the child's subtree.
    pub members: i32,
    /// Of those, members with a declaration of the month submitted at least once.
    pub declared: i32,
    /// Members with a declaration of the month submitted at least once, over active members
    /// (0 to 1, three decimals; 0 without members).
    #[schema(value_type = f64)]
    pub participation_rate: Rate,
    /// Mean of the month's ledger points per active member (one decimal).
    #[schema(value_type = f64)]
    pub approved_points_avg: Points,
}

/// Confirmed or final grades of the month's year.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GradeDistribution {
    pub excellent: i32,
    pub qualified: i32,
    pub basically_qualified: i32,
    pub unqualified: i32,
}

/// An organization of the breadcrumb.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgRef {
    pub org_id: Uuid,
    pub name: String,
}

/// `GET /api/v1/dashboard/orgs/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    pub org_id: Uuid,
    pub name: String,
    /// The parent organization; `null` at the root.
    pub parent_id: Option<Uuid>,
    /// The organizations above, the root first, up to the parent — from the highest one the
    /// caller manages (an admin of a committee sees the breadcrumb from their committee).
    pub ancestors: Vec<OrgRef>,
    /// `YYYY-MM`.
    pub month: String,
    /// Active members of the subtree (exempt members included).
    pub members: i32,
    /// Of those, members with a declaration of the month submitted at least once (submitted,
    /// approved, rejected or returned).
    pub declared: i32,
    /// `declared / members`, 0 to 1 with three decimals (0 without members).
    #[schema(value_type = f64)]
    pub participation_rate: Rate,
    /// Mean of the month's ledger points (approved declaration lines and branch records,
    /// before caps) per active member, one decimal.
    #[schema(value_type = f64)]
    pub approved_points_avg: Points,
    /// Only when a grading of the month's year is confirmed or final in the subtree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade_distribution: Option<GradeDistribution>,
    pub children: Vec<ChildFigures>,
}

fn uuid(text: &str) -> Uuid {
    text.parse().unwrap_or_default()
}

impl Dashboard {
    fn from_proto(d: pb::Dashboard) -> Self {
        let total = d.total.unwrap_or_default();
        Self {
            org_id: uuid(&d.org_id),
            name: total.name,
            parent_id: d.parent_id.parse().ok(),
            ancestors: d
                .ancestors
                .into_iter()
                .map(|a| OrgRef {
                    org_id: uuid(&a.org_id),
                    name: a.name,
                })
                .collect(),
            month: d.month,
            members: total.members,
            declared: total.declared,
            participation_rate: Rate(total.participation_permille),
            approved_points_avg: Points(total.approved_points_avg),
            grade_distribution: d.grade_distribution.map(|g| GradeDistribution {
                excellent: g.excellent,
                qualified: g.qualified,
                basically_qualified: g.basically_qualified,
                unqualified: g.unqualified,
            }),
            children: d
                .children
                .into_iter()
                .map(|c| ChildFigures {
                    org_id: uuid(&c.org_id),
                    name: c.name,
                    kind: c.kind,
                    members: c.members,
                    declared: c.declared,
                    participation_rate: Rate(c.participation_permille),
                    approved_points_avg: Points(c.approved_points_avg),
                })
                .collect(),
        }
    }
}

/// Query parameters of the dashboard (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct MonthQuery {
    /// The month, `YYYY-MM` (e.g. 2026-03).
    month: String,
}

/// The required `?month=` (the last one wins): `YYYY-MM` of a year from 2000 to 2100, or 400
/// naming `month`.
pub(crate) fn month_query(uri: &Uri) -> Result<String, Problem> {
    let month = query_pairs(uri)?
        .into_iter()
        .rev()
        .find(|(k, _)| k == "month")
        .map(|(_, v)| v)
        .ok_or_else(|| Problem::invalid_field("month", "is required (e.g. ?month=2026-03)"))?;
    let bad = || Problem::invalid_field("month", "must be a month YYYY-MM (2000-01 to 2100-12)");
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let ok = y.len() == 4
        && m.len() == 2
        && y.parse::<i32>().is_ok_and(|y| (2000..=2100).contains(&y))
        && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if ok { Ok(month) } else { Err(bad()) }
}

/// A JSON answer with the cache header.
fn json_answer(body: Vec<u8>, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(CACHE_HEADER, HeaderValue::from_static(cache));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// The cached answer under `key(path)` for a caller who manages the organization whose path
/// is kept under `path_key`; `None` when nothing is kept, the caller is not in scope, or Redis does not
/// answer.
async fn cached(
    state: &AppState,
    caller: &crate::auth::Caller,
    path_key: &str,
    key: impl Fn(&str) -> String,
) -> Option<Vec<u8>> {
    let mut redis = state.redis();
    let path: Option<String> = match redis::cmd("GET")
        .arg(path_key)
        .query_async(&mut redis)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard cache unavailable; asking the grading service");
            return None;
        }
    };
    // Scope first: an answer is never read for a caller the service would refuse.
    let path = path?;
    if !caller.principal.manages(&path) {
        return None;
    }
    match redis::cmd("GET")
        .arg(key(&path))
        .query_async(&mut redis)
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard cache unavailable; asking the grading service");
            None
        }
    }
}

/// The answer kept under `key(path)` when the caller manages organization `org` (`hit`), else
/// what `fetch` answers — the JSON body and the organization's path — kept for the next caller
/// (`miss`). `key` gets the organization's path, so an answer that depends on the caller's
/// scope can be kept per scope. With the cache turned off (TTL 0), always `fetch`.
async fn scoped_cache<K, F, Fut>(
    state: &AppState,
    caller: &crate::auth::Caller,
    org: &str,
    key: K,
    fetch: F,
) -> Result<Response, Problem>
where
    K: Fn(&str) -> String,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<u8>, String), Problem>>,
{
    let ttl = state.dashboard_cache_ttl().as_secs();
    let path_key = state.redis_key(&["dashboard", "org-path", org]);
    if ttl > 0
        && let Some(body) = cached(state, caller, &path_key, &key).await
    {
        return Ok(json_answer(body, "hit"));
    }
    let (body, path) = fetch().await?;
    if ttl > 0 {
        keep(state, &path_key, &path, &key(&path), &body, ttl).await;
    }
    Ok(json_answer(body, "miss"))
}

/// The highest organization on `path` that the caller manages (its id), or `-` when none: the
/// breadcrumb of a dashboard starts there, so answers are kept per such organization.
fn scope_top(caller: &crate::auth::Caller, path: &str) -> String {
    let mut prefix = String::from("/");
    for segment in path.trim_matches('/').split('/') {
        prefix.push_str(segment);
        prefix.push('/');
        if caller.principal.manages(&prefix) {
            return segment.to_owned();
        }
    }
    "-".to_owned()
}

/// Keeps an answer and its organization's path (failures are logged, never answered).
async fn keep(state: &AppState, path_key: &str, path: &str, key: &str, body: &[u8], ttl: u64) {
    let mut redis = state.redis();
    let stored: Result<(), _> = redis::pipe()
        .cmd("SET")
        .arg(path_key)
        .arg(path)
        .arg("EX")
        .arg(PATH_TTL_SECS)
        .ignore()
        .cmd("SET")
        .arg(key)
        .arg(body)
        .arg("EX")
        .arg(ttl)
        .ignore()
        .query_async(&mut redis)
        .await;
    if let Err(e) = stored {
        tracing::warn!(error = %e, "dashboard answer not cached");
    }
}

/// The month's dashboard of an organization's subtree: active members, how many declared, the
/// participation rate, the mean points, the year's published grades, and each direct child's
/// rate and mean. Staff over the organization (a secretary of another subtree gets 404, a
/// member 403). Answers may be cached for `JIFEN_DASHBOARD_CACHE_TTL_SECS` (header
/// `x-dashboard-cache: hit|miss`).
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/orgs/{id}",
    tag = "dashboard",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The organization"), MonthQuery),
    responses(
        (
            status = 200,
            description = "The month's dashboard",
            body = Dashboard,
            headers(("x-dashboard-cache" = String, description = "`hit` or `miss`")),
        ),
    ),
)]
pub async fn get_dashboard(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    uri: Uri,
) -> Result<Response, Problem> {
    let month = month_query(&uri)?;
    let org = org_id.to_string();
    // The breadcrumb depends on the caller's scope: one entry per highest managed organization.
    let key = |path: &str| {
        state.redis_key(&[
            "dashboard",
            "figures",
            &org,
            &month,
            &scope_top(&caller, path),
        ])
    };
    scoped_cache(&state, &caller, &org, key, || async {
        let answer = state
            .grading_as(&caller.token)?
            .get_dashboard(pb::GetDashboardRequest {
                org_id: org.clone(),
                month: month.clone(),
            })
            .await?
            .into_inner();
        let path = answer.org_path.clone();
        let body = serde_json::to_vec(&Dashboard::from_proto(answer))
            .map_err(|e| Problem::internal(&e))?;
        Ok((body, path))
    })
    .await
}

/// One month of the trend: the figures `GET /api/v1/dashboard/orgs/{id}?month=` answers for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrendMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Active members of the subtree (exempt members included).
    pub members: i32,
    /// Of those, members with a declaration of the month submitted at least once.
    pub declared: i32,
    /// `declared / members`, 0 to 1 with three decimals (0 without members).
    #[schema(value_type = f64)]
    pub participation_rate: Rate,
    /// Mean of the month's ledger points per active member (before caps), one decimal.
    #[schema(value_type = f64)]
    pub approved_points_avg: Points,
}

/// `GET /api/v1/dashboard/orgs/{id}/trend`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Trend {
    pub org_id: Uuid,
    pub name: String,
    pub year: i32,
    /// January to December for a past year, January to the current month (Asia/Shanghai) for
    /// the running year, empty for a future year.
    pub months: Vec<TrendMonth>,
}

impl Trend {
    fn from_proto(t: pb::DashboardTrend) -> Self {
        Self {
            org_id: uuid(&t.org_id),
            name: t.name,
            year: t.year,
            months: t
                .months
                .into_iter()
                .map(|m| {
                    let f = m.figures.unwrap_or_default();
                    TrendMonth {
                        month: m.month,
                        members: f.members,
                        declared: f.declared,
                        participation_rate: Rate(f.participation_permille),
                        approved_points_avg: Points(f.approved_points_avg),
                    }
                })
                .collect(),
        }
    }
}

/// Query parameter of the trend (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct YearQuery {
    /// The year, e.g. 2026 (2000 to 2100).
    year: i32,
}

/// The dashboard's figures for each month of a year (members, declared, participation rate,
/// mean points — each month equal to `GET /api/v1/dashboard/orgs/{id}?month=`), read by the
/// grading service in one pass over the year. Staff over the organization, as for the
/// dashboard; cached the same way.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/orgs/{id}/trend",
    tag = "dashboard",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The organization"), YearQuery),
    responses(
        (
            status = 200,
            description = "The year's months",
            body = Trend,
            headers(("x-dashboard-cache" = String, description = "`hit` or `miss`")),
        ),
    ),
)]
pub async fn get_trend(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    uri: Uri,
) -> Result<Response, Problem> {
    let year = crate::routes::grading::year_query(&uri)?;
    let org = org_id.to_string();
    let key = state.redis_key(&["dashboard", "trend", &org, &year.to_string()]);
    scoped_cache(
        &state,
        &caller,
        &org,
        |_| key.clone(),
        || async {
            let answer = state
                .grading_as(&caller.token)?
                .get_dashboard_trend(pb::GetDashboardTrendRequest {
                    org_id: org.clone(),
                    year,
                })
                .await?
                .into_inner();
            let path = answer.org_path.clone();
            let body = serde_json::to_vec(&Trend::from_proto(answer))
                .map_err(|e| Problem::internal(&e))?;
            Ok((body, path))
        },
    )
    .await
}

/// One ranked member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RankedMember {
    pub member_id: Uuid,
    pub name: String,
    /// The member's branch (党支部): their organization, or the branch above their group;
    /// `null` when they are in none.
    pub branch_id: Option<Uuid>,
    pub branch_name: Option<String>,
    /// The year's ledger total with every cap applied, as `GET /members/{id}/ledger` reports it.
    #[schema(value_type = f64)]
    pub total: Points,
}

/// `GET /api/v1/dashboard/orgs/{id}/ranking`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ranking {
    pub items: Vec<RankedMember>,
}

/// Query parameters of the ranking (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct RankingQuery {
    /// The year, e.g. 2026.
    year: i32,
    /// How many members, 1 to 100 (default 10).
    limit: Option<i32>,
}

/// Members ranked when `limit` is absent, and the most a ranking lists.
pub const DEFAULT_LIMIT: i32 = 10;
pub const MAX_LIMIT: i32 = 100;

/// The optional `?limit=` (the last one wins): 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`],
/// else 400 naming `limit`.
pub(crate) fn limit_query(uri: &Uri) -> Result<i32, Problem> {
    bounded_int_query(uri, "limit", DEFAULT_LIMIT, MAX_LIMIT)
}

/// The last `name` of the query as an integer from 1 to `max`; `default` when absent.
fn bounded_int_query(uri: &Uri, name: &str, default: i32, max: i32) -> Result<i32, Problem> {
    match query_pairs(uri)?.into_iter().rev().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Problem::invalid_field(name, format!("must be an integer from 1 to {max}"))
            }),
    }
}

/// The subtree's active members by the year's ledger total with every cap applied (the
/// computation of `GET /members/{id}/ledger`), highest first, ties by member id. Staff over
/// the organization, as for the dashboard; cached the same way.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/orgs/{id}/ranking",
    tag = "dashboard",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The organization"), RankingQuery),
    responses(
        (
            status = 200,
            description = "The ranking",
            body = Ranking,
            headers(("x-dashboard-cache" = String, description = "`hit` or `miss`")),
        ),
    ),
)]
pub async fn get_ranking(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    uri: Uri,
) -> Result<Response, Problem> {
    let year = crate::routes::grading::year_query(&uri)?;
    let limit = limit_query(&uri)?;
    let org = org_id.to_string();
    let key = state.redis_key(&[
        "dashboard",
        "ranking",
        &org,
        &year.to_string(),
        &limit.to_string(),
    ]);
    scoped_cache(
        &state,
        &caller,
        &org,
        |_| key.clone(),
        || async {
            let answer = state
                .grading_as(&caller.token)?
                .get_ranking(pb::GetRankingRequest {
                    org_id: org.clone(),
                    year,
                    limit,
                })
                .await?
                .into_inner();
            let ranking = Ranking {
                items: answer
                    .items
                    .into_iter()
                    .map(|r| RankedMember {
                        member_id: uuid(&r.member_id),
                        name: r.name,
                        branch_id: r.branch_id.parse().ok(),
                        branch_name: (!r.branch_id.is_empty()).then_some(r.branch_name),
                        total: Points(r.total),
                    })
                    .collect(),
            };
            let body = serde_json::to_vec(&ranking).map_err(|e| Problem::internal(&e))?;
            Ok((body, answer.org_path))
        },
    )
    .await
}

/// One bin of the histogram: totals from `from` (included) to `to` (excluded).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistogramBin {
    #[schema(value_type = f64)]
    pub from: Points,
    #[schema(value_type = f64)]
    pub to: Points,
    pub count: i32,
}

/// `GET /api/v1/dashboard/orgs/{id}/histogram`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Histogram {
    pub org_id: Uuid,
    pub year: i32,
    /// Active members of the subtree: the counts add up to it.
    pub members: i32,
    /// The width of every bin, in points (1, 2 or 5 times a power of ten tenths).
    #[schema(value_type = f64)]
    pub bin_width: Points,
    /// Lowest first, adjacent, exactly `bins` of them.
    pub bins: Vec<HistogramBin>,
}

/// Query parameters of the histogram (documentation only).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct HistogramQuery {
    /// The year, e.g. 2026 (2000 to 2100).
    year: i32,
    /// How many bins, 1 to 50 (default 10).
    bins: Option<i32>,
}

/// Bins when `bins` is absent, and the most a histogram has.
pub const DEFAULT_BINS: i32 = 10;
pub const MAX_BINS: i32 = 50;

/// The optional `?bins=` (the last one wins): 1 to [`MAX_BINS`], default [`DEFAULT_BINS`],
/// else 400 naming `bins`.
pub(crate) fn bins_query(uri: &Uri) -> Result<i32, Problem> {
    bounded_int_query(uri, "bins", DEFAULT_BINS, MAX_BINS)
}

/// The distribution of the year's ledger totals (every cap applied, as the ranking and
/// `GET /members/{id}/ledger` compute them) of the subtree's active members, in `bins` bins of
/// one round width; the counts add up to `members`. Staff over the organization; cached like
/// the dashboard.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/orgs/{id}/histogram",
    tag = "dashboard",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The organization"), HistogramQuery),
    responses(
        (
            status = 200,
            description = "The histogram",
            body = Histogram,
            headers(("x-dashboard-cache" = String, description = "`hit` or `miss`")),
        ),
    ),
)]
pub async fn get_histogram(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    uri: Uri,
) -> Result<Response, Problem> {
    // Every bad field at once.
    let (year, bins) = match (crate::routes::grading::year_query(&uri), bins_query(&uri)) {
        (Ok(year), Ok(bins)) => (year, bins),
        (Err(mut a), Err(b)) => {
            a.errors.extend(b.errors);
            return Err(a);
        }
        (Err(p), _) | (_, Err(p)) => return Err(p),
    };
    let org = org_id.to_string();
    let key = state.redis_key(&[
        "dashboard",
        "histogram",
        &org,
        &year.to_string(),
        &bins.to_string(),
    ]);
    scoped_cache(
        &state,
        &caller,
        &org,
        |_| key.clone(),
        || async {
            let answer = state
                .grading_as(&caller.token)?
                .get_dashboard_histogram(pb::GetDashboardHistogramRequest {
                    org_id: org.clone(),
                    year,
                    bins,
                })
                .await?
                .into_inner();
            let histogram = Histogram {
                org_id: uuid(&answer.org_id),
                year: answer.year,
                members: answer.members,
                bin_width: Points(answer.bin_width),
                bins: answer
                    .bins
                    .into_iter()
                    .map(|b| HistogramBin {
                        from: Points(b.from),
                        to: Points(b.to),
                        count: b.count,
                    })
                    .collect(),
            };
            let body = serde_json::to_vec(&histogram).map_err(|e| Problem::internal(&e))?;
            Ok((body, answer.org_path))
        },
    )
    .await
}

/// One branch of `GET /api/v1/dashboard/orgs/{id}/branches`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BranchFigures {
    pub org_id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub parent_name: Option<String>,
    /// Active members of the branch (its groups included).
    pub members: i32,
    /// Of those, members with a declaration of the month submitted at least once.
    pub declared: i32,
    /// `declared / members`, 0 to 1 with three decimals (0 without members).
    #[schema(value_type = f64)]
    pub participation_rate: Rate,
    /// Mean of the month's ledger points per active member (before caps), one decimal.
    #[schema(value_type = f64)]
    pub approved_points_avg: Points,
    /// The branch has members and its participation is below `threshold`.
    pub lagging: bool,
}

/// `GET /api/v1/dashboard/orgs/{id}/branches`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Branches {
    pub org_id: Uuid,
    /// `YYYY-MM`.
    pub month: String,
    /// Participation below this is lagging (0 to 1).
    #[schema(value_type = f64)]
    pub threshold: Rate,
    /// Lowest participation first (then by name).
    pub items: Vec<BranchFigures>,
}

/// The month's figures of every branch (党支部) of the subtree — each equal to that branch's
/// own dashboard — lowest participation first, `lagging` below the threshold. Staff over the
/// organization; cached like the dashboard.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/orgs/{id}/branches",
    tag = "dashboard",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The organization"), MonthQuery),
    responses(
        (
            status = 200,
            description = "The branches",
            body = Branches,
            headers(("x-dashboard-cache" = String, description = "`hit` or `miss`")),
        ),
    ),
)]
pub async fn get_branches(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    uri: Uri,
) -> Result<Response, Problem> {
    let month = month_query(&uri)?;
    let org = org_id.to_string();
    let key = state.redis_key(&["dashboard", "branches", &org, &month]);
    scoped_cache(
        &state,
        &caller,
        &org,
        |_| key.clone(),
        || async {
            let answer = state
                .grading_as(&caller.token)?
                .get_dashboard_branches(pb::GetDashboardBranchesRequest {
                    org_id: org.clone(),
                    month: month.clone(),
                })
                .await?
                .into_inner();
            let branches = Branches {
                org_id: uuid(&answer.org_id),
                month: answer.month,
                threshold: Rate(answer.threshold_permille),
                items: answer
                    .items
                    .into_iter()
                    .map(|l| {
                        let f = l.figures.unwrap_or_default();
                        BranchFigures {
                            org_id: uuid(&f.org_id),
                            name: f.name,
                            parent_id: l.parent_id.parse().ok(),
                            parent_name: (!l.parent_id.is_empty()).then_some(l.parent_name),
                            members: f.members,
                            declared: f.declared,
                            participation_rate: Rate(f.participation_permille),
                            approved_points_avg: Points(f.approved_points_avg),
                            lagging: l.lagging,
                        }
                    })
                    .collect(),
            };
            let body = serde_json::to_vec(&branches).map_err(|e| Problem::internal(&e))?;
            Ok((body, answer.org_path))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn months_are_required_and_strict() {
        let uri = |q: &str| format!("/x{q}").parse::<Uri>().unwrap();
        assert_eq!(month_query(&uri("?month=2026-03")).unwrap(), "2026-03");
        for q in [
            "",
            "?month=",
            "?month=2026-3",
            "?month=2026-13",
            "?month=1999-12",
            "?m=2026-03",
        ] {
            let p = month_query(&uri(q)).unwrap_err();
            assert_eq!(p.status.as_u16(), 400, "{q}");
        }
    }

    #[test]
    fn limits_default_to_10_and_stop_at_100() {
        let uri = |q: &str| format!("/x{q}").parse::<Uri>().unwrap();
        assert_eq!(limit_query(&uri("")).unwrap(), 10);
        assert_eq!(limit_query(&uri("?limit=100")).unwrap(), 100);
        for q in [
            "?limit=0",
            "?limit=101",
            "?limit=",
            "?limit=ten",
            "?limit=-1",
        ] {
            assert_eq!(
                limit_query(&uri(q)).unwrap_err().status.as_u16(),
                400,
                "{q}"
            );
        }
    }

    #[test]
    fn rates_and_points_render_as_decimals() {
        let json = serde_json::to_value(Dashboard {
            org_id: Uuid::nil(),
            month: "2026-03".into(),
            members: 3,
            declared: 2,
            participation_rate: Rate(667),
            approved_points_avg: Points(38),
            grade_distribution: None,
            children: vec![],
            name: "x".into(),
            parent_id: None,
            ancestors: vec![],
        })
        .unwrap();
        assert_eq!(json["participation_rate"], serde_json::json!(0.667));
        assert_eq!(json["approved_points_avg"], serde_json::json!(3.8));
        assert!(json.get("grade_distribution").is_none());
        assert_eq!(json["parent_id"], serde_json::Value::Null);
    }
}
