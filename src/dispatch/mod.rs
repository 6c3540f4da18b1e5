//! The dispatcher: consume canonical events, make the HTTP calls their rules plan, retry,
//! dead-letter, and store offsets only for events that are done.
//!
//! Events of one key (within a partition) run in order on a *lane*; lanes run
//! concurrently, at most `max_in_flight` calls at once. A partition with too much
//! unfinished work is paused rather than the poll loop blocked, so the consumer never
//! leaves its group while a key is stuck in retries.

pub mod client;
pub mod dead_letter;
pub mod deliver;
pub mod fleet;
pub mod oauth2;
pub mod offsets;
pub mod redrive;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{Message, TopicPartitionList};
use serde_json::Value as Json;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::kafka::consumer::{self, GroupConsumer, GroupContext, lock};
use crate::kafka::errors::ErrorLog;
use crate::kafka::producer::EventProducer;
use crate::logging::UNMATCHED;
use crate::pipeline::explain;
use crate::pipeline::plan::{self, Delivered};
use crate::routes::dispatch::DispatchRule;
use crate::routes::{Dispatcher, KafkaSettings, Routes};
use crate::shutdown::Shutdown;
use crate::text::{QUOTED_ID, clip};
use crate::trace::TraceParent;
use deliver::{Delivery, Gate};
use offsets::{Ticket, Tracker};

/// A partition with this many unfinished events is paused until it drains to half. It bounds
/// the events held in memory (a few MiB per partition); each pause costs a refetch, so it is
/// set high enough that the refetch is rare (at 1024 a fast order service saw 8 500 calls/s,
/// at 4096 33 000/s: `bench/run`).
const PAUSE_AT: usize = 4096;

/// One consumed event on its way through a lane.
struct Job {
    msg: OwnedMessage,
    ticket: Ticket,
}

/// What every lane shares.
struct Shared {
    dispatcher_index: usize,
    /// The routes this dispatcher started with (topic and group come from them).
    routes: Arc<Routes>,
    /// The current routes: rule changes apply from the next event on.
    live: Arc<ArcSwap<Routes>>,
    consumer: Arc<GroupConsumer>,
    tracker: Arc<Mutex<Tracker>>,
    producer: EventProducer,
    /// Swapped whole when the dispatcher's TLS files change.
    client: Arc<ArcSwap<reqwest::Client>>,
    gate: Gate,
    /// OAuth2 access tokens of the rules' calls, kept until shortly before they expire.
    tokens: oauth2::Tokens,
    /// Give up on calls in flight (shutdown grace is over).
    abandon: CancellationToken,
    finished: Notify,
}

impl Shared {
    fn dispatcher(&self) -> &Dispatcher {
        &self.routes.dispatchers[self.dispatcher_index]
    }

    /// The current version of this dispatcher: the same name, topic and group in the live
    /// routes, or the one it started with if a reload removed or moved it.
    fn current(&self) -> (Arc<Routes>, usize) {
        let live = self.live.load_full();
        let start = self.dispatcher();
        match live
            .dispatchers
            .iter()
            .position(|d| d.name == start.name && d.topic == start.topic && d.group == start.group)
        {
            Some(i) => (live, i),
            None => (self.routes.clone(), self.dispatcher_index),
        }
    }
}

/// A lane: its queue, and how many of its jobs are not finished.
struct Lane {
    tx: mpsc::UnboundedSender<Job>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

/// What a dispatcher runs with.
pub struct Start {
    /// The routes it starts with; it follows the live routes' version of itself (`current`).
    pub routes: Arc<Routes>,
    /// Its place among `routes.dispatchers`.
    pub index: usize,
    /// The Kafka settings the process started with: its consumer's, as the producer's are
    /// (a reload changes them only on restart).
    pub kafka: KafkaSettings,
    pub live: Arc<ArcSwap<Routes>>,
    pub producer: EventProducer,
    pub shutdown: Shutdown,
    /// How long calls in flight may take to finish once it stops.
    pub grace: Duration,
}

/// Runs dispatcher `start.index` of `start.routes` until `start.shutdown`; then finishes
/// in-flight calls within `start.grace`, commits what is done and leaves the group.
pub async fn run(start: Start) -> anyhow::Result<()> {
    let Start { routes, index, kafka, live, producer, shutdown, grace } = start;
    let routes = &routes;
    let d = &routes.dispatchers[index];
    let abandon = CancellationToken::new();
    let tracker = Arc::new(Mutex::new(Tracker::new(abandon.clone())));
    let max_call = d.rules.iter().map(|r| r.timeout).max().unwrap_or(Duration::from_secs(10));
    let context = GroupContext {
        dispatcher: d.name.clone(),
        tracker: tracker.clone(),
        revoke_wait: max_call.min(grace),
        errors: ErrorLog::consumer(&d.name),
        lag: consumer::Lag::default(),
    };
    let consumer = Arc::new(consumer::create(&kafka, d, context).context("cannot create the consumer")?);
    let client = Arc::new(ArcSwap::from_pointee(client::build(&d.name, &d.tls).context("the dispatcher's tls")?));
    tokio::spawn(client::watch(d.name.clone(), d.tls.clone(), client.clone(), shutdown.clone()));
    let shared = Arc::new(Shared {
        dispatcher_index: index,
        routes: routes.clone(),
        live,
        consumer: consumer.clone(),
        tracker: tracker.clone(),
        producer,
        client,
        gate: Gate::new(d.max_in_flight, d.max_calls_per_second),
        tokens: oauth2::Tokens::default(),
        abandon,
        finished: Notify::new(),
    });
    tracing::info!(dispatcher = %d.name, topic = %d.topic, group = %d.group, "dispatcher consuming");
    let mut lanes: HashMap<(i32, Option<Vec<u8>>), Lane> = HashMap::new();
    let mut workers = JoinSet::new();
    let mut paused: HashSet<i32> = HashSet::new();
    let mut fatal = None;
    // Idle lanes are closed now and then, not after every event (there may be thousands).
    let mut prune = tokio::time::interval(Duration::from_secs(1));
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            received = consumer.recv() => match received {
                Ok(m) => {
                    let msg = m.detach();
                    let ticket = lock(&tracker).received(msg.partition(), msg.offset());
                    let partition = msg.partition();
                    let lane_key = (partition, msg.key().map(<[u8]>::to_vec));
                    let lane = lanes.entry(lane_key).or_insert_with(|| spawn_lane(&shared, &mut workers));
                    lane.queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = lane.tx.send(Job { msg, ticket });
                    if lock(&tracker).pending(partition) >= PAUSE_AT && paused.insert(partition) {
                        set_paused(&consumer, &d.topic, partition, true);
                    }
                }
                Err(e) => {
                    consumer.context().errors.report(&e, "received by the dispatcher");
                    // A fatal error leaves the consumer unusable: stop, so the process ends
                    // and is restarted, rather than polling a dead client.
                    if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                        fatal = Some(e);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shared.finished.notified() => {
                paused.retain(|&p| {
                    let still = lock(&tracker).pending(p) > PAUSE_AT / 2;
                    if !still {
                        set_paused(&consumer, &d.topic, p, false);
                    }
                    still
                });
            }
            _ = prune.tick() => {
                // Lanes with nothing queued are closed; their tasks end.
                lanes.retain(|_, lane| lane.queued.load(std::sync::atomic::Ordering::SeqCst) > 0);
            }
        }
    }
    let stopping = std::time::Instant::now();
    // Stop fetching; finish the events already received (so nothing is replayed), and
    // abandon what is left when the grace period ends (it will be redelivered).
    tracing::info!(dispatcher = %d.name, "dispatcher stopping: finishing the events already received");
    drop(lanes);
    if tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("in-flight calls did not finish within {grace:?}; abandoning them (they will be redelivered)");
        shared.abandon.cancel();
        while workers.join_next().await.is_some() {}
    }
    drop(shared);
    if let Some(e) = fatal {
        // A consumer in a fatal state can neither commit nor leave, and librdkafka's destroy
        // of it can hang (seen with a fenced member): it is left to the process's exit, and
        // its partitions to the group once its session times out.
        std::mem::forget(consumer);
        tracing::info!("dispatcher stopped");
        return Err(anyhow::anyhow!("the consumer failed for good: {e}"));
    }
    // Commit what is done and leave the group, off the async workers (both can block), within
    // what is left of the grace period (at least 1 s): a broker that does not answer does not
    // hold up the stop.
    let wait = grace.saturating_sub(stopping.elapsed()).max(Duration::from_secs(1));
    let leave = tokio::task::spawn_blocking(move || {
        consumer::commit_stored(consumer.as_ref(), "final commit failed");
        consumer.unsubscribe();
        // What it held is no longer its lag to report.
        let context = consumer.context();
        for (topic, partition, lag) in context.lag.forget() {
            crate::metrics::consumer_lag(&context.dispatcher, &topic, partition, lag);
        }
        drop(consumer);
    });
    match tokio::time::timeout(wait, leave).await {
        Ok(_) => tracing::info!(dispatcher = %d.name, "dispatcher stopped; left the group"),
        Err(_) => tracing::warn!(
            dispatcher = %d.name,
            "dispatcher stopped; the final commit and leaving the group did not finish within {wait:?} (unfinished events will be redelivered)"
        ),
    }
    Ok(())
}

fn set_paused(consumer: &GroupConsumer, topic: &str, partition: i32, pause: bool) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let result = if pause { consumer.pause(&tpl) } else { consumer.resume(&tpl) };
    match result {
        Ok(()) => tracing::debug!(partition, pause, "partition flow changed"),
        Err(e) => tracing::warn!(partition, error = %e, "cannot pause/resume partition"),
    }
}

fn spawn_lane(shared: &Arc<Shared>, workers: &mut JoinSet<()>) -> Lane {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (shared, count) = (shared.clone(), queued.clone());
    workers.spawn(async move {
        while let Some(job) = rx.recv().await {
            let done = lock(&shared.tracker).start(&job.ticket) && {
                let done = process(&shared, &job).await;
                let stored = lock(&shared.tracker).finish(&job.ticket, done);
                if let Some(offset) = stored
                    && let Err(e) = shared.consumer.store_offset(job.msg.topic(), job.ticket.partition, offset)
                {
                    tracing::debug!(error = %e, "offset not stored (partition revoked)");
                }
                done
            };
            if !done {
                tracing::debug!(
                    partition = job.ticket.partition,
                    offset = job.ticket.offset,
                    "event left for redelivery"
                );
            }
            count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            shared.finished.notify_one();
        }
    });
    Lane { tx, queued }
}

/// Runs every matching rule for one event. True when the event is done (delivered,
/// dead-lettered or matched by no rule); false when abandoned.
async fn process(shared: &Shared, job: &Job) -> bool {
    let (routes, index) = shared.current();
    let d = &routes.dispatchers[index];
    let cancel = &job.ticket.cancel;
    let mut headers = Vec::new();
    let mut binary_headers = Vec::new();
    for h in job.msg.headers().iter().flat_map(|h| h.iter()) {
        match h.value.map(std::str::from_utf8) {
            Some(Ok(v)) => headers.push((h.key, v)),
            Some(Err(_)) => binary_headers.push(h.key),
            None => {}
        }
    }
    // A redriven dead letter for another dispatcher is passed over, JSON or not.
    if plan::addressee(&headers).is_some_and(|(name, _)| name != d.name) {
        return true;
    }
    let unroutable = |error| dead_letter::Failure {
        dispatcher: &d.name,
        rule: "",
        reason: "unroutable",
        status: None,
        error,
        attempts: 0,
    };
    // The routes publish JSON objects only: anything else on the topic is no event of theirs.
    let value: Json = match job.msg.payload().map(serde_json::from_slice::<Json>) {
        Some(Ok(v)) if v.is_object() => v,
        Some(Ok(_)) => {
            let failure = unroutable("value is not a JSON object");
            return dead_letter::publish(&shared.producer, &d.dead_letter_topic, &job.msg, &failure, cancel).await;
        }
        _ => {
            let failure = unroutable("value is not JSON");
            return dead_letter::publish(&shared.producer, &d.dead_letter_topic, &job.msg, &failure, cancel).await;
        }
    };
    let key = job.msg.key().and_then(|k| std::str::from_utf8(k).ok());
    let binary_key = job.msg.key().is_some() && key.is_none();
    let event = Delivered { key, headers, value: &value, binary_key, binary_headers };
    let trace = TraceParent::from_header(event.headers.iter().find(|(k, _)| *k == "traceparent").map(|(_, v)| *v));
    let rules = plan::rules_for(d, &event);
    if rules.is_empty() {
        // Done without a call: counted, and why said where asked (`dev` asks).
        crate::metrics::dispatch_unmatched(&d.name);
        if tracing::enabled!(target: UNMATCHED, tracing::Level::DEBUG) {
            let (partition, offset) = (job.ticket.partition, job.ticket.offset);
            let each = explain::dispatch_rules(d, &event).into_iter().map(|p| format!("rule '{}': {}", p.rule, p.why));
            let why = each.collect::<Vec<_>>().join("; ");
            tracing::debug!(target: UNMATCHED, dispatcher = %d.name, partition, offset, %why, "no rule takes the event");
        }
    }
    for rule in rules {
        let event_id = event.headers.iter().find(|(k, _)| *k == "event_id").map(|(_, v)| clip(v, QUOTED_ID));
        let span = tracing::info_span!(
            "dispatch",
            rule = %rule.name,
            event_id = event_id.as_deref(),
            trace_id = %trace.trace_id,
            partition = job.ticket.partition,
            offset = job.ticket.offset
        );
        if !run_rule(shared, d, rule, &event, job, &trace, cancel).instrument(span).await {
            return false;
        }
    }
    true
}

/// The id of `rule`'s call for the event of `job` (Standard Webhooks' `webhook-id` when the
/// call is signed): the same for every attempt and for a redelivery of the event after a crash
/// or a rebalance, different for every other call. Opaque: names may hold any character.
fn message_id(d: &Dispatcher, rule: &DispatchRule, job: &Job) -> String {
    let (partition, offset) = (job.ticket.partition.to_string(), job.ticket.offset.to_string());
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [d.name.as_str(), &rule.name, &d.topic, &partition, &offset] {
        digest.update(part.as_bytes());
        digest.update(&[0]);
    }
    format!("msg_{}", hex::encode(&digest.finish().as_ref()[..12]))
}

/// Plans and makes one rule's call; dead-letters it when it fails for good. False when abandoned.
async fn run_rule(
    shared: &Shared,
    d: &Dispatcher,
    rule: &DispatchRule,
    event: &Delivered<'_>,
    job: &Job,
    trace: &TraceParent,
    cancel: &CancellationToken,
) -> bool {
    let planned = match plan::conforms(d, event) {
        Err(e) => Err(("schema", e)),
        Ok(()) => plan::plan(rule, event).map_err(|e| ("unroutable", e)),
    };
    let (reason, status, error, attempts) = match planned {
        Err((reason, e)) => (reason, None, e, 0),
        Ok(mut call) => {
            // The trace goes on: the call's parent is this hop.
            call.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("traceparent"));
            call.headers.push(("traceparent".into(), trace.child().to_string()));
            let client = shared.client.load_full();
            // Only a signature carries the id.
            let id = rule.sign.as_ref().map(|_| message_id(d, rule, job)).unwrap_or_default();
            let caller = deliver::Caller {
                dispatcher: &d.name,
                client: &client,
                gate: &shared.gate,
                tokens: &shared.tokens,
                cancel,
            };
            match deliver::deliver(&caller, &call, rule, &id).await {
                Delivery::Done { status, attempts } => {
                    tracing::info!(status, attempts, "delivered");
                    return true;
                }
                Delivery::Abandoned => return false,
                Delivery::Failed { status, error, attempts } => {
                    // A status the policy does not retry (3xx, most 4xx) fails at once.
                    let permanent = status.is_some_and(|s| !rule.retry.retries(s));
                    (if permanent { "http_status" } else { "retries_exhausted" }, status, error, attempts)
                }
            }
        }
    };
    let failure =
        dead_letter::Failure { dispatcher: &d.name, rule: &rule.name, reason, status, error: &error, attempts };
    dead_letter::publish(&shared.producer, &d.dead_letter_topic, &job.msg, &failure, cancel).await
}
