//! One pass over a dead-letter topic: from where a consumer group's last pass stopped to the
//! end as it was at the start, sending what each letter becomes and committing a letter only
//! once the broker holds all of it. `switchyard redrive` makes such a pass for a dispatcher's
//! dead letters (`dispatch::redrive`) and for a source's (`ingress::redrive`).
//!
//! A letter that comes again during the pass waits for the next one. A pass cut short repeats
//! letters, it never loses one: whatever was sent before a failure is settled and committed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::kafka::consumer;
use crate::kafka::producer::{self, EventProducer};
use crate::routes::KafkaSettings;

/// Records waiting for the broker's acknowledgement before their letters are committed.
const BATCH: usize = 1024;

/// One pass, as a command asks for it.
pub struct Pass<'a> {
    pub kafka: &'a KafkaSettings,
    /// The dead-letter topic read.
    pub topic: &'a str,
    /// The consumer group that remembers how far the passes got.
    pub group: String,
    pub client_id: String,
    /// Decide about every letter, but send and commit nothing.
    pub dry_run: bool,
    /// At most this many letters are taken (the rest wait for the next pass).
    pub limit: Option<usize>,
    /// How long the broker may keep the pass waiting for anything (metadata, a letter).
    pub timeout: Duration,
}

/// What one letter becomes.
pub enum Verdict {
    /// Not this pass's letter (another dispatcher's, on a shared topic): read over.
    Pass,
    /// Taken: these records are sent (none, for a letter that needs nothing sent) before the
    /// letter is committed.
    Take(Vec<Record>),
}

/// A record to send for a letter.
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: OwnedHeaders,
}

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Letters taken (in a dry run: that would be).
    pub taken: usize,
    /// Letters that were not this pass's.
    pub passed: usize,
    /// Letters left for a later pass by `limit`.
    pub left: bool,
}

/// Makes the pass; `decide` says what each letter becomes. A one-shot command's work: it
/// makes librdkafka's blocking calls (metadata, offsets, commits) on the task that runs it.
pub async fn pass(
    cfg: &Pass<'_>,
    decide: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<Verdict>,
) -> anyhow::Result<Counts> {
    let own = [("client.id", cfg.client_id.clone()), ("enable.auto.commit", "false".into())];
    let consumer: StreamConsumer =
        consumer::config(cfg.kafka, &cfg.group, &own).create().context("cannot create the consumer")?;
    let Some(ends) = unread(&consumer, cfg)? else { return Ok(Counts::default()) };
    let producer = if cfg.dry_run { None } else { Some(producer::producer(cfg.kafka)?) };
    let mut progress = Progress::default();
    let read = read(cfg, &consumer, producer.as_ref(), ends, &mut progress, decide).await;
    // Whatever was sent before a failure is settled and committed too, so a new pass does not
    // send it again.
    let settled = if cfg.dry_run { Ok(()) } else { settle(&consumer, cfg, &mut progress).await };
    read.and(settled).map(|()| progress.counts)
}

/// How far a pass got: what it counted, the records not yet acknowledged (with the letter
/// each is for), and per partition the offset after the last letter read.
#[derive(Default)]
struct Progress {
    counts: Counts,
    sent: Vec<(i32, i64, DeliveryFuture)>,
    read_to: BTreeMap<i32, i64>,
}

/// Reads the letters up to `ends` (or `limit`) and sends what each becomes (nothing in a dry
/// run), settling every [`BATCH`] records.
async fn read(
    cfg: &Pass<'_>,
    consumer: &StreamConsumer,
    producer: Option<&EventProducer>,
    mut ends: BTreeMap<i32, i64>,
    progress: &mut Progress,
    mut decide: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<Verdict>,
) -> anyhow::Result<()> {
    let mut last_read = Instant::now();
    while !ends.is_empty() {
        if cfg.limit.is_some_and(|n| progress.counts.taken >= n) {
            progress.counts.left = true;
            break;
        }
        let msg = match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => bail!("cannot read {}: {e}", cfg.topic),
            Err(_) => {
                // The end may sit past records a reader never sees (transaction markers).
                ends.retain(|p, end| position(consumer, cfg.topic, *p).is_none_or(|at| at < *end));
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
        match decide(&msg)? {
            Verdict::Pass => progress.counts.passed += 1,
            Verdict::Take(records) => {
                progress.counts.taken += 1;
                // A dry run has no producer: it sends nothing.
                for record in records.into_iter().filter(|_| producer.is_some()) {
                    let delivery = send(producer, record)?;
                    progress.sent.push((partition, offset, delivery));
                }
            }
        }
        progress.read_to.insert(partition, offset + 1);
        if progress.sent.len() >= BATCH {
            settle(consumer, cfg, progress).await?;
        }
    }
    Ok(())
}

/// Queues one record with the producer.
fn send(producer: Option<&EventProducer>, r: Record) -> anyhow::Result<DeliveryFuture> {
    let producer = producer.context("a dry run sends nothing")?;
    let mut record = FutureRecord::to(&r.topic).headers(r.headers);
    if let Some(p) = &r.payload {
        record = record.payload(p.as_slice());
    }
    if let Some(k) = &r.key {
        record = record.key(k.as_slice());
    }
    producer.send_result(record).map_err(|(e, _)| e).context("cannot queue a copy")
}

/// Per partition of the dead-letter topic, the end (as of now) of what is left to read, for
/// the partitions that have something left; None when the topic does not exist yet.
fn unread(consumer: &StreamConsumer, cfg: &Pass<'_>) -> anyhow::Result<Option<BTreeMap<i32, i64>>> {
    let topic = cfg.topic;
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
async fn settle(consumer: &StreamConsumer, cfg: &Pass<'_>, progress: &mut Progress) -> anyhow::Result<()> {
    let mut failed: Option<String> = None;
    for (partition, offset, delivery) in progress.sent.drain(..) {
        let error = match delivery.await {
            Ok(Ok(_)) => continue,
            Ok(Err((e, _))) => e.to_string(),
            Err(_) => "the producer went away".to_string(),
        };
        let to = progress.read_to.entry(partition).or_insert(offset);
        *to = (*to).min(offset);
        failed.get_or_insert(format!(
            "what the letter at partition {partition} offset {offset} became was not taken: {error}"
        ));
    }
    let topic = cfg.topic;
    let mut commit = TopicPartitionList::new();
    for (p, to) in &progress.read_to {
        commit.add_partition_offset(topic, *p, Offset::Offset(*to))?;
    }
    if commit.count() > 0 {
        consumer.commit(&commit, CommitMode::Sync).context(
            "what the letters became is on the broker, but the pass's offsets were not committed (a new run repeats them)",
        )?;
    }
    match failed {
        Some(why) => bail!("{why}; the letters before it are redriven and committed"),
        None => Ok(()),
    }
}
