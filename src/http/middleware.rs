//! Cross-cutting request handling: `X-Request-Id` (accepted when well-formed, otherwise
//! generated; echoed on every response), the body-size limit for every route, enforced
//! from `Content-Length` before any handler runs, and reading what a handler left of a
//! request body before its response goes out.
//!
//! Why the last one: actix-http closes an HTTP/1.1 connection whose request body was not
//! read to the end when the response is ready. A client that writes the head and then the
//! body (urllib3, most HTTP libraries) can then lose the response itself to the close (a
//! TLS "EOF in violation of protocol" or a reset) whenever the server answered before
//! reading the body: 405 for an unsupported method, 415 for a wrong content type, 401, 404.
//! Reading the rest (bounded in bytes and time) keeps such answers deliverable and the
//! connection reusable.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;
use rand::RngCore;

use super::problem::ApiError;
use crate::codes::ErrorCode;

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

/// Unread request bodies up to this size are read and discarded before the response is
/// sent, so clients that write the whole body before reading see the answer instead of a
/// closed connection. Larger ones are cut off (and the connection closed).
const DRAIN_CAP: usize = 4 * 1024 * 1024;
/// A client that trickles a body it has no answer to wait for gets this long.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards what is left of `payload`, within [`DRAIN_CAP`] and [`DRAIN_TIME`].
async fn drain(mut payload: Payload) {
    use futures_util::StreamExt;
    let read = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = payload.next().await {
            seen += chunk.len();
            if seen > DRAIN_CAP {
                break;
            }
        }
    };
    let _ = actix_web::rt::time::timeout(DRAIN_TIME, read).await;
}

/// The request body, shared between the handler (which reads it through the stream that
/// [`SharedPayload::stream`] gives) and the middleware (which drains what is left).
struct SharedPayload(Rc<RefCell<Payload>>);

impl SharedPayload {
    fn stream(&self) -> Payload {
        let shared = self.0.clone();
        let stream = futures_util::stream::poll_fn(move |cx| Pin::new(&mut *shared.borrow_mut()).poll_next(cx));
        Payload::Stream { payload: Box::pin(stream) }
    }

    fn take(self) -> Payload {
        std::mem::replace(&mut *self.0.borrow_mut(), Payload::None)
    }
}

/// Whether the request announces a body (`Content-Length` above 0, or chunked).
fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// The deadline of a request's store retries (several nodes; `None`: only the attempt
/// bounds apply), see `service::kernel::deadline`.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Option<std::time::Duration>);

/// `fut` under the app's request deadline, if it has one.
async fn deadlined<F: std::future::Future>(deadline: Option<std::time::Duration>, fut: F) -> F::Output {
    match deadline {
        Some(d) => crate::service::kernel::deadline::with_request_deadline(d, fut).await,
        None => fut.await,
    }
}

/// Request id + body limit + request deadline + access log.
pub async fn edge(mut req: ServiceRequest, next: Next<impl MessageBody + 'static>) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id =
        req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|v| acceptable(v)).map(str::to_owned).unwrap_or_else(|| {
            let mut b = [0u8; 12];
            rand::thread_rng().fill_bytes(&mut b);
            hex::encode(b)
        });
    req.extensions_mut().insert(RequestId(id.clone()));
    let limit = req.app_data::<actix_web::web::Data<BodyLimit>>().map(|l| l.0).unwrap_or(64 * 1024);
    let deadline = req.app_data::<actix_web::web::Data<RequestDeadline>>().and_then(|d| d.0);
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
        drain(req.take_payload()).await;
        let resp = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, "request body exceeds the configured limit")
            .error_response();
        req.into_response(resp)
    } else if has_body(&req) {
        let body = SharedPayload(Rc::new(RefCell::new(req.take_payload())));
        req.set_payload(body.stream());
        let res =
            deadlined(deadline, crate::service::kernel::journal::REQUEST_ID.scope(id.clone(), next.call(req))).await?.map_into_boxed_body();
        // A handler that read the body to the end leaves an empty stream: this returns at once.
        drain(body.take()).await;
        res
    } else {
        deadlined(deadline, crate::service::kernel::journal::REQUEST_ID.scope(id.clone(), next.call(req))).await?.map_into_boxed_body()
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
