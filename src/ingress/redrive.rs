//! `switchyard redrive --source`: a source's refused webhooks, kept in its dead-letter topic,
//! through its routes again once they are fixed. One pass over the topic (`kafka::letters`),
//! remembered by the consumer group `switchyard.redrive.source.<name>`.
//!
//! Each letter's webhook runs through the same pipeline as the server's, without the signature
//! check (it held when the webhook came). The events it gives now are published; a webhook
//! still refused is written again at the end of the dead-letter topic with the new reason, for
//! a later pass; one now ignored or replied to needs nothing. A letter is committed once the
//! broker holds what it became.

use std::fmt;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};

use super::dead_letter;
use crate::kafka::letters::{self, Record, Verdict};
use crate::pipeline::{self, Event, Inbound, Outcome};
use crate::routes::{KafkaSettings, Source};
use crate::trace::TraceParent;

/// What `switchyard redrive --source` asks for.
pub struct SourceRedrive<'a> {
    pub kafka: &'a KafkaSettings,
    pub source: &'a Source,
    /// Show what each letter would become: nothing is sent or committed.
    pub dry_run: bool,
    /// At most this many letters are taken.
    pub limit: Option<usize>,
    /// How long the broker may keep the command waiting for anything.
    pub timeout: Duration,
}

/// One letter and what its webhook became.
pub struct Letter {
    pub partition: i32,
    pub offset: i64,
    pub event_id: Option<String>,
    pub became: Became,
}

pub enum Became {
    /// Events published (by these rules).
    Published(Vec<String>),
    Ignored(String),
    Replied(String),
    /// Refused again: the status and why; written back to the dead-letter topic.
    Refused(u16, String),
}

impl fmt::Display for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition={} offset={}", self.partition, self.offset)?;
        if let Some(id) = &self.event_id {
            write!(f, " event_id={id:?}")?;
        }
        match &self.became {
            Became::Published(rules) => write!(f, ": {} event(s), rules {}", rules.len(), rules.join(", ")),
            Became::Ignored(why) => write!(f, ": ignored ({why})"),
            Became::Replied(reply) => write!(f, ": answered by reply '{reply}', nothing to publish"),
            Became::Refused(status, why) => write!(f, ": refused again, {status}: {why}"),
        }
    }
}

/// What a redrive did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub published: usize,
    pub events: usize,
    pub ignored: usize,
    pub refused: usize,
    /// Letters of other sources sharing the dead-letter topic, passed over.
    pub others: usize,
    /// Letters left for a later run by `limit`.
    pub left: bool,
}

impl Summary {
    /// The last line of `switchyard redrive --source`.
    pub fn describe(&self, cfg: &SourceRedrive<'_>) -> String {
        let s = cfg.source;
        let topic = s.dead_letter_topic.as_deref().unwrap_or_default();
        let (published, written) =
            if cfg.dry_run { ("would be published", "would be written") } else { ("published", "written") };
        let mut line = format!(
            "{} dead letter(s) of source {} in {topic}: {} {published} as {} event(s), {} ignored or replied to, {} refused again",
            self.published + self.ignored + self.refused,
            s.name,
            self.published,
            self.events,
            self.ignored,
            self.refused,
        );
        if self.refused > 0 {
            line.push_str(&format!(" ({written} back to {topic})"));
        }
        if self.others > 0 {
            line.push_str(&format!("; {} of other sources passed over", self.others));
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

/// Runs the source's dead letters through its routes again; `each` sees every letter and
/// what it became (or, in a dry run, would become) before anything is sent.
pub async fn run(cfg: &SourceRedrive<'_>, mut each: impl FnMut(&Letter)) -> anyhow::Result<Summary> {
    let source = cfg.source;
    let Some(topic) = source.dead_letter_topic.as_deref() else {
        anyhow::bail!("source '{}' has no dead_letter_topic", source.name);
    };
    let pass = letters::Pass {
        kafka: cfg.kafka,
        topic,
        group: format!("switchyard.redrive.source.{}", source.name),
        client_id: format!("switchyard-redrive-source-{}", source.name),
        dry_run: cfg.dry_run,
        limit: cfg.limit,
        timeout: cfg.timeout,
    };
    let mut summary = Summary::default();
    let counts = letters::pass(&pass, |msg| {
        // Sources may share a dead-letter topic: each redrive takes its own letters.
        let of = msg.headers().and_then(|h| h.iter().find(|h| h.key == dead_letter::SOURCE)).and_then(|h| h.value);
        if of.is_some_and(|name| name != source.name.as_bytes()) {
            return Ok(Verdict::Pass);
        }
        let request = dead_letter::request_headers(
            msg.headers().into_iter().flat_map(|h| h.iter()).map(|h| (h.key, h.value.unwrap_or_default())),
        );
        let body = msg.payload().unwrap_or_default();
        let inbound = Inbound { headers: &request, query: None, body, now: super::unix_now(), verify: false };
        let (event_id, result) = pipeline::ingest(source, &inbound);
        let (became, records) = match result {
            Ok(Outcome::Publish { events, .. }) => {
                summary.published += 1;
                summary.events += events.len();
                let rules = events.iter().map(|e| e.rule.clone()).collect();
                let trace = request.get("traceparent").and_then(|v| v.to_str().ok());
                (Became::Published(rules), records_of(events, TraceParent::from_header(trace)))
            }
            Ok(Outcome::Ignored(why)) => {
                summary.ignored += 1;
                (Became::Ignored(why), Vec::new())
            }
            Ok(Outcome::Reply { reply, .. }) => {
                summary.ignored += 1;
                (Became::Replied(reply), Vec::new())
            }
            Err(rejection) => {
                summary.refused += 1;
                let again = Record {
                    topic: topic.to_owned(),
                    key: msg.key().map(<[u8]>::to_vec),
                    payload: msg.payload().map(<[u8]>::to_vec),
                    headers: dead_letter::headers(source, &request, &rejection),
                };
                (Became::Refused(rejection.status, rejection.message), vec![again])
            }
        };
        each(&Letter { partition: msg.partition(), offset: msg.offset(), event_id, became });
        Ok(Verdict::Take(records))
    })
    .await?;
    summary.left = counts.left;
    summary.others = counts.passed;
    Ok(summary)
}

/// The records of a webhook's events, as the ingress publishes them: each carries a span of
/// the webhook's trace as its parent.
fn records_of(events: Vec<Event>, trace: TraceParent) -> Vec<Record> {
    let traceparent = trace.child().to_string();
    events
        .into_iter()
        .map(|event| {
            let payload = event.payload();
            let mut headers = OwnedHeaders::new_with_capacity(event.headers.len() + 1);
            for (k, v) in event.headers.iter().filter(|(k, _)| k != "traceparent") {
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
            }
            headers = headers.insert(Header { key: "traceparent", value: Some(traceparent.as_bytes()) });
            Record { topic: event.topic, key: event.key.map(String::into_bytes), payload: Some(payload), headers }
        })
        .collect()
}
