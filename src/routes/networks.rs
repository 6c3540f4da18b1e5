//! Address ranges from the config: a source's `allowed_ips`, the ingress's `trusted_proxies`.

use ipnet::IpNet;

use super::Ctx;
use crate::config::model::Text;

/// The ranges these entries name: an address (`192.0.2.7`, a /32 or /128) or a CIDR range,
/// several to an entry when separated by commas or spaces (a variable holding a list).
/// `None` when one does not parse; each such is reported at its line. An entry whose variable
/// is unset where that is only a warning names none (so allows no one more), and `unset` says so.
pub(super) fn compile(ctx: &mut Ctx, entries: &[Text], what: &str) -> Option<Networks> {
    let mut nets = Vec::new();
    let (mut ok, mut unset) = (true, false);
    for text in entries {
        let value = match ctx.text_unless_unset(text) {
            Some(Some(value)) => value,
            Some(None) => {
                unset = true;
                continue;
            }
            None => {
                ok = false;
                continue;
            }
        };
        for item in value.split([',', ' ', '\t', '\n']).filter(|i| !i.is_empty()) {
            match parse(item) {
                Some(net) => nets.push(net),
                None => {
                    let message = format!(
                        "{what}: '{item}' is not an IP address or a CIDR range such as 192.0.2.0/24 or 2001:db8::/32"
                    );
                    ctx.error(text.referenced, message);
                    ok = false;
                }
            }
        }
    }
    ok.then_some(Networks { nets, unset })
}

/// What [`compile`] found.
pub(super) struct Networks {
    pub nets: Vec<IpNet>,
    /// Some entry's variable was unset (only a warning where it was compiled).
    pub unset: bool,
}

/// One address or range; a range is kept as written (`10.1.2.3/8` is `10.0.0.0/8`).
fn parse(item: &str) -> Option<IpNet> {
    match item.parse::<IpNet>() {
        Ok(net) => Some(net.trunc()),
        Err(_) => item.parse::<std::net::IpAddr>().ok().map(IpNet::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ranges_of_both_families() {
        assert_eq!(parse("192.0.2.7"), Some("192.0.2.7/32".parse().unwrap()));
        assert_eq!(parse("10.1.2.3/8"), Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(parse("2001:db8::1"), Some("2001:db8::1/128".parse().unwrap()));
        assert_eq!(parse("2001:db8::/32"), Some("2001:db8::/32".parse().unwrap()));
        for bad in ["192.0.2", "10.0.0.0/33", "example.com", "::1/129", "1.2.3.4/"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
