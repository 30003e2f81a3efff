//! The bearer-token extractor. Authentication itself is `service::Sigil::authenticate`;
//! this only reads the header and turns failures into 401s, or into 429s for a client
//! address (see [`super::client`]) that failed too often. The token is checked before the
//! address: a valid token is never refused because of other callers' failures.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::problem::ApiError;
use crate::codes::ErrorCode;
use crate::service::{Caller, ServiceError, Sigil};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sigil = req.app_data::<web::Data<Sigil>>().cloned();
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|s| s.trim().to_owned());
        let ip = super::client::client_ip(req);
        let route = req.match_pattern().unwrap_or_default();
        // Parsed here, at the edge: a path segment that is no tenant id names no trail.
        let tenant = req.match_info().get("tenant").and_then(|t| crate::ids::TenantId::parse(t).ok());
        Box::pin(async move {
            let sigil = sigil.ok_or_else(|| ApiError::from(ServiceError::Internal("app state missing".into())))?;
            let throttled = || {
                ApiError::from(ServiceError::TooManyRequests {
                    code: ErrorCode::TooManyAuthFailures,
                    detail: "too many failed authentications from this address; retry later".into(),
                })
            };
            // The token first: a valid one is never refused for what others did from the
            // same address (behind a proxy, every client shares it). Only attempts without
            // a valid token are throttled.
            let result = match bearer {
                Some(b) => sigil.authenticate(&b).await,
                None => Err(ServiceError::Unauthenticated),
            };
            match result {
                Ok(c) => Ok(Auth(c)),
                Err(ServiceError::Unauthenticated) => {
                    if let Some(ip) = ip {
                        if sigil.auth_blocked(ip) || sigil.note_auth_failure(ip, tenant.as_ref(), &route).await {
                            return Err(throttled());
                        }
                    }
                    Err(ServiceError::Unauthenticated.into())
                }
                Err(e) => Err(e.into()),
            }
        })
    }
}
