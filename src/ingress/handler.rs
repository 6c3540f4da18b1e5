//! One request: route by path, check method, type and size, run the pipeline, publish,
//! answer. Only here do HTTP statuses meet pipeline outcomes.

use std::sync::Arc;

use http::header::{
    ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;

use super::State;
use super::body::{self, BodyError};
use super::client::{self, Peer};
use super::dead_letter;
use super::response::{Body, json, rejected};
use crate::kafka::producer::{self, PublishError};
use crate::metrics;
use crate::pipeline::parse::{FORM, media_type};
use crate::pipeline::{self, Inbound, Outcome, Rejection, ReplyBody};
use crate::routes::{Routes, Source, Verifier};
use crate::text::{QUOTED_VALUE, clip};
use crate::trace::TraceParent;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Answers one request from `peer`; never fails (every problem becomes a status).
pub async fn handle(state: Arc<State>, req: Request<Incoming>, peer: Peer) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => return json(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => return super::ready::answer(&state).await,
        "/metrics" => return metrics_text(),
        _ => {}
    }
    if !state.webhooks {
        let message =
            "this process runs only the dispatcher (--role dispatch): it serves /healthz, /readyz and /metrics";
        return rejected(StatusCode::NOT_FOUND, "not_found", message);
    }
    let routes = state.routes.load_full();
    let Some(source) = routes.source_at(req.uri().path()) else {
        metrics::webhook("none", "rejected", 404, Some("not_found"));
        return rejected(StatusCode::NOT_FOUND, "not_found", "no webhook source is served at this path");
    };
    let (res, answered) = webhook(&state, &routes, source, req, peer).await;
    let (outcome, reason) = match answered {
        Answered::Accepted => ("accepted", None),
        Answered::Ignored => ("ignored", None),
        Answered::Replied => ("replied", None),
        Answered::DeadLettered(reason) => ("dead_lettered", Some(reason)),
        Answered::Rejected(reason) => ("rejected", Some(reason)),
    };
    metrics::webhook(&source.name, outcome, res.status().as_u16(), reason);
    res
}

/// What a webhook answer was, for metrics.
#[derive(Clone, Copy, Debug)]
enum Answered {
    Accepted,
    Ignored,
    Replied,
    /// Refused for this reason, and kept in the source's dead-letter topic.
    DeadLettered(&'static str),
    Rejected(&'static str),
}

type Answer = (Response<Body>, Answered);

fn refuse(status: StatusCode, reason: &'static str, message: &str) -> Answer {
    (rejected(status, reason, message), Answered::Rejected(reason))
}

/// The body of a 200 for published events.
#[derive(Serialize)]
struct Accepted<'a> {
    status: &'static str,
    event_id: &'a Option<String>,
    events: &'a [producer::Published],
}

fn metrics_text() -> Response<Body> {
    let mut res = Response::new(Body::from(metrics::render()));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

/// One line about a webhook at `level`, naming it as every line of the ingress does: source,
/// trace id and event id as fields (not a span: entering and leaving one at every poll of the
/// request cost more than writing the line).
macro_rules! webhook_log {
    ($level:ident, $source:expr, $trace:expr, $event_id:expr, $($rest:tt)+) => {
        tracing::$level!(
            source = %$source.name,
            trace_id = %$trace.trace_id,
            event_id = $event_id.as_deref(),
            $($rest)+
        )
    };
}

/// Refuses a webhook outside the pipeline, logging it as every verdict is: `info` for the
/// sender's mistakes, `warn` for overload (the operator's concern).
fn refuse_and_log(
    source: &Source,
    trace: &TraceParent,
    event_id: &Option<String>,
    status: StatusCode,
    reason: &'static str,
    detail: &str,
) -> Answer {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        webhook_log!(warn, source, trace, event_id, status = status.as_u16(), reason, %detail, "rejected");
    } else {
        webhook_log!(info, source, trace, event_id, status = status.as_u16(), reason, %detail, "rejected");
    }
    refuse(status, reason, detail)
}

async fn webhook(state: &State, routes: &Routes, source: &Source, req: Request<Incoming>, peer: Peer) -> Answer {
    let trace = TraceParent::from_header(req.headers().get("traceparent").and_then(|v| v.to_str().ok()));
    // Refusals before the body is parsed: no event id yet.
    let early = |status, reason, detail: &str| refuse_and_log(source, &trace, &None, status, reason, detail);
    if source.require_client_certificate && !peer.certified {
        let message = format!(
            "source '{}' takes webhooks only from clients that present a certificate its client CA issued (mutual TLS)",
            source.name
        );
        return close(early(StatusCode::FORBIDDEN, "forbidden", &message));
    }
    if source.allowed_ips.is_some() {
        let from = client::address(peer.ip, req.headers(), &routes.ingress.trusted_proxies);
        if !client::allowed(from, source.allowed_ips.as_deref()) {
            let message = format!("address {from} may not post to source '{}' (allowed_ips)", source.name);
            return close(early(StatusCode::FORBIDDEN, "forbidden", &message));
        }
    }
    if req.method() == Method::GET
        && let Some(c) = &source.challenge
    {
        return match pipeline::challenge::answer(c, req.uri().query()) {
            Ok(replied) => {
                webhook_log!(info, source, trace, None::<String>, "verification challenge answered");
                let mut res = written(replied);
                // An echoed value is never read as markup.
                res.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                (res, Answered::Replied)
            }
            Err(r) => early(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), "challenge", &r.message),
        };
    }
    if req.method() != Method::POST {
        let (allow, message) = match &source.challenge {
            Some(_) => ("GET, POST", "webhooks are sent with POST (and the sender's verification with GET)"),
            None => ("POST", "webhooks are sent with POST"),
        };
        let (mut res, answered) = early(StatusCode::METHOD_NOT_ALLOWED, "method", message);
        res.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        return (res, answered);
    }
    if let Some(ct) = req.headers().get(CONTENT_TYPE)
        && !is_json(ct)
        && !(source.form.is_some() && media_type(ct).as_deref() == Some(FORM))
    {
        let got = clip(ct.to_str().unwrap_or("(not text)"), QUOTED_VALUE);
        let message = match &source.form {
            None => format!("Content-Type '{got}' is not JSON: send the body as application/json"),
            Some(_) => format!("Content-Type '{got}' is neither JSON nor {FORM}"),
        };
        return early(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type", &message);
    }
    // A compressed body would fail as "not JSON" (or, signed compressed, pass the signature
    // check and then fail): name the real reason (RFC 7694: 415 for a coding not accepted).
    if let Some(ce) = req.headers().get(CONTENT_ENCODING)
        && !ce.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        let got = clip(ce.to_str().unwrap_or("(not text)"), QUOTED_VALUE);
        let message = format!("Content-Encoding '{got}' is not accepted: send the body uncompressed");
        return early(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_encoding", &message);
    }
    let limit = routes.ingress.max_body_bytes;
    let too_large = || {
        let message = format!("the body is larger than the limit of {limit} bytes");
        close(early(StatusCode::PAYLOAD_TOO_LARGE, "size", &message))
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let (parts, incoming) = req.into_parts();
    let read_timeout = routes.ingress.read_timeout;
    // Memory bound: the body's bytes are reserved from the shared budget before it is read
    // (the declared length, or the limit when unknown), and held until the pipeline is done.
    let reserve = declared.map_or(limit, |n| n as usize).clamp(1, u32::MAX as usize) as u32;
    // Permits are nearly always free at once; only a wait needs a timer.
    let reservation = match state.buffered.try_acquire_many(reserve) {
        Ok(permit) => Some(permit),
        Err(_) => {
            tokio::time::timeout(read_timeout, state.buffered.acquire_many(reserve)).await.ok().and_then(Result::ok)
        }
    };
    let Some(reservation) = reservation else {
        let message = "too many request bodies are being read at once; retry later";
        return close(early(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message));
    };
    // The body has the whole read timeout from when there is room for it: a 408 is a slow
    // sender, never a wait on the gateway (that is a 503).
    let deadline = tokio::time::Instant::now() + read_timeout;
    let bytes = match body::read(incoming, limit, declared.map(|n| n as usize), deadline).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Timeout) => {
            return close(early(StatusCode::REQUEST_TIMEOUT, "timeout", "the body was not received in time"));
        }
        Err(BodyError::Broken(e)) => return close(early(StatusCode::BAD_REQUEST, "body", &e)),
    };
    let (headers, query) = (&parts.headers, parts.uri.query());
    let inbound = Inbound { headers, query, body: &bytes, now: (state.clock)(), verify: true };
    let (event_id, result) = pipeline::ingest(source, &inbound);
    if let Err(rejection) = &result
        && let Some(topic) = dead_letter::topic_for(source, rejection)
    {
        let refused = Refused { rejection, topic, timeout: routes.kafka.publish_timeout };
        return dead_lettered(state, source, &trace, &event_id, &inbound, refused).await;
    }
    // The events own what they need: the raw body, its reservation and the request's headers
    // go now, on this worker, not after the broker's acknowledgement.
    drop(bytes);
    drop(reservation);
    drop(parts);
    let (mut events, answer) = match result {
        Ok(Outcome::Publish { events, answer }) => (events, answer),
        Ok(Outcome::Ignored(reason)) => {
            webhook_log!(info, source, trace, event_id, %reason, "ignored");
            let body = json!({"status": "ignored", "event_id": event_id, "reason": reason});
            return (json(StatusCode::OK, &body), Answered::Ignored);
        }
        Ok(Outcome::Reply { reply, answer }) => {
            webhook_log!(info, source, trace, event_id, %reply, "replied");
            return (written(answer), Answered::Replied);
        }
        Err(rejection) => return refused_by_routes(source, &trace, &event_id, &rejection),
    };
    // Back-pressure: a bounded number of webhooks wait on the broker at once.
    let Ok(_permit) = state.in_flight.try_acquire() else {
        let message = "too many webhooks in flight; retry later";
        return refuse_and_log(source, &trace, &event_id, StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    };
    // The trace goes on with the events: each carries this hop's span as its parent.
    let traceparent = trace.child().to_string();
    for event in &mut events {
        event.headers.retain(|(k, _)| k != "traceparent");
        event.headers.push(("traceparent".into(), traceparent.clone()));
    }
    let started = std::time::Instant::now();
    let result = producer::publish_all(&state.producer, events, routes.kafka.publish_timeout).await;
    metrics::publish(&source.name, started.elapsed(), result.is_ok());
    match result {
        Ok(published) => {
            webhook_log!(info, source, trace, event_id, events = published.len(), "published");
            // A rule's own answer, for senders that show it; else which records hold the events.
            let res = match answer {
                Some(answer) => written(answer),
                None => json(StatusCode::OK, &Accepted { status: "accepted", event_id: &event_id, events: &published }),
            };
            (res, Answered::Accepted)
        }
        Err(e) => {
            webhook_log!(warn, source, trace, event_id, error = %e, "publish failed");
            let message = match e {
                PublishError::Timeout(_) => "the broker did not acknowledge in time; retry later".to_string(),
                PublishError::Kafka(e) => format!("the broker did not take the event: {e}; retry later"),
            };
            refuse(StatusCode::SERVICE_UNAVAILABLE, "broker", &message)
        }
    }
}

/// The pipeline's refusal as the sender's answer, logged: `info` for the sender's mistakes,
/// `error` for a canonical event the routes got wrong.
fn refused_by_routes(source: &Source, trace: &TraceParent, event_id: &Option<String>, rejection: &Rejection) -> Answer {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // `detail`, not `message`: that field name is the line's own message in `tracing`.
    let (reason, detail) = (rejection.reason.as_str(), &rejection.message);
    if status.is_server_error() {
        let violations = &rejection.violations;
        let what = "mapping produced an invalid canonical event";
        webhook_log!(error, source, trace, event_id, reason, %detail, ?violations, "{what}");
    } else {
        webhook_log!(info, source, trace, event_id, status = status.as_u16(), reason, %detail, "rejected");
    }
    let mut body = serde_json::to_value(rejection).unwrap_or_default();
    body["status"] = json!("rejected");
    let mut res = json(status, &body);
    if status == StatusCode::UNAUTHORIZED
        && let Some(challenge) = auth_challenge(source)
    {
        res.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    (res, Answered::Rejected(rejection.reason.as_str()))
}

/// The `WWW-Authenticate` of a 401 (RFC 9110) where the source checks HTTP authentication
/// (Basic credentials, a Bearer token), naming the source as the realm; signature schemes have
/// no challenge to send.
fn auth_challenge(source: &Source) -> Option<HeaderValue> {
    let scheme = source.verifier.schemes().iter().find_map(|v| match v {
        Verifier::Basic { .. } => Some("Basic"),
        Verifier::Token { header, prefix, .. } if header == AUTHORIZATION && prefix.eq_ignore_ascii_case("Bearer ") => {
            Some("Bearer")
        }
        _ => None,
    })?;
    let realm = source.name.replace(['"', '\\'], "");
    HeaderValue::from_str(&format!("{scheme} realm=\"{realm}\"")).ok()
}

/// A refusal to keep: where, and how long the broker may take.
struct Refused<'a> {
    rejection: &'a Rejection,
    topic: &'a str,
    timeout: std::time::Duration,
}

/// Keeps a webhook the pipeline refused in its source's dead-letter topic, then answers 200
/// `dead_lettered` with the refusal (why, for the sender); 503 when the broker does not take it,
/// so the sender tries again, but the refusal itself for a body larger than the broker takes
/// (trying again would not help).
async fn dead_lettered(
    state: &State,
    source: &Source,
    trace: &TraceParent,
    event_id: &Option<String>,
    inbound: &Inbound<'_>,
    Refused { rejection, topic, timeout }: Refused<'_>,
) -> Answer {
    let Ok(_permit) = state.in_flight.try_acquire() else {
        let message = "too many webhooks in flight; retry later";
        return refuse_and_log(source, trace, event_id, StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    };
    let (reason, detail) = (rejection.reason.as_str(), &rejection.message);
    let headers = dead_letter::headers(source, inbound.headers, rejection);
    match dead_letter::publish(&state.producer, topic, event_id.as_deref(), headers, inbound.body, timeout).await {
        Ok((partition, offset)) => {
            if rejection.status >= 500 {
                let violations = &rejection.violations;
                let what = "mapping produced an invalid canonical event; dead-lettered";
                webhook_log!(error, source, trace, event_id, reason, %detail, ?violations, topic, partition, offset, "{what}");
            } else {
                webhook_log!(warn, source, trace, event_id, reason, %detail, topic, partition, offset, "dead-lettered");
            }
            let mut body = serde_json::to_value(rejection).unwrap_or_default();
            body["status"] = json!("dead_lettered");
            body["event_id"] = json!(event_id);
            body["dead_letter"] = json!({"topic": topic, "partition": partition, "offset": offset});
            (json(StatusCode::OK, &body), Answered::DeadLettered(reason))
        }
        Err(PublishError::Kafka(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge))) => {
            webhook_log!(warn, source, trace, event_id, topic, "too large for the dead-letter topic: not kept");
            refused_by_routes(source, trace, event_id, rejection)
        }
        Err(e) => {
            webhook_log!(warn, source, trace, event_id, reason, %detail, error = %e, "dead letter not kept");
            let message = format!("the webhook was refused ({detail}) and could not be kept: {e}; retry later");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "broker", &message)
        }
    }
}

/// An answer the config writes (a reply's, a rule's): its JSON object, its text as
/// `text/plain` (or its `content_type`), or nothing.
fn written(replied: pipeline::Replied) -> Response<Body> {
    let status = StatusCode::from_u16(replied.http_status).unwrap_or(StatusCode::OK);
    match replied.body {
        ReplyBody::Empty => {
            let mut res = Response::new(Body::default());
            *res.status_mut() = status;
            res
        }
        ReplyBody::Json(body) => json(status, &body),
        ReplyBody::Text(text) => {
            let mut res = Response::new(Body::from(text));
            *res.status_mut() = status;
            // The type was checked to be a valid header value when the routes were compiled.
            let media = replied.content_type.and_then(|t| HeaderValue::from_str(&t).ok());
            let media = media.unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"));
            res.headers_mut().insert(CONTENT_TYPE, media);
            res
        }
    }
}

/// `application/json`, or any `+json` type; parameters such as `charset` are allowed.
fn is_json(value: &HeaderValue) -> bool {
    let Some(mime) = media_type(value) else { return false };
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Ends the connection after this answer, so an unread body is never drained.
fn close((mut res, answered): Answer) -> Answer {
    res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    (res, answered)
}
