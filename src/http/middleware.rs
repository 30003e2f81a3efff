//! Cross-cutting request handling: `X-Request-Id` (accepted when well-formed, otherwise
//! generated; echoed on every response) and the body-size limit for every route,
//! enforced from `Content-Length` before any handler runs.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use rand::RngCore;

use super::problem::ApiError;

/// The request id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Body limit in bytes, in app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Oversized bodies up to this size are read and discarded before the 413 is sent, so
/// clients that write the whole body before reading see the problem document instead of a
/// reset connection. Larger ones are cut off.
const DRAIN_CAP: usize = 4 * 1024 * 1024;

async fn drain(req: &mut ServiceRequest) {
    use futures_util::StreamExt;
    let mut payload = req.take_payload();
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(c) => {
                seen += c.len();
                if seen > DRAIN_CAP {
                    break;
                }
            }
            Err(_) => break,
        }
    }
}

/// Request id + body limit + access log.
pub async fn edge(mut req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id =
        req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|v| acceptable(v)).map(str::to_owned).unwrap_or_else(|| {
            let mut b = [0u8; 12];
            rand::rngs::OsRng.fill_bytes(&mut b);
            hex::encode(b)
        });
    req.extensions_mut().insert(RequestId(id.clone()));
    let limit = req.app_data::<actix_web::web::Data<BodyLimit>>().map(|l| l.0).unwrap_or(64 * 1024);
    let too_big = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64);
    let method = req.method().clone();
    let path = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let mut res = if too_big {
        drain(&mut req).await;
        let resp =
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body exceeds the configured limit").error_response();
        req.into_response(resp)
    } else {
        crate::service::audit::REQUEST_ID.scope(id.clone(), next.call(req)).await?.map_into_boxed_body()
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let status = res.status().as_u16().to_string();
    metrics::counter!("sigil_http_requests_total", "route" => path.clone(), "method" => method.to_string(), "status" => status)
        .increment(1);
    metrics::histogram!("sigil_http_request_duration_seconds", "route" => path.clone()).record(started.elapsed().as_secs_f64());
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %path,
        status = res.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(res)
}
