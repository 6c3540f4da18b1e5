//! Logs: the subscriber (`RUST_LOG` filter, text or JSON lines on stderr), written by a
//! background thread so that no request waits on a `write(2)` to stderr.
//!
//! Requests format their lines and hand them over; the thread writes whatever has queued up in
//! one go and flushes when the queue is empty, so a quiet gateway's lines still appear at once.
//! A writer that falls behind by [`QUEUED_LINES`] makes further lines drop, counted in
//! `switchyard_log_lines_dropped_total`, instead of slowing webhooks down. Colours only on a
//! terminal.

use std::io::{BufWriter, IsTerminal};
use std::sync::{Mutex, OnceLock};

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines that may wait for the writer thread before new ones are dropped.
pub const QUEUED_LINES: usize = 65_536;

/// The filter when `RUST_LOG` is unset: one line per webhook and per dispatched call.
pub const DEFAULT_FILTER: &str = "info,librdkafka=warn,rdkafka=warn";

/// Where a dispatcher says why none of its rules takes an event (at `debug`): shown by `dev`,
/// which is for trying routes; `RUST_LOG=info,switchyard::unmatched=debug` shows it elsewhere.
pub const UNMATCHED: &str = "switchyard::unmatched";

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// The writer thread's guard: dropping it writes the lines still queued.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Writes the lines still queued when dropped: keep it until the process ends.
pub struct Logs;

impl Drop for Logs {
    fn drop(&mut self) {
        flush();
    }
}

/// Writes the lines still queued and stops the writer (later lines are lost): for a process
/// about to end without unwinding (`std::process::exit`).
pub fn flush() {
    let guard = WRITER.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(guard);
}

/// Installs the process's subscriber; `dev` adds to the default filter why a dispatcher passes
/// over an event ([`UNMATCHED`]).
pub fn init(json: bool, dev: bool) -> Logs {
    let stderr = std::io::stderr();
    let ansi = stderr.is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("switchyard-log")
        .finish(BufWriter::with_capacity(64 * 1024, stderr));
    let _ = DROPPED.set(writer.error_counter());
    let default = match dev {
        true => format!("{DEFAULT_FILTER},{UNMATCHED}=debug"),
        false => DEFAULT_FILTER.to_owned(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    *WRITER.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    Logs
}

/// Lines dropped since start because the writer thread fell behind.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}
