//! Who the client is, by address: the peer of the connection, or, when that peer is one of
//! the operator's `--trusted-proxy` networks, the address the proxies forwarded in
//! `X-Forwarded-For`. Per-address limits (failed authentications, `/v1/verify`) and the
//! `client` of an `auth.failed` audit entry use it.
//!
//! Must never: believe `X-Forwarded-For` from a peer that is not a trusted proxy (a client
//! could then pick any address, escape its own throttle and push others into theirs), or
//! take an address a client wrote left of what the trusted proxies appended.

use std::net::{IpAddr, SocketAddr};

use actix_web::{HttpRequest, web};
use ipnet::IpNet;

/// At most this many forwarded hops are read, from the right (a proxy chain longer than this
/// is not a deployment; a long header is a client's invention).
const MAX_HOPS: usize = 16;

/// The networks whose `X-Forwarded-For` is believed (`--trusted-proxy`), in app data.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts `nets` (empty: nobody, the peer address is the client).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind a connection from `peer` carrying these `X-Forwarded-For` header
    /// values (in the order received). Walks the forwarded hops from the right while they
    /// are trusted proxies: the first address that is not one is the client. A hop that is
    /// not an address ends the walk at the proxy that sent it.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut current = peer.to_canonical();
        if !self.trusts(current) {
            return current;
        }
        let hops = forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')).map(str::trim).filter(|h| !h.is_empty());
        for hop in hops.take(MAX_HOPS) {
            let Some(ip) = parse_hop(hop) else { return current };
            current = ip.to_canonical();
            if !self.trusts(current) {
                return current;
            }
        }
        current
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Parses a `--trusted-proxy` value: a CIDR (`10.0.0.0/8`, `fd00::/8`) or one address.
/// A network of everyone (`/0`) is refused: every client could then name its own address.
pub fn parse_trusted_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(n) => n.trunc(),
        Err(_) => IpNet::from(s.parse::<IpAddr>().map_err(|_| format!("{s:?} is not an address or CIDR network"))?.to_canonical()),
    };
    if net.prefix_len() == 0 {
        return Err(format!("{s:?} would trust every address as a proxy, so every client could choose its own address"));
    }
    Ok(net)
}

/// The client address of `req` (see the module documentation).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(trusted) = req.app_data::<web::Data<TrustedProxies>>() else { return Some(peer.to_canonical()) };
    let values: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    Some(trusted.client(peer, &values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("127.0.0.1"), &["203.0.113.9"]), ip("127.0.0.1"));
        let t = TrustedProxies::new(vec![parse_trusted_proxy("127.0.0.1").unwrap(), parse_trusted_proxy("10.0.0.0/8").unwrap()]);
        // Not from a proxy: the claim is ignored.
        assert_eq!(t.client(ip("198.51.100.1"), &["203.0.113.9"]), ip("198.51.100.1"));
        // Through two proxies: the rightmost untrusted hop; the client's own claim (left) is not it.
        assert_eq!(t.client(ip("127.0.0.1"), &["6.6.6.6, 203.0.113.9, 10.1.2.3"]), ip("203.0.113.9"));
        assert_eq!(t.client(ip("127.0.0.1"), &["6.6.6.6", "203.0.113.9:4711"]), ip("203.0.113.9"));
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &["[2001:db8::1]:443"]), ip("2001:db8::1"));
        // No header, or garbage from the proxy: the proxy itself.
        assert_eq!(t.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(t.client(ip("127.0.0.1"), &["nonsense"]), ip("127.0.0.1"));
        assert_eq!(t.client(ip("127.0.0.1"), &["203.0.113.9, nonsense, 10.0.0.1"]), ip("10.0.0.1"));
        // Only trusted hops: the leftmost.
        assert_eq!(t.client(ip("127.0.0.1"), &["10.0.0.2, 10.0.0.1"]), ip("10.0.0.2"));
    }

    #[test]
    fn trusted_proxy_values_are_checked() {
        assert_eq!(parse_trusted_proxy("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_trusted_proxy("::1").unwrap().to_string(), "::1/128");
        for bad in ["0.0.0.0/0", "::/0", "proxy.example", "10.0.0.0/33", ""] {
            assert!(parse_trusted_proxy(bad).is_err(), "{bad}");
        }
    }
}
