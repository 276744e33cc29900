//! What grading reads: one member's ledger entries and quarter results (the ledger, reconcile),
//! and, for grading, every member of a range of branches with their packed year, streamed in
//! path order by one statement.

use super::projection::MemberRow;
use super::{stmt, subtree_pattern};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use uuid::Uuid;

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct EntryRow {
    pub member_id: Uuid,
    pub month: i16,
    pub source: String,
    pub reference: Uuid,
    pub line: i16,
    pub item_code: String,
    pub points: i32,
    pub note: String,
}

/// One member's result of a closed round.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct QuarterRow {
    pub member_id: Uuid,
    pub round_id: Uuid,
    pub quarter: i16,
    pub closed_at: DateTime<Utc>,
    pub score: Option<i32>,
    pub ballots: i32,
    pub poor_ballots: i32,
    pub valid: bool,
    /// Sum of the rating scores in tenths; `None` for a row from before the sums were kept.
    pub score_total: Option<i64>,
}

const ENTRY_COLUMNS: &str =
    "member_id, month, source, ref AS reference, line, item_code, points, note";
const QUARTER_COLUMNS: &str =
    "member_id, round_id, quarter, closed_at, score, ballots, poor_ballots, valid, score_total";

/// The ledger entries of `year` of every member under `path`, in a stable order.
pub async fn entries_under(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<EntryRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    EntryRow::find_by_statement(stmt(
        format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE year = $1 AND member_id IN \
             (SELECT id FROM members WHERE org_path LIKE {pattern})"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// One member's ledger entries of `year`, by month, source, reference and line.
pub async fn entries_of(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<Vec<EntryRow>, DbErr> {
    EntryRow::find_by_statement(stmt(
        format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE member_id = $1 AND year = $2 \
             ORDER BY month, source, ref, line"
        ),
        [member_id.into(), year.into()],
    ))
    .all(conn)
    .await
}

/// The quarter results of `year` of the rounds of every branch under `path`.
pub async fn quarters_under(
    conn: &impl ConnectionTrait,
    path: &str,
    year: i32,
) -> Result<Vec<QuarterRow>, DbErr> {
    let pattern = subtree_pattern(path)?;
    QuarterRow::find_by_statement(stmt(
        format!(
            "SELECT {QUARTER_COLUMNS} FROM quarter_results WHERE year = $1 AND round_id IN \
             (SELECT r.id FROM rounds r JOIN organizations o ON o.id = r.org_id \
              WHERE o.path LIKE {pattern})"
        ),
        [year.into()],
    ))
    .all(conn)
    .await
}

/// One member's quarter results of `year`, by quarter and closing instant.
pub async fn quarters_of(
    conn: &impl ConnectionTrait,
    member_id: Uuid,
    year: i32,
) -> Result<Vec<QuarterRow>, DbErr> {
    QuarterRow::find_by_statement(stmt(
        format!(
            "SELECT {QUARTER_COLUMNS} FROM quarter_results WHERE member_id = $1 AND year = $2 \
             ORDER BY quarter, closed_at, round_id"
        ),
        [member_id.into(), year.into()],
    ))
    .all(conn)
    .await
}

/// A member with everything grading needs, read as one row: the ledger entries and the quarter
/// results (unpacked from `member_years`), and last year's final total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedMember {
    pub member: MemberRow,
    pub entries: Vec<AggregatedEntry>,
    pub quarters: Vec<QuarterRow>,
    pub previous_total: Option<i32>,
}

/// One ledger entry as grading reads it (the item code shared between entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedEntry {
    pub month: i16,
    pub branch: bool,
    pub item_code: std::sync::Arc<str>,
    pub points: i32,
}

/// The byte range `[first, upper)` of the member paths under the path-contiguous branches from
/// `first` to `last` (members hang only under branches, so the range from the first branch's
/// path to just past the last one's holds exactly their members): `upper` is `last` with its
/// final `/` (0x2F) raised to `0` (0x30).
fn upper_bound(last: &str) -> String {
    format!("{}0", last.strip_suffix('/').unwrap_or(last))
}

fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Custom(format!("reading grading inputs: {e}"))
}

/// Every member under the branches from path `first` to path `last` (consecutive in byte order
/// of their paths), with their entries and quarters of `year` (the `member_years` row kept beside
/// the ledger, two packed byte strings: PostgreSQL sends them as they are stored, where it would
/// send arrays element by element), **streamed** in the byte order of their paths (`USING ~<~`:
/// the path index's own order; members of one organization in no particular order), so the
/// members of one branch arrive together and the caller never holds the whole subtree.
pub fn aggregated_members<'a>(
    pool: &'a sqlx::PgPool,
    first: &str,
    last: &str,
    year: i32,
) -> impl futures::Stream<Item = Result<AggregatedMember, DbErr>> + 'a {
    aggregated_members_between(pool, first, upper_bound(last), year)
}

/// Every member of the subtree of `path` with their year, streamed in the byte order of their
/// paths, as [`aggregated_members`] reads a range of branches (the ledger export).
pub fn aggregated_members_under<'a>(
    pool: &'a sqlx::PgPool,
    path: &str,
    year: i32,
) -> impl futures::Stream<Item = Result<AggregatedMember, DbErr>> + 'a {
    // Every path under `path` starts with it, so lies in `[path, upper_bound(path))`.
    aggregated_members_between(pool, path, upper_bound(path), year)
}

fn aggregated_members_between<'a>(
    pool: &'a sqlx::PgPool,
    first: &str,
    upper: String,
    year: i32,
) -> impl futures::Stream<Item = Result<AggregatedMember, DbErr>> + 'a {
    use futures::StreamExt as _;
    // Read by position in `aggregated_member`.
    const SQL: &str = "SELECT m.id, m.org_id, m.org_path, m.name, m.category, m.status, \
         m.exempt, m.sanctions, m.version, y.entries, y.quarters, p.total AS previous_total \
         FROM members m LEFT JOIN member_years y ON y.member_id = m.id AND y.year = $1 \
         LEFT JOIN (SELECT gm.member_id, min(gm.total) AS total FROM grading_members gm \
          JOIN gradings g ON g.branch_id = gm.branch_id AND g.year = gm.year \
          WHERE g.status = 'final' AND gm.year = $1 - 1 GROUP BY gm.member_id) p \
          ON p.member_id = m.id \
         WHERE m.org_path ~>=~ $2 AND m.org_path ~<~ $3 \
         ORDER BY m.org_path USING ~<~";
    sqlx::query(SQL)
        .bind(year)
        .bind(first.to_owned())
        .bind(upper)
        .fetch(pool)
        .map({
            let mut codes = Codes::default();
            move |row| {
                row.and_then(|r| aggregated_member(&r, &mut codes))
                    .map_err(sqlx_err)
            }
        })
}

/// The item codes met so far, each kept once (a city has a few dozen), by their UTF-8 bytes: a
/// code is checked to be UTF-8 once, when first met.
#[derive(Default)]
struct Codes(foldhash::HashMap<Box<[u8]>, std::sync::Arc<str>>);

impl Codes {
    fn get(&mut self, code: &[u8]) -> Result<std::sync::Arc<str>, sqlx::Error> {
        if let Some(shared) = self.0.get(code) {
            return Ok(shared.clone());
        }
        let shared: std::sync::Arc<str> = std::str::from_utf8(code)
            .map_err(|e| sqlx::Error::Protocol(format!("an item code is not UTF-8: {e}")))?
            .into();
        self.0.insert(code.into(), shared.clone());
        Ok(shared)
    }
}

fn aggregated_member(
    r: &sqlx::postgres::PgRow,
    codes: &mut Codes,
) -> Result<AggregatedMember, sqlx::Error> {
    use sqlx::Row as _;
    let member = MemberRow {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        org_path: r.try_get(2)?,
        name: r.try_get(3)?,
        category: r.try_get(4)?,
        status: r.try_get(5)?,
        exempt: r.try_get(6)?,
        sanctions: r.try_get(7)?,
        version: r.try_get(8)?,
    };
    let entries = unpack_entries(r.try_get::<Option<&[u8]>, _>(9)?.unwrap_or_default(), codes)?;
    let quarters = unpack_quarters(
        r.try_get::<Option<&[u8]>, _>(10)?.unwrap_or_default(),
        member.id,
    )?;
    Ok(AggregatedMember {
        entries,
        quarters,
        previous_total: r.try_get(11)?,
        member,
    })
}

/// A `member_years` byte string being read from the front (integers big-endian, booleans one
/// byte): the layouts are those of the `member_year_entry` and `member_year_quarter` SQL
/// functions (migrations/src/grading).
struct Packed<'a>(&'a [u8]);

impl<'a> Packed<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], sqlx::Error> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or_else(|| sqlx::Error::Protocol("a packed member year is truncated".into()))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], sqlx::Error> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| sqlx::Error::Protocol("a packed member year is truncated".into()))?;
        self.0 = rest;
        Ok(*head)
    }

    fn bool(&mut self) -> Result<bool, sqlx::Error> {
        Ok(self.array::<1>()?[0] != 0)
    }

    fn i16(&mut self) -> Result<i16, sqlx::Error> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, sqlx::Error> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, sqlx::Error> {
        Ok(i64::from_be_bytes(self.array()?))
    }
}

/// The ledger entries packed by `member_year_entry`: month, branch, points, code length, code.
fn unpack_entries(bytes: &[u8], codes: &mut Codes) -> Result<Vec<AggregatedEntry>, sqlx::Error> {
    // 12 bytes for an entry with a three-letter code (`P01`), the usual case.
    let mut entries = Vec::with_capacity(bytes.len() / 12);
    let mut packed = Packed(bytes);
    while !packed.is_empty() {
        let month = packed.i16()?;
        let branch = packed.bool()?;
        let points = packed.i32()?;
        let len = usize::try_from(packed.i16()?)
            .map_err(|_| sqlx::Error::Protocol("a negative item code length".into()))?;
        entries.push(AggregatedEntry {
            month,
            branch,
            item_code: codes.get(packed.bytes(len)?)?,
            points,
        });
    }
    Ok(entries)
}

/// The quarter results packed by `member_year_quarter`: quarter, closing instant (µs since the
/// Unix epoch), round, score (a presence flag, then the score), ballots, poor ballots, valid,
/// score total (a presence flag, then the sum).
fn unpack_quarters(bytes: &[u8], member_id: Uuid) -> Result<Vec<QuarterRow>, sqlx::Error> {
    let mut quarters = Vec::with_capacity(bytes.len() / 49);
    let mut packed = Packed(bytes);
    while !packed.is_empty() {
        let quarter = packed.i16()?;
        let closed_at = DateTime::from_timestamp_micros(packed.i64()?)
            .ok_or_else(|| sqlx::Error::Protocol("a closing instant out of range".into()))?;
        let round_id = Uuid::from_bytes(packed.array()?);
        let scored = packed.bool()?;
        let score = packed.i32()?;
        let ballots = packed.i32()?;
        let poor_ballots = packed.i32()?;
        let valid = packed.bool()?;
        let summed = packed.bool()?;
        let score_total = packed.i64()?;
        quarters.push(QuarterRow {
            member_id,
            round_id,
            quarter,
            closed_at,
            score: scored.then_some(score),
            ballots,
            poor_ballots,
            valid,
            score_total: summed.then_some(score_total),
        });
    }
    Ok(quarters)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    #[test]
    fn packed_entries_read_back() {
        // member_year_entry(3, true, -20, 'F01') || member_year_entry(12, false, 10, 'P02')
        let bytes =
            b"\x00\x03\x01\xff\xff\xff\xec\x00\x03F01\x00\x0c\x00\x00\x00\x00\x0a\x00\x03P02";
        let mut codes = Codes::default();
        let entries = unpack_entries(bytes, &mut codes).expect("well formed");
        assert_eq!(
            entries,
            vec![
                AggregatedEntry {
                    month: 3,
                    branch: true,
                    item_code: "F01".into(),
                    points: -20,
                },
                AggregatedEntry {
                    month: 12,
                    branch: false,
                    item_code: "P02".into(),
                    points: 10,
                },
            ]
        );
        assert!(unpack_entries(&bytes[..bytes.len() - 1], &mut codes).is_err());
        assert_eq!(unpack_entries(b"", &mut codes).ok(), Some(Vec::new()));
    }

    #[test]
    fn packed_quarters_read_back() {
        let round = Uuid::from_u128(0x0192_a3b4_0000_7000_8000_0000_0000_0004);
        let member = Uuid::from_u128(7);
        let closed_at = DateTime::parse_from_rfc3339("2026-12-28T00:00:00Z")
            .expect("a valid instant")
            .with_timezone(&Utc);
        let mut bytes = Vec::new();
        for (score, valid, total) in [(Some(845_i32), true, Some(6760_i64)), (None, false, None)] {
            bytes.extend(2i16.to_be_bytes());
            bytes.extend(closed_at.timestamp_micros().to_be_bytes());
            bytes.extend(round.as_bytes());
            bytes.push(u8::from(score.is_some()));
            bytes.extend(score.unwrap_or(0).to_be_bytes());
            bytes.extend(8i32.to_be_bytes());
            bytes.extend(1i32.to_be_bytes());
            bytes.push(u8::from(valid));
            bytes.push(u8::from(total.is_some()));
            bytes.extend(total.unwrap_or(0).to_be_bytes());
        }
        assert_eq!(bytes.len(), 98);
        let quarters = unpack_quarters(&bytes, member).expect("well formed");
        let expected = |score, valid, score_total| QuarterRow {
            member_id: member,
            round_id: round,
            quarter: 2,
            closed_at,
            score,
            ballots: 8,
            poor_ballots: 1,
            valid,
            score_total,
        };
        assert_eq!(
            quarters,
            vec![
                expected(Some(845), true, Some(6760)),
                expected(None, false, None)
            ]
        );
        assert!(unpack_quarters(&bytes[..97], member).is_err());
    }
}
