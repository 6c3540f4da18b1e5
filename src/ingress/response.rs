//! JSON answers: every response the ingress sends has a JSON body with a `status` field.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;

pub type Body = Full<Bytes>;

/// A response with `body` serialized as JSON.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// A refusal: `{"status": "rejected", "reason": …, "message": …}`.
pub fn rejected(status: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json(status, &json!({"status": "rejected", "reason": reason, "message": message}))
}
