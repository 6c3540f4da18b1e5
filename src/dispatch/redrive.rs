//! Redrive: a dispatcher's dead letters go back onto its topic, addressed to that dispatcher
//! (and the rule that gave up) alone, once what failed them is fixed. `switchyard redrive`
//! runs it.
//!
//! It is one pass over the dead-letter topic (`kafka::letters`), remembered by the consumer
//! group `<group>.redrive.<dispatcher>`: a letter that fails again during the run waits for the
//! next one, and a letter is committed only once the broker holds its copy. The copy keeps the letter's key (so the same partition and
//! the key's order from there on), value and original headers; the `switchyard.dlq.*` headers
//! give way to two that name who it is for.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};

use crate::kafka::letters::{self, Verdict};
use crate::pipeline::plan::{FOR_DISPATCHER, FOR_RULE};
use crate::routes::{Dispatcher, KafkaSettings};

/// What `switchyard redrive` asks for.
pub struct RedriveConfig<'a> {
    pub kafka: &'a KafkaSettings,
    pub dispatcher: &'a Dispatcher,
    /// List the letters only: nothing is sent or committed.
    pub dry_run: bool,
    /// At most this many letters go back.
    pub limit: Option<usize>,
    /// How long the broker may keep the command waiting for anything (metadata, a letter).
    pub timeout: Duration,
}

impl RedriveConfig<'_> {
    /// The consumer group that remembers how far this dispatcher's redrives got.
    pub fn group(&self) -> String {
        format!("{}.redrive.{}", self.dispatcher.group, self.dispatcher.name)
    }
}

/// One dead letter, as the dispatcher's dead-letter headers describe it.
pub struct Letter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// `switchyard.dlq.*` headers, by the name after the prefix.
    pub dlq: BTreeMap<String, String>,
}

impl fmt::Display for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition={} offset={}", self.partition, self.offset)?;
        let fields = std::iter::once(("key", self.key.as_deref()))
            .chain(["rule", "reason", "status", "attempts", "error"].map(|n| (n, self.dlq.get(n).map(String::as_str))));
        for (name, value) in fields {
            match value {
                Some("") | None => {}
                Some(v) if v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) => {
                    write!(f, " {name}={v}")?
                }
                Some(v) => write!(f, " {name}={v:?}")?,
            }
        }
        Ok(())
    }
}

/// What a redrive did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Letters of this dispatcher sent back (in a dry run: that would be).
    pub redriven: usize,
    /// Letters of other dispatchers sharing the dead-letter topic, passed over.
    pub others: usize,
    /// Letters of this dispatcher left for a later run by `limit`.
    pub left: bool,
}

impl Summary {
    /// The last line of `switchyard redrive`.
    pub fn describe(&self, cfg: &RedriveConfig<'_>) -> String {
        let d = cfg.dispatcher;
        let done = if cfg.dry_run { "would go back" } else { "sent back" };
        let mut line =
            format!("{} dead letter(s) of {} in {} {done} to {}", self.redriven, d.name, d.dead_letter_topic, d.topic);
        if self.others > 0 {
            line.push_str(&format!("; {} of other dispatchers passed over", self.others));
        }
        if self.left {
            line.push_str("; more are waiting (--limit)");
        }
        if cfg.dry_run {
            line.push_str(" (dry run: nothing sent or committed)");
        }
        line
    }
}

/// Sends the dispatcher's dead letters back onto its topic; `each` sees every letter that goes
/// (or, in a dry run, would go) back, before it is sent.
pub async fn run(cfg: &RedriveConfig<'_>, mut each: impl FnMut(&Letter)) -> anyhow::Result<Summary> {
    let d = cfg.dispatcher;
    let pass = letters::Pass {
        kafka: cfg.kafka,
        topic: &d.dead_letter_topic,
        group: cfg.group(),
        client_id: format!("switchyard-redrive-{}", d.name),
        dry_run: cfg.dry_run,
        limit: cfg.limit,
        timeout: cfg.timeout,
    };
    let counts = letters::pass(&pass, |msg| {
        if !is_for(msg, d) {
            return Ok(Verdict::Pass);
        }
        let letter = letter(msg);
        each(&letter);
        let headers = readdressed(msg, &d.name, letter.dlq.get("rule").map(String::as_str));
        let copy = letters::Record {
            topic: d.topic.clone(),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().map(<[u8]>::to_vec),
            headers,
        };
        Ok(Verdict::Take(vec![copy]))
    })
    .await?;
    Ok(Summary { redriven: counts.taken, others: counts.passed, left: counts.left })
}

/// Whether a letter is `d`'s: its `switchyard.dlq.dispatcher` header says so; a letter written
/// before that header existed is told by its rule (a letter with neither is taken).
fn is_for(msg: &BorrowedMessage<'_>, d: &Dispatcher) -> bool {
    let header = |name: &str| {
        let headers = msg.headers()?;
        let h = headers.iter().find(|h| h.key == name)?;
        std::str::from_utf8(h.value?).ok()
    };
    match (header("switchyard.dlq.dispatcher"), header("switchyard.dlq.rule")) {
        (Some(name), _) => name == d.name,
        (None, Some(rule)) if !rule.is_empty() => d.rules.iter().any(|r| r.name == rule),
        _ => true,
    }
}

fn letter(msg: &BorrowedMessage<'_>) -> Letter {
    let mut dlq = BTreeMap::new();
    if let Some(headers) = msg.headers() {
        for h in headers.iter() {
            if let (Some(name), Some(value)) = (h.key.strip_prefix("switchyard.dlq."), h.value) {
                dlq.insert(name.to_string(), String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    let key = msg.key().map(|k| String::from_utf8_lossy(k).into_owned());
    Letter { partition: msg.partition(), offset: msg.offset(), key, dlq }
}

/// The letter's original headers, addressed to `dispatcher` (and `rule`, when it names one).
fn readdressed(msg: &BorrowedMessage<'_>, dispatcher: &str, rule: Option<&str>) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(headers) = msg.headers() {
        for h in headers.iter().filter(|h| !is_switchyard_own(h.key)) {
            out = out.insert(Header { key: h.key, value: h.value });
        }
    }
    out = out.insert(Header { key: FOR_DISPATCHER, value: Some(dispatcher) });
    if let Some(rule) = rule.filter(|r| !r.is_empty()) {
        out = out.insert(Header { key: FOR_RULE, value: Some(rule) });
    }
    out
}

/// Headers a dead letter or a redrive added, as opposed to the event's own.
fn is_switchyard_own(key: &str) -> bool {
    key.starts_with("switchyard.dlq.") || key.starts_with("switchyard.redrive.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_a_dead_letter_or_a_redrive_added_are_told_from_the_events_own() {
        assert!(is_switchyard_own("switchyard.dlq.error"));
        assert!(is_switchyard_own(FOR_RULE));
        assert!(!is_switchyard_own("event_id"));
        assert!(!is_switchyard_own("traceparent"));
    }

    #[test]
    fn a_letter_reads_as_one_line_of_its_dead_letter_headers() {
        let dlq = [("rule", "mark"), ("reason", "http_status"), ("status", "400"), ("error", "HTTP 400: \"no\"")];
        let letter = Letter {
            partition: 1,
            offset: 7,
            key: Some("12345".into()),
            dlq: dlq.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        assert_eq!(
            letter.to_string(),
            r#"partition=1 offset=7 key=12345 rule=mark reason=http_status status=400 error="HTTP 400: \"no\"""#
        );
    }
}
