//! The pure pipeline, in process: verify + parse + validate + match + map + validate
//! canonical + serialize, for the shipped Stripe `checkout.session.completed` (~2.7 KB).
//!
//! `cargo bench --bench pipeline`

use std::hint::black_box;

/// The same allocator as the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use switchyard::pipeline::{self, Inbound, Outcome};

fn bench(c: &mut Criterion) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let loaded = switchyard::config::load(&std::path::Path::new(dir).join("routes.yaml")).unwrap();
    let env = |k: &str| (k == "STRIPE_WEBHOOK_SECRET").then(|| "whsec_bench".to_string());
    let (routes, _) = switchyard::routes::compile(&loaded, &env, switchyard::routes::EnvMode::STRICT).unwrap();
    let source = routes.source_named("stripe").unwrap();
    let body = std::fs::read(format!("{dir}/samples/stripe/checkout_session_completed.json")).unwrap();
    let now = 1_699_281_000;
    let mut headers = HeaderMap::new();
    let sig = pipeline::verify::stripe_signature(b"whsec_bench", now, &body);
    headers.insert("stripe-signature", HeaderValue::from_str(&sig).unwrap());

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("checkout.session.completed: verify..serialize", |b| {
        b.iter(|| {
            let input = Inbound { headers: &headers, query: None, body: black_box(&body), now, verify: true };
            let (_, outcome) = pipeline::ingest(source, &input);
            match outcome {
                Ok(Outcome::Publish { events, .. }) => {
                    let bytes: usize = events.iter().map(|e| e.payload().len()).sum();
                    black_box(bytes)
                }
                other => panic!("unexpected {other:?}"),
            }
        })
    });
    group.bench_function("signature only", |b| {
        b.iter(|| {
            let input = Inbound { headers: &headers, query: None, body: black_box(&body), now, verify: true };
            pipeline::verify::verify(&source.verifier, &input).unwrap()
        })
    });
    group.bench_function("parse: what the source reads", |b| {
        b.iter(|| pipeline::parse::parse(black_box(&body), &source.reads).unwrap())
    });
    group.bench_function("parse: the whole body (serde_json::Value, for comparison)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap())
    });
    let doc = pipeline::parse::parse(&body, &source.reads).unwrap();
    group.bench_function("validate + match + map + validate canonical", |b| {
        b.iter(|| pipeline::route(source, pipeline::Input::webhook(black_box(&doc), &headers, None)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
