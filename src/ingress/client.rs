//! Who sent a request: the address it connected from, or, when that is a trusted proxy
//! (`ingress.trusted_proxies`), the client its `X-Forwarded-For` names; whether a source's
//! `allowed_ips` let that client post; whether it presented a client certificate.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// Where a request came from: the address it connected from, and whether the client
/// presented a certificate the listener's client CA issued (mutual TLS).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub certified: bool,
}

/// The client's address. Each proxy appends the address it was reached from, so the list is
/// read from its end: the first address that is not a trusted proxy is the client (one a
/// client wrote itself, further left, is never believed). An entry that is not an address
/// stops the walk at the last proxy, which is then the client (and matches no allowlist of
/// senders).
pub fn address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let mut client = peer.to_canonical();
    if trusted.is_empty() {
        return client;
    }
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    // Later header lines were appended later: read them last first.
    for line in headers.get_all("x-forwarded-for").iter().rev() {
        if !is_trusted(&client) {
            return client;
        }
        let Ok(line) = line.to_str() else { return client };
        for item in line.rsplit(',') {
            if !is_trusted(&client) {
                return client;
            }
            match entry(item.trim()) {
                Some(ip) => client = ip.to_canonical(),
                None => return client,
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, with or without a port (`[2001:db8::1]:443`).
fn entry(item: &str) -> Option<IpAddr> {
    item.parse::<IpAddr>().ok().or_else(|| item.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Whether `client` may post to a source that allows `allowed` (every client when `None`).
pub fn allowed(client: IpAddr, allowed: Option<&[IpNet]>) -> bool {
    allowed.is_none_or(|nets| nets.iter().any(|net| net.contains(&client)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(address(ip("10.0.0.5"), &headers, &[]), ip("10.0.0.5"));
        // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6 addresses.
        assert_eq!(address(ip("::ffff:192.0.2.1"), &headers, &[]), ip("192.0.2.1"));
        // A peer that is not a trusted proxy is the client.
        assert_eq!(address(ip("198.51.100.7"), &headers, &nets(&["10.0.0.0/8"])), ip("198.51.100.7"));
    }

    #[test]
    fn through_trusted_proxies_the_last_untrusted_address_is_the_client() {
        let proxies = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let client = |lines: &[&str]| address(ip("10.0.0.5"), &forwarded(lines), &proxies);
        assert_eq!(client(&["203.0.113.9"]), ip("203.0.113.9"));
        // A client that writes its own X-Forwarded-For is not believed: the address the
        // proxy appended is.
        assert_eq!(client(&["192.0.2.66, 203.0.113.9"]), ip("203.0.113.9"));
        // Two proxies deep, over two header lines, with ports and IPv6.
        assert_eq!(client(&["192.0.2.66, 203.0.113.9:4711", "10.1.1.1"]), ip("203.0.113.9"));
        assert_eq!(client(&["[2001:db8::7]:443, 2001:db8:ffff::2"]), ip("2001:db8::7"));
        assert_eq!(client(&["::ffff:203.0.113.9"]), ip("203.0.113.9"));
        // Nothing but proxies: the first of them. No header: the peer.
        assert_eq!(client(&["10.2.2.2, 10.3.3.3"]), ip("10.2.2.2"));
        assert_eq!(client(&[]), ip("10.0.0.5"));
        // Garbage where the client should be: the last proxy, which no sender's allowlist names.
        assert_eq!(client(&["203.0.113.9, unknown"]), ip("10.0.0.5"));
        assert_eq!(client(&["203.0.113.9, 10.1.1.1, bad"]), ip("10.0.0.5"));
        assert_eq!(client(&["bad, 203.0.113.9"]), ip("203.0.113.9"));
    }

    #[test]
    fn an_allowlist_takes_addresses_in_its_ranges() {
        let stripe = nets(&["3.18.12.63/32", "192.0.2.0/24", "2001:db8::/32"]);
        assert!(allowed(ip("3.18.12.63"), Some(&stripe)));
        assert!(allowed(ip("192.0.2.200"), Some(&stripe)));
        assert!(allowed(ip("2001:db8::1"), Some(&stripe)));
        assert!(!allowed(ip("3.18.12.64"), Some(&stripe)));
        assert!(!allowed(ip("::ffff:3.18.12.63"), Some(&stripe)), "canonical addresses are compared");
        assert!(allowed(ip("198.51.100.1"), None));
    }
}
