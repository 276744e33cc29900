//! `jifen-members seed-demo`: the demo city that `make run` shows — a 市直机关工委 (the root) with
//! five 机关党委 committees, eight 党支部 branches each, and 25 members with accounts per branch
//! (1,000 in all); the first member of each branch is its secretary.
//!
//! It goes through the same use-cases as the gRPC API, so every change has its audit row and its
//! event in the outbox. It is idempotent by its own marker (the `demo_seed` row of
//! [`SEED_VERSION`]): the marker records the id of every organization and member the seed
//! created, as it creates them; a run that finds a complete marker adds nothing and touches
//! nothing, and a run that finds a partial one (an interrupted seed) carries on from the ids it
//! holds. Nothing is ever looked up by name: an organization someone else created with a demo
//! name is left alone (the demo creates its own), and a demo member changed since (expelled,
//! transferred) stays as it is. Demo accounts share one password (`jifen-demo`), hashed once: a
//! demo shortcut, never used for real accounts.

use crate::domain::{
    Category, Flag, Gender, GrantRole, OrgKind, OrgName, PersonName, Phone, Status, UnitType,
    Username,
};
use crate::usecases::{Members, NewMember, NewOrganization};
use anyhow::Context as _;
use futures::StreamExt as _;
use jifen_demo::{BranchRef, CommitteeRef, Manifest, MemberRef, OrgRef, Person, Shape};
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "jifen-demo";

/// The key of the seed's marker row of the full city; a new shape of the demo city takes a new
/// version ([`seed_version`]).
pub const SEED_VERSION: &str = "demo-city-v1";

/// The marker version of a city of `shape`: [`SEED_VERSION`] for the full city (the marker it
/// always had), `demo-city-<c>x<b>x<m>-v1` for another shape.
pub fn seed_version(shape: Shape) -> String {
    if shape == Shape::FULL {
        SEED_VERSION.to_owned()
    } else {
        format!("demo-city-{}-v1", shape.label())
    }
}

pub const COMMITTEES: [&str; 5] = [
    "市发展和改革委员会机关党委",
    "市教育局机关党委",
    "市财政局机关党委",
    "市卫生健康委员会机关党委",
    "市交通运输局机关党委",
];
pub const BRANCHES: [&str; 8] = [
    "第一党支部",
    "第二党支部",
    "第三党支部",
    "第四党支部",
    "第五党支部",
    "第六党支部",
    "第七党支部",
    "第八党支部",
];
pub const MEMBERS_PER_BRANCH: usize = 25;
const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN: [&str; 25] = [
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建国", "红梅",
];

/// What the seed found and created.
#[derive(Debug, Default)]
pub struct DemoSummary {
    pub root_id: Uuid,
    pub organizations_created: usize,
    pub members_created: usize,
    /// The marker was complete before this run: nothing was done.
    pub already_seeded: bool,
    /// Demo usernames that someone else's account holds: those demo members have no account.
    pub usernames_taken: Vec<String>,
    /// The city as the marker records it.
    pub city: DemoCity,
}

/// The demo city as the seed's marker records it: the ids of what the seed created.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoCity {
    pub root_id: Uuid,
    pub committees: Vec<DemoCommittee>,
}

/// A committee the seed created, with its branches.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoCommittee {
    pub id: Uuid,
    pub branches: Vec<DemoBranch>,
}

/// A branch the seed created, with its members (in order: the first is the secretary).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoBranch {
    pub id: Uuid,
    pub members: Vec<DemoMember>,
    /// The secretary role was granted (or could not be: the first member is no longer active).
    #[serde(default)]
    pub secretary_done: bool,
}

/// A member the seed created: its number `n` (account `demo<n>`) and whether it has that account.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoMember {
    pub id: Uuid,
    pub n: usize,
    pub username: Option<String>,
}

impl DemoCity {
    /// Every branch, in seed order.
    pub fn branches(&self) -> impl Iterator<Item = &DemoBranch> {
        self.committees.iter().flat_map(|c| c.branches.iter())
    }
}

/// The demo city the marker records, if the seed has completed.
pub async fn recorded(db: &sea_orm::DatabaseConnection) -> anyhow::Result<Option<DemoCity>> {
    recorded_shape(db, Shape::FULL).await
}

/// The demo city of `shape` the marker records, if its seed has completed.
pub async fn recorded_shape(
    db: &sea_orm::DatabaseConnection,
    shape: Shape,
) -> anyhow::Result<Option<DemoCity>> {
    match crate::store::demo::load(db, &seed_version(shape)).await? {
        Some((state, true)) => Ok(Some(
            serde_json::from_str(&state).context("the demo seed's marker")?,
        )),
        _ => Ok(None),
    }
}

/// Seeds the full demo city into the database of `settings`.
pub async fn seed(settings: &crate::Settings) -> anyhow::Result<DemoSummary> {
    seed_shape(settings, Shape::FULL).await
}

/// Seeds a demo city of `shape` (at most the five committees and eight branches named here).
pub async fn seed_shape(settings: &crate::Settings, shape: Shape) -> anyhow::Result<DemoSummary> {
    anyhow::ensure!(
        shape.committees <= COMMITTEES.len() && shape.branches <= BRANCHES.len(),
        "a demo city has at most {} committees of {} branches",
        COMMITTEES.len(),
        BRANCHES.len()
    );
    let version = seed_version(shape);
    let pii = settings.pii()?;
    let root_name = OrgName::parse(&settings.root_org_name)
        .map_err(|e| anyhow::anyhow!("JIFEN_ROOT_ORG_NAME {e}"))?;
    let db = crate::migrate(&settings.database_url, &settings.database_name).await?;
    let app = Members::new(db, pii).await?;
    let root = app
        .bootstrap(
            &root_name,
            settings.bootstrap_admin_password.expose_secret(),
        )
        .await?;
    let mut summary = DemoSummary {
        root_id: root.id,
        ..DemoSummary::default()
    };
    let mut city = match crate::store::demo::load(app.db(), &version).await? {
        Some((state, complete)) => {
            let city: DemoCity = serde_json::from_str(&state).context("the demo seed's marker")?;
            if complete {
                summary.already_seeded = true;
                summary.city = city;
                return Ok(summary);
            }
            city
        }
        None => {
            let city = DemoCity {
                root_id: root.id,
                committees: Vec::new(),
            };
            // A city seeded before the marker existed (by names, the earlier seed) is left as
            // it is: seeding again would add a second city whose demo usernames are all taken.
            // It is recognized by the seed's own actor in the audit log, which no API caller
            // can take; a seed of this version writes its marker before its first change, so
            // its own audit rows never look like an earlier seed's.
            let earlier =
                shape == Shape::FULL && crate::store::demo::seeded_before_marker(app.db()).await?;
            save(&app, &version, &city, earlier).await?;
            if earlier {
                summary.already_seeded = true;
                summary.city = city;
                return Ok(summary);
            }
            city
        }
    };
    let actor = Principal {
        subject: "system:seed-demo".into(),
        username: None,
        member_id: None,
        roles: vec![RoleClaim {
            role: RoleName::Admin,
            org_id: root.id,
            org_path: root.path.clone(),
        }],
        round_id: None,
    };
    let password_hash = {
        let pw = DEMO_PASSWORD.to_owned();
        tokio::task::spawn_blocking(move || crate::crypto::hash_password(&pw)).await??
    };

    // The organizations, each recorded in the marker as soon as it exists.
    for (c, committee) in COMMITTEES.iter().enumerate().take(shape.committees) {
        if city.committees.len() <= c {
            let id = create_org(&app, &actor, city.root_id, committee, OrgKind::Committee).await?;
            city.committees.push(DemoCommittee {
                id,
                branches: Vec::new(),
            });
            summary.organizations_created += 1;
            save(&app, &version, &city, false).await?;
        }
        for (b, branch) in BRANCHES.iter().enumerate().take(shape.branches) {
            if city.committees[c].branches.len() <= b {
                let parent = city.committees[c].id;
                let id = create_org(&app, &actor, parent, branch, OrgKind::Branch).await?;
                city.committees[c].branches.push(DemoBranch {
                    id,
                    ..DemoBranch::default()
                });
                summary.organizations_created += 1;
                save(&app, &version, &city, false).await?;
            }
        }
    }

    // The members, four branches at a time: enough to keep the pool busy without starving the
    // service. Each branch is recorded once it is complete.
    let mut work = Vec::new();
    for (c, committee) in city.committees.iter().enumerate() {
        for (b, branch) in committee.branches.iter().enumerate() {
            let first = (c * shape.branches + b) * shape.members;
            work.push((c, b, branch.clone(), first));
        }
    }
    let results: Vec<anyhow::Result<BranchOutcome>> = futures::stream::iter(work)
        .map(|(c, b, branch, first)| {
            let (app, actor, hash) = (&app, &actor, &password_hash);
            async move {
                let (branch, created, taken) =
                    seed_branch(app, actor, branch, first, shape.members, hash).await?;
                Ok((c, b, branch, created, taken))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut failure = None;
    for r in results {
        match r {
            Ok((c, b, branch, created, taken)) => {
                city.committees[c].branches[b] = branch;
                summary.members_created += created;
                summary.usernames_taken.extend(taken);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        save(&app, &version, &city, false).await?;
        return Err(e);
    }
    save(&app, &version, &city, true).await?;
    summary.city = city;
    Ok(summary)
}

/// What one branch's seeding gives: (committee index, branch index, the branch as recorded,
/// members created, demo usernames someone else holds).
type BranchOutcome = (usize, usize, DemoBranch, usize, Vec<String>);

/// Writes the marker.
async fn save(app: &Members, version: &str, city: &DemoCity, complete: bool) -> anyhow::Result<()> {
    let state = serde_json::to_string(city)?;
    crate::store::demo::save(app.db(), version, &state, complete).await?;
    Ok(())
}

/// A new organization `name` under `parent` (whatever else is called so).
async fn create_org(
    app: &Members,
    actor: &Principal,
    parent: Uuid,
    name: &str,
    kind: OrgKind,
) -> anyhow::Result<Uuid> {
    let created = app
        .create_organization(
            actor,
            NewOrganization {
                parent_id: parent,
                name: OrgName::parse(name).map_err(|e| anyhow::anyhow!("{name}: {e}"))?,
                kind,
                unit_type: Some(UnitType::GovernmentOrgan),
            },
        )
        .await?;
    Ok(created.org.id)
}

/// Fills a branch the seed created up to its `members` members (accounts `demo<n>`), and makes the
/// first its secretary. A demo username found on an account is the seed's own member when that
/// member is in this branch (an interrupted run: it is recorded, not created again); on anyone
/// else's account, the demo member is created without an account.
async fn seed_branch(
    app: &Members,
    actor: &Principal,
    mut branch: DemoBranch,
    first: usize,
    members: usize,
    hash: &str,
) -> anyhow::Result<(DemoBranch, usize, Vec<String>)> {
    let mut created = 0;
    let mut taken = Vec::new();
    for i in branch.members.len()..members {
        let n = first + i + 1;
        let username = format!("demo{n:04}");
        let mut account = Some(username.clone());
        if let Some(existing) =
            crate::store::accounts::find_by_username(app.db(), &username).await?
        {
            let ours = match existing.member_id {
                Some(member) => crate::store::members::org_of(app.db(), member)
                    .await?
                    .filter(|org| *org == branch.id)
                    .map(|_| member),
                None => None,
            };
            if let Some(member) = ours {
                branch.members.push(DemoMember {
                    id: member,
                    n,
                    username: Some(username),
                });
                continue;
            }
            tracing::warn!(%username, "a demo username is someone else's: the demo member gets no account");
            taken.push(username);
            account = None;
        }
        let cmd = NewMember {
            org_id: branch.id,
            name: PersonName::parse(&format!(
                "{}{}",
                SURNAMES[n % SURNAMES.len()],
                GIVEN[(n / SURNAMES.len()) % GIVEN.len()]
            ))
            .map_err(|e| anyhow::anyhow!("demo name: {e}"))?,
            gender: if n.is_multiple_of(2) {
                Gender::Female
            } else {
                Gender::Male
            },
            category: if n.is_multiple_of(10) {
                Category::Probationary
            } else {
                Category::Full
            },
            joined_on: chrono::NaiveDate::from_ymd_opt(
                1990 + (n % 34) as i32,
                1 + (n % 12) as u32,
                1,
            )
            .context("demo join date")?,
            phone: Some(
                Phone::parse(&format!("139{n:08}"))
                    .map_err(|e| anyhow::anyhow!("demo phone: {e}"))?,
            ),
            id_card: None,
            flags: if n.is_multiple_of(17) {
                vec![Flag::Retired]
            } else {
                Vec::new()
            },
            account: None,
        };
        let credentials = match &account {
            Some(u) => Some((
                Username::parse(u).map_err(|e| anyhow::anyhow!("demo username: {e}"))?,
                hash.to_owned(),
            )),
            None => None,
        };
        let view = app.create_member_hashed(actor, cmd, credentials).await?;
        branch.members.push(DemoMember {
            id: view.member.id,
            n,
            username: account,
        });
        created += 1;
    }
    if !branch.secretary_done {
        if let Some(first) = branch.members.iter().find(|m| m.username.is_some()) {
            let active = app
                .get_member(actor, first.id)
                .await
                .map(|v| v.member.status == Status::Active)
                .unwrap_or(false);
            if active {
                app.assign_role(actor, branch.id, first.id, GrantRole::Secretary)
                    .await?;
            } else {
                tracing::warn!(member_id = %first.id, "the demo secretary is no longer active: no role granted");
            }
        }
        branch.secretary_done = true;
    }
    Ok((branch, created, taken))
}

/// The manifest of the seeded city of `shape` (`jifen-members demo-manifest`): its ids, paths,
/// accounts and secretaries, read from this service's own marker and tables, for the other
/// services' `seed-demo-history`. Fails when the city's seed has not completed.
pub async fn manifest(settings: &crate::Settings, shape: Shape) -> anyhow::Result<Manifest> {
    let db = crate::migrate(&settings.database_url, &settings.database_name).await?;
    let city = recorded_shape(&db, shape).await?.with_context(|| {
        format!(
            "no complete demo city of shape {shape} (marker {}): run `jifen-members seed-demo --scale {shape}` first",
            seed_version(shape)
        )
    })?;
    let root = crate::store::orgs::find(&db, city.root_id)
        .await?
        .context("the demo city's root organization is gone")?;
    let admin = crate::store::accounts::find_by_username(&db, "admin")
        .await?
        .context("the bootstrap admin account is gone")?;
    let org_ref = |org: &crate::store::entities::organization::Model| OrgRef {
        id: org.id,
        path: org.path.clone(),
    };
    let mut committees = Vec::new();
    for committee in &city.committees {
        let org = crate::store::orgs::find(&db, committee.id)
            .await?
            .with_context(|| format!("demo committee {} is gone", committee.id))?;
        let mut branches = Vec::new();
        for branch in &committee.branches {
            let borg = crate::store::orgs::find(&db, branch.id)
                .await?
                .with_context(|| format!("demo branch {} is gone", branch.id))?;
            let mut members = Vec::new();
            let mut secretary = None;
            for (i, m) in branch.members.iter().enumerate() {
                let row = crate::store::members::find(&db, m.id)
                    .await?
                    .with_context(|| format!("demo member {} is gone", m.id))?;
                // A member transferred elsewhere no longer acts in this branch.
                let active = row.status == Status::Active.as_str() && row.org_id == branch.id;
                let account = match &m.username {
                    Some(_) => crate::store::accounts::find_by_member(&db, m.id).await?,
                    None => None,
                };
                if let Some(account) = &account
                    && secretary.is_none()
                    && active
                    && crate::store::accounts::grants(&db, account.id)
                        .await?
                        .iter()
                        .any(|g| g.org_id == branch.id && g.role == GrantRole::Secretary.as_str())
                {
                    secretary = Some(i);
                }
                members.push(MemberRef {
                    id: m.id,
                    n: m.n,
                    account: account.map(|a| Person {
                        subject: a.id,
                        username: a.username,
                    }),
                    active,
                });
            }
            branches.push(BranchRef {
                org: org_ref(&borg),
                members,
                secretary,
            });
        }
        committees.push(CommitteeRef {
            org: org_ref(&org),
            branches,
        });
    }
    db.close().await?;
    let manifest = Manifest {
        version: seed_version(shape),
        shape,
        root: org_ref(&root),
        admin: Person {
            subject: admin.id,
            username: admin.username,
        },
        committees,
    };
    manifest.check()?;
    Ok(manifest)
}
