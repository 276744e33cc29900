//! Evidence files (证明材料): upload as `multipart/form-data` and read back.
//!
//! The upload takes one part named `file` with its content type (JPEG, PNG, GIF, WebP or PDF).
//! The gateway enforces the size limit itself (413 naming `file`) — the route's body limit is the
//! file limit plus room for the multipart envelope, instead of the global JSON body limit — and
//! forwards the bytes and the declared type; the declarations service checks that the content
//! really is of that type (400 naming `file`) and stores it under its SHA-256.

use crate::auth::PersonCaller;
use crate::convert::declarations::{Evidence, EvidenceUpload};
use crate::extract::PathParams;
use crate::problem::Problem;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use jifen_proto::declarations::v1 as pb;

/// The path of the upload (its body limit differs from every other route's).
pub const UPLOAD_PATH: &str = "/api/v1/evidence";

/// The media types accepted as evidence.
pub const ACCEPTED_TYPES: [&str; 5] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
];

/// The form field that carries the file.
const FILE_FIELD: &str = "file";

/// 413 naming `file`.
pub(crate) fn too_large(limit: usize) -> Problem {
    let message = format!("the file is larger than {limit} bytes");
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        message.clone(),
    )
    .with_field(FILE_FIELD, message)
}

fn multipart_error(error: &MultipartError, limit: usize) -> Problem {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        Problem::invalid_field("body", format!("not a readable multipart form: {error}"))
    }
}

/// The essence (`type/subtype`, lower case) of a part's declared content type.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Uploads an evidence file; answers the reference a declaration line carries in `evidence`.
#[utoipa::path(
    post,
    path = "/api/v1/evidence",
    tag = "evidence",
    security(("bearer" = [])),
    request_body(content = EvidenceUpload, content_type = "multipart/form-data"),
    responses((status = 201, description = "Stored (once per content)", body = Evidence)),
)]
pub async fn upload_evidence(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Problem> {
    let mut multipart = multipart
        .map_err(|_| Problem::unsupported_media_type("multipart/form-data; boundary=…"))?;
    let limit = state.evidence_max_bytes();
    let mut upload: Option<(String, String, Vec<u8>)> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e, limit))?
    {
        if field.name() != Some(FILE_FIELD) {
            // Other form fields are ignored (drained by the next `next_field`).
            continue;
        }
        if upload.is_some() {
            return Err(Problem::invalid_field(FILE_FIELD, "send exactly one file"));
        }
        let content_type = field.content_type().map(essence).unwrap_or_default();
        if !ACCEPTED_TYPES.contains(&content_type.as_str()) {
            return Err(Problem::invalid_field(
                FILE_FIELD,
                format!(
                    "the part's content type must be one of {}",
                    ACCEPTED_TYPES.join(", ")
                ),
            ));
        }
        let file_name = field.file_name().unwrap_or_default().to_owned();
        crate::text::check(FILE_FIELD, &file_name)?;
        let mut data = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| multipart_error(&e, limit))?
        {
            if data.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            data.extend_from_slice(&chunk);
        }
        upload = Some((content_type, file_name, data));
    }
    let Some((content_type, file_name, data)) = upload else {
        return Err(Problem::invalid_field(
            FILE_FIELD,
            "the form needs a part named `file`",
        ));
    };
    if data.is_empty() {
        return Err(Problem::invalid_field(FILE_FIELD, "the file is empty"));
    }
    let request = pb::UploadEvidenceRequest {
        content_type,
        file_name,
        data,
    };
    let evidence = state
        .declarations_as(&caller.token)?
        .upload_evidence(request)
        .await?
        .into_inner();
    Ok(crate::routes::orgs::created(
        format!("/api/v1/evidence/{}", evidence.reference),
        Evidence::from(evidence),
    ))
}

/// An evidence file, with its content type: to its uploader, to managers of the uploader's
/// organization, and to managers of an organization where a declaration line carries it;
/// everyone else gets 404.
#[utoipa::path(
    get,
    path = "/api/v1/evidence/{reference}",
    tag = "evidence",
    security(("bearer" = [])),
    params(("reference" = String, Path, description = "`sha256:<64 hex digits>`")),
    responses(
        (status = 200, description = "The file, with its stored content type", content_type = "application/octet-stream", body = String),
        (status = 304, description = "Not modified (`If-None-Match` named this file)"),
    ),
)]
pub async fn get_evidence(
    State(state): State<AppState>,
    PersonCaller(caller): PersonCaller,
    params: PathParams,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let reference = params.get("reference")?.to_owned();
    let file = state
        .declarations_as(&caller.token)?
        .get_evidence(pb::GetEvidenceRequest { reference })
        .await?
        .into_inner();
    let evidence = file.evidence.unwrap_or_default();
    // The content never changes under a reference, so the reference is a strong ETag.
    let etag = HeaderValue::try_from(format!("\"{}\"", evidence.reference)).ok();
    let not_modified = etag.as_ref().is_some_and(|tag| {
        headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    });
    let mut response = if not_modified {
        Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
    } else {
        let content_type = HeaderValue::try_from(evidence.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_DISPOSITION, "inline")
            .body(Body::from(file.data))
    }
    .map_err(|e| Problem::internal(&e))?;
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(tag) = etag {
        out.insert(header::ETAG, tag);
    }
    Ok(response)
}
