//! JSON answers: every response the ingress sends has a JSON body with a `status` field.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
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

/// A refusal: `{"status": "rejected", "reason": …, "message": …}`. A 503 says when to try
/// again (`Retry-After`, RFC 9110): soon when the gateway is busy, later when the broker is
/// not answering.
pub fn rejected(status: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let mut res = json(status, &json!({"status": "rejected", "reason": reason, "message": message}));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let after = if reason == "broker" { "5" } else { "1" };
        res.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(after));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_503_says_when_to_try_again() {
        let after = |status, reason| rejected(status, reason, "m").headers().get(RETRY_AFTER).cloned();
        assert_eq!(after(StatusCode::SERVICE_UNAVAILABLE, "overloaded"), Some(HeaderValue::from_static("1")));
        assert_eq!(after(StatusCode::SERVICE_UNAVAILABLE, "broker"), Some(HeaderValue::from_static("5")));
        assert_eq!(after(StatusCode::BAD_REQUEST, "json"), None);
    }
}
