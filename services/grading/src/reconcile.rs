//! Reconciliation: `jifen-grading reconcile --year Y [--org ID]` rebuilds every member's ledger
//! of the year from the declarations service's own read API (approved declarations and branch
//! records, over gRPC — never its database) and compares it, entry by entry and total by total,
//! with the projection this service built from events. It also reads every closed evaluation
//! round (群众评议) of the year of the subtree's branches from the evaluations service's API and
//! compares each member's quarter result — ballots, exact score sum, shown score, poor ballots,
//! validity — with the projected one; a projected quarter without its exact sum (applied before
//! the sums were kept) is a difference too, until the rounds are republished. Any difference is
//! reported; the command exits non-zero when there is one.

use crate::domain;
use crate::store::{inputs, projection};
use crate::usecases::{AppError, Grading};
use jifen_platform::auth::{Principal, RoleClaim, RoleName, TokenSigner};
use jifen_platform::grpc::TraceInjector;
use jifen_proto::declarations::v1 as dpb;
use jifen_proto::declarations::v1::declarations_service_client::DeclarationsServiceClient;
use jifen_proto::evaluations::v1 as epb;
use jifen_proto::evaluations::v1::evaluations_service_client::EvaluationsServiceClient;
use jifen_proto::events::v1 as ev;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// One ledger entry as both sides see it: `(month, source, ref, item_code, points)`.
type Key = (u32, &'static str, Uuid, String, i32);

/// A member whose ledger differs from the source of truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub member_id: Uuid,
    /// Entries the projection lacks.
    pub missing: Vec<Key>,
    /// Entries the projection has but the truth does not.
    pub extra: Vec<Key>,
    /// `(base, bonus, deductions)` in deci-points: projection, truth.
    pub totals: ((i32, i32, i32), (i32, i32, i32)),
}

/// A member's result of one closed round, as both sides see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarterFacts {
    pub quarter: u32,
    pub ballots: i32,
    /// Sum of the rating scores in tenths (`None`: the projection never kept it).
    pub score_total: Option<i64>,
    /// The mean shown to 0.1 point.
    pub score: Option<i32>,
    pub poor_ballots: i32,
    pub valid: bool,
}

/// A member's quarter result that differs between the projection and the evaluations service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarterDifference {
    pub member_id: Uuid,
    pub round_id: Uuid,
    /// `None`: the projection lacks the result.
    pub projection: Option<QuarterFacts>,
    /// `None`: the evaluations service has no such result.
    pub truth: Option<QuarterFacts>,
}

/// What a reconciliation found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub members: usize,
    pub entries: usize,
    pub differences: Vec<Difference>,
    /// Member results of closed rounds compared.
    pub quarters: usize,
    pub quarter_differences: Vec<QuarterDifference>,
}

impl Outcome {
    /// Whether the projection agrees everywhere.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.quarter_differences.is_empty()
    }
}

fn page_token(next: String) -> Option<String> {
    (!next.is_empty()).then_some(next)
}

/// Where the sources of truth answer.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// The declarations service's gRPC URL.
    pub declarations: &'a str,
    /// The evaluations service's gRPC URL.
    pub evaluations: &'a str,
}

/// A channel to `url` whose calls carry a token of an admin of `org` signed by `signer`.
async fn admin_channel(
    url: &str,
    signer: &TokenSigner,
    org: &projection::OrgRow,
) -> anyhow::Result<(tonic::transport::Channel, TraceInjector)> {
    let principal = Principal {
        subject: "service:grading-reconcile".into(),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Admin,
            org_id: org.id,
            org_path: org.path.clone(),
        }],
        round_id: None,
    };
    let token = signer.sign(&principal, 3600)?;
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect()
        .await?;
    let injector = TraceInjector::with_bearer(&token).map_err(|s| anyhow::anyhow!("token: {s}"))?;
    Ok((channel, injector))
}

/// Reads the truth of `year` under the organization `org` from the declarations service at
/// `url`, calling as an admin of that organization signed by `signer`.
async fn truth(
    url: &str,
    signer: &TokenSigner,
    org: &projection::OrgRow,
    year: i32,
) -> anyhow::Result<BTreeMap<Uuid, BTreeSet<Key>>> {
    let (channel, injector) = admin_channel(url, signer, org).await?;
    let mut client = DeclarationsServiceClient::with_interceptor(channel, injector)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut out: BTreeMap<Uuid, BTreeSet<Key>> = BTreeMap::new();
    for month in 1..=12u32 {
        let period = format!("{year:04}-{month:02}");
        let mut token = None;
        loop {
            let page = client
                .list_declarations(dpb::ListDeclarationsRequest {
                    org_id: org.id.to_string(),
                    month: period.clone(),
                    status: ev::DeclarationStatus::Approved.into(),
                    page_size: 500,
                    page_token: token.take().unwrap_or_default(),
                })
                .await?
                .into_inner();
            for d in page.declarations {
                let member = Uuid::parse_str(&d.member_id)?;
                let reference = Uuid::parse_str(&d.id)?;
                for line in d.lines {
                    if line.source() != dpb::LineSource::Member {
                        continue;
                    }
                    if let Some(points) = line.approved_points {
                        out.entry(member).or_default().insert((
                            month,
                            "declaration",
                            reference,
                            line.item_code,
                            points,
                        ));
                    }
                }
            }
            token = page_token(page.next_page_token);
            if token.is_none() {
                break;
            }
        }
        loop {
            let page = client
                .list_branch_records(dpb::ListBranchRecordsRequest {
                    org_id: org.id.to_string(),
                    month: period.clone(),
                    page_size: 500,
                    page_token: token.take().unwrap_or_default(),
                })
                .await?
                .into_inner();
            for r in page.records.into_iter().filter(|r| !r.revoked) {
                out.entry(Uuid::parse_str(&r.member_id)?)
                    .or_default()
                    .insert((
                        month,
                        "branch",
                        Uuid::parse_str(&r.id)?,
                        r.item_code,
                        r.points,
                    ));
            }
            token = page_token(page.next_page_token);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

/// The member results of every closed round of `year` of the branches under `org`, read from
/// the evaluations service at `url`: `(member, round)` → facts.
async fn quarters_truth(
    grading: &Grading,
    url: &str,
    signer: &TokenSigner,
    org: &projection::OrgRow,
    year: i32,
) -> anyhow::Result<BTreeMap<(Uuid, Uuid), QuarterFacts>> {
    let (channel, injector) = admin_channel(url, signer, org).await?;
    let mut client = EvaluationsServiceClient::with_interceptor(channel, injector)
        .max_decoding_message_size(64 * 1024 * 1024);
    let prefix = format!("{year:04}-Q");
    let mut out = BTreeMap::new();
    for branch in projection::branches_under(grading.db(), &org.path).await? {
        let mut token = None;
        loop {
            let page = client
                .list_rounds(epb::ListRoundsRequest {
                    org_id: branch.id.to_string(),
                    page_size: 50,
                    page_token: token.take().unwrap_or_default(),
                })
                .await?
                .into_inner();
            for round in page.rounds.iter().filter(|r| {
                r.status() == epb::RoundStatus::Closed && r.quarter.starts_with(&prefix)
            }) {
                let round_id = Uuid::parse_str(&round.id)?;
                let quarter = round.quarter[prefix.len()..].parse()?;
                for m in &round.results {
                    out.insert(
                        (Uuid::parse_str(&m.member_id)?, round_id),
                        QuarterFacts {
                            quarter,
                            ballots: m.ballots,
                            score_total: (m.ballots > 0).then_some(m.score_total),
                            score: m.score,
                            poor_ballots: m.poor_ballots,
                            valid: m.valid,
                        },
                    );
                }
            }
            token = page_token(page.next_page_token);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

/// Compares the projected quarter results of `year` under `org` with `truth`.
async fn compare_quarters(
    grading: &Grading,
    org: &projection::OrgRow,
    year: i32,
    truth: &BTreeMap<(Uuid, Uuid), QuarterFacts>,
) -> anyhow::Result<Vec<QuarterDifference>> {
    let projected: BTreeMap<(Uuid, Uuid), QuarterFacts> =
        inputs::quarters_under(grading.db(), &org.path, year)
            .await?
            .into_iter()
            .map(|q| {
                (
                    (q.member_id, q.round_id),
                    QuarterFacts {
                        quarter: u32::try_from(q.quarter).unwrap_or(0),
                        ballots: q.ballots,
                        score_total: q.score_total,
                        score: q.score,
                        poor_ballots: q.poor_ballots,
                        valid: q.valid,
                    },
                )
            })
            .collect();
    let keys: BTreeSet<(Uuid, Uuid)> = truth.keys().chain(projected.keys()).copied().collect();
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let (have, want) = (projected.get(&key).copied(), truth.get(&key).copied());
            // A quarter with ballots must carry its exact sum in the projection.
            let unsummed = have.is_some_and(|h| h.ballots > 0 && h.score_total.is_none());
            (have != want || unsummed).then_some(QuarterDifference {
                member_id: key.0,
                round_id: key.1,
                projection: have,
                truth: want,
            })
        })
        .collect())
}

fn totals_of(
    standard: &jifen_standard::Standard,
    unit_type: Option<&str>,
    keys: &BTreeSet<Key>,
) -> (i32, i32, i32) {
    let entries: Vec<domain::Entry> = keys
        .iter()
        .map(|(month, source, _, item, points)| domain::Entry {
            month: *month,
            source: if *source == "branch" {
                domain::Source::Branch
            } else {
                domain::Source::Declaration
            },
            item_code: item.as_str().into(),
            points: jifen_standard::DeciPoints::from_tenths(*points),
        })
        .collect();
    let t = domain::totals(standard, unit_type, &entries, &[]);
    (t.base.tenths(), t.bonus.tenths(), t.deductions.tenths())
}

/// Compares the projection of `year` under `org_id` with the declarations and evaluations
/// services' truth.
pub async fn run(
    grading: &Grading,
    sources: &Sources<'_>,
    signer: &TokenSigner,
    org_id: Uuid,
    year: i32,
) -> anyhow::Result<Outcome> {
    let org = projection::find_org(grading.db(), org_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("organization {org_id} is not in the projection"))?;
    let standard = grading
        .standard_for(year)
        .await
        .map_err(|e: AppError| anyhow::anyhow!("{e}"))?;
    let truth = truth(sources.declarations, signer, &org, year).await?;
    let quarters = quarters_truth(grading, sources.evaluations, signer, &org, year).await?;
    let quarter_differences = compare_quarters(grading, &org, year, &quarters).await?;
    let mut projected: BTreeMap<Uuid, BTreeSet<Key>> = BTreeMap::new();
    for row in inputs::entries_under(grading.db(), &org.path, year).await? {
        projected.entry(row.member_id).or_default().insert((
            u32::try_from(row.month).unwrap_or(0),
            if row.source == "branch" {
                "branch"
            } else {
                "declaration"
            },
            row.reference,
            row.item_code,
            row.points,
        ));
    }
    let members: BTreeSet<Uuid> = truth.keys().chain(projected.keys()).copied().collect();
    let empty = BTreeSet::new();
    let mut outcome = Outcome {
        members: members.len(),
        entries: truth.values().map(BTreeSet::len).sum(),
        differences: Vec::new(),
        quarters: quarters.len(),
        quarter_differences,
    };
    for member in members {
        let want = truth.get(&member).unwrap_or(&empty);
        let have = projected.get(&member).unwrap_or(&empty);
        let unit_type = match projection::find_member(grading.db(), member).await? {
            Some(m) => projection::find_org(grading.db(), m.org_id)
                .await?
                .map(|o| o.unit_type),
            None => None,
        };
        let totals = (
            totals_of(&standard, unit_type.as_deref(), have),
            totals_of(&standard, unit_type.as_deref(), want),
        );
        if want != have || totals.0 != totals.1 {
            outcome.differences.push(Difference {
                member_id: member,
                missing: want.difference(have).cloned().collect(),
                extra: have.difference(want).cloned().collect(),
                totals,
            });
        }
    }
    Ok(outcome)
}
