//! "Did you mean …?": the declared name a misspelt one most likely meant, for the config
//! checks' messages (a schema's property, a template variable, a header, an event type).

/// The declared name spelt most nearly as `name`, if one is near enough to be what was meant:
/// the same but for case and `_`/`-` (`amountTotal`, `amount_total`), or one or two edits away
/// (one for a name of five characters or fewer, none for one of two or fewer): `amount_totl`.
/// Not three: `amount_subtotal` is not `amount_total` misspelt, nor `payment_intent.created`
/// `payment_intent.canceled`.
pub(super) fn nearest<'a>(name: &str, declared: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let plain =
        |s: &str| s.chars().filter(|c| !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect::<String>();
    let within = match name.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    };
    declared
        .filter(|d| *d != name)
        .map(|d| (if plain(d) == plain(name) { 0 } else { strsim::damerau_levenshtein(name, d) }, d))
        .filter(|(distance, _)| *distance <= within)
        .min()
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn a_near_name_is_the_one_meant_and_a_far_one_none() {
        let declared = ["amount_total", "amount_subtotal", "currency", "id"];
        assert_eq!(nearest("amount_totl", declared.into_iter()), Some("amount_total"));
        assert_eq!(nearest("amountTotal", declared.into_iter()), Some("amount_total"));
        assert_eq!(nearest("curency", declared.into_iter()), Some("currency"));
        assert_eq!(nearest("ip", declared.into_iter()), None);
        assert_eq!(nearest("ID", declared.into_iter()), Some("id"));
        assert_eq!(nearest("curr", ["cur"].into_iter()), Some("cur"));
        assert_eq!(nearest("customer", declared.into_iter()), None);
        assert_eq!(nearest("amount_subtotl", ["amount_total"].into_iter()), None);
        let types = ["payment_intent.canceled", "payment_intent.succeeded"];
        assert_eq!(nearest("payment_intent.created", types.into_iter()), None);
        assert_eq!(nearest("payment_intent.succeded", types.into_iter()), Some("payment_intent.succeeded"));
        assert_eq!(nearest("currency", declared.into_iter()), None);
    }
}
