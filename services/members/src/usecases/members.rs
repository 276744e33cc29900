//! Member use-cases: create (with an optional account), read, update, list, transfer,
//! sanction, and their histories.

use super::orgs::next_token;
use super::{
    AppError, Members, authorize, member_json, org_from_row, rule, sanction_from_row,
    transfer_from_row,
};
use crate::domain::authz::{self, MemberRef, OrgRef};
use crate::domain::{
    Category, Flag, Gender, IdCard, Member, MemberPatch, Page, Password, PersonName, Phone, Reason,
    RuleError, SanctionKind, SanctionRecord, TransferRecord, Username,
};
use crate::events;
use crate::store::{self, audit::AuditEntry, entities};
use chrono::NaiveDate;
use jifen_platform::auth::Principal;
use sea_orm::{ConnectionTrait, TransactionTrait as _};
use uuid::Uuid;

/// An account to create with a member.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub password: Password,
}

/// CreateMember, parsed.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub org_id: Uuid,
    pub name: PersonName,
    pub gender: Gender,
    pub category: Category,
    pub joined_on: NaiveDate,
    pub phone: Option<Phone>,
    pub id_card: Option<IdCard>,
    pub flags: Vec<Flag>,
    pub account: Option<NewAccount>,
}

/// A member as answered to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub member: Member,
    pub username: Option<String>,
    /// The caller is the member: personal data may be shown in clear.
    pub reveal: bool,
}

const MEMBER: &str = "member";

impl Members {
    async fn member_for_update(
        &self,
        conn: &impl ConnectionTrait,
        id: Uuid,
        field: &'static str,
    ) -> Result<(entities::member::Model, Member), AppError> {
        let row = store::members::find_for_update(conn, id)
            .await?
            .ok_or(AppError::NotFound {
                field,
                what: MEMBER,
            })?;
        let member = self.member_from_row(&row)?;
        Ok((row, member))
    }

    async fn sanctions_of(
        &self,
        conn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Vec<SanctionRecord>, AppError> {
        store::history::sanctions(conn, id)
            .await?
            .iter()
            .map(sanction_from_row)
            .collect()
    }

    async fn view(
        &self,
        conn: &impl ConnectionTrait,
        actor: &Principal,
        member: Member,
    ) -> Result<MemberView, AppError> {
        let username = store::members::usernames(conn, &[member.id])
            .await?
            .remove(&member.id);
        Ok(MemberView {
            reveal: actor.is_member(member.id),
            member,
            username,
        })
    }

    /// Creates an active member in a branch or group (admin or secretary over it), with an
    /// account when a username and password are given.
    #[tracing::instrument(skip_all, fields(org_id = %cmd.org_id))]
    pub async fn create_member(
        &self,
        actor: &Principal,
        cmd: NewMember,
    ) -> Result<MemberView, AppError> {
        // Hash before the transaction: argon2 is slow on purpose.
        let account = match cmd.account.clone() {
            None => None,
            Some(a) => {
                let password = a.password.clone();
                let hash = super::blocking(move || crate::crypto::hash_password(password.expose()))
                    .await??;
                Some((a.username, hash))
            }
        };
        self.create_member_hashed(actor, cmd, account).await
    }

    /// [`Self::create_member`] with the account's password already hashed (`cmd.account` is
    /// ignored). The demo seed hashes its one shared password once for a thousand accounts.
    pub(crate) async fn create_member_hashed(
        &self,
        actor: &Principal,
        cmd: NewMember,
        account: Option<(Username, String)>,
    ) -> Result<MemberView, AppError> {
        let txn = self.db.begin().await?;
        let org = store::orgs::find(&txn, cmd.org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let own = self.own_org(&txn, actor).await?;
        authorize(
            authz::create_member(
                actor,
                OrgRef {
                    id: org.id,
                    path: &org.path,
                },
                own,
            ),
            "org_id",
            "organization",
        )?;
        let org = org_from_row(&org)?;
        let member = Member::new(
            Uuid::now_v7(),
            org.id,
            org.path.clone(),
            org.kind,
            cmd.name,
            cmd.gender,
            cmd.category,
            cmd.joined_on,
            cmd.flags,
            cmd.phone,
            cmd.id_card,
        )
        .map_err(rule("org_id"))?;
        if let Some(card) = &member.id_card
            && store::members::id_card_taken(&txn, &self.id_card_hashes(card), None).await?
        {
            return Err(id_card_taken());
        }
        if let Some((username, _)) = &account
            && store::accounts::find_by_username(&txn, username.as_str())
                .await?
                .is_some()
        {
            return Err(username_taken());
        }
        let now = chrono::Utc::now();
        store::members::insert(&txn, self.member_to_row(&member, now, now)?)
            .await
            .map_err(map_unique)?;
        let mut audit = vec![AuditEntry {
            actor: actor.subject.clone(),
            action: "member.create",
            subject_type: MEMBER,
            subject_id: member.id.to_string(),
            before: None,
            after: Some(member_json(&member)),
            detail: None,
            reason: None,
        }];
        let username = match account {
            None => None,
            Some((username, password_hash)) => {
                let account_id = Uuid::now_v7();
                store::accounts::insert(
                    &txn,
                    entities::account::Model {
                        id: account_id,
                        username: username.as_str().to_owned(),
                        password_hash,
                        member_id: Some(member.id),
                        version: 1,
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await
                .map_err(map_unique)?;
                audit.push(AuditEntry {
                    actor: actor.subject.clone(),
                    action: "account.create",
                    subject_type: "account",
                    subject_id: account_id.to_string(),
                    before: None,
                    after: None,
                    detail: Some(serde_json::json!({ "username": username.as_str(), "member_id": member.id })),
                    reason: None,
                });
                Some(username.as_str().to_owned())
            }
        };
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::member_changed(events::MEMBER_CREATED, &member, &[], None),
        )
        .await?;
        store::audit::record_many(&txn, audit).await?;
        txn.commit().await?;
        metrics::counter!("jifen_members_created_total", "via" => "api").increment(1);
        tracing::info!(member_id = %member.id, "member created");
        Ok(MemberView {
            reveal: actor.is_member(member.id),
            member,
            username,
        })
    }

    /// A member the caller sees (themself, or a member they manage).
    pub async fn get_member(&self, actor: &Principal, id: Uuid) -> Result<MemberView, AppError> {
        let row = store::members::find(&self.db, id)
            .await?
            .ok_or(AppError::NotFound {
                field: "id",
                what: MEMBER,
            })?;
        authorize(
            authz::read_member(
                actor,
                MemberRef {
                    id,
                    org_path: &row.org_path,
                },
            ),
            "id",
            MEMBER,
        )?;
        let member = self.member_from_row(&row)?;
        self.view(&self.db, actor, member).await
    }

    /// Applies a partial update (admin or secretary over the member).
    #[tracing::instrument(skip_all, fields(member_id = %id))]
    pub async fn update_member(
        &self,
        actor: &Principal,
        id: Uuid,
        patch: MemberPatch,
    ) -> Result<MemberView, AppError> {
        let txn = self.db.begin().await?;
        let (row, mut member) = self.member_for_update(&txn, id, "id").await?;
        authorize(
            authz::update_member(
                actor,
                MemberRef {
                    id,
                    org_path: &row.org_path,
                },
            ),
            "id",
            MEMBER,
        )?;
        if let Some(Some(card)) = &patch.id_card
            && store::members::id_card_taken(&txn, &self.id_card_hashes(card), Some(id)).await?
        {
            return Err(id_card_taken());
        }
        let before = member.clone();
        let changed = member.apply(patch).map_err(rule("status"))?;
        if changed {
            store::members::update(
                &txn,
                self.member_to_row(&member, row.created_at, chrono::Utc::now())?,
            )
            .await
            .map_err(map_unique)?;
            let sanctions = self.sanctions_of(&txn, id).await?;
            jifen_eventbus::stage(
                &txn,
                events::SOURCE,
                events::member_changed(events::MEMBER_UPDATED, &member, &sanctions, None),
            )
            .await?;
            store::audit::record(
                &txn,
                AuditEntry {
                    actor: actor.subject.clone(),
                    action: "member.update",
                    subject_type: MEMBER,
                    subject_id: id.to_string(),
                    before: Some(member_json(&before)),
                    after: Some(member_json(&member)),
                    detail: None,
                    reason: None,
                },
            )
            .await?;
        }
        let view = self.view(&txn, actor, member).await?;
        txn.commit().await?;
        if changed {
            metrics::counter!("jifen_members_updated_total").increment(1);
        }
        Ok(view)
    }

    /// One page of the members of an organization (or of its subtree), ordered by id.
    pub async fn list_members(
        &self,
        actor: &Principal,
        org_id: Uuid,
        recursive: bool,
        page: Page,
    ) -> Result<(Vec<MemberView>, String), AppError> {
        let org = store::orgs::find(&self.db, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let own = self.own_org(&self.db, actor).await?;
        authorize(
            authz::list_in_org(
                actor,
                OrgRef {
                    id: org_id,
                    path: &org.path,
                },
                own,
            ),
            "org_id",
            "organization",
        )?;
        let scope = if recursive {
            store::members::Scope::Subtree(&org.path)
        } else {
            store::members::Scope::Org(org_id)
        };
        let mut rows = store::members::list(&self.db, scope, page.after, page.size + 1).await?;
        let next = next_token(&mut rows, page.size, |r| r.id);
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut usernames = store::members::usernames(&self.db, &ids).await?;
        let views = rows
            .iter()
            .map(|r| {
                Ok(MemberView {
                    member: self.member_from_row(r)?,
                    username: usernames.remove(&r.id),
                    reveal: actor.is_member(r.id),
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok((views, next))
    }

    /// 组织关系转接: moves an active member to another branch or group (admin over both ends).
    #[tracing::instrument(skip_all, fields(member_id = %id, to_org_id = %to_org_id))]
    pub async fn transfer_member(
        &self,
        actor: &Principal,
        id: Uuid,
        to_org_id: Uuid,
        reason: Reason,
    ) -> Result<MemberView, AppError> {
        let txn = self.db.begin().await?;
        let (row, mut member) = self.member_for_update(&txn, id, "id").await?;
        authorize(
            authz::transfer_from(
                actor,
                MemberRef {
                    id,
                    org_path: &row.org_path,
                },
            ),
            "id",
            MEMBER,
        )?;
        let to = store::orgs::find(&txn, to_org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "to_org_id",
                what: "organization",
            })?;
        let own = self.own_org(&txn, actor).await?;
        authorize(
            authz::transfer_to(
                actor,
                OrgRef {
                    id: to.id,
                    path: &to.path,
                },
                own,
            ),
            "to_org_id",
            "organization",
        )?;
        let to = org_from_row(&to)?;
        let before = member.clone();
        member
            .transfer(to.id, &to.path, to.kind)
            .map_err(|r| match r {
                RuleError::MemberNotActive(_) => AppError::Rule {
                    rule: r,
                    field: Some("id"),
                },
                other => AppError::Rule {
                    rule: other,
                    field: Some("to_org_id"),
                },
            })?;
        let now = chrono::Utc::now();
        let transfer = TransferRecord {
            id: Uuid::now_v7(),
            member_id: id,
            from_org_id: before.org_id,
            to_org_id: to.id,
            reason: reason.as_str().to_owned(),
            transferred_at: now,
            actor: actor.subject.clone(),
        };
        store::history::insert_transfer(
            &txn,
            entities::transfer::Model {
                id: transfer.id,
                member_id: id,
                from_org_id: transfer.from_org_id,
                to_org_id: transfer.to_org_id,
                reason: transfer.reason.clone(),
                actor: transfer.actor.clone(),
                transferred_at: now,
            },
        )
        .await?;
        store::members::update(&txn, self.member_to_row(&member, row.created_at, now)?).await?;
        let sanctions = self.sanctions_of(&txn, id).await?;
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::member_changed(
                events::MEMBER_TRANSFERRED,
                &member,
                &sanctions,
                Some(&transfer),
            ),
        )
        .await?;
        store::audit::record(
            &txn,
            AuditEntry {
                actor: actor.subject.clone(),
                action: "member.transfer",
                subject_type: MEMBER,
                subject_id: id.to_string(),
                before: Some(member_json(&before)),
                after: Some(member_json(&member)),
                detail: Some(serde_json::json!({
                    "transfer_id": transfer.id,
                    "from_org_id": transfer.from_org_id,
                    "to_org_id": transfer.to_org_id,
                })),
                reason: Some(transfer.reason.clone()),
            },
        )
        .await?;
        let view = self.view(&txn, actor, member).await?;
        txn.commit().await?;
        metrics::counter!("jifen_members_transfers_total").increment(1);
        tracing::info!("member transferred");
        Ok(view)
    }

    /// Fails unless `member_id` exists and the caller may read it (NOT_FOUND otherwise: existence
    /// is private).
    async fn check_readable(&self, actor: &Principal, member_id: Uuid) -> Result<(), AppError> {
        let row = store::members::find(&self.db, member_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "member_id",
                what: MEMBER,
            })?;
        authorize(
            authz::read_member(
                actor,
                MemberRef {
                    id: member_id,
                    org_path: &row.org_path,
                },
            ),
            "member_id",
            MEMBER,
        )
    }

    /// The transfers of a member the caller sees, oldest first.
    pub async fn list_transfers(
        &self,
        actor: &Principal,
        member_id: Uuid,
    ) -> Result<Vec<TransferRecord>, AppError> {
        self.check_readable(actor, member_id).await?;
        Ok(store::history::transfers(&self.db, member_id)
            .await?
            .iter()
            .map(transfer_from_row)
            .collect())
    }

    /// 党纪处分: records a sanction (admin over the member); an expulsion expels.
    #[tracing::instrument(skip_all, fields(member_id = %member_id, kind = %kind))]
    pub async fn record_sanction(
        &self,
        actor: &Principal,
        member_id: Uuid,
        kind: SanctionKind,
        decided_on: NaiveDate,
        reason: Reason,
    ) -> Result<SanctionRecord, AppError> {
        let txn = self.db.begin().await?;
        let (row, mut member) = self.member_for_update(&txn, member_id, "member_id").await?;
        authorize(
            authz::sanction(
                actor,
                MemberRef {
                    id: member_id,
                    org_path: &row.org_path,
                },
            ),
            "member_id",
            MEMBER,
        )?;
        let before = member.clone();
        member.sanction(kind, decided_on).map_err(|r| match r {
            RuleError::SanctionBeforeJoining => AppError::Rule {
                rule: r,
                field: Some("decided_on"),
            },
            other => AppError::Rule {
                rule: other,
                field: Some("member_id"),
            },
        })?;
        let now = chrono::Utc::now();
        let record = SanctionRecord {
            id: Uuid::now_v7(),
            member_id,
            kind,
            decided_on,
            reason: reason.as_str().to_owned(),
            recorded_at: now,
            actor: actor.subject.clone(),
        };
        store::history::insert_sanction(
            &txn,
            entities::sanction::Model {
                id: record.id,
                member_id,
                kind: kind.as_str().to_owned(),
                decided_on,
                reason: record.reason.clone(),
                actor: record.actor.clone(),
                recorded_at: now,
            },
        )
        .await?;
        store::members::update(&txn, self.member_to_row(&member, row.created_at, now)?).await?;
        let sanctions = self.sanctions_of(&txn, member_id).await?;
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::member_changed(events::MEMBER_SANCTIONED, &member, &sanctions, None),
        )
        .await?;
        store::audit::record(
            &txn,
            AuditEntry {
                actor: actor.subject.clone(),
                action: "member.sanction",
                subject_type: MEMBER,
                subject_id: member_id.to_string(),
                before: Some(member_json(&before)),
                after: Some(member_json(&member)),
                detail: Some(serde_json::json!({
                    "sanction_id": record.id,
                    "kind": kind.as_str(),
                    "decided_on": decided_on.format("%Y-%m-%d").to_string(),
                })),
                reason: Some(record.reason.clone()),
            },
        )
        .await?;
        txn.commit().await?;
        metrics::counter!("jifen_members_sanctions_total", "kind" => kind.as_str()).increment(1);
        tracing::info!("sanction recorded");
        Ok(record)
    }

    /// The sanctions of a member the caller sees, oldest first.
    pub async fn list_sanctions(
        &self,
        actor: &Principal,
        member_id: Uuid,
    ) -> Result<Vec<SanctionRecord>, AppError> {
        self.check_readable(actor, member_id).await?;
        self.sanctions_of(&self.db, member_id).await
    }
}

pub(super) fn id_card_taken() -> AppError {
    AppError::Taken {
        code: "id_card_taken",
        field: "id_card",
        message: "this ID card number is already registered",
    }
}

fn username_taken() -> AppError {
    AppError::Taken {
        code: "username_taken",
        field: "username",
        message: "this username is taken",
    }
}

/// A unique violation that a concurrent request caused after our checks.
pub(super) fn map_unique(e: sea_orm::DbErr) -> AppError {
    if store::is_unique_violation(&e, "members_id_card_hash_key") {
        id_card_taken()
    } else if store::is_unique_violation(&e, "accounts_username_key") {
        username_taken()
    } else {
        AppError::Db(e)
    }
}
