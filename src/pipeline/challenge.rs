//! A sender's GET verification of the endpoint (`challenge:` of a source): Meta sends
//! `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` and wants the challenge back as it
//! came; Dropbox sends `challenge=…`; Strava wants `{"hub.challenge": …}`. The server and the
//! dry runs (`check --get`, a test case with `method: GET`) answer with this one function.

use std::borrow::Cow;

use super::{Reason, Rejection, Replied, ReplyBody, reject};
use crate::pipeline::verify::same_secret;
use crate::routes::reply::Challenge;

/// Longest challenge echoed back: senders send a short random string.
pub const MAX_ECHO: usize = 1024;

/// The answer to a GET with `query`: the challenge echoed (plain text, or a JSON object with
/// `json`), or a 403 (a required parameter is not the one expected) or a 400 (no challenge).
pub fn answer(challenge: &Challenge, query: Option<&str>) -> Result<Replied, Rejection> {
    let params: Vec<(Cow<str>, Cow<str>)> = form_urlencoded::parse(query.unwrap_or("").as_bytes()).collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref());
    for (name, secret) in &challenge.require {
        // Only where an unset variable is a warning (the dry runs): no request can match it.
        let Some(secret) = secret else {
            let message =
                format!("the verification request's '{name}' cannot match: its value is an unset variable here");
            return Err(reject(403, Reason::Challenge, message));
        };
        // Every requirement is checked, found or not, with the same comparison.
        if !same_secret(param(name).unwrap_or("").as_bytes(), &secret.0) {
            let message = format!("the verification request's '{name}' is not the one expected");
            return Err(reject(403, Reason::Challenge, message));
        }
    }
    let echo = &challenge.echo;
    let Some(value) = param(echo) else {
        let message = format!("the verification request has no '{echo}' parameter");
        return Err(reject(400, Reason::Challenge, message));
    };
    if value.len() > MAX_ECHO {
        return Err(reject(400, Reason::Challenge, format!("'{echo}' is longer than {MAX_ECHO} bytes")));
    }
    let body = match challenge.json {
        true => ReplyBody::Json(serde_json::json!({ echo: value })),
        false => ReplyBody::Text(value.to_owned()),
    };
    Ok(Replied { http_status: 200, content_type: None, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::verify::Secret;

    fn text(echo: &str) -> Replied {
        Replied { http_status: 200, content_type: None, body: ReplyBody::Text(echo.into()) }
    }

    fn meta() -> Challenge {
        Challenge {
            echo: "hub.challenge".into(),
            require: vec![
                ("hub.mode".into(), Some(Secret(b"subscribe".to_vec()))),
                ("hub.verify_token".into(), Some(Secret(b"a-verify-token".to_vec()))),
            ],
            plain: vec!["hub.mode".into()],
            json: false,
        }
    }

    #[test]
    fn metas_verification_is_answered_with_its_challenge() {
        let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=a-verify-token";
        assert_eq!(answer(&meta(), Some(query)), Ok(text("1158201444")));
        // Decoded as a query is: `+` and `%xx`.
        let query = "hub.mode=subscribe&hub.challenge=a+b%2Fc&hub.verify_token=a-verify-token";
        assert_eq!(answer(&meta(), Some(query)), Ok(text("a b/c")));
    }

    #[test]
    fn a_wrong_or_missing_token_is_forbidden_and_a_missing_challenge_a_bad_request() {
        let wrong = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=a-verify-tokem";
        let forbidden = |q: &str| answer(&meta(), Some(q)).unwrap_err();
        assert_eq!(forbidden(wrong).status, 403);
        assert_eq!(forbidden(wrong).reason, Reason::Challenge);
        assert_eq!(forbidden(wrong).message, "the verification request's 'hub.verify_token' is not the one expected");
        assert_eq!(forbidden("hub.mode=subscribe&hub.challenge=1").status, 403);
        assert_eq!(forbidden("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=a-verify-token").status, 403);
        assert_eq!(answer(&meta(), None).unwrap_err().status, 403);
        let no_challenge = answer(&meta(), Some("hub.mode=subscribe&hub.verify_token=a-verify-token")).unwrap_err();
        assert_eq!(
            (no_challenge.status, no_challenge.message.as_str()),
            (400, "the verification request has no 'hub.challenge' parameter")
        );
        let long =
            format!("hub.mode=subscribe&hub.verify_token=a-verify-token&hub.challenge={}", "x".repeat(MAX_ECHO + 1));
        assert_eq!(answer(&meta(), Some(&long)).unwrap_err().status, 400);
    }

    #[test]
    fn dropbox_echoes_its_challenge_and_strava_wants_json() {
        let dropbox = Challenge { echo: "challenge".into(), require: vec![], plain: vec![], json: false };
        assert_eq!(answer(&dropbox, Some("challenge=xyz")), Ok(text("xyz")));
        let strava = Challenge { json: true, ..meta() };
        let query = "hub.verify_token=a-verify-token&hub.challenge=15f7d1a91c1f40f8a748fd134752feb3&hub.mode=subscribe";
        let body = ReplyBody::Json(serde_json::json!({"hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"}));
        assert_eq!(answer(&strava, Some(query)), Ok(Replied { http_status: 200, content_type: None, body }));
    }
}
