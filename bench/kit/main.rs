//! `benchkit`: the load-side tools of `bench/run`, one binary so the script builds one thing.
//!
//! - `broker`: a Kafka-protocol broker (librdkafka's mock cluster) on loopback, shared by every
//!   system under test so they are measured against the same broker.
//! - `load`: signs and sends distinct Stripe webhooks; closed loop for saturation, or open loop
//!   at a fixed rate with latency measured from each request's scheduled time (no coordinated
//!   omission, as wrk2 does).
//! - `fill`: pre-fills a topic with canonical `payment_successful` events.
//! - `sink`: a local order service that answers after an optional delay, checks per-key order
//!   and reports calls/s once it has seen the expected number.

mod broker;
mod fill;
mod load;
mod sink;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Broker(broker::Args),
    Load(load::Args),
    Fill(fill::Args),
    Sink(sink::Args),
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let result = match cli.command {
        Command::Broker(a) => broker::run(a),
        Command::Load(a) => rt.block_on(load::run(a)),
        Command::Fill(a) => rt.block_on(fill::run(a)),
        Command::Sink(a) => rt.block_on(sink::run(a)),
    };
    if let Err(e) = result {
        eprintln!("benchkit: {e}");
        std::process::exit(1);
    }
}
