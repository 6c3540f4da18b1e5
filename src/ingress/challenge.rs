//! A sender's GET verification of the endpoint (`challenge:` of a source): Meta sends
//! `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` and wants the challenge back as it
//! came; Dropbox sends `challenge=…`; Strava wants `{"hub.challenge": …}`.

use std::borrow::Cow;

use http::StatusCode;

use crate::pipeline::verify::same_secret;
use crate::routes::reply::Challenge;

/// Longest challenge echoed back: senders send a short random string.
pub const MAX_ECHO: usize = 1024;

/// The answer to a GET with `query`: the body to send (plain text, or JSON with `json`), or
/// the status and why not.
pub fn answer(challenge: &Challenge, query: Option<&str>) -> Result<String, (StatusCode, String)> {
    let params: Vec<(Cow<str>, Cow<str>)> = form_urlencoded::parse(query.unwrap_or("").as_bytes()).collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref());
    for (name, secret) in &challenge.require {
        // Every requirement is checked, found or not, with the same comparison.
        let met = secret.as_ref().is_some_and(|s| same_secret(param(name).unwrap_or("").as_bytes(), &s.0));
        if !met {
            return Err((
                StatusCode::FORBIDDEN,
                format!("the verification request's '{name}' is not the one expected"),
            ));
        }
    }
    let echo = &challenge.echo;
    let Some(value) = param(echo) else {
        return Err((StatusCode::BAD_REQUEST, format!("the verification request has no '{echo}' parameter")));
    };
    if value.len() > MAX_ECHO {
        return Err((StatusCode::BAD_REQUEST, format!("'{echo}' is longer than {MAX_ECHO} bytes")));
    }
    Ok(match challenge.json {
        true => serde_json::json!({ echo: value }).to_string(),
        false => value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::verify::Secret;

    fn meta() -> Challenge {
        Challenge {
            echo: "hub.challenge".into(),
            require: vec![
                ("hub.mode".into(), Some(Secret(b"subscribe".to_vec()))),
                ("hub.verify_token".into(), Some(Secret(b"a-verify-token".to_vec()))),
            ],
            json: false,
        }
    }

    #[test]
    fn metas_verification_is_answered_with_its_challenge() {
        let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=a-verify-token";
        assert_eq!(answer(&meta(), Some(query)), Ok("1158201444".into()));
        // Decoded as a query is: `+` and `%xx`.
        let query = "hub.mode=subscribe&hub.challenge=a+b%2Fc&hub.verify_token=a-verify-token";
        assert_eq!(answer(&meta(), Some(query)), Ok("a b/c".into()));
    }

    #[test]
    fn a_wrong_or_missing_token_is_forbidden_and_a_missing_challenge_a_bad_request() {
        let wrong = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=a-verify-tokem";
        let forbidden = |q: &str| answer(&meta(), Some(q)).unwrap_err();
        assert_eq!(forbidden(wrong).0, StatusCode::FORBIDDEN);
        assert_eq!(forbidden(wrong).1, "the verification request's 'hub.verify_token' is not the one expected");
        assert_eq!(forbidden("hub.mode=subscribe&hub.challenge=1").0, StatusCode::FORBIDDEN);
        assert_eq!(
            forbidden("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=a-verify-token").0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(answer(&meta(), None).unwrap_err().0, StatusCode::FORBIDDEN);
        let no_challenge = answer(&meta(), Some("hub.mode=subscribe&hub.verify_token=a-verify-token"));
        assert_eq!(
            no_challenge,
            Err((StatusCode::BAD_REQUEST, "the verification request has no 'hub.challenge' parameter".into()))
        );
        let long =
            format!("hub.mode=subscribe&hub.verify_token=a-verify-token&hub.challenge={}", "x".repeat(MAX_ECHO + 1));
        assert_eq!(answer(&meta(), Some(&long)).unwrap_err().0, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn dropbox_echoes_its_challenge_and_strava_wants_json() {
        let dropbox = Challenge { echo: "challenge".into(), require: vec![], json: false };
        assert_eq!(answer(&dropbox, Some("challenge=xyz")), Ok("xyz".into()));
        let strava = Challenge { json: true, ..meta() };
        let query = "hub.verify_token=a-verify-token&hub.challenge=15f7d1a91c1f40f8a748fd134752feb3&hub.mode=subscribe";
        assert_eq!(answer(&strava, Some(query)), Ok(r#"{"hub.challenge":"15f7d1a91c1f40f8a748fd134752feb3"}"#.into()));
    }
}
