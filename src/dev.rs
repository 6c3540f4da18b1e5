//! `switchyard dev`: the whole flow in one process on an embedded broker, with made-up secrets
//! for the unset variables that need one, a ready-to-paste signed `curl` for each source, and
//! the verifying GET of a source with a `challenge:`; a reload (an edit) gets the same for what
//! it adds: new variables their made-up values, new topics their place on the broker, new
//! sources (and ones signed another way, or whose test case's payload changed) their `curl`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use serde_json::Value as Json;

use crate::app::Role;
use crate::cli::{RunArgs, block_on, load_strict, serve};
use crate::config::env;
use crate::config::model::ExpectedStatus;
use crate::kafka::EmbeddedBroker;
use crate::pipeline::verify::{adyen, sign_request};
use crate::routes::reply::Challenge;
use crate::routes::verify::Secret;
use crate::routes::{EnvMode, Routes, Source, Verifier};

/// Partitions of each topic on the embedded broker.
const PARTITIONS: i32 = 4;

const STRIPE_SAMPLE: &str = include_str!("../samples/stripe/checkout_session_completed.json");

pub(crate) fn main(run: &RunArgs) -> ExitCode {
    let secrets = DevSecrets::new(needed(&run.config));
    let env = {
        let secrets = secrets.clone();
        Arc::new(move |name: &str| std::env::var(name).ok().or_else(|| secrets.for_unset(name)))
    };
    let Some(mut routes) = load_strict(&run.config, &*env, EnvMode::STRICT) else { return ExitCode::FAILURE };
    let broker = match EmbeddedBroker::start(1) {
        Ok(b) => Arc::new(Topics { broker: b, created: Mutex::default() }),
        Err(e) => {
            eprintln!("switchyard dev: cannot start the embedded broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = broker.create(&routes) {
        eprintln!("switchyard dev: {e}");
        return ExitCode::FAILURE;
    }
    routes.kafka.brokers = broker.broker.bootstrap_servers().to_owned();
    let banner = Arc::new(Banner {
        config: run.config.clone(),
        bootstrap: routes.kafka.brokers.clone(),
        tls: run.tls().is_some(),
        secrets: secrets.clone(),
        listener: OnceLock::new(),
        shown: Mutex::default(),
    });
    // A reload may write a new variable, a new topic or a new source: the variable gets its
    // made-up value, the topic is created, the source's curl is printed; and the reloaded
    // routes point at the embedded broker too.
    let reload = {
        let reload = crate::reload::for_config(run.config.clone(), &routes, env, EnvMode::STRICT);
        let (compile, config, broker, banner) =
            (reload.compile.clone(), run.config.clone(), broker.clone(), banner.clone());
        let compile: crate::reload::Compile = Arc::new(move || {
            secrets.rescan(needed(&config));
            let mut routes = compile()?;
            routes.kafka.brokers = broker.broker.bootstrap_servers().to_owned();
            if let Err(e) = broker.create(&routes) {
                tracing::error!("switchyard dev: {e}");
            }
            Ok(routes)
        });
        let swapped: crate::reload::Swapped = Arc::new(move |routes: &Routes| banner.print_news(routes));
        crate::reload::Reload { compile, swapped: Some(swapped), ..reload }
    };
    let routes = Arc::new(routes);
    let ready = {
        let (banner, routes) = (banner.clone(), routes.clone());
        Box::new(move |addr: SocketAddr| banner.print(&routes, Listener { addr, tls: banner.tls }))
    };
    let code = block_on(run.workers, serve(routes, Role::All, run, Some(ready), Some(reload)));
    drop(broker);
    code
}

/// The variables the config's files write without a default: only these get a made-up value
/// (`${X:-}` keeps its own).
fn needed(config: &Path) -> Vec<String> {
    crate::config::load(config)
        .map(|l| {
            l.files()
                .iter()
                .filter_map(|f| std::fs::read_to_string(f).ok())
                .flat_map(|t| env::without_default(&t))
                .collect()
        })
        .unwrap_or_default()
}

/// The embedded broker, and the topics made on it (with [`PARTITIONS`] each).
struct Topics {
    broker: EmbeddedBroker,
    created: Mutex<Vec<String>>,
}

impl Topics {
    /// Makes every topic `routes` publish to or consume from that is not made yet.
    fn create(&self, routes: &Routes) -> Result<(), String> {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        for topic in routes.topics() {
            if !created.contains(&topic) {
                self.broker
                    .create_topic(&topic, PARTITIONS)
                    .map_err(|e| format!("cannot create topic {topic}: {e}"))?;
                created.push(topic);
            }
        }
        Ok(())
    }
}

/// The secrets `dev` makes up for unset variables, so it starts with no setup at all, and which
/// variables got one.
#[derive(Clone)]
struct DevSecrets {
    /// `whsec_<base64>`, for `…_SECRET` variables: Stripe takes it as it is, Standard Webhooks
    /// decodes the base64.
    secret: String,
    /// 64 hex digits, for `…_HMAC_KEY` variables, as an Adyen HMAC key is.
    key: String,
    /// `dev_<hex>`, for `…_TOKEN` variables: a `token` verifier's, a challenge's verify token.
    token: String,
    /// The variables the config writes without a default: only these get a made-up value.
    needed: Arc<Mutex<Vec<String>>>,
    generated: Arc<Mutex<Vec<String>>>,
}

impl DevSecrets {
    fn new(needed: Vec<String>) -> DevSecrets {
        DevSecrets {
            needed: Arc::new(Mutex::new(needed)),
            secret: format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())),
            key: hex::encode_upper(rand::random::<[u8; 32]>()),
            token: format!("dev_{}", hex::encode(rand::random::<[u8; 16]>())),
            generated: Arc::default(),
        }
    }

    /// What a made-up value of variable `name` is called, and the value; `None` for a variable
    /// that is not a secret's.
    fn kind(&self, name: &str) -> Option<(&'static str, &str)> {
        match name {
            _ if name.ends_with("_SECRET") => Some(("secret", &self.secret)),
            _ if name.ends_with("_HMAC_KEY") => Some(("key", &self.key)),
            _ if name.ends_with("_TOKEN") => Some(("token", &self.token)),
            _ => None,
        }
    }

    /// The variables needing a value are now `needed` (the config was edited).
    fn rescan(&self, needed: Vec<String>) {
        *self.needed.lock().unwrap_or_else(|e| e.into_inner()) = needed;
    }

    /// The made-up value of the unset variable `name`, if it is a secret's.
    fn for_unset(&self, name: &str) -> Option<String> {
        if !self.needed.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == name) {
            return None;
        }
        let (_, value) = self.kind(name)?;
        let mut generated = self.generated.lock().unwrap_or_else(|e| e.into_inner());
        if !generated.iter().any(|n| n == name) {
            generated.push(name.to_owned());
        }
        Some(value.to_owned())
    }

    /// Whether `value` holds one of the made-up values (which the banner may show).
    fn made_up(&self, value: &[u8]) -> bool {
        let value = String::from_utf8_lossy(value);
        [&self.secret, &self.key, &self.token].iter().any(|d| value.contains(d.as_str()))
    }

    /// The banner's lines naming the variables that got a made-up value, and the value, but
    /// for those in `shown`.
    fn banner_lines(&self, shown: &[String]) -> Vec<String> {
        let generated = self.generated.lock().unwrap_or_else(|e| e.into_inner());
        ["secret", "key", "token"]
            .into_iter()
            .filter_map(|what| {
                let names: Vec<&str> = generated
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !shown.iter().any(|s| s == n))
                    .filter(|n| self.kind(n).is_some_and(|(w, _)| w == what))
                    .collect();
                let value = self.kind(names.first()?)?.1;
                Some(format!("{} not set: using the dev {what} {value}", names.join(", ")))
            })
            .collect()
    }
}

/// A payload to offer for a source: its body and the headers its test case sends.
#[derive(Clone, PartialEq)]
struct Sample {
    source: String,
    case: String,
    body: String,
    headers: Vec<(String, String)>,
    /// The case's URL query (a Twilio status callback's `?order=…`).
    query: Option<String>,
}

/// One sample per source from the config's `tests:` cases, an accepted one when there is one.
fn samples(config: &Path) -> Vec<Sample> {
    let Ok(loaded) = crate::config::load(config) else { return Vec::new() };
    // Webhook cases only (an event case has a topic instead of a source).
    let units = loaded.units();
    let mut cases: Vec<_> = units
        .iter()
        .flat_map(|u| u.tests.iter().filter_map(move |c| Some((c, &c.source.as_ref()?.value, u.dir))))
        .collect();
    cases.sort_by_key(|(c, _, _)| c.expect.status != Some(ExpectedStatus::Accepted));
    let mut out: Vec<Sample> = Vec::new();
    for (case, source, dir) in cases {
        if out.iter().any(|s| &s.source == source) {
            continue;
        }
        let Ok(body) = crate::dry_run::cases::case_payload(case, dir) else { continue };
        let Ok(body) = String::from_utf8(body) else { continue };
        let headers = case.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let query = case.query.clone();
        out.push(Sample { source: source.clone(), case: case.name.value.clone(), body, headers, query });
    }
    out
}

/// Where `dev` listens, and whether it speaks HTTPS.
#[derive(Clone, Copy)]
struct Listener {
    addr: SocketAddr,
    tls: bool,
}

impl Listener {
    /// The base URL a client on this machine uses.
    fn base(self) -> String {
        let addr = self.addr;
        let host = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
        format!("{}://{host}", if self.tls { "https" } else { "http" })
    }
}

/// What `dev` prints: once it listens, where to send, a signed `curl` per source and where
/// events go; after a reload, what the reload added (a made-up value, a source, a rule's call).
struct Banner {
    config: PathBuf,
    bootstrap: String,
    tls: bool,
    secrets: DevSecrets,
    /// Where `dev` listens, once it does.
    listener: OnceLock<Listener>,
    shown: Mutex<Shown>,
}

/// What a source's lines were printed from.
#[derive(PartialEq)]
struct SourceShown {
    name: String,
    path: String,
    /// The kind of each scheme it checks (a `verify:` list has several).
    verifier: Vec<std::mem::Discriminant<Verifier>>,
    sample: Option<Sample>,
}

/// What the banner has printed so far.
#[derive(Default)]
struct Shown {
    /// The variables whose made-up value is printed.
    secrets: Vec<String>,
    /// The sources as last printed: a new path, kind of verifier or sample needs a new `curl`.
    sources: Vec<SourceShown>,
    /// The lines saying which calls the dispatchers' rules make.
    calls: Vec<String>,
}

impl Banner {
    /// The whole banner, printed once `dev` listens.
    fn print(&self, routes: &Routes, listener: Listener) {
        let _ = self.listener.set(listener);
        let mut lines = vec![
            format!(
                "\nSwitchyard dev is running: ingress and dispatcher on an embedded Kafka broker at {}",
                self.bootstrap
            ),
            "(it keeps events in memory: they are gone when dev stops; `serve` with KAFKA_BROKERS keeps them)".into(),
            format!(
                "What lands on its topics, as JSON lines: switchyard tap --brokers {}{}",
                self.bootstrap,
                self.config_arg()
            ),
            format!("Readiness and metrics: {base}/readyz, {base}/metrics", base = listener.base()),
        ];
        lines.extend(self.news(routes, listener));
        write_out(&lines);
    }

    /// ` -c <config>` for a command to read the config `dev` runs, when it is not the default.
    fn config_arg(&self) -> String {
        match self.config.to_str() {
            Some("routes.yaml") => String::new(),
            _ => format!(" -c '{}'", self.config.display().to_string().replace('\'', "'\\''")),
        }
    }

    /// What reloaded `routes` add to the banner, printed when there is any.
    fn print_news(&self, routes: &Routes) {
        let Some(&listener) = self.listener.get() else { return };
        let news = self.news(routes, listener);
        if !news.is_empty() {
            write_out(&[&["\nThe reloaded config adds or changes:".to_owned()], &news[..]].concat());
        }
    }

    /// The lines of made-up values, sources and dispatchers' calls not printed yet.
    fn news(&self, routes: &Routes, listener: Listener) -> Vec<String> {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines: Vec<String> = Vec::new();
        lines.extend(self.secrets.banner_lines(&shown.secrets));
        shown.secrets = self.secrets.generated.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let samples = samples(&self.config);
        for source in &routes.sources {
            let id = SourceShown {
                name: source.name.clone(),
                path: source.path.clone(),
                verifier: source.verifier.schemes().iter().map(std::mem::discriminant).collect(),
                sample: samples.iter().find(|s| s.source == source.name).cloned(),
            };
            if !shown.sources.contains(&id) {
                shown.sources.retain(|s| s.name != id.name);
                shown.sources.push(id);
                lines.extend(source_lines(source, listener, &self.secrets, &samples));
            }
        }
        for d in &routes.dispatchers {
            for r in &d.rules {
                let call =
                    format!("\n  Events on '{}' become {} {}/… (rule '{}')", d.topic, r.method, r.origin, r.name);
                if !shown.calls.contains(&call) {
                    shown.calls.push(call.clone());
                    lines.push(call);
                }
            }
        }
        lines
    }
}

/// Writes `lines` at once, errors ignored: a closed stdout (`dev | head`) must not stop the
/// gateway.
fn write_out(lines: &[String]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all((lines.join("\n") + "\n\n").as_bytes()).and_then(|()| stdout.flush());
}

/// Where to send to `source`, and how: its verifying GET, a signed `curl` of a sample payload.
fn source_lines(source: &Source, listener: Listener, secrets: &DevSecrets, samples: &[Sample]) -> Vec<String> {
    let base = listener.base();
    let mut lines = vec![format!("\n  POST {base}{}   (source '{}')", source.path, source.name)];
    if let Some(challenge) = &source.challenge {
        lines.push(format!(
            "\n  The sender's GET verification, answered with its challenge:\n\n{}",
            verification(listener, source, challenge, secrets)
        ));
    }
    if source.require_client_certificate {
        lines.push(
            "  (it takes only clients with a certificate of --tls-client-ca: add curl's --cert and --key)".into(),
        );
    }
    if source.verifier.schemes().iter().any(|v| matches!(v, Verifier::SendGrid { .. })) {
        lines.push(format!(
            "  (SendGrid signs with its private key, so no curl here can: use its Test Integration, or dry-run a payload with `switchyard check --source {}`)",
            source.name
        ));
        return lines;
    }
    // A test case's payload when the source has one; else, for Stripe, the bundled checkout.
    let sample = samples.iter().find(|s| s.source == source.name);
    let (what, body, extra) = match (sample, &source.verifier) {
        (Some(sample), _) => {
            (format!("The payload of test case '{}'", sample.case), sample.body.clone(), sample.headers.clone())
        }
        (None, Verifier::Stripe { .. }) => ("A sample checkout".to_owned(), sample_event(), Vec::new()),
        (None, _) => {
            lines.push(format!("  (a `tests:` case for source '{}' puts a ready-to-paste curl here)", source.name));
            return lines;
        }
    };
    let insecure = if listener.tls { " (-k: curl trusts any certificate, as this is dev on this machine)" } else { "" };
    lines.push(format!("\n  {what}{}{insecure}:\n", signature_note(&source.verifier)));
    let query = sample.and_then(|s| s.query.as_deref());
    lines.push(curl(listener, source, Request { query, body: &body, headers: &extra }, secrets));
    lines
}

/// What `dev`'s `curl` sends: the URL's query, the body, and headers besides the signature's.
struct Request<'a> {
    query: Option<&'a str>,
    body: &'a str,
    headers: &'a [(String, String)],
}

fn signature_note(verifier: &Verifier) -> String {
    match verifier {
        Verifier::None => String::new(),
        Verifier::All(all) => all.iter().map(signature_note).collect(),
        Verifier::HmacSha256 { .. } | Verifier::Twilio { .. } | Verifier::Square { .. } => ", signed".into(),
        Verifier::Adyen { .. } => ", each item signed".into(),
        Verifier::Token { .. } => ", with its token".into(),
        Verifier::Basic { .. } => ", with its user and password".into(),
        Verifier::Stripe { tolerance_secs, .. }
        | Verifier::StandardWebhooks { tolerance_secs, .. }
        | Verifier::Slack { tolerance_secs, .. }
        | Verifier::Twitch { tolerance_secs, .. }
        | Verifier::SendGrid { tolerance_secs, .. } => {
            format!(", signed (valid for {tolerance_secs} s)")
        }
    }
}

/// A shell command that posts `body` to `source`, signed as its verifier wants. A token or
/// Basic credentials are the secret itself: one of the user's own is not printed, a placeholder
/// is (only the generated dev secret, printed above, is shown as it is).
fn curl(listener: Listener, source: &Source, request: Request, secrets: &DevSecrets) -> String {
    let Request { query, body, headers: extra } = request;
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let insecure = if listener.tls { "-k " } else { "" };
    let url = match query {
        Some(q) => quote(&format!("{}{}?{q}", listener.base(), source.path)),
        None => format!("{}{}", listener.base(), source.path),
    };
    let mut cmd = format!("curl -sS {insecure}{url}");
    // A case's own Content-Type (a form's) is sent instead of JSON's, not beside it.
    if !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        cmd.push_str(" -H 'Content-Type: application/json'");
    }
    let id = format!("msg_dev_{}", hex::encode(rand::random::<[u8; 8]>()));
    // Adyen signs inside the body: each item carries its HMAC. Signatures in headers cover the
    // body so signed.
    let mut body = body.to_owned();
    for scheme in source.verifier.schemes() {
        if let Verifier::Adyen { secrets } = scheme
            && let Some(key) = secrets.first()
        {
            body = adyen::sign(key, &body);
        }
    }
    // A secret of the user's own, sent as it is, is not printed; the dev secret is.
    let own = |given: &[Secret]| given.first().is_some_and(|s| !secrets.made_up(&s.0));
    let signature = source.verifier.schemes().iter().flat_map(|scheme| match scheme {
        Verifier::Token { secrets, header, prefix } if own(secrets) => {
            vec![(header.to_string(), format!("{prefix}<the token in verify.secrets>"))]
        }
        Verifier::Basic { secrets } if own(secrets) => {
            vec![("Authorization".to_owned(), "Basic <base64 of the user:password in verify.secrets>".to_owned())]
        }
        scheme => sign_request(scheme, query, body.as_bytes(), crate::ingress::unix_now(), &id),
    });
    for (name, value) in extra.iter().cloned().chain(signature) {
        cmd.push_str(&format!(" -H {}", quote(&format!("{name}: {value}"))));
    }
    cmd.push_str(&format!(" --data-binary {}", quote(&body)));
    cmd
}

/// A shell command that sends `source` the GET with which a sender verifies the endpoint. A
/// required value is shown when the config writes it or `dev` made it up; one of the user's own
/// (a verify token from the environment) is a placeholder.
fn verification(listener: Listener, source: &Source, challenge: &Challenge, secrets: &DevSecrets) -> String {
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let mut query: Vec<String> = Vec::new();
    for (name, value) in &challenge.require {
        let shown = challenge.plain.contains(name) || value.as_ref().is_some_and(|v| secrets.made_up(&v.0));
        match value {
            Some(v) if shown => query.push(format!("{}={}", encode(name), encode(&String::from_utf8_lossy(&v.0)))),
            _ => query.push(format!("{}=<{name}>", encode(name))),
        }
    }
    query.push(format!("{}=dev_{}", encode(&challenge.echo), hex::encode(rand::random::<[u8; 4]>())));
    let insecure = if listener.tls { "-k " } else { "" };
    let url = format!("{}{}?{}", listener.base(), source.path, query.join("&"));
    format!("curl -sS {insecure}'{}'", url.replace('\'', "'\\''"))
}

/// The sample checkout with a fresh event id and timestamp, on one line.
fn sample_event() -> String {
    let mut doc: Json = serde_json::from_str(STRIPE_SAMPLE).unwrap_or_default();
    doc["id"] = Json::String(format!("evt_dev_{}", hex::encode(rand::random::<[u8; 8]>())));
    doc["created"] = Json::from(crate::ingress::unix_now());
    doc.to_string()
}
