//! The `switchyard` command line: `serve`, `dev`, `validate`, `health`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::{self, AppConfig, Role};
use crate::config::{self, Diagnostics};
use crate::routes::{self, EnvMode, Routes};
use crate::shutdown::Shutdown;

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
    },
    /// Parse and compile the config without touching the network; exit 1 on any error.
    Validate {
        #[arg(short, long, default_value = "routes.yaml")]
        config: PathBuf,
    },
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
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match cli.command {
        Command::Validate { config } => validate(&config),
        Command::Health { addr } => health(addr),
        Command::Serve { run, role } => match load_strict(&run.config, &|k| std::env::var(k).ok()) {
            Some(routes) => block_on(serve(Arc::new(routes), role, &run, None)),
            None => ExitCode::FAILURE,
        },
        Command::Dev { run } => crate::dev::main(&run),
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub(crate) fn block_on(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and compiles for running: unset variables are errors; warnings are logged.
pub(crate) fn load_strict(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Option<Routes> {
    let result = config::load(path).and_then(|loaded| routes::compile(&loaded, env, EnvMode::Strict));
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
) -> ExitCode {
    let shutdown = Shutdown::on_signals();
    let cfg = AppConfig { routes, role, listen: run.listen, grace: Duration::from_secs(run.grace_secs) };
    match app::start(cfg, shutdown).await {
        Ok(running) => {
            if let (Some(addr), Some(ready)) = (running.addr, ready) {
                ready(addr);
            }
            running.wait().await;
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &Path) -> ExitCode {
    let result =
        config::load(path).and_then(|loaded| routes::compile(&loaded, &|k| std::env::var(k).ok(), EnvMode::Lenient));
    match result {
        Ok((_, warnings)) => {
            print!("{warnings}");
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(diags) => {
            print_diagnostics(&diags);
            ExitCode::FAILURE
        }
    }
}

fn print_diagnostics(diags: &Diagnostics) {
    print!("{diags}");
    let errors = diags.errors().count();
    println!("{errors} error{}", if errors == 1 { "" } else { "s" });
}

/// A plain HTTP/1.1 GET of `/healthz` with a short timeout; no client library needed.
fn health(addr: SocketAddr) -> ExitCode {
    use std::io::{Read, Write};
    let addr = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
    let probe = || -> std::io::Result<bool> {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{addr}: not healthy");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
