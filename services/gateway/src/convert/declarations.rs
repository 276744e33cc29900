//! The public JSON shapes of API.md's "The standard" and "Monthly declarations" sections, and
//! their conversion to and from `jifen.declarations.v1`.
//!
//! Points travel between services as deci-points (`i32` tenths); in JSON they are [`Points`]:
//! numbers with at most one decimal (`25` ↔ `2.5`, `20` ↔ `2`). A request number with more than
//! one decimal is refused, naming its field. Empty strings from the service (absent optional
//! values) are left out of the JSON; a never-saved draft has `"id": null`.

use super::UnitType;
use jifen_proto::declarations::v1 as pb;
use jifen_proto::events::v1 as ev;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

/// Points as a JSON number with at most one decimal; holds deci-points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(pub i32);

/// The largest magnitude of points a request may carry (far beyond any item's).
const MAX_POINTS_TENTHS: f64 = 1_000_000.0;

impl Points {
    /// Deci-points from a decimal number, refusing more than one decimal.
    pub fn from_decimal(value: f64) -> Result<Self, &'static str> {
        if !value.is_finite() {
            return Err("must be a number");
        }
        let tenths = value * 10.0;
        let rounded = tenths.round();
        if (tenths - rounded).abs() > 1e-6 {
            return Err("points have at most one decimal (e.g. 2.5)");
        }
        if rounded.abs() > MAX_POINTS_TENTHS {
            return Err("out of range");
        }
        // |rounded| ≤ 1e6 fits an i32 exactly.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self(rounded as i32))
    }
}

impl Serialize for Points {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 10 == 0 {
            s.serialize_i32(self.0 / 10)
        } else {
            s.serialize_f64(f64::from(self.0) / 10.0)
        }
    }
}

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(d)?;
        Self::from_decimal(value).map_err(serde::de::Error::custom)
    }
}

/// An empty string from a service as `None`.
fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

// ---------------------------------------------------------------------------------------------
// The standard

/// Kind of a standard item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// 基础分
    Base,
    /// 奖励分
    Bonus,
    /// 扣分
    Deduction,
    /// 一票否决
    Veto,
}

impl ItemKind {
    pub fn from_proto(value: i32) -> Option<Self> {
        match ev::ItemKind::try_from(value).ok()? {
            ev::ItemKind::Base => Some(Self::Base),
            ev::ItemKind::Bonus => Some(Self::Bonus),
            ev::ItemKind::Deduction => Some(Self::Deduction),
            ev::ItemKind::Veto => Some(Self::Veto),
            ev::ItemKind::Unspecified => None,
        }
    }
}

/// Who puts an item's points on the books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredBy {
    /// The member declares it; the branch reviews it.
    Member,
    /// The branch records it.
    Branch,
}

impl DeclaredBy {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Self::Member),
            "branch" => Some(Self::Branch),
            _ => None,
        }
    }
}

/// One item of the standard. Points and caps are per unit of quantity and in points.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StandardItem {
    #[schema(example = "P02")]
    pub code: String,
    #[schema(example = "P")]
    pub category: String,
    pub name: String,
    pub kind: Option<ItemKind>,
    #[schema(value_type = f64, example = 1)]
    pub points: Points,
    #[schema(example = "次")]
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub monthly_cap: Option<Points>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub yearly_cap: Option<Points>,
    pub evidence_required: bool,
    pub declared_by: Option<DeclaredBy>,
    /// English name (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// The best grade a member with such an entry can get in the year (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "basically_qualified")]
    pub grade_cap: Option<String>,
}

impl From<pb::StandardItem> for StandardItem {
    fn from(i: pb::StandardItem) -> Self {
        Self {
            code: i.code,
            category: i.category,
            name: i.name,
            kind: ItemKind::from_proto(i.kind),
            points: Points(i.points),
            unit: i.unit,
            monthly_cap: i.monthly_cap.map(Points),
            yearly_cap: i.yearly_cap.map(Points),
            evidence_required: i.evidence_required,
            declared_by: DeclaredBy::parse(&i.declared_by),
            name_en: non_empty(i.name_en),
            grade_cap: non_empty(i.grade_cap),
        }
    }
}

/// A category of the standard (extension): what an item's `category` code stands for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StandardCategory {
    #[schema(example = "P")]
    pub code: String,
    #[schema(example = "讲政治、有信念")]
    pub name: String,
    /// `base`, `bonus`, `deduction` or `veto`.
    pub kind: Option<ItemKind>,
    /// The most points the category's items count for in a year (base categories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub cap: Option<Points>,
}

impl StandardCategory {
    /// The `categories` of a stored document (RULES.md §1 keys); none when it has none.
    fn of_document(document: &str) -> Vec<Self> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            categories: Vec<StandardCategory>,
        }
        serde_json::from_str::<Document>(document)
            .map(|d| d.categories)
            .unwrap_or_default()
    }
}

/// The standard of a year (积分标准).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Standard {
    pub year: i32,
    /// Published version; 0 for the shipped default never published through the API.
    pub version: i64,
    /// The unit type whose overlay `items` reflect (when `org_id` was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_type: Option<UnitType>,
    /// The items in force.
    pub items: Vec<StandardItem>,
    /// The categories the items' `category` codes name, with their names and caps (extension).
    #[serde(default)]
    pub categories: Vec<StandardCategory>,
    /// The whole stored document (RULES.md §1 keys); in the answer of `PUT` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub document: Option<serde_json::Value>,
}

impl Standard {
    /// The answer of `GET`: without the document.
    pub fn from_proto(s: pb::Standard) -> Self {
        let unit_type = non_empty(s.unit_type)
            .and_then(|u| serde_json::from_value(serde_json::Value::String(u)).ok());
        Self {
            year: s.year,
            version: s.version,
            unit_type,
            categories: StandardCategory::of_document(&s.document_json),
            items: s.items.into_iter().map(StandardItem::from).collect(),
            document: None,
        }
    }

    /// The answer of `PUT`: with the stored document.
    pub fn with_document(s: pb::Standard) -> Self {
        let document = serde_json::from_str(&s.document_json).ok();
        Self {
            document,
            ..Self::from_proto(s)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Declarations

/// Status of a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclarationStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Returned,
}

impl DeclarationStatus {
    pub fn from_proto(value: i32) -> Option<Self> {
        match ev::DeclarationStatus::try_from(value).ok()? {
            ev::DeclarationStatus::Draft => Some(Self::Draft),
            ev::DeclarationStatus::Submitted => Some(Self::Submitted),
            ev::DeclarationStatus::Approved => Some(Self::Approved),
            ev::DeclarationStatus::Rejected => Some(Self::Rejected),
            ev::DeclarationStatus::Returned => Some(Self::Returned),
            ev::DeclarationStatus::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> i32 {
        let status = match self {
            Self::Draft => ev::DeclarationStatus::Draft,
            Self::Submitted => ev::DeclarationStatus::Submitted,
            Self::Approved => ev::DeclarationStatus::Approved,
            Self::Rejected => ev::DeclarationStatus::Rejected,
            Self::Returned => ev::DeclarationStatus::Returned,
        };
        status as i32
    }

    /// The API name (`submitted`), or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

/// Who put a line on the declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineSource {
    /// Declared by the member.
    Member,
    /// Recorded by the branch for the same month (read-only here).
    Branch,
}

impl LineSource {
    fn from_proto(value: i32) -> Option<Self> {
        match pb::LineSource::try_from(value).ok()? {
            pb::LineSource::Member => Some(Self::Member),
            pb::LineSource::Branch => Some(Self::Branch),
            pb::LineSource::Unspecified => None,
        }
    }
}

/// One line of a declaration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeclarationLine {
    pub line_id: String,
    pub item_code: String,
    /// The item's name in the standard (extension; absent on branch lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    pub quantity: i32,
    #[schema(value_type = f64, example = 2.5)]
    pub claimed_points: Points,
    /// Set by approval (branch lines: always their points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub approved_points: Option<Points>,
    pub note: String,
    /// Evidence references (`sha256:<hex>`, from `POST /api/v1/evidence`).
    pub evidence: Vec<String>,
    pub source: Option<LineSource>,
    /// Why the reviewer lowered the line (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjust_reason: Option<String>,
}

impl From<pb::DeclarationLine> for DeclarationLine {
    fn from(l: pb::DeclarationLine) -> Self {
        Self {
            line_id: l.line_id,
            item_code: l.item_code,
            item_name: non_empty(l.item_name),
            quantity: l.quantity,
            claimed_points: Points(l.claimed_points),
            approved_points: l.approved_points.map(Points),
            note: l.note,
            evidence: l.evidence,
            source: LineSource::from_proto(l.source),
            adjust_reason: non_empty(l.adjust_reason),
        }
    }
}

/// A member's declaration of a month (月度申报), with the branch's records of the month as
/// lines of `source: "branch"`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Declaration {
    /// `null` for the empty draft of a month the member has not saved yet.
    pub id: Option<String>,
    pub member_id: String,
    pub org_id: String,
    #[schema(example = "2026-03")]
    pub month: String,
    pub status: Option<DeclarationStatus>,
    pub lines: Vec<DeclarationLine>,
    /// Sum of the member's lines' claimed points.
    #[schema(value_type = f64)]
    pub claimed_total: Points,
    /// Sum of the approved points, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub approved_total: Option<Points>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<String>,
    /// The reviewer's account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_id: Option<String>,
    /// 0 for a never-saved draft.
    pub version: i64,
    /// The reviewer's comment on a rejected or returned declaration (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Until when the member may still change and submit it, RFC 3339 (extension; absent when
    /// the month is closed to them or the declaration is handed in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
}

impl From<pb::Declaration> for Declaration {
    fn from(d: pb::Declaration) -> Self {
        Self {
            id: non_empty(d.id),
            member_id: d.member_id,
            org_id: d.org_id,
            month: d.month,
            status: DeclarationStatus::from_proto(d.status),
            lines: d.lines.into_iter().map(DeclarationLine::from).collect(),
            claimed_total: Points(d.claimed_total),
            approved_total: d.approved_total.map(Points),
            submitted_at: non_empty(d.submitted_at),
            reviewed_at: non_empty(d.reviewed_at),
            reviewer_id: non_empty(d.reviewer_id),
            version: d.version,
            comment: non_empty(d.comment),
            open_until: non_empty(d.open_until),
        }
    }
}

/// A page of declarations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeclarationList {
    pub items: Vec<Declaration>,
    /// Empty at the end.
    pub next_page_token: String,
}

/// One line the member declares.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LineInput {
    #[schema(example = "P02")]
    pub item_code: String,
    #[schema(example = 1)]
    pub quantity: i32,
    #[serde(default)]
    pub note: Option<String>,
    /// References from `POST /api/v1/evidence`; required by items with `evidence_required`.
    #[serde(default)]
    pub evidence: Option<Vec<String>>,
}

/// `PUT /api/v1/members/{id}/declarations/{month}`: the draft's lines (replacing the old ones).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SaveDeclaration {
    pub lines: Vec<LineInput>,
}

impl SaveDeclaration {
    pub fn into_proto(self, member_id: Uuid, month: String) -> pb::SaveDeclarationRequest {
        pb::SaveDeclarationRequest {
            member_id: member_id.to_string(),
            month,
            lines: self
                .lines
                .into_iter()
                .map(|l| pb::LineInput {
                    item_code: l.item_code,
                    quantity: l.quantity,
                    note: l.note.unwrap_or_default(),
                    evidence: l.evidence.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// The reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// 通过: every line gets its claimed points unless `lines` lowers it.
    Approve,
    /// 不通过 (final), with a comment.
    Reject,
    /// 退回 for the member to change and submit again, with a comment.
    Return,
}

impl ReviewDecision {
    fn to_proto(self) -> i32 {
        let decision = match self {
            Self::Approve => pb::ReviewDecision::Approve,
            Self::Reject => pb::ReviewDecision::Reject,
            Self::Return => pb::ReviewDecision::Return,
        };
        decision as i32
    }
}

/// A line whose approved points differ from the claimed points.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LineAdjustment {
    pub line_id: Uuid,
    /// Between 0 and the claimed points, at most one decimal.
    #[schema(value_type = f64, example = 1.5)]
    pub approved_points: Points,
    /// Required when the points are lowered.
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/declarations/{id}:review`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewDeclaration {
    pub decision: ReviewDecision,
    #[serde(default)]
    pub lines: Option<Vec<LineAdjustment>>,
    /// Required to reject or return.
    #[serde(default)]
    pub comment: Option<String>,
}

impl ReviewDeclaration {
    pub fn into_proto(self, id: Uuid) -> pb::ReviewDeclarationRequest {
        pb::ReviewDeclarationRequest {
            id: id.to_string(),
            decision: self.decision.to_proto(),
            lines: self
                .lines
                .unwrap_or_default()
                .into_iter()
                .map(|l| pb::LineAdjustment {
                    line_id: l.line_id.to_string(),
                    approved_points: l.approved_points.0,
                    reason: l.reason,
                })
                .collect(),
            comment: self.comment.unwrap_or_default(),
        }
    }
}

/// `POST /api/v1/orgs/{id}/declarations:batch-approve`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchApprove {
    #[schema(example = "2026-03")]
    pub month: String,
    pub declaration_ids: Vec<Uuid>,
}

/// A declaration batch approval left alone, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Skipped {
    pub id: String,
    /// `not_found`, `not_submitted`, `wrong_month`, `own_declaration` or `grading_final`.
    pub reason: String,
}

/// The answer of a batch approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchApproveResult {
    pub approved: i32,
    pub skipped: Vec<Skipped>,
}

impl From<pb::BatchApproveResponse> for BatchApproveResult {
    fn from(r: pb::BatchApproveResponse) -> Self {
        Self {
            approved: r.approved,
            skipped: r
                .skipped
                .into_iter()
                .map(|s| Skipped {
                    id: s.id,
                    reason: s.reason,
                })
                .collect(),
        }
    }
}

/// One transition of a declaration (痕迹管理).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// RFC 3339.
    pub at: String,
    /// The account id of who made it.
    pub actor_id: String,
    pub actor_name: String,
    /// `null` when the declaration was created.
    pub from: Option<DeclarationStatus>,
    pub to: Option<DeclarationStatus>,
    /// The comment, the lowered lines' reasons, or what happened (`submitted`).
    pub reason: String,
    /// The declaration's version after the transition.
    pub version: i64,
}

/// `GET /api/v1/declarations/{id}/history`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeclarationHistory {
    pub declaration_id: String,
    pub items: Vec<Transition>,
}

impl From<pb::DeclarationHistory> for DeclarationHistory {
    fn from(h: pb::DeclarationHistory) -> Self {
        Self {
            declaration_id: h.declaration_id,
            items: h
                .transitions
                .into_iter()
                .map(|t| Transition {
                    at: t.at,
                    actor_id: t.actor_id,
                    actor_name: t.actor_name,
                    from: DeclarationStatus::parse(&t.from_status),
                    to: DeclarationStatus::parse(&t.to_status),
                    reason: t.reason,
                    version: t.version,
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Branch records and reopening

/// One entry the branch records.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchEntry {
    pub member_id: Uuid,
    #[schema(example = "P01")]
    pub item_code: String,
    #[schema(example = 1)]
    pub quantity: i32,
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/v1/orgs/{id}/branch-records`: every entry or none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordBranchEntries {
    #[schema(example = "2026-03")]
    pub month: String,
    pub entries: Vec<BranchEntry>,
}

impl RecordBranchEntries {
    pub fn into_proto(self, org_id: Uuid) -> pb::RecordBranchEntriesRequest {
        pb::RecordBranchEntriesRequest {
            org_id: org_id.to_string(),
            month: self.month,
            entries: self
                .entries
                .into_iter()
                .map(|e| pb::BranchEntry {
                    member_id: e.member_id.to_string(),
                    item_code: e.item_code,
                    quantity: e.quantity,
                    note: e.note.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// A branch-recorded line (支部记录).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchRecord {
    pub id: String,
    pub member_id: String,
    pub org_id: String,
    pub month: String,
    pub item_code: String,
    pub quantity: i32,
    /// Quantity × the item's points (0 for a veto).
    #[schema(value_type = f64)]
    pub points: Points,
    pub note: String,
    /// The account id of who recorded it.
    pub recorded_by: String,
    /// RFC 3339.
    pub recorded_at: String,
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_reason: Option<String>,
    pub version: i64,
}

impl From<pb::BranchRecord> for BranchRecord {
    fn from(r: pb::BranchRecord) -> Self {
        Self {
            id: r.id,
            member_id: r.member_id,
            org_id: r.org_id,
            month: r.month,
            item_code: r.item_code,
            quantity: r.quantity,
            points: Points(r.points),
            note: r.note,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at,
            revoked: r.revoked,
            revoked_at: non_empty(r.revoked_at),
            revoke_reason: non_empty(r.revoke_reason),
            version: r.version,
        }
    }
}

/// The answer of a recording.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchRecords {
    pub records: Vec<BranchRecord>,
}

/// A page of branch records.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchRecordList {
    pub items: Vec<BranchRecord>,
    /// Empty at the end.
    pub next_page_token: String,
}

/// `POST /api/v1/branch-records/{id}:revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevokeBranchRecord {
    pub reason: String,
}

/// `POST /api/v1/orgs/{id}/periods/{month}:reopen` (补报).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReopenPeriod {
    /// RFC 3339 instant, in the future, at most 31 days ahead.
    #[schema(example = "2026-03-10T16:00:00Z")]
    pub until: String,
    pub reason: String,
}

/// A reopened month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reopening {
    pub id: String,
    pub org_id: String,
    pub month: String,
    /// RFC 3339.
    pub until: String,
    pub reason: String,
    /// The account id of who reopened it.
    pub reopened_by: String,
    /// RFC 3339.
    pub reopened_at: String,
}

impl From<pb::Reopening> for Reopening {
    fn from(r: pb::Reopening) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            month: r.month,
            until: r.until,
            reason: r.reason,
            reopened_by: r.reopened_by,
            reopened_at: r.reopened_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evidence

/// A stored evidence file (证明材料).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// `sha256:<64 hex digits>`: what a declaration line carries in `evidence`.
    #[schema(example = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub reference: String,
    #[schema(example = "image/png")]
    pub content_type: String,
    /// Bytes.
    pub size: i64,
}

impl From<pb::Evidence> for Evidence {
    fn from(e: pb::Evidence) -> Self {
        Self {
            reference: e.reference,
            content_type: e.content_type,
            size: e.size,
        }
    }
}

/// The multipart form of `POST /api/v1/evidence` (documentation only).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EvidenceUpload {
    /// The file, with its content type: image/jpeg, image/png, image/gif, image/webp or
    /// application/pdf.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn points_print_with_at_most_one_decimal() {
        let cases = [
            (25, "2.5"),
            (20, "2"),
            (5, "0.5"),
            (-30, "-3"),
            (-5, "-0.5"),
            (0, "0"),
        ];
        for (tenths, text) in cases {
            assert_eq!(serde_json::to_string(&Points(tenths)).unwrap(), text);
        }
    }

    #[test]
    fn points_parse_with_at_most_one_decimal() {
        let ok = [
            (json!(2.5), 25),
            (json!(2), 20),
            (json!(0.1), 1),
            (json!(-1.5), -15),
        ];
        for (value, tenths) in ok {
            assert_eq!(
                serde_json::from_value::<Points>(value).unwrap(),
                Points(tenths)
            );
        }
        for bad in [json!(2.55), json!(0.05), json!("2"), json!(1e12)] {
            assert!(
                serde_json::from_value::<Points>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unsaved_draft_has_a_null_id_and_no_absent_fields() {
        let d = Declaration::from(pb::Declaration {
            member_id: "m".into(),
            month: "2026-03".into(),
            status: ev::DeclarationStatus::Draft as i32,
            ..Default::default()
        });
        let json = serde_json::to_value(&d).unwrap();
        assert!(json["id"].is_null());
        assert_eq!(json["status"], "draft");
        assert_eq!(json["claimed_total"], 0);
        for absent in [
            "approved_total",
            "submitted_at",
            "reviewed_at",
            "reviewer_id",
            "comment",
        ] {
            assert!(json.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn history_marks_creation_with_a_null_from() {
        let h = DeclarationHistory::from(pb::DeclarationHistory {
            declaration_id: "d".into(),
            transitions: vec![pb::Transition {
                from_status: String::new(),
                to_status: "draft".into(),
                ..Default::default()
            }],
        });
        let json = serde_json::to_value(&h).unwrap();
        assert!(json["items"][0]["from"].is_null());
        assert_eq!(json["items"][0]["to"], "draft");
    }
}
