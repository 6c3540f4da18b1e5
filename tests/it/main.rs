//! The integration tests, in one binary: one link, and one embedded broker (`common::broker`)
//! shared by every test, each on topics and groups of its own (`common::unique`). The tests
//! that take that broker down or slow it have binaries of their own: `tests/broker_faults.rs`
//! and `tests/broker_stall.rs`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../fuzz/targets.rs"]
mod fuzz_targets;

mod addresses;
mod batches;
mod cli;
mod credentials;
mod dev;
mod dispatch;
mod dispatch_kill;
mod dispatch_tls;
mod forms;
mod fuzz_corpus;
mod handshakes;
mod hostile;
mod ingress;
mod ingress_https;
mod kafka_tls;
mod memory;
mod operations;
mod producer_wait;
mod projection;
mod redrive;
mod refused;
mod reload;
mod shutdown;
