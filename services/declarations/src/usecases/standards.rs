//! The yearly standard (积分标准): reading it (with a unit type's overlay) and publishing a new
//! version. A year without a published version uses the shipped default when there is one
//! (`standards/2026.toml`).

use super::{AppError, Declarations, authorize};
use crate::domain::authz;
use crate::events;
use crate::store::{self, entities::standard};
use jifen_platform::auth::Principal;
use jifen_standard::{Format, Item, Standard};
use sea_orm::{ConnectionTrait, TransactionTrait as _};
use std::sync::Arc;
use uuid::Uuid;

/// A standard as the API shows it.
#[derive(Debug, Clone)]
pub struct StandardView {
    pub year: i32,
    /// 0 for the shipped default.
    pub version: i64,
    pub standard: Arc<Standard>,
    /// The unit type whose overlay `items` reflect, if one was asked for.
    pub unit_type: Option<String>,
    pub items: Vec<Item>,
}

/// The shipped default of `year`, if there is one.
fn shipped(year: i32) -> Option<Standard> {
    match year {
        2026 => jifen_standard::default_2026().ok(),
        _ => None,
    }
}

impl Declarations {
    /// The standard in force for `year` (newest published, else shipped), cached by version.
    pub(crate) async fn standard_for(
        &self,
        conn: &impl ConnectionTrait,
        year: i32,
    ) -> Result<Option<(i64, Arc<Standard>)>, AppError> {
        let version = store::latest_standard_version(conn, year).await?;
        self.standard_at(conn, year, version).await
    }

    /// Version `version` of `year`'s standard (0: the shipped default), from the cache when it
    /// holds that version.
    pub(crate) async fn standard_at(
        &self,
        conn: &impl ConnectionTrait,
        year: i32,
        version: i64,
    ) -> Result<Option<(i64, Arc<Standard>)>, AppError> {
        let cached = self
            .standards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&year)
            .filter(|(v, _)| *v == version)
            .cloned();
        if let Some(hit) = cached {
            return Ok(Some(hit));
        }
        let parsed = if version == 0 {
            match shipped(year) {
                Some(s) => s,
                None => return Ok(None),
            }
        } else {
            let row = store::latest_standard(conn, year)
                .await?
                .ok_or_else(|| AppError::Corrupt(format!("standard {year} vanished")))?;
            Standard::parse_for_year(&row.document.to_string(), Format::Json, year).map_err(
                |problems| {
                    AppError::Corrupt(format!(
                        "stored standard {year} v{} no longer validates: {} problems",
                        row.version,
                        problems.len()
                    ))
                },
            )?
        };
        let parsed = Arc::new(parsed);
        self.standards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(year, (version, parsed.clone()));
        Ok(Some((version, parsed)))
    }

    /// The items of `standard` (`year`'s version `version`) for `unit_type`: computed once per
    /// version and unit type, then shared.
    pub(crate) fn items_of(
        &self,
        year: i32,
        version: i64,
        standard: &Standard,
        unit_type: &str,
    ) -> Arc<[Item]> {
        let key = (year, version, unit_type.to_owned());
        if let Some(items) = self
            .items
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return items.clone();
        }
        let items: Arc<[Item]> = standard.items_for(unit_type).into();
        self.items
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, items.clone());
        items
    }

    /// The standard of `year` at `version`, or 409 `no_standard`.
    pub(crate) async fn require_standard_at(
        &self,
        conn: &impl ConnectionTrait,
        year: i32,
        version: i64,
    ) -> Result<(i64, Arc<Standard>), AppError> {
        self.standard_at(conn, year, version).await?.ok_or_else(|| {
            AppError::conflict(
                "no_standard",
                format!("no points standard is published for {year}"),
            )
        })
    }

    /// The standard in force for `year`, or 409 `no_standard`.
    pub(crate) async fn require_standard(
        &self,
        conn: &impl ConnectionTrait,
        year: i32,
    ) -> Result<(i64, Arc<Standard>), AppError> {
        self.standard_for(conn, year).await?.ok_or_else(|| {
            AppError::conflict(
                "no_standard",
                format!("no points standard is published for {year}"),
            )
        })
    }

    /// `GET /standards/{year}`: with `org_id`, the items of that organization's unit type.
    pub async fn get_standard(
        &self,
        actor: &Principal,
        year: i32,
        org_id: Option<Uuid>,
    ) -> Result<StandardView, AppError> {
        authorize(authz::read_standard(actor), "year", "standard")?;
        let (version, standard) =
            self.standard_for(&self.db, year)
                .await?
                .ok_or(AppError::NotFound {
                    field: "year",
                    what: "standard",
                })?;
        let unit_type = match org_id {
            None => None,
            Some(id) => {
                let org = store::find_org(&self.db, id)
                    .await?
                    .ok_or(AppError::NotFound {
                        field: "org_id",
                        what: "organization",
                    })?;
                Some(org.unit_type)
            }
        };
        let items = match &unit_type {
            Some(unit) => standard.items_for(unit),
            None => standard.items().to_vec(),
        };
        Ok(StandardView {
            year,
            version,
            standard,
            unit_type,
            items,
        })
    }

    /// `PUT /standards/{year}`: validates the whole document (every problem at once), refuses
    /// anything but added items once a declaration of that year exists, stores a new version and
    /// publishes `declarations.standard.published.v1`.
    pub async fn put_standard(
        &self,
        actor: &Principal,
        year: i32,
        document_json: &str,
    ) -> Result<StandardView, AppError> {
        authorize(authz::publish_standard(actor), "year", "standard")?;
        let new =
            Standard::parse_for_year(document_json, Format::Json, year).map_err(|problems| {
                AppError::Invalid(
                    problems
                        .into_iter()
                        .map(|p| {
                            crate::domain::Violation::new(
                                p.path,
                                format!("{} ({})", p.message, p.code),
                            )
                        })
                        .collect(),
                )
            })?;
        let document = new
            .to_json_value()
            .map_err(|e| AppError::Corrupt(format!("standard does not serialize: {e}")))?;
        let txn = self.db.begin().await?;
        store::lock_year(&txn, year).await?;
        let current = self.standard_for(&txn, year).await?;
        if let Some((_, current)) = &current
            && store::year_has_declarations(&txn, year).await?
            && let Err(problems) = current.change_only_adds_items(&new)
        {
            let first: Vec<String> = problems
                .iter()
                .take(5)
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect();
            return Err(AppError::conflict(
                "standard_in_use",
                format!(
                    "declarations of {year} exist: a new standard may only add items ({})",
                    first.join("; ")
                ),
            ));
        }
        let version = store::latest_standard_version(&txn, year).await? + 1;
        let now = self.clock.now();
        store::insert_standard(
            &txn,
            standard::Model {
                year,
                version,
                document: document.clone(),
                published_by: actor.subject.clone(),
                published_at: now,
            },
        )
        .await?;
        jifen_eventbus::stage(
            &txn,
            events::SOURCE,
            events::standard_published(year, &document, version, &actor.subject, now),
        )
        .await?;
        store::audit(
            &txn,
            self.clock.now(),
            &actor.subject,
            "standard.publish",
            ("standard", year.to_string()),
            serde_json::json!({ "version": version, "items": new.items().len() }),
            "",
        )
        .await?;
        txn.commit().await?;
        let standard = Arc::new(new);
        self.standards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(year, (version, standard.clone()));
        tracing::info!(year, version, "standard published");
        Ok(StandardView {
            year,
            version,
            items: standard.items().to_vec(),
            standard,
            unit_type: None,
        })
    }
}
