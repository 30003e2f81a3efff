//! RFC 9457 problem+json: the one place where error kinds become HTTP statuses. The
//! user-facing `detail` is separate from what is logged; internal details never leave.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::codes::ErrorCode;
use crate::service::ServiceError;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "urn:sigil:problem:tenant_not_found", "title": "Not Found", "status": 404, "detail": "no such tenant", "code": "tenant_not_found"}))]
pub struct Problem {
    /// `urn:sigil:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the status.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// Stable machine code, e.g. `not_authorized`, `amount_exceeds_limit`, `invalid_request`.
    pub code: String,
}

/// An error on its way out as problem+json.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    detail: String,
}

impl ApiError {
    /// A problem with an explicit status and code.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into() }
    }

    /// 400 `invalid_request`.
    /// The machine code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The sentence for the caller.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, detail)
    }

    /// 404 `not_found`.
    pub fn not_found(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError as E;
        match e {
            E::Unauthenticated => Self::new(StatusCode::UNAUTHORIZED, ErrorCode::NotAuthenticated, "a valid bearer token is required"),
            E::Forbidden { code, detail } => Self::new(StatusCode::FORBIDDEN, code, detail),
            E::NotFound { code, detail } => Self::new(StatusCode::NOT_FOUND, code, detail),
            E::Conflict { code, detail } => Self::new(StatusCode::CONFLICT, code, detail),
            E::Invalid { code, detail } => Self::new(StatusCode::BAD_REQUEST, code, detail),
            E::Gone { code, detail } => Self::new(StatusCode::GONE, code, detail),
            E::TooManyRequests { code, detail } => Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail),
            E::Unavailable(detail) => {
                tracing::error!(%detail, "storage unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "storage is unavailable; retry later")
            }
            E::RootKeyOutdated => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RootKeyOutdated,
                "the root key was rotated on another node and this node does not hold the new one; retry on another node",
            ),
            E::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError, "internal error")
            }
            // Any variant added later is treated as internal until mapped explicitly.
            #[allow(unreachable_patterns)]
            other => {
                tracing::error!(error = %other, "unmapped service error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError, "internal error")
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = Problem {
            kind: format!("urn:sigil:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
        };
        let mut resp = HttpResponse::build(self.status);
        resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        resp.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// Maps JSON body errors: too large → 413, wrong content type → 415, the rest → 400.
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let e = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, "request body exceeds the configured limit")
        }
        J::ContentType => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType, "request body must be application/json")
        }
        J::Deserialize(d) => ApiError::bad_request(format!("invalid JSON body: {d}")),
        _ => ApiError::bad_request("invalid request body"),
    };
    e.into()
}

/// Query string errors → 400.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query string: {err}")).into()
}

/// Path errors → 404 (a malformed id names nothing that exists).
pub fn path_error(_err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found(ErrorCode::NotFound, "no such resource").into()
}
