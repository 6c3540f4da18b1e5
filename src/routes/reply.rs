//! Compiled answers that a source's config writes itself: replies, which answer the
//! handshakes a sender makes before it sends events (Slack's `url_verification`, whose
//! `challenge` must be sent back) and publish nothing; a rule's `answer`, given once the
//! broker holds its event (a Slack slash command's text); and the `challenge` that answers a
//! sender's GET verification (Meta's `hub.challenge`).

use indexmap::IndexMap;
use serde_saphyr::Location;

use super::Ctx;
use super::expr::{self, EventTypeAt, Expr, Filter};
use crate::config::model::{AnswerConfig, ChallengeConfig, ExprConfig, ReplyConfig, Spanned, Text};
use http::HeaderValue;

/// One `replies:` entry.
#[derive(Debug)]
pub struct Reply {
    pub name: String,
    pub when: Filter,
    pub answer: Answer,
}

/// An HTTP answer built from the webhook.
#[derive(Debug)]
pub struct Answer {
    /// 200 to 299: a reply answers a valid handshake, a rule's answer an accepted event.
    pub status: u16,
    pub body: AnswerBody,
}

/// What an answer's body is made of.
#[derive(Debug)]
pub enum AnswerBody {
    /// `body:`, a JSON object whose properties are values as in `emit.value`.
    Json(Vec<(String, Expr)>),
    /// `text:`, one value, sent as `text/plain` or as its `content_type`.
    Text(Expr, Option<String>),
    /// Neither (a rule's answer only): no body.
    Empty,
}

pub(super) fn compile(ctx: &mut Ctx, cfg: &ReplyConfig, event_type: EventTypeAt) -> Option<Reply> {
    let name = cfg.name.value.clone();
    if cfg.when.event_type.is_none() && cfg.when.all.is_empty() && cfg.when.any.is_none() {
        let message = format!(
            "reply '{name}' has no 'when': it would answer every webhook, and no rule would ever publish; say which handshake it answers (e.g. when: {{ event_type: url_verification }})"
        );
        ctx.error(cfg.name.referenced, message);
    }
    let when = expr::compile_filter(ctx, &cfg.when, event_type);
    let parts = Parts { status: &cfg.status, body: &cfg.body, text: &cfg.text, content_type: &cfg.content_type };
    let answer = compile_answer(ctx, parts, cfg.name.referenced, &format!("reply '{name}'"), true);
    Some(Reply { name, when: when?, answer: answer? })
}

/// A rule's `answer:`.
pub(super) fn compile_rule_answer(ctx: &mut Ctx, cfg: &AnswerConfig, at: Location, rule: &str) -> Option<Answer> {
    let parts = Parts { status: &cfg.status, body: &cfg.body, text: &cfg.text, content_type: &cfg.content_type };
    compile_answer(ctx, parts, at, &format!("rule '{rule}', answer"), false)
}

/// The fields an answer is written with, wherever it is written.
struct Parts<'a> {
    status: &'a Option<Spanned<u64>>,
    body: &'a Option<IndexMap<String, Spanned<ExprConfig>>>,
    text: &'a Option<Spanned<ExprConfig>>,
    content_type: &'a Option<Text>,
}

fn compile_answer(ctx: &mut Ctx, cfg: Parts, at: Location, what: &str, needs_body: bool) -> Option<Answer> {
    let status = match cfg.status {
        Some(s) if !(200..=299).contains(&s.value) => {
            let message = format!(
                "{what}: status {} is not a success: an answer is for a webhook that was valid (200 to 299); to refuse webhooks, let the schema or signature do it",
                s.value
            );
            ctx.error(s.referenced, message);
            None
        }
        Some(s) if s.value == 204 && (needs_body || cfg.body.is_some() || cfg.text.is_some()) => {
            let fix = if needs_body { "a reply has a body: use 200" } else { "drop 'body' and 'text', or use 200" };
            ctx.error(s.referenced, format!("{what}: status 204 is No Content: {fix}"));
            None
        }
        Some(s) => Some(s.value as u16),
        None => Some(200),
    };
    let body = match (cfg.body, cfg.text) {
        (Some(body), None) => {
            let mut fields = Vec::with_capacity(body.len());
            let mut ok = true;
            for (field, e) in body {
                match expr::compile(ctx, e, &format!("{what}, body.{field}"), false) {
                    Some(x) => fields.push((field.clone(), x)),
                    None => ok = false,
                }
            }
            ok.then_some(AnswerBody::Json(fields))
        }
        (None, Some(text)) => {
            let content_type = match cfg.content_type {
                Some(t) => Some(media(ctx, t, what)?),
                None => None,
            };
            expr::compile(ctx, text, &format!("{what}, text"), false).map(|x| AnswerBody::Text(x, content_type))
        }
        (None, None) if !needs_body => Some(AnswerBody::Empty),
        (Some(_), Some(_)) | (None, None) => {
            let message = if needs_body {
                format!("{what} needs exactly one of 'body' (a JSON object) and 'text' (plain text)")
            } else {
                format!("{what} takes one of 'body' (a JSON object) and 'text' (plain text), not both")
            };
            ctx.error(at, message);
            None
        }
    };
    if let (Some(t), None) = (cfg.content_type, cfg.text) {
        ctx.error(t.referenced, format!("{what}: content_type is the media type of 'text': give 'text' too"));
        return None;
    }
    Some(Answer { status: status?, body: body? })
}

/// A `content_type:`: a media type that is a valid header value.
fn media(ctx: &mut Ctx, text: &Text, what: &str) -> Option<String> {
    let value = ctx.text(text)?;
    let valid = value
        .split(';')
        .next()
        .is_some_and(|t| t.trim().split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()));
    match HeaderValue::from_str(&value) {
        Ok(_) if valid => Some(value),
        _ => {
            ctx.error(text.referenced, format!("{what}: content_type '{value}' is not a media type such as text/xml"));
            None
        }
    }
}

/// A source's `challenge:`: the GET with which a sender verifies the endpoint.
#[derive(Debug)]
pub struct Challenge {
    /// The query parameter whose value is the answer.
    pub echo: String,
    /// Query parameters and the values they must have (a verify token among them: secret);
    /// `None` where the value's variable is unset in a process that serves no webhooks: met by
    /// no request.
    pub require: Vec<(String, Option<super::verify::Secret>)>,
    /// Those of `require` whose value the config writes as it is (no `${…}`): no secret, so
    /// `dev` may show it.
    pub plain: Vec<String>,
    /// `{"<echo>": value}` as JSON instead of plain text.
    pub json: bool,
}

/// Compiles a `challenge:` block of source `source`.
pub(super) fn compile_challenge(ctx: &mut Ctx, cfg: &ChallengeConfig, source: &str) -> Option<Challenge> {
    let echo = ctx.text_or_name(&cfg.echo)?;
    if echo.is_empty() {
        ctx.error(cfg.echo.referenced, format!("source '{source}', challenge: 'echo' names no query parameter"));
        return None;
    }
    let mut require = Vec::with_capacity(cfg.require.len());
    for (name, text) in &cfg.require {
        let value = if ctx.dry_run() {
            // `validate`, `check`, `test`: an unset variable stands for `$NAME`, which a test
            // case can send (`hub.verify_token=$META_VERIFY_TOKEN`).
            ctx.text_or_name(text)?
        } else {
            // Unset in a part this process does not run: a requirement nothing meets.
            let Some(value) = ctx.text_unless_unset(text)? else {
                require.push((name.clone(), None));
                continue;
            };
            value
        };
        if value.is_empty() {
            let message = format!(
                "source '{source}', challenge: '{name}' must be something (an empty value would let anyone verify the endpoint)"
            );
            ctx.error(text.referenced, message);
            return None;
        }
        require.push((name.clone(), Some(super::verify::Secret(value.into_bytes()))));
    }
    let plain =
        cfg.require.iter().filter(|(_, text)| !text.value.contains("${")).map(|(name, _)| name.clone()).collect();
    Some(Challenge { echo, require, plain, json: cfg.json.as_ref().is_some_and(|j| j.value) })
}
