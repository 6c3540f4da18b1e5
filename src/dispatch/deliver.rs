//! One event's HTTP call, retried by policy: 2xx (and the rule's `done_on`) done; 408, 429,
//! 5xx (and the rule's `retry_on`), connection errors and timeouts retried with exponential backoff and full jitter
//! (honouring `Retry-After`) until the time budget is spent; any other status dead-letters at
//! once. Every attempt passes the dispatcher's [`Gate`] first (a place among `max_in_flight`,
//! then its turn under `max_calls_per_second`). Every answer's body is read (up to
//! [`DRAIN_LIMIT`]) so its connection carries the next call, and the start of a failed call's
//! body goes into its error, where the logs and the dead letter show it.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use http::header::RETRY_AFTER;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::oauth2::Tokens;
use crate::ingress::unix_now;
use crate::metrics;
use crate::pipeline::plan::{Body, PlannedCall};
use crate::pipeline::verify::sign;
use crate::routes::dispatch::{DispatchRule, RetryPolicy};
use crate::text::without_query;

/// How a call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Done {
        status: u16,
        attempts: u32,
    },
    /// Failed for good: to the dead-letter topic.
    Failed {
        status: Option<u16>,
        error: String,
        attempts: u32,
    },
    /// Stopped by revocation or shutdown: not finished, not committed.
    Abandoned,
}

/// What one attempt says about the next.
enum Verdict {
    Done(u16),
    Retry { status: Option<u16>, error: String, after: Option<Duration> },
    Fail { status: u16, error: String },
}

/// What every call of a dispatcher passes before it starts: a place among the `max_in_flight`
/// calls, then, with `max_calls_per_second`, its turn. A call waits for its turn holding its
/// place, so calls that find places at once still start evenly spaced.
pub struct Gate {
    places: Semaphore,
    pace: Option<Pace>,
}

/// Even spacing: each call takes the next free start time, `interval` after the previous one.
struct Pace {
    interval: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Gate {
    pub fn new(max_in_flight: usize, max_calls_per_second: Option<u64>) -> Gate {
        let pace = max_calls_per_second.map(|n| Pace {
            interval: Duration::from_secs(1) / n.clamp(1, u32::MAX as u64) as u32,
            next: Mutex::new(tokio::time::Instant::now()),
        });
        Gate { places: Semaphore::new(max_in_flight), pace }
    }

    /// Waits for a place and the call's turn; None when `cancel` trips first.
    async fn enter(&self, cancel: &CancellationToken) -> Option<SemaphorePermit<'_>> {
        let place = tokio::select! {
            p = self.places.acquire() => p.ok()?,
            _ = cancel.cancelled() => return None,
        };
        if let Some(pace) = &self.pace {
            let turn = pace.take_turn();
            tokio::select! {
                _ = tokio::time::sleep_until(turn) => {}
                _ = cancel.cancelled() => return None,
            }
        }
        Some(place)
    }
}

impl Pace {
    fn take_turn(&self) -> tokio::time::Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let turn = (*next).max(tokio::time::Instant::now());
        *next = turn + self.interval;
        turn
    }
}

/// What every call of a dispatcher shares.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub dispatcher: &'a str,
    pub client: &'a reqwest::Client,
    pub gate: &'a Gate,
    pub tokens: &'a Tokens,
    /// Trips when calls under way are to be given up (revocation, the end of the shutdown grace).
    pub cancel: &'a CancellationToken,
}

/// Makes `rule`'s call until it is done, fails for good, or `cancel` trips. `message_id`
/// names the call across its attempts (and a redelivery of its event) where a signature
/// scheme carries one (Standard Webhooks' `webhook-id`).
pub async fn deliver(caller: &Caller<'_>, call: &PlannedCall, rule: &DispatchRule, message_id: &str) -> Delivery {
    let Caller { dispatcher, client, gate, tokens, cancel } = *caller;
    let policy = &rule.retry;
    let started = Instant::now();
    let mut attempts = 0u32;
    // An OAuth2 token a service refuses (401) is dropped, and the call made again, once, at
    // once, with a new one: it may have been revoked, or expired early.
    let mut renewed = false;
    loop {
        if cancel.is_cancelled() {
            return Delivery::Abandoned;
        }
        attempts += 1;
        let verdict = {
            let Some(_place) = gate.enter(cancel).await else { return Delivery::Abandoned };
            metrics::in_flight(dispatcher, 1.0);
            let sent = Instant::now();
            let (verdict, token) = attempt(client, call, rule, message_id, tokens).await;
            metrics::dispatch_duration(dispatcher, &call.rule, sent.elapsed());
            metrics::in_flight(dispatcher, -1.0);
            (verdict, token)
        };
        let (verdict, token) = verdict;
        let (status, error, after) = match verdict {
            Verdict::Done(status) => {
                metrics::dispatch_attempt(dispatcher, &call.rule, "success");
                return Delivery::Done { status, attempts };
            }
            Verdict::Fail { status: 401, error }
                if !renewed && let (Some(client), Some(token)) = (&rule.oauth2, &token) =>
            {
                metrics::dispatch_attempt(dispatcher, &call.rule, "retry");
                tracing::info!(attempt = attempts, %error, "the service refused the OAuth2 token; retrying with a new one");
                tokens.forget(client, token).await;
                renewed = true;
                continue;
            }
            Verdict::Fail { status, error } => {
                metrics::dispatch_attempt(dispatcher, &call.rule, "failed");
                return Delivery::Failed { status: Some(status), error, attempts };
            }
            Verdict::Retry { status, error, after } => {
                metrics::dispatch_attempt(dispatcher, &call.rule, "retry");
                (status, error, after)
            }
        };
        let delay = after.unwrap_or_else(|| full_jitter(policy, attempts)).min(policy.max_delay);
        if started.elapsed() + delay > policy.max_elapsed {
            let error = format!("gave up after {attempts} attempts over {:?}: {error}", started.elapsed());
            return Delivery::Failed { status, error, attempts };
        }
        tracing::info!(attempt = attempts, status, %error, delay_ms = delay.as_millis() as u64, "call failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return Delivery::Abandoned,
        }
    }
}

/// One attempt, and the OAuth2 token it carried, if one.
async fn attempt(
    client: &reqwest::Client,
    call: &PlannedCall,
    rule: &DispatchRule,
    message_id: &str,
    tokens: &Tokens,
) -> (Verdict, Option<String>) {
    let token = match &rule.oauth2 {
        Some(oauth2) => match tokens.get(client, oauth2).await {
            Ok(token) => Some(token),
            Err(e) => {
                let error = format!("no OAuth2 token from {}: {e}", without_query(&oauth2.token_url));
                return (Verdict::Retry { status: None, error, after: None }, None);
            }
        },
        None => None,
    };
    (send(client, call, rule, message_id, token.as_deref()).await, token)
}

/// Sends the call (with `token` as its bearer token, when there is one) and judges the answer.
async fn send(
    client: &reqwest::Client,
    call: &PlannedCall,
    rule: &DispatchRule,
    message_id: &str,
    token: Option<&str>,
) -> Verdict {
    let Ok(method) = reqwest::Method::from_bytes(call.method.as_bytes()) else {
        return Verdict::Fail { status: 0, error: format!("bad method {}", call.method) };
    };
    let body = call.body.as_ref().map(Body::bytes);
    // Signed now, over the body as sent: a retry after a long backoff is still within the
    // receiver's tolerance. The signature's headers replace any the rule wrote.
    let signature = match &rule.sign {
        Some(signer) => sign(signer, body.as_deref().unwrap_or_default(), unix_now(), message_id),
        None => Vec::new(),
    };
    let mut req = client.request(method, &call.url).timeout(rule.timeout);
    for (k, v) in &call.headers {
        if !signature.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)) {
            req = req.header(k, v);
        }
    }
    for (k, v) in signature {
        req = req.header(k, v);
    }
    if let Some(token) = token {
        // Replaces any Authorization the rule wrote: the rule's own is refused beside oauth2.
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let policy = &rule.retry;
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            let retry_after = res.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = read_body(res).await;
            classify(status, retry_after.as_deref(), &body, policy)
        }
        Err(e) if e.is_timeout() => Verdict::Retry { status: None, error: "timed out".into(), after: None },
        // reqwest would quote the whole URL, query included, where a key may travel: name
        // the call without its query instead.
        Err(e) => {
            let error =
                format!("{} {}: {}", call.method, without_query(&call.url), crate::text::error_chain(&e.without_url()));
            Verdict::Retry { status: None, error, after: None }
        }
    }
}

/// How much of an answer's body is read so that its connection can be used again; a longer
/// body is left unread, which closes the connection.
pub const DRAIN_LIMIT: usize = 64 * 1024;

/// How much of a failed call's body its error quotes.
pub const QUOTED_BYTES: usize = 256;

/// Reads the answer's body, as far as [`DRAIN_LIMIT`] (a body left unread closes the
/// connection: every call would pay a new one, and a TLS handshake), and returns the first
/// [`QUOTED_BYTES`] of it, plus whether there was more. A body that breaks off keeps what came.
async fn read_body(mut res: reqwest::Response) -> (Vec<u8>, bool) {
    let (mut head, mut read) = (Vec::new(), 0usize);
    while let Ok(Some(chunk)) = res.chunk().await {
        let room = QUOTED_BYTES - head.len();
        head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        read += chunk.len();
        if read > DRAIN_LIMIT {
            break;
        }
    }
    (head, read > QUOTED_BYTES)
}

/// The policy's reading of a status (its `done_on` and `retry_on` included); `body` is the
/// start of the answer's body and whether it went on.
fn classify(status: StatusCode, retry_after: Option<&str>, body: &(Vec<u8>, bool), policy: &RetryPolicy) -> Verdict {
    let code = status.as_u16();
    if status.is_success() || policy.done_on.contains(&code) {
        Verdict::Done(code)
    } else if policy.retries(code) {
        let after = if code == 429 || code == 503 { retry_after.and_then(parse_retry_after) } else { None };
        Verdict::Retry { status: Some(code), error: http_error(code, body), after }
    } else {
        Verdict::Fail { status: code, error: http_error(code, body) }
    }
}

/// `HTTP 404: {"error":"no such order"}`: the status and the start of the body on one line
/// (control characters and runs of white space become one space; `…` marks a cut).
fn http_error(code: u16, (head, more): &(Vec<u8>, bool)) -> String {
    let text = String::from_utf8_lossy(head);
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    match (words.is_empty(), more) {
        (true, _) => format!("HTTP {code}"),
        (false, false) => format!("HTTP {code}: {}", words.join(" ")),
        (false, true) => format!("HTTP {code}: {}…", words.join(" ")),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The ceiling of the delay before attempt `attempts + 1`: initial × 2^(attempts-1), capped.
pub fn backoff_ceiling(policy: &RetryPolicy, attempts: u32) -> Duration {
    let factor = 1u32.checked_shl(attempts.saturating_sub(1).min(30)).unwrap_or(u32::MAX);
    policy.initial_delay.saturating_mul(factor).min(policy.max_delay)
}

/// Full jitter: a uniform delay between zero and the ceiling.
fn full_jitter(policy: &RetryPolicy, attempts: u32) -> Duration {
    let ceiling = backoff_ceiling(policy, attempts);
    ceiling.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns taken at once are spaced by the interval; after a pause, the next turn is now
    /// (no burst saved up).
    #[tokio::test]
    async fn turns_are_evenly_spaced_and_idle_time_is_not_saved_up() {
        let gate = Gate::new(8, Some(1000));
        let pace = gate.pace.as_ref().unwrap();
        let before = tokio::time::Instant::now();
        let turns: Vec<_> = (0..3).map(|_| pace.take_turn()).collect();
        assert!(turns[0] >= before);
        assert_eq!(turns[1] - turns[0], Duration::from_millis(1));
        assert_eq!(turns[2] - turns[1], Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = tokio::time::Instant::now();
        let (a, b) = (pace.take_turn(), pace.take_turn());
        assert!(a >= now, "a turn is never in the past");
        assert_eq!(b - a, Duration::from_millis(1), "the idle time did not buy a burst");
        assert!(Gate::new(8, None).pace.is_none());
    }

    #[tokio::test]
    async fn a_call_waiting_for_its_place_or_turn_is_abandoned_when_cancelled() {
        let gate = Gate::new(1, Some(1));
        let cancel = CancellationToken::new();
        let first = gate.enter(&cancel).await;
        assert!(first.is_some());
        let waiting = gate.enter(&cancel);
        cancel.cancel();
        assert!(waiting.await.is_none(), "no place: the only one is held");
        drop(first);
        let cancel = CancellationToken::new();
        let (second, _) = tokio::join!(gate.enter(&cancel), async { cancel.cancel() });
        assert!(second.is_none(), "its turn is a second away");
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(900),
            done_on: vec![],
            retry_on: vec![],
        }
    }

    #[test]
    fn ceilings_grow_exponentially_up_to_the_cap() {
        let p = policy();
        let ceilings: Vec<u128> = (1..=10).map(|n| backoff_ceiling(&p, n).as_millis()).collect();
        assert_eq!(ceilings, [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        assert_eq!(backoff_ceiling(&p, 1000), Duration::from_secs(30));
        for n in 1..20 {
            assert!(full_jitter(&p, n) <= backoff_ceiling(&p, n));
        }
    }

    #[test]
    fn statuses_are_classified_by_the_policy() {
        let none = (Vec::new(), false);
        let with = |done_on: &[u16], retry_on: &[u16]| RetryPolicy {
            done_on: done_on.to_vec(),
            retry_on: retry_on.to_vec(),
            ..policy()
        };
        let read = |s: u16, p: &RetryPolicy| classify(StatusCode::from_u16(s).unwrap(), None, &none, p);
        let plain = policy();
        assert!(matches!(read(200, &plain), Verdict::Done(200)));
        assert!(matches!(read(204, &plain), Verdict::Done(204)));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(read(s, &plain), Verdict::Retry { .. }), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 409, 422] {
            assert!(matches!(read(s, &plain), Verdict::Fail { .. }), "{s}");
        }
        assert!(matches!(read(409, &with(&[409], &[])), Verdict::Done(409)));
        assert!(matches!(read(404, &with(&[409], &[])), Verdict::Fail { .. }));
        assert!(matches!(read(503, &with(&[503], &[])), Verdict::Done(503)));
        assert!(matches!(read(404, &with(&[], &[404])), Verdict::Retry { status: Some(404), .. }));
        assert!(matches!(read(422, &with(&[], &[404])), Verdict::Fail { .. }));
        match classify(StatusCode::TOO_MANY_REQUESTS, Some("3"), &none, &plain) {
            Verdict::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(3))),
            _ => panic!("429 must retry"),
        }
    }

    #[test]
    fn a_failed_call_quotes_the_start_of_its_body_on_one_line() {
        let body = |text: &str, more| (text.as_bytes().to_vec(), more);
        assert_eq!(http_error(404, &body("", false)), "HTTP 404");
        assert_eq!(http_error(404, &body(" \r\n", false)), "HTTP 404");
        assert_eq!(
            http_error(404, &body("{\"error\":\"no such order\"}\n", false)),
            r#"HTTP 404: {"error":"no such order"}"#
        );
        assert_eq!(
            http_error(502, &body("<html>\r\n  <title>502\tBad\x1b[31m Gateway", true)),
            "HTTP 502: <html> <title>502 Bad [31m Gateway…"
        );
        // A multi-byte character cut at the end shows as one replacement character.
        let cut = ("caf\u{e9}".as_bytes()[..4].to_vec(), true);
        assert_eq!(http_error(400, &cut), "HTTP 400: caf\u{fffd}…");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
