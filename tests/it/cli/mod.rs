//! Issue 4 through the binary: `validate` diagnostics (one minimal broken config per class,
//! with its line:column), `check` and `test`. The helpers every part shares are here.

mod commands;
mod config;
mod dispatch_contract;
mod rules;
mod source_contract;
mod sources;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn switchyard(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args).current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("switchyard runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A directory with `routes.yaml` = `yaml` and the repo's schemas.
fn config(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("schemas"), dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("min.json"),
        r#"{"type": "object", "properties": {"order_id": {"type": "string"}}}"#,
    )
    .unwrap();
    dir
}

/// Validates `yaml`, expects failure, and returns the output.
fn invalid(yaml: &str) -> String {
    let dir = config(yaml);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), &[("S", "x")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    text(&out)
}

/// Validates `yaml` with `env`, which must pass; the output (warnings included).
fn valid(yaml: &str, env: &[(&str, &str)]) -> String {
    let dir = config(yaml);
    let out = switchyard(&["validate", "-c", "routes.yaml"], dir.path(), env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    text(&out)
}

const SOURCE: &str = "sources:
  - name: s
    path: /hooks/s
    verify: { kind: stripe, secrets: [\"${S}\"] }
    event_type: $.type
    rules:
      - name: r
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.id }
";

/// Asserts that `out` holds every line of `wants`.
fn assert_says(out: &str, wants: &[&str]) {
    for want in wants {
        assert!(out.contains(want), "{want}\n{out}");
    }
}

/// [`SOURCE`] and a dispatcher of one rule, `call` (line 18), whose other lines are `rule`.
fn dispatching(rule: &str) -> String {
    format!(
        "{SOURCE}dispatch:
  - name: d
    topic: t
    group: g
    rules:
      - name: call
{rule}"
    )
}

/// [`SOURCE`] and a dispatcher of one rule, `call`, that POSTs to `url` (its line is 19, the
/// URL at column 39), then `more` lines of the rule.
fn calling(url: &str, more: &str) -> String {
    dispatching(&format!("        request: {{ method: POST, url: \"{url}\" }}\n{more}"))
}

/// A source with a reply to Slack's handshake, and test cases about it.
const REPLYING: &str = "sources:
  - name: s
    path: /hooks/s
    verify: { kind: slack, secrets: [\"${S}\"] }
    schema: min.json
    event_type: $.type
    replies:
      - name: hello
        when: { event_type: url_verification }
        body: { challenge: { path: $.challenge } }
    rules:
      - name: r
        when: { event_type: order }
        emit:
          topic: t
          schema: min.json
          value:
            order_id: { path: $.id }
tests:
  - name: the challenge comes back
    source: s
    body: { type: url_verification, challenge: c-1 }
    expect: { status: replied, reply: { challenge: c-1 } }
  - name: another challenge
    source: s
    body: { type: url_verification, challenge: c-1 }
    expect: { status: replied, reply: { challenge: c-2 } }
  - name: an order is no handshake
    source: s
    body: { type: order, id: \"7\" }
    expect: { status: replied }
";

/// A config with its own inbound and canonical schemas, for the static contract check.
fn contract(value: &str, dispatch: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.json"),
        r#"{"type": "object", "additionalProperties": false, "required": ["id", "amount", "currency", "kind"],
            "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}, "currency": {"type": "string"},
                           "kind": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("out.json"),
        r#"{"type": "object", "additionalProperties": false, "required": ["id", "cents", "kind"],
            "properties": {"id": {"type": "string"}, "cents": {"type": "integer"}, "kind": {"const": "payment"},
                           "label": {"type": "string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("refund.json"),
        r#"{"type": "object", "required": ["id", "refunded", "kind"],
            "properties": {"id": {"type": "string"}, "refunded": {"type": "integer"}, "kind": {"const": "refund"}}}"#,
    )
    .unwrap();
    let yaml = format!(
        "sources:
  - name: s
    path: /hooks/s
    verify: {{ kind: none }}
    schema: in.json
    rules:
      - name: r
        emit:
          topic: t
          schema: out.json
          value:
{value}{dispatch}"
    );
    std::fs::write(dir.path().join("routes.yaml"), yaml).unwrap();
    let out = switchyard(&["validate"], dir.path(), &[]);
    text(&out)
}

const GOOD: &str = "            id: { path: $.id }
            cents: { path: $.amount }
            kind: { const: payment }
";
