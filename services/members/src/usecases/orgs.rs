//! Organization use-cases: create, read, list children, bootstrap the root.

use super::{AppError, Members, authorize, org_from_row, org_json, org_to_row, rule};
use crate::domain::authz::{self, OrgRef};
use crate::domain::member::check_new_org;
use crate::domain::{OrgKind, OrgName, Organization, Page, UnitType, tree};
use crate::events;
use crate::store::{self, audit::AuditEntry, orgs::OrgWithCount};
use jifen_platform::auth::Principal;
use sea_orm::TransactionTrait as _;
use uuid::Uuid;

/// CreateOrganization, parsed.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub parent_id: Uuid,
    pub name: OrgName,
    pub kind: OrgKind,
    /// `None`: the parent's unit type.
    pub unit_type: Option<UnitType>,
}

/// An organization with its active-member count over its subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgView {
    pub org: Organization,
    pub member_count: i64,
}

fn view(r: OrgWithCount) -> Result<OrgView, AppError> {
    Ok(OrgView {
        org: org_from_row(&r.org)?,
        member_count: r.member_count,
    })
}

impl Members {
    /// Creates an organization under an existing one (admin over the parent).
    #[tracing::instrument(skip_all, fields(parent_id = %cmd.parent_id, kind = %cmd.kind))]
    pub async fn create_organization(
        &self,
        actor: &Principal,
        cmd: NewOrganization,
    ) -> Result<OrgView, AppError> {
        let txn = self.db.begin().await?;
        let parent = store::orgs::find(&txn, cmd.parent_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "parent_id",
                what: "organization",
            })?;
        let own = self.own_org(&txn, actor).await?;
        authorize(
            authz::create_org(
                actor,
                OrgRef {
                    id: parent.id,
                    path: &parent.path,
                },
                own,
            ),
            "parent_id",
            "organization",
        )?;
        let parent = org_from_row(&parent)?;
        check_new_org(parent.kind, cmd.kind).map_err(rule("kind"))?;
        let id = Uuid::now_v7();
        let org = Organization {
            id,
            parent_id: Some(parent.id),
            name: cmd.name,
            kind: cmd.kind,
            unit_type: cmd.unit_type.unwrap_or(parent.unit_type),
            path: tree::child_path(&parent.path, id),
            version: 1,
        };
        store::orgs::insert(&txn, org_to_row(&org, chrono::Utc::now())).await?;
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::organization_changed(events::ORGANIZATION_CREATED, &org),
        )
        .await?;
        store::audit::record(
            &txn,
            AuditEntry {
                actor: actor.subject.clone(),
                action: "organization.create",
                subject_type: "organization",
                subject_id: id.to_string(),
                before: None,
                after: Some(org_json(&org)),
                detail: None,
                reason: None,
            },
        )
        .await?;
        txn.commit().await?;
        metrics::counter!("jifen_members_organizations_created_total").increment(1);
        tracing::info!(org_id = %id, "organization created");
        Ok(OrgView {
            org,
            member_count: 0,
        })
    }

    /// An organization the caller sees.
    pub async fn get_organization(&self, actor: &Principal, id: Uuid) -> Result<OrgView, AppError> {
        let found =
            store::orgs::find_with_count(&self.db, id)
                .await?
                .ok_or(AppError::NotFound {
                    field: "id",
                    what: "organization",
                })?;
        let own = self.own_org(&self.db, actor).await?;
        authorize(
            authz::get_org(
                actor,
                OrgRef {
                    id,
                    path: &found.org.path,
                },
                own,
            ),
            "id",
            "organization",
        )?;
        view(found)
    }

    /// One page of an organization's children; also returns the next page token.
    pub async fn list_children(
        &self,
        actor: &Principal,
        id: Uuid,
        page: Page,
    ) -> Result<(Vec<OrgView>, String), AppError> {
        let org = store::orgs::find(&self.db, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: "organization",
            })?;
        let own = self.own_org(&self.db, actor).await?;
        authorize(
            authz::list_in_org(
                actor,
                OrgRef {
                    id,
                    path: &org.path,
                },
                own,
            ),
            "id",
            "organization",
        )?;
        let mut rows =
            store::orgs::children_with_count(&self.db, id, page.after, page.size + 1).await?;
        let next = next_token(&mut rows, page.size, |r| r.org.id);
        Ok((rows.into_iter().map(view).collect::<Result<_, _>>()?, next))
    }

    /// Creates the root organization and the `admin` account (admin over the root) when they do
    /// not exist yet. Idempotent, and serialized between instances starting at once.
    pub async fn bootstrap(
        &self,
        root_name: &OrgName,
        admin_password: &str,
    ) -> Result<Organization, AppError> {
        // Hash outside the lock, and only when the account looks missing (accounts are never
        // deleted, so "present" stays true).
        let admin_exists =
            store::accounts::find_by_username(&self.db, super::accounts::BOOTSTRAP_ADMIN)
                .await?
                .is_some();
        let admin_hash = if admin_exists {
            None
        } else {
            Some(hash_in_background(admin_password).await?)
        };
        let txn = self.db.begin().await?;
        store::lock_startup(&txn).await?;
        let actor = "system:bootstrap".to_owned();
        let root = match store::orgs::root(&txn).await? {
            Some(root) => org_from_row(&root)?,
            None => {
                let id = Uuid::now_v7();
                let root = Organization {
                    id,
                    parent_id: None,
                    name: root_name.clone(),
                    kind: OrgKind::Committee,
                    unit_type: UnitType::GovernmentOrgan,
                    path: tree::root_path(id),
                    version: 1,
                };
                store::orgs::insert(&txn, org_to_row(&root, chrono::Utc::now())).await?;
                jifen_eventbus::stage(
                    &txn,
                    events::SOURCE,
                    events::organization_changed(events::ORGANIZATION_CREATED, &root),
                )
                .await?;
                store::audit::record(
                    &txn,
                    AuditEntry {
                        actor: actor.clone(),
                        action: "organization.create",
                        subject_type: "organization",
                        subject_id: id.to_string(),
                        before: None,
                        after: Some(org_json(&root)),
                        detail: Some(serde_json::json!({ "bootstrap": true })),
                        reason: None,
                    },
                )
                .await?;
                tracing::info!(org_id = %id, name = root.name.as_str(), "root organization created");
                root
            }
        };
        if store::accounts::find_by_username(&txn, super::accounts::BOOTSTRAP_ADMIN)
            .await?
            .is_none()
        {
            let now = chrono::Utc::now();
            let account_id = Uuid::now_v7();
            store::accounts::insert(
                &txn,
                crate::store::entities::account::Model {
                    id: account_id,
                    username: super::accounts::BOOTSTRAP_ADMIN.to_owned(),
                    password_hash: match admin_hash {
                        Some(hash) => hash,
                        None => hash_in_background(admin_password).await?,
                    },
                    member_id: None,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
            store::accounts::grant(
                &txn,
                crate::store::entities::role_grant::Model {
                    id: Uuid::now_v7(),
                    account_id,
                    org_id: root.id,
                    role: "admin".to_owned(),
                    granted_by: actor.clone(),
                    granted_at: now,
                },
            )
            .await?;
            store::audit::record(
                &txn,
                AuditEntry {
                    actor,
                    action: "account.create",
                    subject_type: "account",
                    subject_id: account_id.to_string(),
                    before: None,
                    after: None,
                    detail: Some(serde_json::json!({
                        "username": super::accounts::BOOTSTRAP_ADMIN,
                        "roles": [{ "role": "admin", "org_id": root.id }],
                        "bootstrap": true,
                    })),
                    reason: None,
                },
            )
            .await?;
            tracing::info!(account_id = %account_id, "bootstrap admin account created");
        }
        txn.commit().await?;
        Ok(root)
    }
}

async fn hash_in_background(password: &str) -> Result<String, AppError> {
    let password = password.to_owned();
    Ok(super::blocking(move || crate::crypto::hash_password(&password)).await??)
}

/// Keeps the first `size` of `rows` (fetched with one extra) and returns the next page token,
/// empty at the end.
pub(super) fn next_token<T>(rows: &mut Vec<T>, size: u64, id: impl Fn(&T) -> Uuid) -> String {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        rows.last()
            .map(|r| Page::token_after(id(r)))
            .unwrap_or_default()
    } else {
        String::new()
    }
}
