//! Refused webhooks kept: a signed webhook the pipeline refuses (400, 422 or 500) goes to its
//! source's `dead_letter_topic` as it came (the body, and the request headers but credentials),
//! with headers saying why, and the sender is answered 200 `dead_lettered` once the broker
//! holds it. `switchyard redrive --source` runs the letters through the routes again.

use http::HeaderMap;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::kafka::producer::{self, EventProducer, PublishError};
use crate::pipeline::{Reason, Rejection};
use crate::routes::Source;

/// The headers a letter gains, before the request's own.
pub const SOURCE: &str = "switchyard.dlq.source";
pub const REASON: &str = "switchyard.dlq.reason";
pub const STATUS: &str = "switchyard.dlq.status";
pub const ERROR: &str = "switchyard.dlq.error";

/// Request headers never kept: credentials a letter's readers have no business seeing.
const CREDENTIALS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The topic a refusal goes to instead of the sender's answer: the source's dead-letter topic,
/// for any refusal of a webhook whose signature held (an unsigned one is anyone's).
pub fn topic_for<'s>(source: &'s Source, rejection: &Rejection) -> Option<&'s str> {
    source.dead_letter_topic.as_deref().filter(|_| rejection.reason != Reason::Signature)
}

/// The letter's headers: why, then the request's own (lower-case names, repeated ones kept),
/// but credentials: those above, and the header the source's secret itself comes in.
pub fn headers(source: &Source, request: &HeaderMap, rejection: &Rejection) -> OwnedHeaders {
    let status = rejection.status.to_string();
    let why = [
        (SOURCE, source.name.as_str()),
        (REASON, rejection.reason.as_str()),
        (STATUS, &status),
        (ERROR, &rejection.message),
    ];
    let secrets: Vec<&str> = source.verifier.secret_headers().map(http::HeaderName::as_str).collect();
    let mut out = OwnedHeaders::new_with_capacity(why.len() + request.len());
    for (key, value) in why {
        out = out.insert(Header { key, value: Some(value) });
    }
    let kept = |name: &http::HeaderName| !CREDENTIALS.contains(&name.as_str()) && !secrets.contains(&name.as_str());
    for (name, value) in request.iter().filter(|(n, _)| kept(n)) {
        out = out.insert(Header { key: name.as_str(), value: Some(value.as_bytes()) });
    }
    out
}

/// Keeps the refused webhook: where the broker stored it, once it holds it.
pub async fn publish(
    producer: &EventProducer,
    topic: &str,
    event_id: Option<&str>,
    headers: OwnedHeaders,
    body: &[u8],
    timeout: std::time::Duration,
) -> Result<(i32, i64), PublishError> {
    let mut record = FutureRecord::to(topic).payload(body).headers(headers);
    if let Some(id) = event_id {
        record = record.key(id.as_bytes());
    }
    producer::publish_one(producer, record, timeout).await
}

/// A letter's request headers, as the webhook came with them (`switchyard redrive --source`).
pub fn request_headers<'h>(letter: impl Iterator<Item = (&'h str, &'h [u8])>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (key, value) in letter.filter(|(k, _)| !k.starts_with("switchyard.dlq.")) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_bytes(value))
        {
            out.append(name, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Verifier;
    use rdkafka::message::Headers;

    #[test]
    fn a_letter_keeps_the_request_but_its_credentials_and_says_why() {
        let mut request = HeaderMap::new();
        request.insert("stripe-signature", "t=1,v1=ab".parse().unwrap());
        request.insert("authorization", "Bearer s3cret".parse().unwrap());
        request.insert("cookie", "session=1".parse().unwrap());
        request.append("x-tag", "a".parse().unwrap());
        request.append("x-tag", "b".parse().unwrap());
        let rejection = Rejection {
            status: 422,
            reason: Reason::Schema,
            message: "payload does not match".into(),
            violations: Vec::new(),
        };
        let headers = headers(&source("stripe", Verifier::None), &request, &rejection);
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
            .collect();
        let expected = [
            (SOURCE, "stripe"),
            (REASON, "schema"),
            (STATUS, "422"),
            (ERROR, "payload does not match"),
            ("stripe-signature", "t=1,v1=ab"),
            ("x-tag", "a"),
            ("x-tag", "b"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        // Read back for a redrive: the request's headers, repeated ones too, without the letter's.
        let back = request_headers(headers.iter().map(|h| (h.key, h.value.unwrap_or_default())));
        assert_eq!(back.len(), 3);
        assert_eq!(back.get_all("x-tag").iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(back.get(SOURCE).is_none());
    }

    fn source(name: &str, verifier: Verifier) -> Source {
        Source {
            name: name.into(),
            path: format!("/webhooks/{name}"),
            verifier,
            allowed_ips: None,
            require_client_certificate: false,
            schema: None,
            form: None,
            dead_letter_topic: Some(format!("{name}.refused")),
            event_type: None,
            event_id: None,
            replies: Vec::new(),
            challenge: None,
            rules: Vec::new(),
            reads: Default::default(),
        }
    }

    #[test]
    fn a_token_sent_in_a_header_of_its_own_is_not_kept() {
        let header = http::HeaderName::from_static("x-gitlab-token");
        let gitlab = source("gitlab", Verifier::Token { secrets: Vec::new(), header, prefix: String::new() });
        let mut request = HeaderMap::new();
        request.insert("x-gitlab-token", "glwt-secret".parse().unwrap());
        request.insert("x-gitlab-event", "Push Hook".parse().unwrap());
        let rejection =
            Rejection { status: 400, reason: Reason::Json, message: "not JSON".into(), violations: Vec::new() };
        let kept = headers(&gitlab, &request, &rejection);
        let names: Vec<&str> = kept.iter().map(|h| h.key).collect();
        assert_eq!(names, [SOURCE, REASON, STATUS, ERROR, "x-gitlab-event"]);
    }
}
