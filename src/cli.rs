//! The `switchyard` command line: `serve`, `dev`, `validate`, `check`, `test`, `redrive`,
//! `health`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::{self, AppConfig, Role};
use crate::config::{self, Diagnostic, Diagnostics};
use crate::ingress::tls::TlsFiles;
use crate::pipeline::Inbound;
use crate::routes::{self, EnvMode, Routes};
use crate::shutdown::Shutdown;

/// `println!` for the one-shot commands: a reader that went away (`switchyard test | head`)
/// ends the command quietly with status 141, as SIGPIPE ends other Unix tools, not in a panic;
/// any other failed write (a full disk) ends it with status 1 and says why, so a truncated
/// report never passes for a complete one.
macro_rules! outln {
    ($($arg:tt)*) => { stdout_line(format_args!($($arg)*)) };
}

fn stdout_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => {
            eprintln!("switchyard: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about = "Declarative event-routing gateway: webhooks → Kafka → HTTP")]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "SWITCHYARD_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway against a real Kafka (KAFKA_BROKERS).
    Serve {
        #[command(flatten)]
        run: RunArgs,
        /// Which halves to run.
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
    },
    /// Run ingress and dispatcher on an embedded Kafka-protocol broker: nothing to install.
    Dev {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Probe a running gateway's /healthz (for container health checks); exit 0 when healthy.
    Health {
        /// The address the gateway listens on.
        #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// The gateway serves HTTPS with this certificate (`serve --tls-cert`): probe over TLS.
        /// Any certificate is taken: the probe only asks whether the process is alive.
        #[arg(long, env = "SWITCHYARD_TLS_CERT", value_name = "FILE")]
        tls_cert: Option<PathBuf>,
    },
    /// Parse and compile the config without touching the network; exit 1 on any error.
    Validate {
        #[arg(short, long, default_value = "routes.yaml")]
        config: PathBuf,
        /// How to print what it finds: `text` (`file:line:col: message`), `json` (one document),
        /// or `github` (workflow commands: annotations on the lines, in a GitHub Actions step).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Send one payload through the same pipeline the server runs and print what would happen.
    Check(CheckArgs),
    /// Send a dispatcher's dead letters back onto its topic, for it alone (after the service is
    /// fixed), or run a source's refused webhooks through its routes again (after they are fixed).
    Redrive {
        #[arg(short, long, default_value = "routes.yaml")]
        config: PathBuf,
        /// The dispatcher (by name) whose dead letters go back; needed when the config has several.
        #[arg(long, conflicts_with = "source")]
        dispatcher: Option<String>,
        /// The source (by name) whose refused webhooks, kept in its dead_letter_topic, go through
        /// its routes again.
        #[arg(long)]
        source: Option<String>,
        /// List the dead letters waiting; send and commit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Send at most this many back (the rest wait for the next run).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print the records of topics as JSON lines (what the ingress published, what was
    /// dead-lettered), from their start, until Ctrl-C (or --exit: to the end); no group is joined.
    Tap(TapArgs),
    /// Print the JSON Schema of routes.yaml (generated from the types; committed as schemas/routes.schema.json).
    ConfigSchema,
    /// Run the config's own test cases (its `tests:` section); exit 1 on any failure.
    Test {
        #[arg(short, long, default_value = "routes.yaml")]
        config: PathBuf,
        /// Run only the cases whose name contains this text.
        filter: Option<String>,
        /// `github` also prints a workflow command per failing case (and per config error), so
        /// a GitHub Actions step puts it on the case's line; `json` is `validate`'s only.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// `switchyard tap`: which topics, on which brokers, from where to where.
#[derive(clap::Args, Debug)]
pub(crate) struct TapArgs {
    #[arg(short, long, default_value = "routes.yaml")]
    config: PathBuf,
    /// The Kafka brokers (`dev` prints its embedded broker's); by default the config's
    /// `kafka.brokers`.
    #[arg(short, long)]
    brokers: Option<String>,
    /// The topics to read; by default every topic the config publishes to or consumes.
    topics: Vec<String>,
    /// Only the records written from now on.
    #[arg(long)]
    new: bool,
    /// Stop after this many records.
    #[arg(long)]
    count: Option<usize>,
    /// Stop once every partition is read to where it ended when tap started (kcat's -e).
    #[arg(short = 'e', long = "exit", conflicts_with = "new")]
    to_end: bool,
}

/// `switchyard check`: a webhook posted to a source, or an event consumed from a topic.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    #[arg(short, long, default_value = "routes.yaml")]
    config: PathBuf,
    /// The source (by name) the payload is posted to, as a webhook.
    #[arg(long, required_unless_present = "topic", conflicts_with = "topic")]
    source: Option<String>,
    /// Instead of --source: the topic the payload is consumed from, as a canonical event
    /// (prints the calls its dispatchers would make).
    #[arg(long)]
    topic: Option<String>,
    /// The event's Kafka key (with --topic).
    #[arg(long, requires = "topic")]
    key: Option<String>,
    /// A file holding the raw request body (with --topic: the event's value); `-` reads it from
    /// standard input.
    #[arg(long, required_unless_present = "get")]
    payload: Option<PathBuf>,
    /// A request header (with --topic: a Kafka header of the event), `'Name: value'`; repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Verify the signature too (headers from --header, secrets from the environment).
    #[arg(long, conflicts_with = "topic")]
    verify: bool,
    /// The request URL's query, `a=1&b=2` (Twilio's signature covers it).
    #[arg(long, conflicts_with = "topic")]
    query: Option<String>,
    /// Instead of a webhook: the sender's GET verification of the endpoint (the source's
    /// `challenge:`), with --query; prints the answer.
    #[arg(long, requires = "source", conflicts_with_all = ["topic", "payload", "verify"])]
    get: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    #[arg(short, long, default_value = "routes.yaml")]
    pub config: PathBuf,
    /// Address the HTTP server listens on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Seconds that in-flight work may take to finish after SIGTERM.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub grace_secs: u64,
    /// Serve HTTPS with this PEM certificate chain (the server's first), with --tls-key;
    /// both files are read again on SIGHUP or when they change.
    #[arg(long, env = "SWITCHYARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SWITCHYARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates whose client certificates the listener checks (mutual TLS), for
    /// sources with `require_client_certificate`; read again as --tls-cert is.
    #[arg(long, env = "SWITCHYARD_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Threads that serve webhooks and make calls (the async runtime's workers); by default one
    /// per CPU the process may use. On a machine it shares with the broker, fewer may do more.
    #[arg(long, env = "SWITCHYARD_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

impl RunArgs {
    pub fn tls(&self) -> Option<TlsFiles> {
        let (cert, key) = (self.tls_cert.clone()?, self.tls_key.clone()?);
        Some(TlsFiles { cert, key })
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logs = crate::logging::init(cli.log_json, matches!(cli.command, Command::Dev { .. }));
    match cli.command {
        Command::Validate { config, format } => validate(&config, format),
        Command::Tap(args) => tap(args),
        Command::Health { addr, tls_cert } => health(addr, tls_cert.is_some()),
        Command::Check(args) => check(&args),
        Command::Test { format: Format::Json, .. } => {
            eprintln!("test prints text, or text with GitHub workflow commands (--format github)");
            ExitCode::FAILURE
        }
        Command::Test { config, filter, format } => test(&config, filter.as_deref(), format == Format::Github),
        Command::Redrive { limit: Some(0), .. } => {
            eprintln!("--limit must be at least 1");
            ExitCode::FAILURE
        }
        Command::Redrive { config, source: Some(source), dry_run, limit, .. } => {
            redrive_source(&config, &source, dry_run, limit)
        }
        Command::Redrive { config, dispatcher, dry_run, limit, source: None } => {
            redrive(&config, dispatcher.as_deref(), dry_run, limit)
        }
        Command::ConfigSchema => {
            outln!("{}", crate::config::json_schema());
            ExitCode::SUCCESS
        }
        Command::Serve { run, role } => match load_strict(&run.config, &|k| std::env::var(k).ok(), role.env_mode()) {
            Some(routes) => {
                let env = Arc::new(|k: &str| std::env::var(k).ok());
                let reload = crate::reload::for_config(run.config.clone(), &routes, env, role.env_mode());
                block_on(run.workers, serve(Arc::new(routes), role, &run, None, Some(reload)))
            }
            None => ExitCode::FAILURE,
        },
        Command::Dev { run } => crate::dev::main(&run),
    }
}

/// Runs `fut` on a multi-threaded runtime of `workers` threads (by default one per CPU, or
/// tokio's `TOKIO_WORKER_THREADS`).
pub(crate) fn block_on(workers: Option<u16>, fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n.into());
    }
    match builder.enable_all().build() {
        Ok(rt) => {
            let code = rt.block_on(fut);
            // A blocking call still stuck in a Kafka client must not hold up the exit.
            rt.shutdown_timeout(Duration::from_secs(1));
            code
        }
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and compiles for running (`mode` is strict about the parts the process runs): unset
/// variables there are errors; warnings are logged.
pub(crate) fn load_strict(path: &Path, env: &dyn Fn(&str) -> Option<String>, mode: EnvMode) -> Option<Routes> {
    let result = config::load(path).and_then(|loaded| routes::compile(&loaded, env, mode));
    match result {
        Ok((routes, warnings)) => {
            for w in &warnings.list {
                tracing::warn!("{w}");
            }
            Some(routes)
        }
        Err(diags) => {
            eprint!("{diags}");
            eprintln!("{}: config is not valid; not starting", path.display());
            None
        }
    }
}

pub(crate) async fn serve(
    routes: Arc<Routes>,
    role: Role,
    run: &RunArgs,
    ready: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    reload: Option<crate::reload::Reload>,
) -> ExitCode {
    let shutdown = Shutdown::on_signals();
    let grace = Duration::from_secs(run.grace_secs);
    let tls_client_ca = run.tls_client_ca.clone();
    let cfg = AppConfig { routes, role, listen: run.listen, grace, reload, tls: run.tls(), tls_client_ca };
    match app::start(cfg, shutdown).await {
        Ok(running) => {
            if let Some(ready) = ready {
                ready(running.addr);
            }
            match running.wait().await {
                Ok(()) => {
                    tracing::info!("stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("switchyard: {}", crate::text::error_chain(e.as_ref()));
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("switchyard: {}", crate::text::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// How `validate` prints what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Github,
}

fn validate(path: &Path, format: Format) -> ExitCode {
    let result = config::load(path).and_then(|loaded| {
        let (routes, mut warnings) = routes::compile(&loaded, &|k| std::env::var(k).ok(), EnvMode::Lenient)?;
        crate::dry_run::cases::lint(&routes, &loaded, &mut warnings);
        Ok((warnings, loaded.included.len()))
    });
    let (diags, valid) = match &result {
        Ok((warnings, _)) => (warnings, true),
        Err(diags) => (diags, false),
    };
    let errors = diags.errors().count();
    let warnings = diags.list.len() - errors;
    match (format, &result) {
        (Format::Json, _) => {
            let list: Vec<serde_json::Value> = diags.list.iter().map(|d| d.to_json()).collect();
            let doc = serde_json::json!({
                "config": path.display().to_string(),
                "valid": valid,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": list,
            });
            outln!("{doc}");
        }
        (Format::Github, _) => {
            for d in &diags.list {
                outln!("{}", d.to_github());
            }
            let verdict = if valid { "valid" } else { "not valid" };
            let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            outln!("{}: {verdict} ({}, {})", path.display(), count(errors, "error"), count(warnings, "warning"));
        }
        (Format::Text, Ok((warnings, 0))) => outln!("{warnings}{}: valid", path.display()),
        (Format::Text, Ok((warnings, included))) => {
            let files = if *included == 1 { "file" } else { "files" };
            outln!("{warnings}{} and {included} included {files}: valid", path.display());
        }
        (Format::Text, Err(diags)) => print_diagnostics(diags),
    }
    if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn print_diagnostics(diags: &Diagnostics) {
    let errors = diags.errors().count();
    outln!("{diags}{errors} error{}", if errors == 1 { "" } else { "s" });
}

/// Probes `/healthz` (`health::probe`) and says why the gateway is not healthy.
fn health(addr: SocketAddr, tls: bool) -> ExitCode {
    use crate::health::Health;
    match crate::health::probe(addr, tls) {
        Ok(Health::Healthy) => ExitCode::SUCCESS,
        Ok(Health::Unhealthy(answer)) => {
            eprintln!("{addr}: not healthy: {answer}");
            ExitCode::FAILURE
        }
        Ok(Health::SpeaksHttps) => {
            eprintln!("{addr} serves HTTPS: probe with --tls-cert (or SWITCHYARD_TLS_CERT) set, as for the gateway");
            ExitCode::FAILURE
        }
        // A plain HTTP answer read as a TLS record.
        Err(e) if tls && e.to_string().contains("InvalidContentType") => {
            eprintln!(
                "{addr} does not speak TLS: probe without --tls-cert (or SWITCHYARD_TLS_CERT), as for the gateway"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let mode = if args.verify { EnvMode::STRICT } else { EnvMode::Lenient };
    let result = config::load(&args.config).and_then(|l| routes::compile(&l, &|k| std::env::var(k).ok(), mode));
    let routes = match result {
        Ok((routes, warnings)) => {
            eprint!("{warnings}");
            routes
        }
        Err(diags) => {
            print_diagnostics(&diags);
            return ExitCode::FAILURE;
        }
    };
    let Some(payload) = &args.payload else { return check_challenge(&routes, args) };
    let read = if payload.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body).map(|_| body)
    } else {
        std::fs::read(payload)
    };
    let body = match read {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", payload.display());
            return ExitCode::FAILURE;
        }
    };
    match (&args.source, &args.topic) {
        (Some(source), _) => check_webhook(&routes, source, &body, args),
        (None, Some(topic)) => check_event(&routes, topic, &body, args),
        (None, None) => ExitCode::FAILURE, // clap requires one of them
    }
}

fn check_webhook(routes: &Routes, source: &str, body: &[u8], args: &CheckArgs) -> ExitCode {
    let src = match crate::dry_run::source_named(routes, source) {
        Ok(src) => src,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let headers = match crate::dry_run::parse_headers(&args.headers) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let query = args.query.as_deref().map(|q| q.strip_prefix('?').unwrap_or(q));
    let input = Inbound { headers: &headers, query, body, now: crate::ingress::unix_now(), verify: args.verify };
    let outcome = crate::dry_run::run(routes, src, &input);
    outln!("{}", serde_json::to_string_pretty(&outcome).unwrap_or_default());
    match outcome {
        crate::dry_run::DryRun::Rejected { .. } => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

/// A sender's GET verification (`--get`): prints the answer.
fn check_challenge(routes: &Routes, args: &CheckArgs) -> ExitCode {
    let source = args.source.as_deref().unwrap_or_default(); // clap requires it with --get
    let query = args.query.as_deref().map(|q| q.strip_prefix('?').unwrap_or(q));
    let answered = crate::dry_run::source_named(routes, source).and_then(|src| crate::dry_run::challenge(src, query));
    match answered {
        Ok(outcome) => {
            outln!("{}", serde_json::to_string_pretty(&outcome).unwrap_or_default());
            match outcome {
                crate::dry_run::DryRun::Rejected { .. } => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// An event consumed from `topic`: prints the calls (or dead letters) of its dispatchers.
fn check_event(routes: &Routes, topic: &str, body: &[u8], args: &CheckArgs) -> ExitCode {
    let value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let payload = args.payload.as_deref().unwrap_or(std::path::Path::new("-"));
            eprintln!("{} is not JSON: {e}", payload.display());
            return ExitCode::FAILURE;
        }
    };
    let headers = match crate::dry_run::header_pairs(&args.headers) {
        Ok(pairs) => pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let event =
        crate::pipeline::Event { rule: String::new(), topic: topic.to_owned(), key: args.key.clone(), headers, value };
    match crate::dry_run::consume(routes, &event) {
        Ok(calls) => {
            let mut shown = serde_json::json!({"topic": topic, "calls": calls});
            let passed = crate::dry_run::passed_over(routes, &event);
            if !passed.is_empty() {
                shown["passed_over"] = serde_json::json!(passed);
            }
            outln!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the `tests:` cases. The environment is ignored (defaults only), so a case gives the
/// same answer on every machine; signatures are not checked.
/// With `github`, each failing case and config error is also a GitHub Actions workflow command.
fn test(config: &Path, filter: Option<&str>, github: bool) -> ExitCode {
    let refused = |diags: &Diagnostics| {
        print_diagnostics(diags);
        for d in diags.errors().filter(|_| github) {
            outln!("{}", d.to_github());
        }
        ExitCode::FAILURE
    };
    let loaded = match config::load(config) {
        Ok(l) => l,
        Err(diags) => return refused(&diags),
    };
    let routes = match routes::compile(&loaded, &|_| None, EnvMode::Lenient) {
        Ok((routes, _)) => routes,
        Err(diags) => return refused(&diags),
    };
    let units = loaded.units();
    let cases = units.iter().flat_map(|u| u.tests.iter().map(move |case| (u, case)));
    if units.iter().all(|u| u.tests.is_empty()) {
        outln!("{} has no test cases: its `tests:` section lists them (README, Config tooling)", config.display());
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (unit, case) in cases {
        if filter.is_some_and(|f| !case.name.value.contains(f)) {
            skipped += 1;
            continue;
        }
        let at = format!("{}:{}", unit.path.display(), case.name.referenced.line());
        let problems = crate::dry_run::cases::run_case(&routes, case, unit.dir);
        if problems.is_empty() {
            passed += 1;
            outln!("ok   {}", case.name.value);
        } else {
            failed += 1;
            outln!("FAIL {}  ({at})", case.name.value);
            for p in &problems {
                outln!("     {p}");
            }
            if github {
                let d = Diagnostic {
                    file: unit.path.to_path_buf(),
                    line: case.name.referenced.line() as u32,
                    column: case.name.referenced.column() as u32,
                    severity: config::Severity::Error,
                    message: format!("test case '{}' failed:\n{}", case.name.value, problems.join("\n")),
                };
                outln!("{}", d.to_github());
            }
        }
    }
    match (filter, skipped) {
        (Some(f), _) if passed + failed == 0 => {
            outln!("no test case's name contains '{f}' ({skipped} cases filtered out)");
            return ExitCode::FAILURE;
        }
        (_, 0) => outln!("{passed} passed, {failed} failed"),
        _ => outln!("{passed} passed, {failed} failed, {skipped} filtered out"),
    }
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// `switchyard redrive --source`: one line per refused webhook and what it became (or, in a dry
/// run, would become), then what was done. Runs with the config and environment `serve` runs with.
fn redrive_source(config: &Path, name: &str, dry_run: bool, limit: Option<usize>) -> ExitCode {
    use crate::ingress::redrive::{self, SourceRedrive};
    let mode = Role::Ingress.env_mode();
    let Some(routes) = load_strict(config, &|k| std::env::var(k).ok(), mode) else { return ExitCode::FAILURE };
    let source = match crate::dry_run::source_named(&routes, name) {
        Ok(s) if s.dead_letter_topic.is_some() => s,
        Ok(_) => {
            eprintln!("source '{name}' keeps no refused webhooks: give it a dead_letter_topic");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = SourceRedrive { kafka: &routes.kafka, source, dry_run, limit, timeout: Duration::from_secs(30) };
    let arrow = if dry_run { "" } else { "-> " };
    block_on(None, async {
        redrive_done(redrive::run(&cfg, |letter| outln!("{arrow}{letter}")).await.map(|s| s.describe(&cfg)))
    })
}

/// The end of a redrive: its summary line, or why it stopped.
fn redrive_done(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(summary) => {
            outln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard redrive: {}", crate::text::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `switchyard redrive`: one line per dead letter sent back (or, in a dry run, waiting), then
/// what was done. Runs with the config and environment `serve` runs with.
fn redrive(config: &Path, name: Option<&str>, dry_run: bool, limit: Option<usize>) -> ExitCode {
    use crate::dispatch::redrive::{self, RedriveConfig};
    // A redrive reads what a dispatcher reads: the sources' secrets need not be set.
    let mode = Role::Dispatch.env_mode();
    let Some(routes) = load_strict(config, &|k| std::env::var(k).ok(), mode) else { return ExitCode::FAILURE };
    let names: Vec<&str> = routes.dispatchers.iter().map(|d| d.name.as_str()).collect();
    let chosen = match name {
        Some(n) => routes.dispatchers.iter().find(|d| d.name == n),
        None if routes.dispatchers.len() == 1 => routes.dispatchers.first(),
        None => None,
    };
    let Some(dispatcher) = chosen else {
        match (name, names.is_empty()) {
            (_, true) => eprintln!("{}: the config has no dispatchers", config.display()),
            (Some(n), false) => eprintln!("no dispatcher named '{n}' (the config has: {})", names.join(", ")),
            (None, false) => eprintln!("name one with --dispatcher (the config has: {})", names.join(", ")),
        }
        return ExitCode::FAILURE;
    };
    let cfg = RedriveConfig { kafka: &routes.kafka, dispatcher, dry_run, limit, timeout: Duration::from_secs(30) };
    let arrow = if dry_run { "" } else { "-> " };
    block_on(None, async {
        redrive_done(redrive::run(&cfg, |letter| outln!("{arrow}{letter}")).await.map(|s| s.describe(&cfg)))
    })
}

/// `switchyard tap`: the records of `topics` (by default, the config's) as JSON lines. The
/// config gives the Kafka settings (its `kafka:` block, read as `serve` reads it); with
/// `--brokers` and topics named, none is needed.
fn tap(args: TapArgs) -> ExitCode {
    let TapArgs { config, brokers, topics, new, count, to_end } = args;
    if topics.is_empty() && !config.exists() {
        let config = config.display();
        eprintln!(
            "switchyard: no topics named, and no config at '{config}' to take them from: name them (switchyard tap payments), or the config (-c FILE)"
        );
        return ExitCode::FAILURE;
    }
    let routes = match (&brokers, topics.is_empty() || config.exists()) {
        (Some(_), false) => None,
        // Only the `kafka:` block is read strictly: sources' and dispatchers' secrets need not be
        // set, and their warnings are not the tap's business.
        _ => {
            let mode = EnvMode::Strict { sources: false, dispatch: false };
            match config::load(&config).and_then(|l| routes::compile(&l, &|k| std::env::var(k).ok(), mode)) {
                Ok((routes, _)) => Some(routes),
                Err(diags) => {
                    eprint!("{diags}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let mut kafka = match &routes {
        Some(r) => r.kafka.clone(),
        None => crate::routes::KafkaSettings {
            brokers: String::new(),
            publish_timeout: Duration::from_secs(10),
            properties: Vec::new(),
        },
    };
    if let Some(b) = brokers {
        kafka.brokers = b;
    }
    let topics = match (&routes, topics.is_empty()) {
        (Some(r), true) => r.topics(),
        _ => topics,
    };
    if topics.is_empty() {
        eprintln!("switchyard tap: no topics: name some, or give a config that has some");
        return ExitCode::FAILURE;
    }
    let cfg = crate::kafka::tap::Tap {
        kafka: &kafka,
        topics: &topics,
        from_start: !new,
        count,
        to_end,
        timeout: Duration::from_secs(10),
    };
    block_on(None, async {
        match crate::kafka::tap::run(&cfg, |line| outln!("{line}")).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchyard tap: {}", crate::text::error_chain(e.as_ref()));
                ExitCode::FAILURE
            }
        }
    })
}
