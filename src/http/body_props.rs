//! Property tests of request bodies as the extractor [`Body`] reads them: any bytes, sent
//! with a length or chunked, give a JSON object or a 400/413 without a panic, and the body
//! limit (actix's `PayloadConfig`, set from `body_limit` at start-up) refuses an over-long
//! body before a byte of it is parsed.
use super::*;
use actix_web::{FromRequest, ResponseError};
use proptest::prelude::*;
use serde_json::Value;

/// The limit the tests configure (production reads `body_limit`, 64 KiB by default).
const LIMIT: usize = 1024;

/// Runs the extractor on `bytes`, sent with a `Content-Length`, or chunked without one.
fn extract(bytes: &[u8], content_type: &str, chunked: bool) -> Result<Value, ApiError> {
    let req = actix_web::test::TestRequest::post()
        .insert_header((actix_web::http::header::CONTENT_TYPE, content_type))
        .app_data(web::PayloadConfig::new(LIMIT));
    let (req, mut payload) = if chunked {
        let (req, _) = req.to_http_parts();
        let chunks: Vec<Result<web::Bytes, actix_web::error::PayloadError>> =
            bytes.chunks(100).map(|c| Ok(web::Bytes::copy_from_slice(c))).collect();
        let stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>> = Box::pin(futures_util::stream::iter(chunks));
        (req, actix_web::dev::Payload::Stream { payload: stream })
    } else {
        req.set_payload(bytes.to_vec()).to_http_parts()
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(Body::<Value>::from_request(&req, &mut payload)).map(Body::into_inner)
}

fn status(r: &Result<Value, ApiError>) -> u16 {
    r.as_ref().map_or_else(|e| e.status_code().as_u16(), |_| 200)
}

/// Bodies: raw bytes, JSON-ish text, and objects padded to around the limit.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[{}\\[\\]\":,a-z0-9 .\\-]{0,64}".prop_map(String::into_bytes),
        (LIMIT - 40..LIMIT + 40).prop_map(|n| {
            let pad = n.saturating_sub(10);
            format!(r#"{{"a":"{}"}}"#, "x".repeat(pad)).into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(crate::fuzz::config(500))]

    #[test]
    fn any_body_is_an_object_or_refused(bytes in body(), chunked in any::<bool>()) {
        let r = extract(&bytes, "application/json", chunked);
        match &r {
            Ok(v) => prop_assert!(v.is_object() && bytes.len() <= LIMIT),
            Err(_) if bytes.len() > LIMIT => prop_assert_eq!(status(&r), 413),
            Err(_) => prop_assert_eq!(status(&r), 400),
        }
    }

    #[test]
    fn a_body_that_is_not_json_by_type_is_not_read(bytes in body(), ct in prop_oneof![Just("text/plain"), Just("application/jsonx"), Just("")]) {
        prop_assert_eq!(status(&extract(&bytes, ct, false)), 415);
    }

    #[test]
    fn optional_bodies_are_empty_or_parsed(bytes in body()) {
        match optional_json::<Value>(&bytes) {
            Ok(Value::Null) => {}
            Ok(_) => prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok()),
            Err(e) => prop_assert_eq!(e.status_code().as_u16(), 400),
        }
    }
}

proptest! {
    // A length past a cap: a small input space, so a long run needs few cases.
    #![proptest_config(crate::fuzz::config_bounded(200, 4000))]

    #[test]
    fn an_over_long_body_is_refused_before_parsing(extra in 1usize..8192, chunked in any::<bool>(), fill in prop_oneof![Just(b'['), Just(b'{'), Just(0xff)]) {
        // Not JSON: parsing would answer 400, so 413 shows the limit came first.
        let r = extract(&vec![fill; LIMIT + extra], "application/json", chunked);
        prop_assert_eq!(status(&r), 413, "{:?}", r.err().map(|e| e.to_string()));
    }
}

#[test]
fn a_body_at_the_limit_is_parsed() {
    let at = format!(r#"{{"a":"{}"}}"#, "x".repeat(LIMIT - 8));
    assert_eq!(at.len(), LIMIT);
    for chunked in [false, true] {
        assert!(extract(at.as_bytes(), "application/json", chunked).is_ok());
        assert_eq!(status(&extract(&vec![b'['; LIMIT], "application/json", chunked)), 400);
    }
}
