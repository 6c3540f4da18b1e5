//! The `routes.yaml` model: plain serde types, unknown keys rejected, every user string spanned.
//!
//! Nothing here is interpreted: env interpolation, JSONPath parsing and schema loading happen
//! when [`crate::routes::compile`] turns this model into compiled routes.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

/// A value with the place it was written (line:col); derefs to serde-saphyr's `Spanned`, and
/// describes itself in the config's JSON Schema as the plain value.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Spanned<T>(pub serde_saphyr::Spanned<T>);

impl<T> std::ops::Deref for Spanned<T> {
    type Target = serde_saphyr::Spanned<T>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A string from the config with the place it was written.
pub type Text = Spanned<String>;

/// The whole `routes.yaml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Files whose `sources`, `dispatch` and `tests` join this file's, relative to it; a folder
    /// stands for its `*.yaml` and `*.yml` files, in name order. Only this file includes, and
    /// only it sets `kafka` and `ingress`.
    #[serde(default)]
    pub include: Vec<Text>,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub ingress: IngressConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub dispatch: Vec<DispatcherConfig>,
    /// The config's own unit tests, run by `switchyard test`.
    #[serde(default)]
    pub tests: Vec<TestCaseConfig>,
}

/// A file the main config includes: more sources, dispatchers and test cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncludedFile {
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub dispatch: Vec<DispatcherConfig>,
    #[serde(default)]
    pub tests: Vec<TestCaseConfig>,
}

/// Broker connection and producer settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`; default `localhost:9092`.
    pub brokers: Option<Text>,
    /// How long a webhook waits for the broker's acknowledgement before answering 503.
    pub publish_timeout_ms: Option<Spanned<u64>>,
    /// librdkafka properties passed through as they are (they win over Switchyard's defaults).
    #[serde(default)]
    pub properties: IndexMap<String, Spanned<Scalar>>,
}

/// A YAML scalar written where librdkafka wants a string.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// HTTP server limits.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// Largest accepted request body; default 1 MiB.
    pub max_body_bytes: Option<Spanned<u64>>,
    /// Time allowed to read a request's headers and body; default 10 s.
    pub read_timeout_ms: Option<Spanned<u64>>,
    /// Most webhooks waiting on the broker at once; more are answered 503; default 4096.
    pub max_in_flight: Option<Spanned<u64>>,
    /// Most open client connections; at the limit new ones wait in the backlog; default 10000.
    pub max_connections: Option<Spanned<u64>>,
    /// Most request-body bytes held in memory at once, over all requests; a body waits (within
    /// the read timeout) for room before it is read, then gets 503; default 64 MiB.
    pub max_buffered_bytes: Option<Spanned<u64>>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: a request
    /// that comes through one is from the last address in that header that is not one of
    /// them. Without this, a request is from the address it connected from.
    #[serde(default)]
    pub trusted_proxies: Vec<Text>,
}

/// One webhook sender: where it posts, how it signs, what it sends, what it becomes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: Text,
    /// The HTTP path, e.g. `/webhooks/stripe`.
    pub path: Text,
    pub verify: Verify,
    /// Only these addresses or CIDR ranges may post (`203.0.113.0/24`, `2001:db8::/32`; several
    /// in one entry may be separated by commas or spaces, so one variable can hold a list);
    /// others are answered 403 before the body is read. Behind a proxy, see
    /// `ingress.trusted_proxies`.
    pub allowed_ips: Option<Vec<Text>>,
    /// Take webhooks only from clients that present a certificate the listener's client CA
    /// issued (`serve --tls-client-ca`, mutual TLS); others are answered 403.
    pub require_client_certificate: Option<Spanned<bool>>,
    /// JSON Schema every inbound payload must satisfy (path relative to this file).
    pub schema: Option<Text>,
    /// Also accept `application/x-www-form-urlencoded` bodies, whose JSON is in this form
    /// field: `payload` for GitHub's form content type. The signature covers the body as sent.
    pub form_field: Option<Text>,
    /// Also accept `application/x-www-form-urlencoded` bodies as a JSON object of their
    /// fields, each a string (an array of strings where a field repeats): Slack's slash
    /// commands, Twilio. The signature covers the body as sent.
    pub form_fields: Option<Spanned<bool>>,
    /// Where a signed webhook the pipeline refuses (400, 422, 500) is kept: with this set it
    /// is answered 200 `dead_lettered` once the broker holds it, and `switchyard redrive
    /// --source` runs it through the routes again once they are fixed.
    pub dead_letter_topic: Option<Text>,
    /// Where the event type is, for rules' `when.event_type`: a JSONPath such as `$.type`,
    /// or `{ header: X-GitHub-Event }` for senders that put it in a request header.
    pub event_type: Option<Spanned<Locate>>,
    /// Where the sender's event id is, for logs and answers: a JSONPath such as `$.id`, or
    /// `{ header: X-GitHub-Delivery }`.
    pub event_id: Option<Spanned<Locate>>,
    /// Answers for the handshakes a sender makes before it sends events (Slack's
    /// `url_verification`): a webhook one matches is answered with it and publishes nothing.
    #[serde(default)]
    pub replies: Vec<ReplyConfig>,
    /// Answers the GET with which a sender verifies the endpoint before it posts (Meta's
    /// `hub.challenge`, Dropbox's `challenge`); without it, a GET is answered 405.
    pub challenge: Option<ChallengeConfig>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// A sender's GET verification: answered with one query parameter's value, when the others
/// hold what they must.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeConfig {
    /// The query parameter whose value is the answer, e.g. `hub.challenge`.
    pub echo: Text,
    /// Query parameters that must have these values, e.g. `hub.mode: subscribe` and
    /// `hub.verify_token: "${META_VERIFY_TOKEN}"` (compared in constant time); others: 403.
    #[serde(default)]
    pub require: IndexMap<String, Text>,
    /// Answer `{"<echo>": "<value>"}` as JSON (Strava) instead of the value as plain text.
    pub json: Option<Spanned<bool>>,
}

/// A reply: when a webhook matches, answer it with this body instead of publishing. The
/// first reply that matches answers; replies are matched before the source's schema is
/// checked (a handshake is not an event).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    pub name: Text,
    #[serde(default)]
    pub when: WhenConfig,
    /// The answer's HTTP status, 200 to 299; default 200.
    pub status: Option<Spanned<u64>>,
    /// A JSON object answer (`application/json`), each property a value as in `emit.value`.
    pub body: Option<IndexMap<String, Spanned<ExprConfig>>>,
    /// A `text/plain` answer: one value, written as text. Give `body` or `text`, not both.
    pub text: Option<Spanned<ExprConfig>>,
    /// The `text` answer's media type instead of `text/plain; charset=utf-8`. In markup (XML,
    /// HTML) a `template` escapes the values it inserts.
    pub content_type: Option<Text>,
}

/// Where a value is read: a JSONPath into the payload, or a header that came with it.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum Locate {
    /// A JSONPath into the payload, e.g. `$.type`.
    Path(String),
    /// A header: of the webhook's request in `sources`, of the Kafka record in `dispatch`.
    Header(HeaderRef),
}

/// `{ header: Name }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderRef {
    pub header: String,
}

/// By hand rather than `untagged`, whose error ("did not match any variant") says nothing.
impl<'de> Deserialize<'de> for Locate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Locate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSONPath such as $.type, or { header: Name }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Locate, E> {
                Ok(Locate::Path(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Locate, A::Error> {
                HeaderRef::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Locate::Header)
            }
        }
        d.deserialize_any(V)
    }
}

/// A source's `verify:`: one scheme, or a list of schemes that must all pass (Adyen's Basic
/// credentials and its HMAC signatures: `[{ kind: basic, … }, { kind: adyen, … }]`).
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum Verify {
    One(Box<VerifyConfig>),
    All(Vec<VerifyConfig>),
}

/// By hand rather than `untagged`, whose error ("did not match any variant") says nothing.
impl<'de> Deserialize<'de> for Verify {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Verify;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a verifier such as { kind: stripe, secrets: [...] }, or a list of verifiers that must all pass",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Verify, A::Error> {
                VerifyConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|v| Verify::One(Box::new(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Verify, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(Verify::All)
            }
        }
        d.deserialize_any(V)
    }
}

/// Signature verification (or authentication). `kind` is one of `stripe`, `hmac-sha256`,
/// `standard-webhooks`, `slack`, `zoom`, `twitch`, `twilio`, `sendgrid`, `square`, `adyen`,
/// `token`, `basic`, `none`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    pub kind: Text,
    /// Accepted secrets (several during a rotation); empty values are skipped. `basic`: each is
    /// `user:password`. `adyen`: the HMAC key in hex, as Adyen's Customer Area shows it.
    #[serde(default)]
    pub secrets: Vec<Text>,
    /// Largest accepted clock difference for timestamped schemes; default 300 s.
    pub tolerance_secs: Option<Spanned<u64>>,
    /// `hmac-sha256`: the header carrying the signature; default `X-Hub-Signature-256`.
    /// `token`: the header carrying the token; default `Authorization`.
    pub header: Option<Text>,
    /// `hmac-sha256`: text before the digest; default `sha256=`. `token`: text before the
    /// token (either case); default `Bearer ` with the default header, else none.
    pub prefix: Option<Text>,
    /// `hmac-sha256`: `hex` (default) or `base64`.
    pub encoding: Option<Text>,
    /// `hmac-sha256`: how the secrets are written: `text` (default; the key is their bytes),
    /// `hex` (Adyen's HMAC keys) or `base64`.
    pub secret_encoding: Option<Text>,
    /// `sendgrid`: the verification keys (P-256 public keys, base64 DER as SendGrid shows them,
    /// or PEM); several during a rotation, empty ones skipped.
    #[serde(default)]
    pub public_keys: Vec<Text>,
    /// `twilio`: the URL Twilio posts to, as its console has it (scheme, host, path; no query).
    /// The signature covers it, and the query the request came with. `square`: the
    /// subscription's notification URL, exactly as Square has it.
    pub url: Option<Text>,
}

/// A rule: when an inbound event matches, map it to one canonical event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: Text,
    /// A JSONPath that selects many values, e.g. `$.events[*]` or `$[*]` for a batch: the rule
    /// runs once for each, reading it as `$` (in `when`, the source's `event_type`, and `emit`);
    /// its `answer` reads the whole webhook.
    pub for_each: Option<Text>,
    #[serde(default)]
    pub when: WhenConfig,
    pub emit: EmitConfig,
    /// What the sender is answered once the broker holds the event, instead of Switchyard's
    /// `accepted` JSON: for senders that show the answer (a Slack slash command's text).
    pub answer: Option<AnswerConfig>,
}

/// A rule's answer to the webhooks it publishes. The first matching rule with one answers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerConfig {
    /// 200 to 299; default 200.
    pub status: Option<Spanned<u64>>,
    /// A JSON object answer (`application/json`), each property a value as in `emit.value`.
    pub body: Option<IndexMap<String, Spanned<ExprConfig>>>,
    /// A `text/plain` answer: one value, written as text. Neither `body` nor `text`: an empty answer.
    pub text: Option<Spanned<ExprConfig>>,
    /// The `text` answer's media type instead of `text/plain; charset=utf-8`, e.g. `text/xml`
    /// for Twilio's TwiML. In markup (XML, HTML) a `template` escapes the values it inserts.
    pub content_type: Option<Text>,
}

/// Filters; all must hold.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenConfig {
    /// The event type is this, or one of these: in a source, where its `event_type` says; in a
    /// dispatcher, the value's `event_type`.
    pub event_type: Option<Spanned<OneOrMany>>,
    /// Conditions on the document (`path`) or on a header (`header`: the webhook's request
    /// header in a source, the record's Kafka header in a dispatcher): every one holds.
    #[serde(default)]
    pub all: Vec<Spanned<ConditionConfig>>,
    /// Conditions of which at least one holds (with `all`: both hold).
    pub any: Option<Spanned<Vec<Spanned<ConditionConfig>>>>,
}

/// One string or a list of strings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A condition: a test of one value, `path` (a JSONPath) or `header` (a header's name), with
/// exactly one of `equals`, `in`, `not_in`, `exists`, `contains`, `starts_with`, `ends_with`,
/// `matches`, or a range (`gt` or `gte`, `lt` or `lte`, one or both); or a combination of
/// conditions: `any`, `all` or `not`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    pub path: Option<Text>,
    /// A header instead of `path`: of the webhook's request in `sources`, of the Kafka record
    /// in `dispatch`. Its value is a string.
    pub header: Option<Text>,
    /// A parameter of the webhook's URL query instead of `path` (in `sources`): its decoded
    /// value, a string (the first, when it repeats).
    pub query: Option<Text>,
    pub equals: Option<Json>,
    #[serde(rename = "in")]
    pub one_of: Option<Vec<Json>>,
    /// The value is none of these (a missing value is none of them).
    pub not_in: Option<Vec<Json>>,
    pub exists: Option<bool>,
    /// A number greater than this (a header's text read as a number).
    pub gt: Option<f64>,
    /// A number greater than or equal to this.
    pub gte: Option<f64>,
    /// A number less than this.
    pub lt: Option<f64>,
    /// A number less than or equal to this.
    pub lte: Option<f64>,
    /// A string containing this text, or an array with an element equal to this value.
    pub contains: Option<Json>,
    /// A string that starts with this text.
    pub starts_with: Option<String>,
    /// A string that ends with this text.
    pub ends_with: Option<String>,
    /// A string this regular expression matches somewhere (anchor it with `^…$` for the whole
    /// string); Rust's `regex` syntax, which runs in linear time.
    pub matches: Option<Text>,
    /// At least one of these conditions holds.
    pub any: Option<Vec<Spanned<ConditionConfig>>>,
    /// Every one of these conditions holds.
    pub all: Option<Vec<Spanned<ConditionConfig>>>,
    /// This condition does not hold.
    pub not: Option<Box<Spanned<ConditionConfig>>>,
}

/// The canonical event a rule publishes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitConfig {
    pub topic: Text,
    /// The canonical JSON Schema every published value must satisfy.
    pub schema: Text,
    /// The Kafka key; `field:` may name a property of the value.
    pub key: Option<Spanned<ExprConfig>>,
    #[serde(default)]
    pub headers: IndexMap<String, Spanned<ExprConfig>>,
    pub value: IndexMap<String, Spanned<ExprConfig>>,
}

/// How one output value is produced: a source (`const`, `path`, `template`, `header`, `field`
/// or `object`), a `default` when the source finds nothing, then `then` steps in order; with
/// `each`, all of that once for each selected value, into an array.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExprConfig {
    #[serde(rename = "const", default, deserialize_with = "present")]
    pub constant: Option<Spanned<Json>>,
    /// A JSONPath, or a list tried in order until one finds a non-null value.
    pub path: Option<Spanned<OneOrMany>>,
    /// A string with `{$.json.path}` placeholders.
    pub template: Option<Text>,
    /// In `key` and `headers`: a property of the produced value.
    pub field: Option<Text>,
    /// A header's value (a string): of the webhook's request in `sources`, e.g.
    /// `X-GitHub-Delivery`; of the Kafka record in a dispatch `body`.
    pub header: Option<Text>,
    /// A parameter of the webhook's URL query, decoded, as a string (the first, when it
    /// repeats): `?order=123` on a Twilio status callback URL. In `sources` only.
    pub query: Option<Text>,
    /// An object built of these named values, each written as a property of `value` is
    /// (`customer: { object: { id: { path: $.customer }, email: { path: $.email } } }`).
    pub object: Option<IndexMap<String, Spanned<ExprConfig>>>,
    /// An array: the value (its source, default and steps) produced once for each value this
    /// JSONPath selects, which its paths read as `$` (`{ each: $.items[*], object: { sku: {
    /// path: $.sku } } }`). Selecting nothing gives `[]`.
    pub each: Option<Text>,
    #[serde(default, deserialize_with = "present")]
    pub default: Option<Spanned<Json>>,
    /// Leave the property out when the source finds nothing (instead of rejecting with 422).
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub then: Vec<Spanned<StepConfig>>,
}

/// A transform step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepConfig {
    Upper,
    Lower,
    /// Map a value through a table; `default` for values not in it (else 422).
    Lookup {
        table: IndexMap<String, Json>,
        default: Option<Json>,
    },
    /// Integer minor units to a decimal in major units, by the ISO 4217 currency found at `currency` (a JSONPath).
    MinorUnits {
        currency: Text,
    },
    /// Unix epoch seconds to an RFC 3339 UTC timestamp.
    EpochToRfc3339,
    /// Unix epoch milliseconds to an RFC 3339 UTC timestamp (with the milliseconds, when any).
    EpochMsToRfc3339,
    /// An RFC 3339 timestamp with any offset to the same instant in UTC (`…Z`).
    ToUtc,
    /// Any scalar to its string form.
    ToString,
    /// A number written as a string (`"100.00"`: PayPal's amounts) to a JSON number; a number
    /// stays as it is.
    ToNumber,
    /// The hex HMAC-SHA256 of the value's text under `secret` (from the environment): Zoom's
    /// `encryptedToken`, or a keyed hash that hides a personal value yet can still be joined on.
    HmacSha256 {
        secret: Text,
    },
    /// A string without its leading and trailing white space.
    Trim,
    /// Every match of the regular expression `pattern` in a string replaced by `with`, in which
    /// `$1` or `${name}` is a group's text (`$$`: a dollar sign).
    Replace {
        pattern: Text,
        with: String,
    },
    /// A string cut at each occurrence of this text into an array of strings.
    Split(String),
    /// An array of scalars written as one string, with this text between them.
    Join(String),
    /// A number rounded to this many decimal places (0 to 15; halves away from zero).
    Round(u32),
    /// A number multiplied by this one (an integer stays one while the factor is an integer).
    Multiply(f64),
    /// A number divided by this one (not zero).
    Divide(f64),
    /// A string holding JSON (some senders nest a document in a string) parsed into its value.
    ParseJson,
}

/// A dispatcher: consume a topic in a group, turn matching events into HTTP calls.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatcherConfig {
    pub name: Text,
    pub topic: Text,
    pub group: Text,
    /// The canonical schema of the events on `topic` (checks templates statically).
    pub schema: Option<Text>,
    /// Where rules' `when.event_type` reads the event type: a JSONPath into the event, by
    /// default `$.event_type` (where Switchyard's canonical events have it), or
    /// `{ header: event_type }` for the record's Kafka header.
    pub event_type: Option<Spanned<Locate>>,
    /// Where events go when their call fails for good; default `<topic>.dlq`.
    pub dead_letter_topic: Option<Text>,
    /// Most events in flight at once across keys; default 64.
    pub max_in_flight: Option<Spanned<u64>>,
    /// Most calls (retries included) started per second, evenly spaced; default no limit.
    /// Spares a service that comes back after an outage, or a redrive, the whole backlog at once.
    pub max_calls_per_second: Option<Spanned<u64>>,
    /// When given, every request URL's host must be one of these (guards against a
    /// mistaken or hostile `${ENV}` in a URL).
    #[serde(default)]
    pub allowed_hosts: Vec<Text>,
    /// TLS of the calls: the CA to trust instead of the system's, and a client certificate.
    pub tls: Option<Spanned<ClientTlsConfig>>,
    pub rules: Vec<DispatchRuleConfig>,
}

/// A dispatcher's TLS: PEM files, relative to the config's folder; read where the dispatcher
/// runs, and again when they change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// The CA certificates that HTTPS calls trust, instead of the system's roots.
    pub ca_file: Option<Text>,
    /// A client certificate (mutual TLS), with `key_file`: its own certificate first.
    pub cert_file: Option<Text>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<Text>,
}

/// One HTTP call made for each matching event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRuleConfig {
    pub name: Text,
    #[serde(default)]
    pub when: WhenConfig,
    pub request: RequestConfig,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// The call: `url` may hold `{property}` placeholders, each filled as one encoded path segment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    pub method: Text,
    pub url: Text,
    /// Query parameters; values are templates.
    #[serde(default)]
    pub query: IndexMap<String, Text>,
    /// Header templates: `{property}` from the value, `{header.NAME}` from the Kafka headers.
    #[serde(default)]
    pub headers: IndexMap<String, Text>,
    /// The JSON body; property expressions run against the canonical event.
    #[serde(default)]
    pub body: IndexMap<String, Spanned<ExprConfig>>,
    /// Instead of `body`: the JSON body as one value, e.g. `{ path: $ }` to send the event as
    /// it is (or an array, a string, …).
    pub body_value: Option<Spanned<ExprConfig>>,
    /// Instead of `body`: form fields (`application/x-www-form-urlencoded`), as APIs such as
    /// Twilio's and Stripe's take them. A string, number or boolean is one field, an array
    /// repeats its field, an object's members are `name[member]` (`metadata[order_id]`), and
    /// null leaves the field out.
    #[serde(default)]
    pub form: IndexMap<String, Spanned<ExprConfig>>,
    /// A bearer token (use `${ENV}`).
    pub bearer_token: Option<Text>,
    /// An OAuth 2.0 access token on every call (`Authorization: Bearer`), got with the
    /// client-credentials grant and kept until shortly before it expires.
    pub oauth2: Option<OAuth2Config>,
    /// Sign every call as a webhook sender would, so the service can check it came from
    /// here: `kind` `stripe`, `hmac-sha256` or `standard-webhooks`, and `secrets` (use
    /// `${ENV}`; Stripe and Standard Webhooks carry a signature per secret, for rotations).
    pub sign: Option<VerifyConfig>,
    /// Per-call timeout; default 10 s.
    pub timeout_ms: Option<Spanned<u64>>,
}

/// OAuth 2.0 client credentials (RFC 6749, section 4.4) for a dispatch rule's calls.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The authorization server's token endpoint, e.g. `https://auth.example.com/oauth/token`.
    pub token_url: Text,
    pub client_id: Text,
    /// Use `${ENV}`.
    pub client_secret: Text,
    /// Scopes asked for (`scope`, space-separated in the request).
    #[serde(default)]
    pub scopes: Vec<Text>,
    /// More form parameters of the token request, e.g. `audience` (Auth0).
    #[serde(default)]
    pub params: IndexMap<String, Text>,
    /// How the client authenticates at the token endpoint: `basic` (HTTP Basic, the default:
    /// RFC 6749's `client_secret_basic`) or `body` (`client_secret_post`).
    pub client_auth: Option<Text>,
}

/// Retry policy for one dispatch rule.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First backoff delay; default 200 ms.
    pub initial_delay_ms: Option<Spanned<u64>>,
    /// Largest backoff delay; default 30 s.
    pub max_delay_ms: Option<Spanned<u64>>,
    /// Retry for this long before dead-lettering; default 15 min.
    pub max_elapsed_secs: Option<Spanned<u64>>,
    /// Statuses that count as done besides 2xx, e.g. `[409]` when the service answers a
    /// repeated call (at-least-once delivery repeats some) with a conflict.
    #[serde(default)]
    pub done_on: Vec<Spanned<u16>>,
    /// 4xx statuses retried like a 5xx instead of dead-lettered at once, e.g. `[404]` for a
    /// service that may not know the order yet (408 and 429 are retried already).
    #[serde(default)]
    pub retry_on: Vec<Spanned<u16>>,
}

/// Deserializes a value that is present, keeping an explicit `null` as `Some(null)`
/// (a plain `Option` would turn it into "absent").
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Spanned<Json>>, D::Error> {
    serde_saphyr::Spanned::<Json>::deserialize(d).map(|s| Some(Spanned(s)))
}

/// One config unit test: a payload through a source (a webhook), or consumed from a topic (a
/// canonical event), and what must come out.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCaseConfig {
    pub name: Text,
    /// The source (by name) the payload is posted to as a webhook.
    pub source: Option<Text>,
    /// Instead of `source`: the topic the payload is consumed from as a canonical event; the
    /// case checks the calls the dispatchers of that topic would make.
    pub topic: Option<Text>,
    /// The event's Kafka key (with `topic`).
    pub key: Option<String>,
    /// A JSON file (relative to the config) holding the payload.
    pub payload: Option<Text>,
    /// The payload written inline instead.
    pub body: Option<Json>,
    /// JSON Pointer → value, applied to the payload before it is sent (`null` removes).
    #[serde(default)]
    pub set: IndexMap<String, Json>,
    /// `GET`: the sender's verification of the endpoint (the source's `challenge:`), with
    /// `query` and no payload; expect `replied` (the challenge echoed, in `reply`) or
    /// `rejected`. By default a webhook's `POST`.
    pub method: Option<CaseMethod>,
    /// The request URL's query, `hub.mode=subscribe&hub.challenge=…` (with `source`).
    pub query: Option<String>,
    /// The request's headers (with `source`), or the event's Kafka headers (with `topic`).
    /// With a form's `Content-Type`, the payload's properties are sent as the form's fields.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    pub expect: ExpectConfig,
}

/// The HTTP method of a webhook case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum CaseMethod {
    #[serde(rename = "GET", alias = "get")]
    Get,
    #[serde(rename = "POST", alias = "post")]
    Post,
}

/// What a test case expects. Omitted parts are not checked.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    /// `accepted`, `ignored`, `rejected` or `replied` (webhook cases only, where it is required).
    pub status: Option<ExpectedStatus>,
    /// For rejections: the HTTP status the server would answer.
    pub http_status: Option<u16>,
    pub reason: Option<String>,
    /// Instance paths that must be among the schema violations.
    #[serde(default)]
    pub violations: Vec<String>,
    /// Text the rejection message must contain.
    pub message_contains: Option<String>,
    pub events: Option<Vec<ExpectedEvent>>,
    pub calls: Option<Vec<ExpectedCall>>,
    /// The body of the answer a reply or a rule's `answer` gives, exactly (an object for
    /// `body`, a string for `text`, null for neither).
    pub reply: Option<Json>,
}

/// How a test case's webhook is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    Accepted,
    Ignored,
    Rejected,
    Replied,
}

impl ExpectedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStatus::Accepted => "accepted",
            ExpectedStatus::Ignored => "ignored",
            ExpectedStatus::Rejected => "rejected",
            ExpectedStatus::Replied => "replied",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEvent {
    pub topic: Option<String>,
    pub key: Option<String>,
    /// Each listed header must be present with this value.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The whole value, exactly.
    pub value: Option<Json>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedCall {
    pub method: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The whole body, exactly.
    pub body: Option<Json>,
    /// Instead of a call: the event is dead-lettered (it cannot be planned) with an error
    /// containing this text.
    pub dead_letter: Option<String>,
}
