//! Exports 导出: the points ledger 积分台账 of an organization's subtree as an Excel workbook,
//! `GET /api/v1/orgs/{id}/exports/ledger.xlsx?year=` (docs/decisions/0007-ledger-export.md).
//!
//! The gateway holds nothing durable: it calls the grading service's `ExportLedger` stream with
//! the caller's token (the service decides scope: staff over the organization; a member is
//! refused) and writes what arrives, chunk by chunk, into a workbook whose worksheets are in
//! rust_xlsxwriter's constant-memory mode (each finished row goes to a temporary file). The
//! workbook is then assembled into an anonymous temporary file and streamed to the client, so
//! neither the members nor the finished file are ever held in memory at once. The writing is
//! blocking work and runs on tokio's blocking pool, fed through a bounded channel: when it falls
//! behind, the gRPC stream (and with it the service's database read) waits.
//!
//! Content, user-facing and therefore in Simplified Chinese (item codes kept as they are):
//! * 积分台账 (ledger): one row per member and item with entries in the year — 党员编号, 姓名,
//!   所在支部, 类别, 项目编码, 项目名称, 1月 … 12月 (points, one decimal), 合计 (the item's
//!   points of the year before any cap);
//! * 年度汇总 (yearly summary): one row per member — 党员编号, 姓名, 所在支部, 类别, 状态,
//!   基础分, 奖励分, 扣分, 评议分, 总分: the totals with every cap applied (RULES.md §5), the same
//!   numbers as `GET /members/{id}/ledger`.
//!
//! No personal data (phone, ID card number) goes into the workbook; the grading service does not
//! even hold it.

use crate::auth::StaffCaller;
use crate::extract::PathId;
use crate::problem::Problem;
use crate::routes::grading::{YearQuery, year_query};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::Response;
use jifen_proto::grading::v1 as pb;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use std::collections::{BTreeMap, HashMap};
use std::io::{Seek as _, SeekFrom};

/// The media type of an `.xlsx` workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Name of the ledger worksheet.
pub const LEDGER_SHEET: &str = "积分台账";
/// Name of the yearly summary worksheet.
pub const SUMMARY_SHEET: &str = "年度汇总";

/// Headers of the ledger worksheet before the months.
const LEDGER_HEAD: [&str; 6] = [
    "党员编号",
    "姓名",
    "所在支部",
    "类别",
    "项目编码",
    "项目名称",
];
/// Headers of the yearly summary worksheet.
const SUMMARY_HEAD: [&str; 10] = [
    "党员编号",
    "姓名",
    "所在支部",
    "类别",
    "状态",
    "基础分",
    "奖励分",
    "扣分",
    "评议分",
    "总分",
];

/// Chunks of members buffered between the gRPC stream and the workbook writer.
const BUFFER: usize = 2;

/// The points ledger of every member of the organization's subtree for a year, as an Excel
/// workbook (sheets 积分台账 and 年度汇总). Staff over the organization: an admin of it or of an
/// organization above it, or its secretary (a secretary of another subtree gets 404, a member
/// 403).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{id}/exports/ledger.xlsx",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The organization (a branch or above)"), YearQuery),
    responses(
        (
            status = 200,
            description = "The workbook, as an attachment `ledger-<year>.xlsx`",
            content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            body = Vec<u8>,
            headers(("content-disposition" = String, description = "attachment; filename=\"ledger-<year>.xlsx\"")),
        ),
    ),
)]
pub async fn export_ledger(
    State(state): State<AppState>,
    StaffCaller(caller): StaffCaller,
    PathId(org_id): PathId,
    uri: Uri,
) -> Result<Response, Problem> {
    let year = year_query(&uri)?;
    // Scope and the organization's existence are decided here, before anything is written.
    let mut stream = state
        .grading_as(&caller.token)?
        .export_ledger(pb::ExportLedgerRequest {
            org_id: org_id.to_string(),
            year,
        })
        .await?
        .into_inner();

    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ExportLedgerResponse>(BUFFER);
    let writer = tokio::task::spawn_blocking(move || write_workbook(rx));
    let mut streamed: Result<(), tonic::Status> = Ok(());
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok(None) => break,
            Err(status) => {
                streamed = Err(status);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| Problem::internal(&e))?;
    streamed?;
    let mut file = written.map_err(|e| Problem::internal(&e))?;

    let length = file
        .seek(SeekFrom::End(0))
        .and_then(|len| file.seek(SeekFrom::Start(0)).map(|_| len))
        .map_err(|e| Problem::internal(&e))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(XLSX));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"ledger-{year}.xlsx\""))
            .map_err(|e| Problem::internal(&e))?,
    );
    Ok(response)
}

/// Why writing the workbook failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("the workbook's temporary file: {0}")]
    Io(#[from] std::io::Error),
}

/// 正式党员 / 预备党员.
fn category_zh(code: &str) -> &str {
    match code {
        "full" => "正式党员",
        "probationary" => "预备党员",
        other => other,
    }
}

/// The member statuses of API.md in Chinese.
fn status_zh(code: &str) -> &str {
    match code {
        "active" => "正常",
        "transferred_out" => "已转出",
        "deceased" => "已故",
        "expelled" => "已开除",
        "left" => "已出党",
        other => other,
    }
}

/// Deci-points as the number a cell holds (one decimal).
fn points(tenths: i64) -> f64 {
    // i64 → f64 is exact for any sum of i32 deci-points a ledger can hold.
    tenths as f64 / 10.0
}

/// The two worksheets being written, each at its next free row.
struct Sheets {
    workbook: Workbook,
    header: Format,
    number: Format,
    ledger_row: u32,
    summary_row: u32,
}

impl Sheets {
    fn new() -> Result<Self, WriteError> {
        let mut workbook = Workbook::new();
        let header = Format::new().set_bold();
        let number = Format::new().set_num_format("0.0");
        // Constant-memory worksheets: every finished row goes to a temporary file.
        for (name, widths) in [
            (LEDGER_SHEET, &[38.0, 10.0, 20.0, 10.0, 10.0, 28.0][..]),
            (SUMMARY_SHEET, &[38.0, 10.0, 20.0, 10.0, 8.0][..]),
        ] {
            let sheet = workbook.add_worksheet_with_constant_memory()?;
            sheet.set_name(name)?;
            for (col, width) in (0u16..).zip(widths) {
                sheet.set_column_width(col, *width)?;
            }
            sheet.set_freeze_panes(1, 0)?;
        }
        let mut sheets = Self {
            workbook,
            header,
            number,
            ledger_row: 1,
            summary_row: 1,
        };
        let months: Vec<String> = (1..=12).map(|m| format!("{m}月")).collect();
        let ledger_head: Vec<&str> = LEDGER_HEAD
            .iter()
            .copied()
            .chain(months.iter().map(String::as_str))
            .chain(["合计"])
            .collect();
        sheets.write_head(0, &ledger_head)?;
        sheets.write_head(1, &SUMMARY_HEAD)?;
        Ok(sheets)
    }

    fn sheet(&mut self, index: usize) -> Result<&mut Worksheet, XlsxError> {
        self.workbook.worksheet_from_index(index)
    }

    fn write_head(&mut self, index: usize, titles: &[&str]) -> Result<(), XlsxError> {
        let header = self.header.clone();
        let sheet = self.sheet(index)?;
        for (col, title) in (0u16..).zip(titles) {
            sheet.write_string_with_format(0, col, *title, &header)?;
        }
        Ok(())
    }

    /// The columns that say who a row is about.
    fn write_who(sheet: &mut Worksheet, row: u32, m: &pb::ExportMember) -> Result<(), XlsxError> {
        let org = if m.org_name.is_empty() {
            &m.org_id
        } else {
            &m.org_name
        };
        sheet.write_string(row, 0, &m.member_id)?;
        sheet.write_string(row, 1, &m.name)?;
        sheet.write_string(row, 2, org)?;
        sheet.write_string(row, 3, category_zh(&m.category))?;
        Ok(())
    }

    /// One row per item of the member in 积分台账, one row in 年度汇总.
    fn write_member(
        &mut self,
        m: &pb::ExportMember,
        names: &HashMap<String, String>,
    ) -> Result<(), XlsxError> {
        // Item code → points per month (index 0 = January), in code order.
        let mut by_item: BTreeMap<&str, [i64; 12]> = BTreeMap::new();
        for e in &m.entries {
            let Some(month) = usize::try_from(e.month)
                .ok()
                .and_then(|m| m.checked_sub(1))
                .filter(|m| *m < 12)
            else {
                continue;
            };
            by_item.entry(e.item_code.as_str()).or_default()[month] += i64::from(e.points);
        }
        let number = self.number.clone();
        let mut row = self.ledger_row;
        let sheet = self.sheet(0)?;
        for (code, months) in &by_item {
            Self::write_who(sheet, row, m)?;
            sheet.write_string(row, 4, *code)?;
            sheet.write_string(
                row,
                5,
                names.get(*code).map(String::as_str).unwrap_or_default(),
            )?;
            for (col, tenths) in (6u16..).zip(months) {
                if *tenths != 0 {
                    sheet.write_number_with_format(row, col, points(*tenths), &number)?;
                }
            }
            sheet.write_number_with_format(row, 18, points(months.iter().sum()), &number)?;
            row += 1;
        }
        self.ledger_row = row;

        let row = self.summary_row;
        let sheet = self.sheet(1)?;
        Self::write_who(sheet, row, m)?;
        sheet.write_string(row, 4, status_zh(&m.status))?;
        for (col, tenths) in (5u16..).zip([
            m.base_points,
            m.bonus_points,
            m.deduction_points,
            m.evaluation_points,
            m.total,
        ]) {
            sheet.write_number_with_format(row, col, points(i64::from(tenths)), &number)?;
        }
        self.summary_row += 1;
        Ok(())
    }
}

/// Writes every chunk received on `chunks` into a workbook and assembles it into an anonymous
/// temporary file (removed when the file is closed), positioned anywhere.
fn write_workbook(
    mut chunks: tokio::sync::mpsc::Receiver<pb::ExportLedgerResponse>,
) -> Result<std::fs::File, WriteError> {
    let mut sheets = Sheets::new()?;
    let mut names: HashMap<String, String> = HashMap::new();
    while let Some(chunk) = chunks.blocking_recv() {
        names.extend(chunk.items.into_iter().map(|i| (i.code, i.name)));
        for member in &chunk.members {
            sheets.write_member(member, &names)?;
        }
    }
    let mut file = tempfile::tempfile()?;
    sheets.workbook.save_to_writer(&mut file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use uuid::Uuid;

    #[test]
    fn points_render_with_one_decimal() {
        assert!((points(25) - 2.5).abs() < f64::EPSILON);
        assert!((points(-20) + 2.0).abs() < f64::EPSILON);
    }

    #[test]
    fn categories_and_statuses_speak_chinese() {
        assert_eq!(category_zh("full"), "正式党员");
        assert_eq!(category_zh("probationary"), "预备党员");
        assert_eq!(status_zh("transferred_out"), "已转出");
    }

    #[test]
    fn a_workbook_is_written_from_chunks() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.try_send(pb::ExportLedgerResponse {
            year: 2026,
            items: vec![pb::ExportItem {
                code: "P01".into(),
                name: "按时参加组织生活".into(),
                category: "P".into(),
            }],
            members: vec![pb::ExportMember {
                member_id: Uuid::nil().to_string(),
                name: "张三".into(),
                org_id: Uuid::nil().to_string(),
                org_name: "第一支部".into(),
                category: "full".into(),
                status: "active".into(),
                entries: vec![pb::ExportEntry {
                    month: 3,
                    item_code: "P01".into(),
                    points: 25,
                    source: pb::EntrySource::Declaration as i32,
                }],
                base_points: 25,
                total: 25,
                ..Default::default()
            }],
        })
        .unwrap();
        drop(tx);
        let file = write_workbook(rx).unwrap();
        assert!(file.metadata().unwrap().len() > 0);
    }
}
