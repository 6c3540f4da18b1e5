//! The dispatchers a process runs, kept in step with reloads: one a reload adds is started,
//! one it removes is stopped (its events in flight finish, its offsets are committed, it
//! leaves its group), and one whose consumer settings change (`max_in_flight`,
//! `max_calls_per_second`, `tls`) is stopped and started again. Rules, templates and schemas
//! need none of this: a running dispatcher reads them from the live routes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::Start;
use crate::kafka::producer::EventProducer;
use crate::routes::dispatch::ClientTls;
use crate::routes::{Dispatcher, Routes};
use crate::shutdown::Shutdown;

/// What the fleet runs with.
pub struct Fleet {
    /// The routes the process started with (their Kafka settings are every consumer's).
    pub started: Arc<Routes>,
    pub live: Arc<ArcSwap<Routes>>,
    /// Notified after each reload that swapped in new routes.
    pub reloaded: Arc<Notify>,
    pub producer: EventProducer,
    pub shutdown: Shutdown,
    pub grace: Duration,
}

/// A dispatcher is the same one while its name, topic and group are (as `Shared::current`
/// finds it in the live routes).
#[derive(Clone, PartialEq, Eq)]
struct Identity {
    name: String,
    topic: String,
    group: String,
}

/// What a dispatcher's consumer and gate are made with: a change restarts it.
#[derive(PartialEq)]
struct Settings {
    max_in_flight: usize,
    max_calls_per_second: Option<u64>,
    tls: ClientTls,
}

fn identity(d: &Dispatcher) -> Identity {
    Identity { name: d.name.clone(), topic: d.topic.clone(), group: d.group.clone() }
}

fn settings(d: &Dispatcher) -> Settings {
    Settings { max_in_flight: d.max_in_flight, max_calls_per_second: d.max_calls_per_second, tls: d.tls.clone() }
}

/// A dispatcher running as the fleet wants it.
struct Running {
    identity: Identity,
    settings: Settings,
    stop: Shutdown,
}

/// Runs the dispatchers of the live routes until `fleet.shutdown`, starting and stopping them
/// as reloads change the routes. A dispatcher that fails stops the fleet with its error (the
/// process ends, as a consumer that cannot go on should not be polled).
pub async fn run(fleet: Fleet) -> anyhow::Result<()> {
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut running: Vec<Running> = Vec::new();
    follow(&fleet, &fleet.started, false, &mut running, &mut tasks);
    let mut failure = None;
    loop {
        tokio::select! {
            _ = fleet.shutdown.wait() => break,
            _ = fleet.reloaded.notified() => {
                follow(&fleet, &fleet.live.load_full(), true, &mut running, &mut tasks)
            }
            // One that was stopped has finished, or one failed.
            Some(joined) = tasks.join_next() => if let Some(e) = failed(joined) {
                failure = Some(e);
                break;
            },
        }
    }
    // The others stop as they do at shutdown: their events in flight finish, offsets committed.
    for r in &running {
        r.stop.trigger();
    }
    while let Some(joined) = tasks.join_next().await {
        if let Some(e) = failed(joined) {
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The error a dispatcher's task ended with, if any.
fn failed(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> Option<anyhow::Error> {
    match joined {
        Ok(result) => result.err(),
        Err(e) => Some(anyhow::anyhow!("a dispatcher's task failed: {e}")),
    }
}

/// Brings `running` in step with `routes`: stops what they no longer hold or hold with other
/// settings, starts what they hold that does not run (saying so when `reloaded`).
fn follow(
    fleet: &Fleet,
    routes: &Arc<Routes>,
    reloaded: bool,
    running: &mut Vec<Running>,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) {
    // A reload never stops a process that runs: a dispatcher whose TLS files do not load (the
    // config's check does not read them) is not started, and the one it would replace runs on.
    let loads = |d: &Dispatcher| match super::client::build(&d.name, &d.tls) {
        Ok(_) => true,
        Err(e) => {
            let error = crate::text::error_chain(e.as_ref());
            tracing::error!(dispatcher = %d.name, error, "the reloaded dispatcher's tls does not load: not started (a running version of it runs on)");
            false
        }
    };
    running.retain(|r| {
        let now = routes.dispatchers.iter().find(|d| identity(d) == r.identity);
        let why = match now {
            None => "the config no longer has it",
            Some(d) if settings(d) != r.settings && (!reloaded || loads(d)) => {
                "its max_in_flight, max_calls_per_second or tls changed"
            }
            Some(_) => return true,
        };
        let Identity { name, topic, group } = &r.identity;
        tracing::info!(dispatcher = %name, %topic, %group, "stopping the dispatcher: {why}");
        r.stop.trigger();
        false
    });
    for (index, d) in routes.dispatchers.iter().enumerate() {
        if running.iter().any(|r| r.identity == identity(d)) || (reloaded && !loads(d)) {
            continue;
        }
        if reloaded {
            tracing::info!(dispatcher = %d.name, topic = %d.topic, group = %d.group, "starting the dispatcher the reload gives");
        }
        let stop = fleet.shutdown.child();
        let start = Start {
            routes: routes.clone(),
            index,
            kafka: fleet.started.kafka.clone(),
            live: fleet.live.clone(),
            producer: fleet.producer.clone(),
            shutdown: stop.clone(),
            grace: fleet.grace,
        };
        let name = d.name.clone();
        tasks.spawn(async move { super::run(start).await.with_context(|| format!("dispatcher {name}")) });
        running.push(Running { identity: identity(d), settings: settings(d), stop });
    }
}
