//! CSV import of members, all-or-nothing per file.
//!
//! The file is `name,gender,category,joined_on,phone,id_card,org_id` (header exactly so, line 1).
//! Every row is validated — each field, the organization's existence, kind and the caller's
//! scope over it, ID card numbers duplicated within the file or already registered — and every
//! problem is reported with its line number and field. Only a file without any problem is
//! written: every member, its event and its audit row in one transaction.

use super::{AppError, Members, member_json, org_from_row};
use crate::domain::authz::{self, Decision, OrgRef};
use crate::domain::values::{parse_id, parse_past_date};
use crate::domain::{Category, Gender, IdCard, Member, Organization, PersonName, Phone};
use crate::events;
use crate::store::{self, audit::AuditEntry};
use jifen_platform::auth::Principal;
use sea_orm::TransactionTrait as _;
use std::collections::HashMap;
use uuid::Uuid;

/// The only accepted header.
pub const HEADER: [&str; 7] = [
    "name",
    "gender",
    "category",
    "joined_on",
    "phone",
    "id_card",
    "org_id",
];
/// The most data rows one file may hold.
pub const MAX_ROWS: usize = 10_000;

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// Line number in the file (the header is line 1).
    pub row: u64,
    pub field: String,
    pub message: String,
}

/// What an import did: `created` members, or nothing and every problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub created: usize,
    pub errors: Vec<ImportError>,
}

/// A row whose fields all parsed.
struct Parsed {
    line: u64,
    name: PersonName,
    gender: Gender,
    category: Category,
    joined_on: chrono::NaiveDate,
    phone: Option<Phone>,
    id_card: Option<IdCard>,
    org_id: Uuid,
}

struct Errors(Vec<ImportError>);

impl Errors {
    fn add(&mut self, row: u64, field: &str, message: impl Into<String>) {
        self.0.push(ImportError {
            row,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn check<T, E: std::fmt::Display>(
        &mut self,
        row: u64,
        field: &str,
        r: Result<T, E>,
    ) -> Option<T> {
        r.map_err(|e| self.add(row, field, e.to_string())).ok()
    }
}

/// An optional field: empty means absent.
fn optional<T, E>(text: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<Option<T>, E> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

/// Gender in a file: empty is unspecified; `男`/`女` are accepted besides the API spelling.
fn parse_gender(text: &str) -> Result<Gender, crate::domain::ValueError> {
    match text {
        "" => Ok(Gender::Unspecified),
        "男" => Ok(Gender::Male),
        "女" => Ok(Gender::Female),
        other => Gender::parse(other),
    }
}

/// Reads and parses the file; returns the parsed rows and the problems found so far.
fn parse_file(csv: &[u8], today: chrono::NaiveDate) -> Result<(Vec<Parsed>, Errors), AppError> {
    let csv = csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(csv);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv);
    let mut errors = Errors(Vec::new());
    let mut records = reader.records();
    match records.next() {
        Some(Ok(header)) if header.iter().eq(HEADER.iter().copied()) => {}
        Some(Ok(_)) | None => {
            errors.add(
                1,
                "header",
                format!("the first line must be exactly {}", HEADER.join(",")),
            );
            return Ok((Vec::new(), errors));
        }
        Some(Err(e)) => {
            errors.add(1, "header", format!("unreadable: {e}"));
            return Ok((Vec::new(), errors));
        }
    }
    let mut rows = Vec::new();
    let mut count = 0usize;
    for record in records {
        count += 1;
        if count > MAX_ROWS {
            return Err(AppError::invalid(
                "csv",
                format!("a file may hold at most {MAX_ROWS} rows"),
            ));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.add(line, "row", format!("unreadable: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != HEADER.len() {
            errors.add(
                line,
                "row",
                format!("expected {} fields, found {}", HEADER.len(), record.len()),
            );
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or_default();
        let name = errors.check(line, "name", PersonName::parse(field(0)));
        let gender = errors.check(line, "gender", parse_gender(field(1)));
        let category = errors.check(line, "category", Category::parse(field(2)));
        let joined_on = errors.check(line, "joined_on", parse_past_date(field(3), today));
        let phone = errors.check(line, "phone", optional(field(4), Phone::parse));
        let id_card = errors.check(line, "id_card", optional(field(5), IdCard::parse));
        let org_id = errors.check(line, "org_id", parse_id(field(6)));
        if let (
            Some(name),
            Some(gender),
            Some(category),
            Some(joined_on),
            Some(phone),
            Some(id_card),
            Some(org_id),
        ) = (name, gender, category, joined_on, phone, id_card, org_id)
        {
            rows.push(Parsed {
                line,
                name,
                gender,
                category,
                joined_on,
                phone,
                id_card,
                org_id,
            });
        }
    }
    Ok((rows, errors))
}

impl Members {
    /// Imports a CSV file of members (admin or secretary over each row's organization).
    #[tracing::instrument(skip_all, fields(bytes = csv.len()))]
    pub async fn import_members(
        &self,
        actor: &Principal,
        csv: &[u8],
    ) -> Result<ImportOutcome, AppError> {
        if !authz::may_import(actor) {
            return Err(AppError::Denied);
        }
        let (rows, mut errors) = parse_file(csv, super::today())?;

        // Organizations: existence, scope, kind.
        let mut org_ids: Vec<Uuid> = rows.iter().map(|r| r.org_id).collect();
        org_ids.sort();
        org_ids.dedup();
        let own = self.own_org(&self.db, actor).await?;
        let orgs: HashMap<Uuid, Organization> = store::orgs::find_many(&self.db, &org_ids)
            .await?
            .iter()
            .map(|o| org_from_row(o).map(|o| (o.id, o)))
            .collect::<Result<_, _>>()?;

        // ID cards: duplicates within the file, then in the database.
        // Each card's hashes under every key (the current one first): a card registered before
        // a key rotation, and not rewritten yet, is still taken.
        let hashes: Vec<Option<Vec<Vec<u8>>>> = rows
            .iter()
            .map(|r| r.id_card.as_ref().map(|c| self.id_card_hashes(c)))
            .collect();
        let all_hashes: Vec<Vec<u8>> = hashes.iter().flatten().flatten().cloned().collect();
        let taken = store::members::taken_id_card_hashes(&self.db, &all_hashes).await?;
        let mut first_line: HashMap<&[u8], u64> = HashMap::new();

        let mut members = Vec::with_capacity(rows.len());
        for (row, card_hashes) in rows.iter().zip(&hashes) {
            let org = match orgs.get(&row.org_id) {
                None => None,
                Some(org) => match authz::create_member(
                    actor,
                    OrgRef {
                        id: org.id,
                        path: &org.path,
                    },
                    own,
                ) {
                    Decision::Allow => Some(org),
                    Decision::Deny => {
                        errors.add(
                            row.line,
                            "org_id",
                            "you may not add members to this organization",
                        );
                        continue;
                    }
                    Decision::Hide => None,
                },
            };
            let Some(org) = org else {
                errors.add(row.line, "org_id", "organization not found");
                continue;
            };
            let mut ok = true;
            if let Some(card_hashes) = card_hashes
                && let Some(hash) = card_hashes.first()
            {
                if let Some(first) = first_line.get(hash.as_slice()) {
                    errors.add(
                        row.line,
                        "id_card",
                        format!("the same ID card number is on line {first}"),
                    );
                    ok = false;
                } else {
                    first_line.insert(hash.as_slice(), row.line);
                    if card_hashes.iter().any(|h| taken.contains(h)) {
                        errors.add(
                            row.line,
                            "id_card",
                            "this ID card number is already registered (id_card_taken)",
                        );
                        ok = false;
                    }
                }
            }
            match Member::new(
                Uuid::now_v7(),
                org.id,
                org.path.clone(),
                org.kind,
                row.name.clone(),
                row.gender,
                row.category,
                row.joined_on,
                Vec::new(),
                row.phone.clone(),
                row.id_card.clone(),
            ) {
                Ok(m) if ok => members.push(m),
                Ok(_) => {}
                Err(rule) => errors.add(row.line, "org_id", rule.to_string()),
            }
        }

        if !errors.0.is_empty() {
            let mut errors = errors.0;
            errors.sort_by_key(|e| e.row);
            metrics::counter!("jifen_members_imports_total", "outcome" => "rejected").increment(1);
            return Ok(ImportOutcome { created: 0, errors });
        }

        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let member_rows = members
            .iter()
            .map(|m| self.member_to_row(m, now, now))
            .collect::<Result<Vec<_>, _>>()?;
        store::members::insert_many(&txn, member_rows)
            .await
            .map_err(super::members::map_unique)?;
        for m in &members {
            jifen_eventbus::stage(
                &txn,
                events::SOURCE,
                events::member_changed(events::MEMBER_CREATED, m, &[], None),
            )
            .await?;
        }
        let audit = members
            .iter()
            .map(|m| AuditEntry {
                actor: actor.subject.clone(),
                action: "member.import",
                subject_type: "member",
                subject_id: m.id.to_string(),
                before: None,
                after: Some(member_json(m)),
                detail: None,
                reason: None,
            })
            .collect();
        store::audit::record_many(&txn, audit).await?;
        txn.commit().await?;
        let created = members.len();
        metrics::counter!("jifen_members_imports_total", "outcome" => "imported").increment(1);
        metrics::counter!("jifen_members_created_total", "via" => "import")
            .increment(created as u64);
        tracing::info!(created, "members imported");
        Ok(ImportOutcome {
            created,
            errors: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    #[test]
    fn header_must_match_exactly() {
        let (rows, errors) = parse_file(b"name,gender,category\n", today()).unwrap();
        assert!(rows.is_empty());
        assert_eq!(errors.0.len(), 1);
        assert_eq!((errors.0[0].row, errors.0[0].field.as_str()), (1, "header"));
        let (_, errors) = parse_file(b"", today()).unwrap();
        assert_eq!(errors.0[0].field, "header");
    }

    #[test]
    fn every_bad_field_of_every_row_is_reported_with_its_line() {
        let org = Uuid::now_v7();
        let csv = format!(
            "\u{feff}name,gender,category,joined_on,phone,id_card,org_id\n\
             张三,male,full,2001-07-01,13812345678,11010519491231002X,{org}\n\
             ,robot,full,2001-07-01,,,{org}\n\
             李四,,probationary,2999-01-01,123,,not-a-uuid\n\
             too,few\n"
        );
        let (rows, errors) = parse_file(csv.as_bytes(), today()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        let got: Vec<(u64, &str)> = errors.0.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "name"),
                (3, "gender"),
                (4, "joined_on"),
                (4, "phone"),
                (4, "org_id"),
                (5, "row")
            ]
        );
    }

    #[test]
    fn too_many_rows_are_refused_whole() {
        let mut csv = String::from("name,gender,category,joined_on,phone,id_card,org_id\n");
        for _ in 0..=MAX_ROWS {
            csv.push_str("a,,full,2001-01-01,,,x\n");
        }
        assert!(matches!(
            parse_file(csv.as_bytes(), today()),
            Err(AppError::Invalid(_))
        ));
    }
}
