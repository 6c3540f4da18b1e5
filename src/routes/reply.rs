//! Compiled replies: a source's answers to the handshakes a sender makes before it sends
//! events (Slack's `url_verification`, whose `challenge` must be sent back). A webhook a reply
//! matches is answered with it and publishes nothing.

use super::Ctx;
use super::expr::{self, EventTypeAt, Expr, Filter};
use crate::config::model::ReplyConfig;

/// One `replies:` entry.
#[derive(Debug)]
pub struct Reply {
    pub name: String,
    pub when: Filter,
    /// 200 to 299: a reply answers a valid handshake.
    pub status: u16,
    pub answer: Answer,
}

/// What a reply's body is made of.
#[derive(Debug)]
pub enum Answer {
    /// `body:`, a JSON object whose properties are values as in `emit.value`.
    Json(Vec<(String, Expr)>),
    /// `text:`, one value written as `text/plain`.
    Text(Expr),
}

pub(super) fn compile(ctx: &mut Ctx, cfg: &ReplyConfig, event_type: EventTypeAt) -> Option<Reply> {
    let name = cfg.name.value.clone();
    if cfg.when.event_type.is_none() && cfg.when.all.is_empty() {
        let message = format!(
            "reply '{name}' has no 'when': it would answer every webhook, and no rule would ever publish; say which handshake it answers (e.g. when: {{ event_type: url_verification }})"
        );
        ctx.error(cfg.name.referenced, message);
    }
    let when = expr::compile_filter(ctx, cfg.when.event_type.as_ref(), event_type, &cfg.when.all);
    let status = match &cfg.status {
        Some(s) if !(200..=299).contains(&s.value) => {
            let message = format!(
                "reply status {} is not a success: a reply answers a handshake that was valid (200 to 299); to refuse webhooks, let the schema or signature do it",
                s.value
            );
            ctx.error(s.referenced, message);
            None
        }
        Some(s) => Some(s.value as u16),
        None => Some(200),
    };
    let answer = match (&cfg.body, &cfg.text) {
        (Some(body), None) => {
            let mut fields = Vec::with_capacity(body.len());
            let mut ok = true;
            for (field, e) in body {
                match expr::compile(ctx, e, &format!("reply '{name}', body.{field}"), false) {
                    Some(x) => fields.push((field.clone(), x)),
                    None => ok = false,
                }
            }
            ok.then_some(Answer::Json(fields))
        }
        (None, Some(text)) => expr::compile(ctx, text, &format!("reply '{name}', text"), false).map(Answer::Text),
        (Some(_), Some(_)) | (None, None) => {
            let message = format!("reply '{name}' needs exactly one of 'body' (a JSON object) and 'text' (plain text)");
            ctx.error(cfg.name.referenced, message);
            None
        }
    };
    Some(Reply { name, when: when?, status: status?, answer: answer? })
}
