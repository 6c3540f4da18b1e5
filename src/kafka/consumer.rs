//! The dispatcher's consumer: group membership, manual offset storing, a rebalance hook that
//! lets revoked partitions finish their in-flight calls and commit first, so per-key order
//! holds across rebalances, and the lag it exports (`Lag`: 0 for partitions it no longer holds).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, ClientContext};

use crate::dispatch::offsets::Tracker;
use crate::kafka::errors::ErrorLog;
use crate::routes::{Dispatcher, KafkaSettings};

/// How long a member may be silent before the group moves its partitions. librdkafka's
/// default is 45 s: a killed dispatcher would hold payments that long. 6 s (the smallest a
/// broker accepts by default, `group.min.session.timeout.ms`) trades an extra rebalance
/// after a 6 s network stall for delivery resuming well within 15 s of a crash.
pub const SESSION_TIMEOUT_MS: u32 = 6_000;

pub type GroupConsumer = StreamConsumer<GroupContext>;

/// Shared with the consumer so rebalances can see the work in flight.
pub struct GroupContext {
    /// The dispatcher's name (a metrics label).
    pub dispatcher: String,
    pub tracker: Arc<Mutex<Tracker>>,
    /// Longest wait for in-flight calls of revoked partitions.
    pub revoke_wait: Duration,
    /// librdkafka's errors, rate-limited (the consumer loop reports what it receives here too).
    pub errors: ErrorLog,
    /// The partitions whose lag this consumer exports.
    pub lag: Lag,
}

/// The partitions whose lag a consumer exports: one it no longer holds (a rebalance moved it
/// to another member, or the dispatcher stopped) reads 0 from then on instead of its last
/// lag, which would otherwise stay in `/metrics` for good and count twice in a sum over the
/// group's members.
#[derive(Default)]
pub struct Lag {
    exported: Mutex<Vec<(String, i32)>>,
}

impl Lag {
    /// The lag `statistics` gives for each partition this member holds (and knows the lag
    /// of), and 0, once, for each exported before that it no longer holds.
    pub fn update(&self, statistics: &rdkafka::Statistics) -> Vec<(String, i32, i64)> {
        let mut held: Vec<(String, i32, i64)> = Vec::new();
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                if partition >= 0 && p.desired && p.consumer_lag >= 0 {
                    held.push((topic.clone(), partition, p.consumer_lag));
                }
            }
        }
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, i32, i64)> = Vec::new();
        exported.retain(|(topic, partition)| {
            let still = held.iter().any(|(t, p, _)| t == topic && p == partition);
            if !still {
                out.push((topic.clone(), *partition, 0));
            }
            still
        });
        for (topic, partition, _) in &held {
            if !exported.iter().any(|(t, p)| t == topic && p == partition) {
                exported.push((topic.clone(), *partition));
            }
        }
        out.extend(held);
        out
    }

    /// 0 for every partition exported: the consumer stops.
    pub fn forget(&self) -> Vec<(String, i32, i64)> {
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        exported.drain(..).map(|(topic, partition)| (topic, partition, 0)).collect()
    }
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }

    /// librdkafka's periodic statistics: export the lag of every assigned partition (and 0 for
    /// those no longer assigned).
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, partition, lag) in self.lag.update(&statistics) {
            crate::metrics::consumer_lag(&self.dispatcher, &topic, partition, lag);
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else { return };
        let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
        tracing::info!(dispatcher = %self.dispatcher, ?partitions, "partitions revoked: finishing the events already received");
        // Drain what was received, so the next owner starts after it (no replays); what
        // is left at the deadline is cancelled and will be redelivered to the next owner.
        // Once the shutdown has abandoned all work (its grace period is over), nothing left
        // will finish: no wait, so leaving the group stays within that grace period.
        let waiting = |count: fn(&Tracker, &[i32]) -> usize| {
            let tracker = lock(&self.tracker);
            count(&tracker, &partitions) > 0 && !tracker.abandoned()
        };
        off_the_runtime(|| {
            let deadline = Instant::now() + self.revoke_wait;
            while waiting(Tracker::pending_in) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            lock(&self.tracker).revoke(&partitions);
            let deadline = Instant::now() + Duration::from_secs(1);
            while waiting(Tracker::active) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            commit_stored(consumer, "commit on revoke failed");
        });
        lock(&self.tracker).forget(&partitions);
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(dispatcher = %self.dispatcher, ?partitions, "partitions assigned");
        }
    }
}

/// Runs `wait`, which blocks, without holding up the other tasks of this thread. Rebalance
/// hooks run inside the consumer's poll, on a runtime worker, and the calls they wait for need
/// a worker too: with one worker (a container limited to one CPU) they would wait in vain, and
/// the whole group with them. On a multi-threaded runtime the worker's tasks move to another
/// thread while `wait` blocks; elsewhere (outside any runtime, or on a current-thread runtime,
/// where that is impossible) `wait` just runs.
fn off_the_runtime(wait: impl FnOnce()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}

/// Commits the offsets stored for finished events (blocking). Nothing new to commit is not a
/// failure; anything else is logged with `failed` as the message.
pub fn commit_stored<C: Consumer<GroupContext>>(consumer: &C, failed: &str) {
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
        && !matches!(e, KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset))
    {
        tracing::warn!(error = %e, "{failed}");
    }
}

pub fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the consumer of `dispatcher` and subscribes it to its topic.
pub fn create(
    kafka: &KafkaSettings,
    dispatcher: &Dispatcher,
    context: GroupContext,
) -> Result<GroupConsumer, KafkaError> {
    let own = [
        ("client.id", format!("switchyard-{}", dispatcher.name)),
        ("enable.auto.commit", "true".into()),
        ("auto.commit.interval.ms", "1000".into()),
        // Offsets are stored by hand, only for events that are done or dead-lettered.
        ("enable.auto.offset.store", "false".into()),
        ("session.timeout.ms", SESSION_TIMEOUT_MS.to_string()),
        ("heartbeat.interval.ms", "2000".into()),
        // Incremental rebalancing: members keep the partitions that do not move, so a
        // member joining or leaving does not stop (and replay) the whole group.
        ("partition.assignment.strategy", "cooperative-sticky".into()),
        ("statistics.interval.ms", "5000".into()),
    ];
    let cfg = config(kafka, &dispatcher.group, &own);
    let consumer: GroupConsumer = cfg.create_with_context(context)?;
    consumer.subscribe(&[&dispatcher.topic])?;
    Ok(consumer)
}

/// A consumer of `group` on the config's brokers that starts at the earliest offset where the
/// group has none, with the caller's `own` settings; the `kafka.properties` that apply to a
/// consumer win over both, as they do for the producer.
pub fn config(kafka: &KafkaSettings, group: &str, own: &[(&str, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &kafka.brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    for (k, v) in own {
        cfg.set(*k, v);
    }
    for (k, v) in &kafka.properties {
        if is_consumer_property(k) {
            cfg.set(k, v);
        }
    }
    cfg
}

/// Producer-only properties would make librdkafka warn on a consumer; pass the rest.
fn is_consumer_property(key: &str) -> bool {
    !matches!(
        key,
        "linger.ms"
            | "compression.type"
            | "acks"
            | "enable.idempotence"
            | "message.timeout.ms"
            | "batch.size"
            | "batch.num.messages"
            | "queue.buffering.max.ms"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use rdkafka::statistics::{Partition, Statistics, Topic};

    /// A rebalance hook's wait, on the only worker of a runtime, still lets the calls it waits
    /// for (other tasks of that worker) run and finish.
    #[test]
    fn a_wait_in_a_hook_leaves_the_only_worker_to_the_calls_it_waits_for() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let finished = rt.block_on(async {
            tokio::spawn(async {
                let call_done = Arc::new(AtomicBool::new(false));
                let done = call_done.clone();
                // Queued on this worker, behind the hook.
                tokio::spawn(async move { done.store(true, Ordering::SeqCst) });
                let deadline = Instant::now() + Duration::from_secs(10);
                off_the_runtime(|| {
                    while !call_done.load(Ordering::SeqCst) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
                call_done.load(Ordering::SeqCst)
            })
            .await
            .unwrap()
        });
        assert!(finished, "the call could not run while the hook waited");
        // Outside any runtime the wait just runs.
        let mut ran = false;
        off_the_runtime(|| ran = true);
        assert!(ran);
    }

    /// Statistics of topic `t` where this member holds the partitions given with their lag
    /// (and knows of partitions 0 to 3).
    fn stats(held: &[(i32, i64)]) -> Statistics {
        let mut topic = Topic::default();
        for partition in -1..4 {
            let lag = held.iter().find(|(p, _)| *p == partition).map(|(_, l)| *l);
            let p =
                Partition { partition, desired: lag.is_some(), consumer_lag: lag.unwrap_or(-1), ..Default::default() };
            topic.partitions.insert(partition, p);
        }
        let mut s = Statistics::default();
        s.topics.insert("t".into(), topic);
        s
    }

    fn sorted(mut v: Vec<(String, i32, i64)>) -> Vec<(i32, i64)> {
        v.sort();
        v.into_iter().map(|(_, p, l)| (p, l)).collect()
    }

    #[test]
    fn a_partition_no_longer_held_reads_0_once_and_a_stopped_consumer_zeroes_all() {
        let lag = Lag::default();
        assert_eq!(sorted(lag.update(&stats(&[(0, 5), (1, 0)]))), [(0, 5), (1, 0)]);
        // A rebalance moved partition 0 away and brought 2.
        assert_eq!(sorted(lag.update(&stats(&[(1, 3), (2, 7)]))), [(0, 0), (1, 3), (2, 7)]);
        assert_eq!(sorted(lag.update(&stats(&[(1, 3), (2, 7)]))), [(1, 3), (2, 7)]);
        // Held, but its lag not known yet (just assigned): 0 until it is.
        let mut unknown = stats(&[(1, 3)]);
        unknown.topics.get_mut("t").unwrap().partitions.get_mut(&2).unwrap().desired = true;
        assert_eq!(sorted(lag.update(&unknown)), [(1, 3), (2, 0)]);
        assert_eq!(sorted(lag.forget()), [(1, 0)]);
        assert!(lag.forget().is_empty());
    }
}
