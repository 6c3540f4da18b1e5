//! Quoting text a sender controls (a payload's values and member names, a header's value) in
//! answers and logs: clipped, so whatever is sent, a message stays short.

use std::borrow::Cow;

/// How much of a payload's value (or a header's) an error quotes.
pub const QUOTED_VALUE: usize = 64;

/// How much of an event id (a payload's, or an event's `event_id` header) answers and logs
/// show; real ids are far shorter.
pub const QUOTED_ID: usize = 128;

/// [`clip`] for a `String` that is usually short enough already: kept as it is then.
pub fn clip_owned(text: String, max: usize) -> String {
    match clip(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(shorter) => shorter,
    }
}

/// `text` cut after `max` characters, with `…` where it was cut.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    // No more characters than bytes: the common, short text is not walked.
    if text.len() <= max {
        return text.into();
    }
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_after_max_characters_not_bytes() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip(&"é".repeat(64), 64), "é".repeat(64));
        assert_eq!(clip(&"é".repeat(65), 64), format!("{}…", "é".repeat(64)));
        assert_eq!(clip_owned("abcd".into(), 3), "abc…");
    }
}
