//! Redrive: a dispatcher's dead letters go back onto its topic, addressed to that dispatcher
//! (and the rule that gave up) alone, once what failed them is fixed. `switchyard redrive`
//! runs it.
//!
//! It reads the dead-letter topic from where the last redrive of the dispatcher stopped (the
//! consumer group `<group>.redrive.<dispatcher>`) up to its end as it was at the start, so a
//! letter that fails again during the run waits for the next one. A letter's offset is
//! committed only once the broker holds its copy on the topic: a redrive cut short repeats
//! letters, it never loses one. The copy keeps the letter's key (so the same partition and
//! the key's order from there on), value and original headers; the `switchyard.dlq.*` headers
//! give way to two that name who it is for.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::kafka::consumer;
use crate::kafka::producer::{self, EventProducer};
use crate::pipeline::plan::{FOR_DISPATCHER, FOR_RULE};
use crate::routes::{Dispatcher, KafkaSettings};

/// Copies waiting for the broker's acknowledgement before their letters are committed.
const BATCH: usize = 1024;

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
/// (or, in a dry run, would go) back, before it is sent. A one-shot command's work: it makes
/// librdkafka's blocking calls (metadata, offsets, commits) on the task that runs it.
pub async fn run(cfg: &RedriveConfig<'_>, each: impl FnMut(&Letter)) -> anyhow::Result<Summary> {
    let own =
        [("client.id", format!("switchyard-redrive-{}", cfg.dispatcher.name)), ("enable.auto.commit", "false".into())];
    let consumer: StreamConsumer =
        consumer::config(cfg.kafka, &cfg.group(), &own).create().context("cannot create the consumer")?;
    let Some(ends) = unread(&consumer, cfg)? else { return Ok(Summary::default()) };
    let producer = if cfg.dry_run { None } else { Some(producer::producer(cfg.kafka)?) };
    let mut progress = Progress::default();
    let read = copy(cfg, &consumer, producer.as_ref(), ends, &mut progress, each).await;
    // Whatever was sent before a failure is settled and committed too, so a new run does not
    // send it again.
    let settled = if cfg.dry_run { Ok(()) } else { settle(&consumer, cfg, &mut progress).await };
    read.and(settled).map(|()| progress.summary)
}

/// How far a redrive got: what it counted, the copies not yet acknowledged, and per partition
/// the offset after the last letter read.
#[derive(Default)]
struct Progress {
    summary: Summary,
    sent: Vec<(i32, i64, DeliveryFuture)>,
    read_to: BTreeMap<i32, i64>,
}

/// Reads the letters up to `ends` (or `limit`) and sends the dispatcher's back (none in a dry
/// run), settling every [`BATCH`] copies.
async fn copy(
    cfg: &RedriveConfig<'_>,
    consumer: &StreamConsumer,
    producer: Option<&EventProducer>,
    mut ends: BTreeMap<i32, i64>,
    progress: &mut Progress,
    mut each: impl FnMut(&Letter),
) -> anyhow::Result<()> {
    let d = cfg.dispatcher;
    let mut last_read = Instant::now();
    while !ends.is_empty() {
        if cfg.limit.is_some_and(|n| progress.summary.redriven >= n) {
            progress.summary.left = true;
            break;
        }
        let msg = match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => bail!("cannot read {}: {e}", d.dead_letter_topic),
            Err(_) => {
                // The end may sit past records a reader never sees (transaction markers).
                ends.retain(|p, end| position(consumer, &d.dead_letter_topic, *p).is_none_or(|at| at < *end));
                if !ends.is_empty() && last_read.elapsed() > cfg.timeout {
                    let waiting: Vec<_> = ends.keys().collect();
                    bail!("no dead letter arrived within {:?} from partitions {waiting:?}", cfg.timeout);
                }
                continue;
            }
        };
        last_read = Instant::now();
        let (partition, offset) = (msg.partition(), msg.offset());
        let Some(&end) = ends.get(&partition) else { continue };
        if offset >= end {
            ends.remove(&partition);
            continue;
        }
        if offset + 1 >= end {
            ends.remove(&partition);
        }
        if is_for(&msg, d) {
            let letter = letter(&msg);
            each(&letter);
            progress.summary.redriven += 1;
            if let Some(producer) = producer {
                let headers = readdressed(&msg, &d.name, letter.dlq.get("rule").map(String::as_str));
                let mut record = FutureRecord::to(&d.topic).headers(headers);
                if let Some(p) = msg.payload() {
                    record = record.payload(p);
                }
                if let Some(k) = msg.key() {
                    record = record.key(k);
                }
                let delivery = producer.send_result(record).map_err(|(e, _)| e).context("cannot queue a copy")?;
                progress.sent.push((partition, offset, delivery));
            }
        } else {
            progress.summary.others += 1;
        }
        progress.read_to.insert(partition, offset + 1);
        if progress.sent.len() >= BATCH {
            settle(consumer, cfg, progress).await?;
        }
    }
    Ok(())
}

/// Per partition of the dead-letter topic, the end (as of now) of what is left to read, for
/// the partitions that have something left; None when the topic does not exist yet.
fn unread(consumer: &StreamConsumer, cfg: &RedriveConfig<'_>) -> anyhow::Result<Option<BTreeMap<i32, i64>>> {
    let topic = &cfg.dispatcher.dead_letter_topic;
    let metadata = consumer.fetch_metadata(Some(topic), cfg.timeout).context("cannot reach the brokers")?;
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    match meta.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(None),
        Some(e) => bail!("cannot read {topic}: {e}"),
    }
    let mut all = TopicPartitionList::new();
    for p in meta.partitions() {
        all.add_partition(topic, p.id());
    }
    let committed = consumer.committed_offsets(all, cfg.timeout).context("cannot read the redrive's offsets")?;
    let mut start = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for e in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, e.partition(), cfg.timeout)?;
        let from = match e.offset() {
            Offset::Offset(n) => n.max(low),
            _ => low,
        };
        if from < high {
            start.add_partition_offset(topic, e.partition(), Offset::Offset(from))?;
            ends.insert(e.partition(), high);
        }
    }
    consumer.assign(&start)?;
    Ok(Some(ends))
}

/// The next offset the consumer will read from `partition`, when it knows it.
fn position(consumer: &StreamConsumer, topic: &str, partition: i32) -> Option<i64> {
    let at = consumer.position().ok()?;
    match at.find_partition(topic, partition)?.offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

/// Waits for every copy sent, then commits each partition up to its first copy the broker did
/// not take (all it read when there is none); fails naming that copy's letter.
async fn settle(consumer: &StreamConsumer, cfg: &RedriveConfig<'_>, progress: &mut Progress) -> anyhow::Result<()> {
    let mut failed: Option<String> = None;
    for (partition, offset, delivery) in progress.sent.drain(..) {
        let error = match delivery.await {
            Ok(Ok(_)) => continue,
            Ok(Err((e, _))) => e.to_string(),
            Err(_) => "the producer went away".to_string(),
        };
        let to = progress.read_to.entry(partition).or_insert(offset);
        *to = (*to).min(offset);
        failed.get_or_insert(format!("the copy of partition {partition} offset {offset} was not taken: {error}"));
    }
    let topic = &cfg.dispatcher.dead_letter_topic;
    let mut commit = TopicPartitionList::new();
    for (p, to) in &progress.read_to {
        commit.add_partition_offset(topic, *p, Offset::Offset(*to))?;
    }
    if commit.count() > 0 {
        consumer.commit(&commit, CommitMode::Sync).context(
            "the copies are on the topic, but the redrive's offsets were not committed (a new run repeats them)",
        )?;
    }
    match failed {
        Some(why) => bail!("{why}; the letters before it are redriven and committed"),
        None => Ok(()),
    }
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
