//! Accounts and roles: role grants, password authentication and principals.
//!
//! A principal's roles are its explicit grants (admin or secretary over an organization, with
//! the organization's current path) plus, for an account linked to a member, the implicit
//! `member` role over the member's own organization. Accounts of members who are no longer
//! active cannot authenticate.

use super::{AppError, Members, authorize, rule};
use crate::domain::authz::{self, MemberRef, OrgRef};
use crate::domain::member::check_grant;
use crate::domain::{GrantRole, OrgKind, RuleError, Status};
use crate::store::{self, audit::AuditEntry, entities};
use jifen_platform::auth::{Principal, RoleName};
use sea_orm::{ConnectionTrait, TransactionTrait as _};
use uuid::Uuid;

/// The username of the account created at first start (admin of the root).
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// One role of a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    pub role: RoleName,
    pub org_id: Uuid,
    pub org_path: String,
}

/// An account as the rest of the system sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalView {
    pub subject: Uuid,
    pub username: String,
    pub member_id: Option<Uuid>,
    pub roles: Vec<RoleView>,
}

impl Members {
    /// Grants `role` over `org_id` to the account of `member_id` (admin over the organization).
    /// Granting a role the account already holds changes nothing.
    #[tracing::instrument(skip_all, fields(org_id = %org_id, member_id = %member_id, role = %role))]
    pub async fn assign_role(
        &self,
        actor: &Principal,
        org_id: Uuid,
        member_id: Uuid,
        role: GrantRole,
    ) -> Result<(), AppError> {
        let txn = self.db.begin().await?;
        let org = store::orgs::find(&txn, org_id)
            .await?
            .ok_or(AppError::NotFound {
                field: "org_id",
                what: "organization",
            })?;
        let own = self.own_org(&txn, actor).await?;
        authorize(
            authz::assign_role(
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
        let member = store::members::find(&txn, member_id)
            .await?
            .filter(|m| {
                authz::sees_member(
                    actor,
                    MemberRef {
                        id: m.id,
                        org_path: &m.org_path,
                    },
                )
            })
            .ok_or(AppError::NotFound {
                field: "member_id",
                what: "member",
            })?;
        let kind = OrgKind::parse(&org.kind)
            .map_err(|_| AppError::Corrupt(format!("organization {org_id}: kind")))?;
        let status = Status::parse(&member.status)
            .map_err(|_| AppError::Corrupt(format!("member {member_id}: status")))?;
        check_grant(role, kind, &org.path, &member.org_path, status).map_err(|r| match r {
            RuleError::NoRolesOver(_) => AppError::Rule {
                rule: r,
                field: Some("org_id"),
            },
            other => rule("member_id")(other),
        })?;
        let account = store::accounts::find_by_member(&txn, member_id)
            .await?
            .ok_or(AppError::Conflict {
                code: "member_has_no_account",
                message: "the member has no account: create it with a username and password first"
                    .into(),
            })?;
        let added = store::accounts::grant(
            &txn,
            entities::role_grant::Model {
                id: Uuid::now_v7(),
                account_id: account.id,
                org_id,
                role: role.as_str().to_owned(),
                granted_by: actor.subject.clone(),
                granted_at: chrono::Utc::now(),
            },
        )
        .await?;
        if added {
            store::accounts::touch(&txn, account.id).await?;
            store::audit::record(
                &txn,
                AuditEntry {
                    actor: actor.subject.clone(),
                    action: "role.assign",
                    subject_type: "account",
                    subject_id: account.id.to_string(),
                    before: None,
                    after: None,
                    detail: Some(serde_json::json!({
                        "role": role.as_str(),
                        "org_id": org_id,
                        "member_id": member_id,
                        "username": account.username,
                    })),
                    reason: None,
                },
            )
            .await?;
        }
        txn.commit().await?;
        if added {
            tracing::info!(account_id = %account.id, "role granted");
        }
        Ok(())
    }

    /// Checks a username and password. Unknown user and wrong password fail alike, after the
    /// same argon2 work.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<PrincipalView, AppError> {
        let username = username.trim().to_ascii_lowercase();
        let account = store::accounts::find_by_username(&self.db, &username).await?;
        let hash = account
            .as_ref()
            .map_or_else(|| self.dummy_hash.to_string(), |a| a.password_hash.clone());
        let password = password.to_owned();
        let matches =
            super::blocking(move || crate::crypto::verify_password(&password, &hash)).await?;
        let outcome = match account {
            Some(account) if matches => match self.principal_of(&self.db, &account).await? {
                Some(p) => Ok(p),
                None => Err(AppError::BadCredentials),
            },
            _ => Err(AppError::BadCredentials),
        };
        let label = if outcome.is_ok() {
            "success"
        } else {
            "failure"
        };
        metrics::counter!("jifen_members_authentications_total", "outcome" => label).increment(1);
        outcome
    }

    /// The current principal of account `subject` (a service identity only).
    pub async fn get_principal(
        &self,
        actor: &Principal,
        subject: Uuid,
    ) -> Result<PrincipalView, AppError> {
        if !authz::may_get_principal(actor) {
            return Err(AppError::Denied);
        }
        let account =
            store::accounts::find(&self.db, subject)
                .await?
                .ok_or(AppError::NotFound {
                    field: "subject",
                    what: "account",
                })?;
        self.principal_of(&self.db, &account)
            .await?
            .ok_or(AppError::Conflict {
                code: "account_disabled",
                message: "the account's member is no longer active".into(),
            })
    }

    /// The principal of an account, or `None` when its member is no longer active.
    async fn principal_of(
        &self,
        conn: &impl ConnectionTrait,
        account: &entities::account::Model,
    ) -> Result<Option<PrincipalView>, AppError> {
        let mut roles = Vec::new();
        for g in store::accounts::grants(conn, account.id).await? {
            let role = match GrantRole::parse(&g.role) {
                Ok(GrantRole::Admin) => RoleName::Admin,
                Ok(GrantRole::Secretary) => RoleName::Secretary,
                Err(_) => {
                    return Err(AppError::Corrupt(format!(
                        "grant of account {}: role",
                        account.id
                    )));
                }
            };
            roles.push(RoleView {
                role,
                org_id: g.org_id,
                org_path: g.org_path,
            });
        }
        if let Some(member_id) = account.member_id {
            let Some(member) = store::members::find(conn, member_id).await? else {
                return Err(AppError::Corrupt(format!(
                    "account {}: member missing",
                    account.id
                )));
            };
            if member.status != Status::Active.as_str() {
                return Ok(None);
            }
            roles.push(RoleView {
                role: RoleName::Member,
                org_id: member.org_id,
                org_path: member.org_path,
            });
        }
        Ok(Some(PrincipalView {
            subject: account.id,
            username: account.username.clone(),
            member_id: account.member_id,
            roles,
        }))
    }
}
