//! Every error the gateway answers, as RFC 9457 `application/problem+json`.
//!
//! This module is the one place where a gRPC `Status` becomes an HTTP status
//! (docs/decisions/0001-errors.md) and where the gateway's own rejections (bad JSON, bad path or
//! query parameters, wrong content type, oversized body) get their machine code and field names.
//! Invariant: a [`Problem`] always renders as problem+json with a Chinese `title`, an English
//! machine `code` and `errors: [{field, message}]` (possibly empty); 5xx details are opaque.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tonic::Code;
use utoipa::ToSchema;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One offending field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field: a JSON path (`lines[0].item_code`), a path or query parameter (`id`,
    /// `page_size`), a header (`content-type`), or `body` for the request as a whole.
    pub field: String,
    pub message: String,
}

/// The RFC 9457 body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProblemBody {
    /// `urn:jifen:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short Simplified Chinese summary of the status (e.g. 请求参数无效).
    pub title: String,
    pub status: u16,
    /// A human-readable explanation of this occurrence.
    pub detail: String,
    /// The machine code, stable for clients (docs/api-errors.md).
    pub code: String,
    pub errors: Vec<FieldError>,
}

/// An error answer under construction.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Seconds for `retry-after` (429).
    pub retry_after: Option<u64>,
    /// Extra headers (e.g. `allow` on 405).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// The Simplified Chinese title of a status.
pub fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "请求参数无效",
        401 => "未认证",
        403 => "无权访问",
        404 => "资源不存在",
        405 => "请求方法不被允许",
        406 => "无法提供所需的表示",
        408 => "请求超时",
        409 => "状态冲突",
        413 => "请求体过大",
        415 => "不支持的媒体类型",
        422 => "违反业务规则",
        429 => "请求过于频繁",
        503 | 504 => "服务暂不可用",
        s if s >= 500 => "服务器内部错误",
        _ => "请求错误",
    }
}

/// The machine code used for a status when nothing more specific is known.
pub fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_argument",
        401 => "unauthenticated",
        403 => "permission_denied",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "rule_violation",
        429 => "rate_limited",
        503 | 504 => "unavailable",
        _ => "internal",
    }
}

impl Problem {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// A problem with the default code of `status`.
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::new(status, default_code(status), detail)
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 `invalid_argument` naming one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            format!("{field}: {message}"),
        )
        .with_field(field, message)
    }

    /// 400 `malformed_json`.
    pub fn malformed_json(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {message}"),
        )
        .with_field(field, message)
    }

    /// 415 naming `content-type`.
    pub fn unsupported_media_type(expected: &str) -> Self {
        let message = format!("expected content-type {expected}");
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message.clone(),
        )
        .with_field("content-type", message)
    }

    /// 413 naming `body`.
    pub fn payload_too_large(limit: usize) -> Self {
        let message = format!("the body is larger than {limit} bytes");
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            message.clone(),
        )
        .with_field("body", message)
    }

    pub fn unauthenticated(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_denied", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 404 for an AIP custom method a resource does not have: `verb` is the method named in
    /// the path (`None`: none was), `resource` what the path names ("a declaration"), `known` the
    /// methods it has (":submit or :review").
    pub fn unknown_method(verb: Option<&str>, resource: &str, known: &str) -> Self {
        match verb {
            Some(other) => Self::not_found(format!("unknown method :{other} on {resource}")),
            None => Self::not_found(format!("use a custom method on {resource}: {known}")),
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// An internal error: logged once with its cause chain, answered opaquely.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let chain = jifen_platform::grpc::error_chain(error);
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("urn:jifen:problem:{}", self.code),
            title: title(self.status).to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// THE mapping from a service's gRPC status to HTTP (docs/decisions/0001-errors.md).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // CANCELLED is what tonic's client gives when the channel's own timeout expires
        // (`tonic::TimeoutExpired`): the service did not answer in time, as for DEADLINE_EXCEEDED.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The machine code derived from a gRPC code when the status carries no `ErrorInfo`.
fn grpc_code_name(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument => "invalid_argument",
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission_denied",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::Aborted => "aborted",
        Code::FailedPrecondition => "failed_precondition",
        Code::OutOfRange => "out_of_range",
        Code::ResourceExhausted => "resource_exhausted",
        Code::Unavailable => "unavailable",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::Cancelled => "cancelled",
        _ => "internal",
    }
}

impl From<tonic::Status> for Problem {
    fn from(status: tonic::Status) -> Self {
        let http = http_status(status.code());
        if http.is_server_error() {
            // Dependency failures and internal errors are logged here once and answered
            // opaquely: their messages may name hosts or carry internals.
            if http == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(grpc.code = ?status.code(), grpc.message = %status.message(), "a service is unavailable");
                return Self::new(
                    http,
                    grpc_code_name(status.code()),
                    "a dependency is unavailable; retry later",
                );
            }
            tracing::error!(grpc.code = ?status.code(), grpc.message = %status.message(), "a service failed");
            return Self::new(http, "internal", "internal error");
        }
        let (reason, fields) = jifen_platform::grpc::status_details(&status);
        let code = reason
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| grpc_code_name(status.code()).to_owned());
        let mut problem = Self::new(http, code, status.message());
        problem.errors = fields
            .into_iter()
            .map(|(field, message)| FieldError { field, message })
            .collect();
        problem
    }
}

/// Middleware: any error answer that is not problem+json yet (axum's 405, a layer's 413 or 408,
/// an extractor rejection) is rewritten as one, keeping its status and its other headers.
pub async fn ensure_problem(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this resource".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "the body is too large".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut problem = Problem::from_status(status, detail);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        problem = problem.with_field("body", "the body is too large");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut fresh = problem.into_response();
    for (name, value) in fresh.headers_mut().drain() {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    Response::from_parts(parts, std::mem::take(fresh.body_mut()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jifen_platform::grpc::{failure, failure_with_fields, invalid_argument};

    #[test]
    fn grpc_codes_map_as_decided() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::FailedPrecondition, 409),
            (Code::OutOfRange, 422),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 503),
            (Code::Cancelled, 503),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
        ];
        for (code, http) in cases {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn details_become_code_and_fields() {
        let p = Problem::from(invalid_argument([
            ("name", "must not be empty"),
            ("kind", "unknown"),
        ]));
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert_eq!(p.code, "invalid_argument");
        assert_eq!(p.errors.len(), 2);
        assert_eq!(
            p.errors[1],
            FieldError {
                field: "kind".into(),
                message: "unknown".into()
            }
        );

        let p = Problem::from(failure(Code::FailedPrecondition, "username_taken", "taken"));
        assert_eq!(
            (p.status.as_u16(), p.code.as_str()),
            (409, "username_taken")
        );

        let p = Problem::from(failure_with_fields(
            Code::OutOfRange,
            "over_cap",
            "cap",
            [("quantity", "over")],
        ));
        assert_eq!(
            (p.status.as_u16(), p.code.as_str(), p.errors.len()),
            (422, "over_cap", 1)
        );

        let p = Problem::from(tonic::Status::not_found("no such member"));
        assert_eq!((p.status.as_u16(), p.code.as_str()), (404, "not_found"));
    }

    #[test]
    fn server_errors_are_opaque() {
        let p = Problem::from(tonic::Status::internal("db password is hunter2"));
        assert_eq!(
            (p.status.as_u16(), p.code.as_str(), p.detail.as_str()),
            (500, "internal", "internal error")
        );
        let p = Problem::from(tonic::Status::unavailable("tcp connect error 10.0.0.3"));
        assert_eq!(p.status.as_u16(), 503);
        assert!(!p.detail.contains("10.0.0.3"));
    }

    #[test]
    fn a_service_that_does_not_answer_in_time_is_unavailable_not_an_internal_error() {
        // Exactly what tonic's client makes of its channel timeout (clients.rs: 15 s).
        let status = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        let p = Problem::from(status);
        assert_eq!(
            (p.status.as_u16(), p.code.as_str(), p.detail.as_str()),
            (503, "cancelled", "a dependency is unavailable; retry later")
        );
    }

    #[test]
    fn renders_problem_json() {
        let r = Problem::invalid_field("kind", "unknown variant").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = Problem::invalid_field("kind", "x").body();
        assert_eq!(body.title, "请求参数无效");
        assert_eq!(body.kind, "urn:jifen:problem:invalid_argument");
    }
}
