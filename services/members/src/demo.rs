//! `jifen-members seed-demo`: the demo city that `make run` shows — a 市直机关工委 (the root) with
//! five 机关党委 committees, eight 党支部 branches each, and 25 members with accounts per branch
//! (1,000 in all); the first member of each branch is its secretary.
//!
//! It goes through the same use-cases as the gRPC API, so every change has its audit row and its
//! event in the outbox. It is idempotent: organizations are found by name, a branch that already
//! has its 25 members is left alone, and role grants that exist change nothing. Demo accounts
//! share one password (`jifen-demo`), hashed once: a demo shortcut, never used for real accounts.

use crate::domain::{
    Category, Flag, Gender, GrantRole, OrgKind, OrgName, Page, PersonName, Phone, UnitType,
    Username,
};
use crate::usecases::{Members, NewMember, NewOrganization};
use anyhow::Context as _;
use futures::StreamExt as _;
use jifen_platform::auth::{Principal, RoleClaim, RoleName};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "jifen-demo";

const COMMITTEES: [&str; 5] = [
    "市发展和改革委员会机关党委",
    "市教育局机关党委",
    "市财政局机关党委",
    "市卫生健康委员会机关党委",
    "市交通运输局机关党委",
];
const BRANCHES: [&str; 8] = [
    "第一党支部",
    "第二党支部",
    "第三党支部",
    "第四党支部",
    "第五党支部",
    "第六党支部",
    "第七党支部",
    "第八党支部",
];
const MEMBERS_PER_BRANCH: usize = 25;
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
}

/// Seeds the demo city into the database of `settings`.
pub async fn seed(settings: &crate::Settings) -> anyhow::Result<DemoSummary> {
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
    let mut summary = DemoSummary {
        root_id: root.id,
        ..DemoSummary::default()
    };
    let password_hash = {
        let pw = DEMO_PASSWORD.to_owned();
        tokio::task::spawn_blocking(move || crate::crypto::hash_password(&pw)).await??
    };

    let mut branches = Vec::new();
    for (c, committee) in COMMITTEES.iter().enumerate() {
        let (committee_id, created) =
            child(&app, &actor, root.id, committee, OrgKind::Committee).await?;
        summary.organizations_created += usize::from(created);
        for (b, branch) in BRANCHES.iter().enumerate() {
            let (branch_id, created) =
                child(&app, &actor, committee_id, branch, OrgKind::Branch).await?;
            summary.organizations_created += usize::from(created);
            branches.push((branch_id, (c * BRANCHES.len() + b) * MEMBERS_PER_BRANCH));
        }
    }

    // Four branches at a time: enough to keep the pool busy without starving the service.
    let results: Vec<anyhow::Result<usize>> = futures::stream::iter(branches)
        .map(|(branch_id, first)| seed_branch(&app, &actor, branch_id, first, &password_hash))
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        summary.members_created += r?;
    }
    Ok(summary)
}

/// The child of `parent` named `name`, created when missing; `true` when created.
async fn child(
    app: &Members,
    actor: &Principal,
    parent: Uuid,
    name: &str,
    kind: OrgKind,
) -> anyhow::Result<(Uuid, bool)> {
    let mut after = None;
    loop {
        let (page, next) = app
            .list_children(
                actor,
                parent,
                Page {
                    size: Page::MAX_SIZE,
                    after,
                },
            )
            .await?;
        if let Some(found) = page.iter().find(|o| o.org.name.as_str() == name) {
            return Ok((found.org.id, false));
        }
        match next.is_empty() {
            true => break,
            false => after = page.last().map(|o| o.org.id),
        }
    }
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
    Ok((created.org.id, true))
}

/// Fills a branch up to its 25 members (accounts `demo<n>`), and makes the first its secretary.
async fn seed_branch(
    app: &Members,
    actor: &Principal,
    branch: Uuid,
    first: usize,
    hash: &str,
) -> anyhow::Result<usize> {
    let (existing, _) = app
        .list_members(
            actor,
            branch,
            false,
            Page {
                size: Page::MAX_SIZE,
                after: None,
            },
        )
        .await?;
    let mut created = 0;
    let mut secretary = existing.first().map(|m| m.member.id);
    for i in existing.len()..MEMBERS_PER_BRANCH {
        let n = first + i + 1;
        let cmd = NewMember {
            org_id: branch,
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
        let username = Username::parse(&format!("demo{n:04}"))
            .map_err(|e| anyhow::anyhow!("demo username: {e}"))?;
        let view = app
            .create_member_hashed(actor, cmd, Some((username, hash.to_owned())))
            .await?;
        secretary.get_or_insert(view.member.id);
        created += 1;
    }
    if let Some(member) = secretary {
        app.assign_role(actor, branch, member, GrantRole::Secretary)
            .await?;
    }
    Ok(created)
}
