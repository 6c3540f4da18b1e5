//! `switchyard dev`: the whole flow in one process on an embedded broker, with a generated
//! dev secret when none is set and a ready-to-paste signed `curl`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::app::Role;
use crate::cli::{RunArgs, block_on, load_strict, serve};
use crate::kafka::EmbeddedBroker;
use crate::pipeline::verify::stripe_signature;
use crate::routes::{Routes, Verifier};

/// Partitions of each topic on the embedded broker.
const PARTITIONS: i32 = 4;

const STRIPE_SAMPLE: &str = include_str!("../samples/stripe/checkout_session_completed.json");

pub(crate) fn main(run: &RunArgs) -> ExitCode {
    let dev_secret = format!("whsec_dev_{}", hex::encode(rand::random::<[u8; 16]>()));
    let generated_for = Arc::new(Mutex::new(Vec::<String>::new()));
    // Unset secret variables get the dev secret, so `dev` starts with no setup at all.
    let env = {
        let (dev_secret, generated_for) = (dev_secret.clone(), generated_for.clone());
        Arc::new(move |name: &str| {
            std::env::var(name).ok().or_else(|| {
                name.ends_with("_SECRET").then(|| {
                    let mut generated = generated_for.lock().unwrap_or_else(|e| e.into_inner());
                    if !generated.iter().any(|n| n == name) {
                        generated.push(name.to_owned());
                    }
                    dev_secret.clone()
                })
            })
        })
    };
    let Some(mut routes) = load_strict(&run.config, &*env) else { return ExitCode::FAILURE };
    let reload = crate::reload::for_config(run.config.clone(), &routes, env);
    let broker = match EmbeddedBroker::start(1) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("switchyard dev: cannot start the embedded broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    for topic in topics(&routes) {
        if let Err(e) = broker.create_topic(&topic, PARTITIONS) {
            eprintln!("switchyard dev: cannot create topic {topic}: {e}");
            return ExitCode::FAILURE;
        }
    }
    routes.kafka.brokers = broker.bootstrap_servers().to_owned();
    let routes = Arc::new(routes);
    let generated = generated_for.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let banner_routes = routes.clone();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let ready =
        Box::new(move |addr: SocketAddr| print_banner(&banner_routes, addr, &bootstrap, &generated, &dev_secret));
    let code = block_on(serve(routes, Role::All, run, Some(ready), Some(reload)));
    drop(broker);
    code
}

/// Every topic the routes publish to or consume from.
fn topics(routes: &Routes) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let emitted = routes.sources.iter().flat_map(|s| s.rules.iter().map(|r| r.emit.topic.clone()));
    let consumed = routes.dispatchers.iter().flat_map(|d| [d.topic.clone(), d.dead_letter_topic.clone()]);
    for t in emitted.chain(consumed) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn print_banner(routes: &Routes, addr: SocketAddr, bootstrap: &str, generated: &[String], dev_secret: &str) {
    let host = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    println!("\nSwitchyard dev is running: ingress and dispatcher on an embedded Kafka broker at {bootstrap}");
    if !generated.is_empty() {
        println!("{} not set: using the dev secret {dev_secret}", generated.join(", "));
    }
    for source in &routes.sources {
        println!("\n  POST http://{host}{}   (source '{}')", source.path, source.name);
        if let Verifier::Stripe { secrets, .. } = &source.verifier
            && let Some(secret) = secrets.first()
        {
            let body = sample_event();
            let header = stripe_signature(&secret.secret.0, crate::ingress::unix_now(), body.as_bytes());
            println!("\n  A signed sample checkout (valid for 5 minutes):\n");
            println!(
                "curl -sS http://{host}{} -H 'Content-Type: application/json' -H 'Stripe-Signature: {header}' --data-binary '{}'",
                source.path,
                body.replace('\'', "'\\''")
            );
        }
    }
    for d in &routes.dispatchers {
        for r in &d.rules {
            println!("\n  Events on '{}' become {} {}/… (rule '{}')", d.topic, r.method, r.origin, r.name);
        }
    }
    println!();
}

/// The sample checkout with a fresh event id and timestamp, on one line.
fn sample_event() -> String {
    let mut doc: Json = serde_json::from_str(STRIPE_SAMPLE).unwrap_or_default();
    doc["id"] = Json::String(format!("evt_dev_{}", hex::encode(rand::random::<[u8; 8]>())));
    doc["created"] = Json::from(crate::ingress::unix_now());
    doc.to_string()
}
