//! `switchyard tap`: the records of some topics as JSON lines, from their start or from now, to
//! Ctrl-C, a count or (`--exit`) where each partition ended when the tap started: a
//! look at what the ingress published and what the dispatchers dead-lettered, with no Kafka
//! client to install. It joins no consumer group and commits nothing, so it takes nothing from
//! the dispatchers.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Map, Value as Json, json};

use crate::kafka::consumer;
use crate::routes::KafkaSettings;

/// What a tap reads.
pub struct Tap<'a> {
    pub kafka: &'a KafkaSettings,
    pub topics: &'a [String],
    /// From each partition's start; otherwise only what is written from now on.
    pub from_start: bool,
    /// Stop after this many records.
    pub count: Option<usize>,
    /// Stop once every partition is read to the end it had when the tap started (kcat's `-e`).
    pub to_end: bool,
    /// How long the brokers may take to answer for the topics.
    pub timeout: Duration,
}

/// Prints (through `out`) every record of the tapped topics until `count` records, the end (with
/// `to_end`) or Ctrl-C; returns how many. A topic that does not exist is an error naming it.
pub async fn run(tap: &Tap<'_>, mut out: impl FnMut(String)) -> anyhow::Result<usize> {
    let own = [("client.id", "switchyard-tap".to_owned()), ("enable.auto.commit", "false".to_owned())];
    // Assigned, not subscribed: the group id is librdkafka's requirement, never joined.
    let group = format!("switchyard-tap-{}", hex::encode(rand::random::<[u8; 4]>()));
    let consumer: StreamConsumer =
        consumer::config(tap.kafka, &group, &own).create().context("cannot create the Kafka consumer")?;
    let assignment = tokio::task::block_in_place(|| partitions(&consumer, tap))?;
    consumer.assign(&assignment).context("cannot read the topics")?;
    let mut ends = match tap.to_end {
        true => Some(tokio::task::block_in_place(|| Ends::fetch(&consumer, &assignment, tap.timeout))?),
        false => None,
    };
    let mut read = 0;
    let mut look = tokio::time::interval(Duration::from_millis(200));
    while tap.count.is_none_or(|n| read < n) && ends.as_ref().is_none_or(|e| !e.all_read()) {
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(m) => {
                    out(line(&m));
                    read += 1;
                    if let Some(ends) = &mut ends {
                        ends.read(m.topic(), m.partition(), m.offset() + 1);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the topics");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // A partition whose last record is never delivered (a transaction's marker) is read
            // to its end when its position is.
            _ = look.tick(), if ends.is_some() => {
                let positions = consumer.position().context("cannot read the tap's positions")?;
                for p in positions.elements() {
                    if let (Some(ends), Offset::Offset(next)) = (&mut ends, p.offset()) {
                        ends.read(p.topic(), p.partition(), next);
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(read)
}

/// Where each partition ended when the tap started, for the partitions not yet read that far.
struct Ends(HashMap<(String, i32), i64>);

impl Ends {
    /// Two requests for all partitions (ListOffsets for the earliest and for the latest offset);
    /// a partition that holds nothing is read to its end already.
    fn fetch(consumer: &StreamConsumer, assigned: &TopicPartitionList, timeout: Duration) -> anyhow::Result<Ends> {
        let at = |offset: Offset| -> anyhow::Result<HashMap<(String, i32), i64>> {
            let mut asked = assigned.clone();
            asked.set_all_offsets(offset)?;
            let answer = consumer.offsets_for_times(asked, timeout).context("cannot read where the partitions end")?;
            let mut at = HashMap::new();
            for p in answer.elements() {
                match (p.error(), p.offset()) {
                    (Ok(()), Offset::Offset(o)) => at.insert((p.topic().to_owned(), p.partition()), o),
                    (Err(e), _) => bail!("cannot read where '{}' partition {} ends: {e}", p.topic(), p.partition()),
                    (Ok(()), o) => bail!("'{}' partition {} has no end offset ({o:?})", p.topic(), p.partition()),
                };
            }
            Ok(at)
        };
        let (starts, mut ends) = (at(Offset::Beginning)?, at(Offset::End)?);
        ends.retain(|p, end| starts.get(p).is_none_or(|start| *end > *start));
        Ok(Ends(ends))
    }

    /// Notes that a partition is read up to (not including) `next`.
    fn read(&mut self, topic: &str, partition: i32, next: i64) {
        let key = (topic.to_owned(), partition);
        if self.0.get(&key).is_some_and(|&end| next >= end) {
            self.0.remove(&key);
        }
    }

    fn all_read(&self) -> bool {
        self.0.is_empty()
    }
}

/// Every partition of the tapped topics, at its start or its end.
fn partitions(consumer: &StreamConsumer, tap: &Tap) -> anyhow::Result<TopicPartitionList> {
    let offset = if tap.from_start { Offset::Beginning } else { Offset::End };
    let mut all = TopicPartitionList::new();
    for topic in tap.topics {
        let metadata = consumer.fetch_metadata(Some(topic), tap.timeout).context("cannot reach the brokers")?;
        let meta = metadata.topics().iter().find(|t| t.name() == topic);
        match meta.and_then(|m| m.error()).map(RDKafkaErrorCode::from) {
            _ if meta.is_none_or(|m| m.partitions().is_empty()) => bail!("topic '{topic}' does not exist"),
            None => {}
            Some(e) => bail!("cannot read topic '{topic}': {e}"),
        }
        for p in meta.into_iter().flat_map(|m| m.partitions()) {
            all.add_partition_offset(topic, p.id(), offset)?;
        }
    }
    Ok(all)
}

/// A record as one JSON object: where it is, its key and headers as text, its value as JSON
/// (as text when it is not JSON; `{"base64": …}` when it is not even UTF-8).
fn line(m: &BorrowedMessage) -> String {
    let text = |bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) }),
    };
    let mut headers = Map::new();
    for h in m.headers().into_iter().flat_map(|hs| hs.iter()) {
        headers.insert(h.key.to_owned(), h.value.map_or(Json::Null, text));
    }
    let value = m.payload().map_or(Json::Null, |v| serde_json::from_slice(v).unwrap_or_else(|_| text(v)));
    let timestamp = m.timestamp().to_millis().map_or(Json::Null, Json::from);
    // Written in this order (a JSON object's members would come sorted): where, then what.
    let members = [
        ("topic", Json::from(m.topic())),
        ("partition", Json::from(m.partition())),
        ("offset", Json::from(m.offset())),
        ("timestamp_ms", timestamp),
        ("key", m.key().map_or(Json::Null, text)),
        ("headers", Json::Object(headers)),
        ("value", value),
    ];
    let members: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", members.join(","))
}
