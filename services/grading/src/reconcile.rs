//! Reconciliation: `jifen-grading reconcile --year Y [--org ID]` rebuilds every member's ledger
//! of the year from the declarations service's own read API (approved declarations and branch
//! records, over gRPC — never its database) and compares it, entry by entry and total by total,
//! with the projection this service built from events. Any difference is reported; the command
//! exits non-zero when there is one.
//!
//! The evaluation quarters are not part of it: the evaluations service publishes closed rounds
//! only, and its results are the events themselves.

use crate::domain;
use crate::store::{inputs, projection};
use crate::usecases::{AppError, Grading};
use jifen_platform::auth::{Principal, RoleClaim, RoleName, TokenSigner};
use jifen_platform::grpc::TraceInjector;
use jifen_proto::declarations::v1 as dpb;
use jifen_proto::declarations::v1::declarations_service_client::DeclarationsServiceClient;
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

/// What a reconciliation found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub members: usize,
    pub entries: usize,
    pub differences: Vec<Difference>,
}

fn page_token(next: String) -> Option<String> {
    (!next.is_empty()).then_some(next)
}

/// Reads the truth of `year` under the organization `org` from the declarations service at
/// `url`, calling as an admin of that organization signed by `signer`.
async fn truth(
    url: &str,
    signer: &TokenSigner,
    org: &projection::OrgRow,
    year: i32,
) -> anyhow::Result<BTreeMap<Uuid, BTreeSet<Key>>> {
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
    let mut client = DeclarationsServiceClient::with_interceptor(
        channel,
        TraceInjector::with_bearer(&token).map_err(|s| anyhow::anyhow!("token: {s}"))?,
    )
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

/// Compares the projection of `year` under `org_id` with the declarations service's truth.
pub async fn run(
    grading: &Grading,
    declarations_url: &str,
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
    let truth = truth(declarations_url, signer, &org, year).await?;
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
