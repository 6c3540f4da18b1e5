//! Adyen's standard notifications, as its official libraries check them: each item of
//! `notificationItems` carries, in `additionalData.hmacSignature`, the base64 HMAC-SHA256 of
//! its `pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
//! eventCode:success` (a missing field as empty text) under the hex-encoded key from Adyen's
//! Customer Area. The signature is in the body, not a header, so this scheme reads the JSON;
//! every item of a batch must be signed, or the batch is refused.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine;
use serde_json::Value as Json;

use super::{NO_MATCH, mac};
use crate::routes::verify::SigningKey;

/// The fields signed, in order.
const SIGNED: [&str; 8] = [
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
];

pub(super) fn verify(secrets: &[SigningKey], body: &[u8]) -> Result<(), String> {
    let doc: Json =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON: no Adyen notification".to_string())?;
    let items = items(&doc)?;
    for (i, item) in items.iter().enumerate() {
        let at = format!("notificationItems[{i}]");
        let signature = item
            .pointer("/additionalData/hmacSignature")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("{at} has no additionalData.hmacSignature"))?;
        let mut candidate = [0u8; 32];
        match base64::engine::general_purpose::STANDARD.decode_slice(signature.trim(), &mut candidate) {
            Ok(32) => {}
            _ => return Err(format!("{at}: hmacSignature is not a valid digest")),
        }
        let text = signed_text(item);
        let known = secrets
            .iter()
            .any(|s| verify_slices_are_equal(mac(&s.key, &[text.as_bytes()]).as_ref(), &candidate).is_ok());
        if !known {
            return Err(format!("{at}: {NO_MATCH}"));
        }
    }
    Ok(())
}

/// Each `NotificationRequestItem` of the batch; at least one.
fn items(doc: &Json) -> Result<Vec<&Json>, String> {
    let list = doc
        .get("notificationItems")
        .and_then(Json::as_array)
        .ok_or("the body has no notificationItems: not an Adyen notification")?;
    if list.is_empty() {
        return Err("notificationItems is empty: nothing is signed".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, x)| {
            x.get("NotificationRequestItem")
                .filter(|x| x.is_object())
                .ok_or_else(|| format!("notificationItems[{i}] has no NotificationRequestItem"))
        })
        .collect()
}

/// The text Adyen signs for one item.
fn signed_text(item: &Json) -> String {
    let field = |name: &str| {
        let found = match name {
            "value" | "currency" => item.get("amount").and_then(|a| a.get(name)),
            _ => item.get(name),
        };
        match found {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    SIGNED.map(field).join(":")
}

/// `body` with each item signed under `secret` (its `hmacSignature` set): how `switchyard dev`
/// makes a ready-to-paste notification. A body that is not a notification comes back as it is.
pub fn sign(secret: &SigningKey, body: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Json>(body) else { return body.to_owned() };
    let Some(list) = doc.get_mut("notificationItems").and_then(Json::as_array_mut) else { return body.to_owned() };
    for entry in list {
        let Some(item) = entry.get_mut("NotificationRequestItem").filter(|x| x.is_object()) else { continue };
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac(&secret.key, &[signed_text(item).as_bytes()]));
        let extra =
            item.as_object_mut().map(|o| o.entry("additionalData").or_insert_with(|| Json::Object(Default::default())));
        if let Some(Json::Object(extra)) = extra {
            extra.insert("hmacSignature".into(), Json::String(signature));
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adyen's example key (its documentation's), hex-decoded as the verifier decodes it.
    fn key() -> SigningKey {
        SigningKey::new(hex::decode("44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056").unwrap())
    }

    /// Two items signed by Adyen's Python library (Adyen 16.0.0, `generate_notification_sig`,
    /// each accepted by its `is_valid_hmac_notification`): an authorisation, and a refund with
    /// an `originalReference` and `success` "false".
    const SIGNED_BY_ADYEN: &str = include_str!("../../../tests/fixtures/adyen/notification.json");

    #[test]
    fn items_signed_by_adyens_library_are_accepted() {
        assert_eq!(verify(&[key()], SIGNED_BY_ADYEN.as_bytes()), Ok(()));
        let other = SigningKey::new(vec![7; 32]);
        assert_eq!(verify(&[other.clone(), key()], SIGNED_BY_ADYEN.as_bytes()), Ok(()), "a second key (rotation)");
        assert_eq!(
            verify(&[other], SIGNED_BY_ADYEN.as_bytes()),
            Err("notificationItems[0]: no signature matches".into())
        );
    }

    #[test]
    fn a_changed_signed_field_or_a_missing_signature_refuses_the_batch() {
        let doc: Json = serde_json::from_str(SIGNED_BY_ADYEN).unwrap();
        let changed = |pointer: &str, value: Json| {
            let mut d = doc.clone();
            *d.pointer_mut(pointer).unwrap() = value;
            verify(&[key()], d.to_string().as_bytes())
        };
        let second = "/notificationItems/1/NotificationRequestItem";
        assert_eq!(
            changed(&format!("{second}/amount/value"), 250.into()),
            Err("notificationItems[1]: no signature matches".into())
        );
        assert_eq!(
            changed(&format!("{second}/success"), "true".into()),
            Err("notificationItems[1]: no signature matches".into())
        );
        // Fields outside the signed text may change: Adyen does not sign them.
        assert_eq!(changed(&format!("{second}/reason"), "anything".into()), Ok(()));
        assert_eq!(
            changed(&format!("{second}/additionalData"), serde_json::json!({})),
            Err("notificationItems[1] has no additionalData.hmacSignature".into())
        );
        assert_eq!(
            changed(&format!("{second}/additionalData/hmacSignature"), "c2hvcnQ=".into()),
            Err("notificationItems[1]: hmacSignature is not a valid digest".into())
        );
        assert_eq!(
            changed("/notificationItems", serde_json::json!([])),
            Err("notificationItems is empty: nothing is signed".into())
        );
        assert_eq!(
            changed("/notificationItems/0", serde_json::json!({"other": 1})),
            Err("notificationItems[0] has no NotificationRequestItem".into())
        );
        assert!(verify(&[key()], b"{\"live\":\"false\"}").unwrap_err().contains("no notificationItems"));
        assert!(verify(&[key()], b"[accepted]").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn signing_gives_what_adyens_library_gives() {
        let mut doc: Json = serde_json::from_str(SIGNED_BY_ADYEN).unwrap();
        let theirs = doc.to_string();
        for entry in doc["notificationItems"].as_array_mut().unwrap() {
            entry["NotificationRequestItem"]["additionalData"].as_object_mut().unwrap().remove("hmacSignature");
        }
        let ours = sign(&key(), &doc.to_string());
        assert_eq!(serde_json::from_str::<Json>(&ours).unwrap(), serde_json::from_str::<Json>(&theirs).unwrap());
        assert_eq!(sign(&key(), "not json"), "not json");
    }
}
