//! Switchyard: a declarative event-routing gateway. Signed webhooks in, canonical events on
//! Kafka, HTTP calls to downstream services out — all described in `routes.yaml`.
//!
//! # Layout
//!
//! The data path reads top to bottom:
//!
//! - [`config`]: the `routes.yaml` model (and the files it `include`s), `${VAR}` interpolation,
//!   diagnostics with `file:line:col`.
//! - [`routes`]: compiles a config once into what runs: schemas, JSONPaths, verifiers,
//!   transforms, dispatch rules, and each source's projection (what of a payload it reads).
//! - [`pipeline`]: the pure pipeline `verify → parse → validate → match → map → validate
//!   canonical` (parsing builds only the projection), the answer to a sender's GET
//!   verification, and dispatch call planning. No IO: the server and the CLI share it.
//! - [`ingress`]: the hyper server (HTTP, or HTTPS with a certificate it reloads, and client
//!   certificates of `--tls-client-ca`); who may post (`allowed_ips` behind trusted proxies, a
//!   required client certificate) before the body is read; a sender's GET verification
//!   (`challenge:`); reads bodies, runs the pipeline, publishes, answers (a handshake with its
//!   reply, an event with its rule's `answer` when it has one; a refused webhook kept in its
//!   source's dead-letter topic); `/healthz`, `/readyz`, `/metrics` in every role; and the
//!   redrive of a source's refused webhooks.
//! - [`kafka`]: producer and consumer setup, their errors in the log (rate-limited), one pass
//!   over a dead-letter topic (both redrives), `switchyard tap`, and the embedded broker of
//!   `switchyard dev`.
//! - [`dispatch`]: the consumer loop that turns events into HTTP calls (with OAuth 2.0 tokens
//!   where a rule asks), with retries and dead letters, committing offsets only for finished
//!   events; the fleet of a process's dispatchers, which follows reloads; and the redrive that
//!   sends dead letters back to the dispatcher that gave up on them.
//! - [`metrics`]: metric names and the Prometheus exporter.
//! - [`pem`]: certificate and key files for TLS, with errors that name the file.
//! - [`files`]: reading the files a config names, of bounded size (and regular, where the config names them).
//! - [`logging`]: the log subscriber, written off the request path by a background thread.
//! - [`malloc`]: the C allocator's settings for librdkafka's busy heap.
//! - [`reload`]: hot reload on SIGHUP or file change: compile again, swap if valid.
//! - [`app`]: starts the roles (ingress, dispatch) of one process and stops them together
//!   (a role that fails stops the process with an error).
//! - [`dev`]: `switchyard dev`, the whole flow on an embedded broker.
//! - [`dry_run`]: `check` and `test`: payloads through the same pipeline and planner, compared with expectations.
//! - [`cli`]: the `switchyard` commands.
//! - [`health`]: `switchyard health`, the container's probe of `/healthz` (HTTP or HTTPS).
//! - [`shutdown`]: graceful shutdown in one small type (a second signal stops at once).
//! - [`trace`]: W3C `traceparent` parsing and propagation.
//! - [`text`]: quoting what a sender controls in answers and logs, clipped; error chains.
//!
//! See `ARCHITECTURE.md` for the code map and the invariants.

pub mod app;
pub mod cli;
pub mod config;
pub mod dev;
pub mod dispatch;
pub mod dry_run;
pub mod files;
pub mod health;
pub mod ingress;
pub mod kafka;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod pem;
pub mod pipeline;
pub mod reload;
pub mod routes;
pub mod shutdown;
pub mod text;
pub mod trace;
