//! The bearer-token extractor. Authentication itself is `service::Sigil::authenticate`;
//! this only reads the header and turns failures into 401s.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::problem::ApiError;
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
        Box::pin(async move {
            let sigil = sigil.ok_or_else(|| ApiError::from(ServiceError::Internal("app state missing".into())))?;
            let bearer = bearer.ok_or(ApiError::from(ServiceError::Unauthenticated))?;
            sigil.authenticate(&bearer).await.map(Auth).map_err(ApiError::from)
        })
    }
}
