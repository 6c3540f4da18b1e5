//! The in-process pipeline bench's workload as a plain loop, for instruction counts that do
//! not move with the machine's speed: `valgrind --tool=callgrind` (or `perf record`) of
//! `pipeline-loop N` for two values of N, the difference divided by the difference in N, is
//! the cost of one event. Same routes, sample and allocator as `cargo bench --bench pipeline`.
//!
//! `cargo build --release --example pipeline-loop && target/release/examples/pipeline-loop 10000`

use std::path::Path;
use std::time::Instant;

use http::{HeaderMap, HeaderValue};
use switchyard::pipeline::{self, Inbound, Outcome};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), String> {
    let events: u32 = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "10000".into())
        .parse()
        .map_err(|_| "usage: pipeline-loop [events]")?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = switchyard::config::load(&dir.join("routes.yaml")).map_err(|e| format!("{e:?}"))?;
    let env = |k: &str| (k == "STRIPE_WEBHOOK_SECRET").then(|| "whsec_bench".to_string());
    let (routes, _) = switchyard::routes::compile(&loaded, &env, switchyard::routes::EnvMode::STRICT)
        .map_err(|e| format!("{e:?}"))?;
    let source = routes.source_named("stripe").ok_or("no source 'stripe'")?;
    let body = std::fs::read(dir.join("samples/stripe/checkout_session_completed.json")).map_err(|e| e.to_string())?;
    let now = 1_699_281_000;
    let mut headers = HeaderMap::new();
    let sig = pipeline::verify::stripe_signature(b"whsec_bench", now, &body);
    headers.insert("stripe-signature", HeaderValue::from_str(&sig).map_err(|e| e.to_string())?);
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..events {
        let input = Inbound { headers: &headers, query: None, body: std::hint::black_box(&body), now, verify: true };
        match pipeline::ingest(source, &input).1 {
            Ok(Outcome::Publish { events: out, .. }) => bytes += out.iter().map(|e| e.payload().len()).sum::<usize>(),
            other => return Err(format!("unexpected outcome {other:?}")),
        }
    }
    let took = started.elapsed();
    println!(
        "{events} events in {:.3} s: {:.2} µs/event ({bytes} bytes published)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / f64::from(events.max(1))
    );
    Ok(())
}
