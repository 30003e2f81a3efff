//! The one egress policy for every outbound fetch Sigil makes (DID documents, status
//! lists; later webhooks): which hosts, ports and addresses a fetch may reach.
//!
//! Owns: the address classification (loopback, private, link-local, CGNAT, multicast,
//! unspecified, documentation, cloud metadata, and IPv6 forms that embed them), the
//! operator allow-list (`--resolver-allow HOST[:PORT]`), and the DNS step of the HTTP
//! client: [`FilteringDns`] resolves a name once and hands the client only the addresses
//! that passed, so the client connects to exactly what was checked (no DNS rebinding
//! between a check and the connect).
//!
//! Must never: let a caller learn why a fetch was refused beyond "refused by policy" (the
//! detail is logged), follow redirects (the client has none), or use a proxy from the
//! environment (the client has none).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// A fetch the policy refused: the error that [`FilteringDns`] returns, found again in
/// the HTTP client's error chain to tell a refusal from a failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refused by the egress policy: {0}")]
pub struct EgressRefused(pub String);

/// Longest URL fetched.
pub const MAX_URL: usize = 2048;

/// One allow-list entry: a host (name or IP literal), on one port or any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

/// Which destinations outbound fetches may reach.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<Allowed>,
}

impl EgressPolicy {
    /// Public destinations on port 443 only.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// The policy plus allow-list entries `HOST` (any port, any address class) or
    /// `HOST:PORT` (that port only), for development and private deployments.
    pub fn with_allowed(entries: &[String]) -> Result<Self, String> {
        let mut allow = Vec::new();
        for e in entries {
            let e = e.trim().to_ascii_lowercase();
            let (host, port) = match e.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                    let port = p.parse::<u16>().map_err(|_| format!("--resolver-allow {e:?}: invalid port"))?;
                    (h.trim_start_matches('[').trim_end_matches(']').to_owned(), Some(port))
                }
                _ => (e.trim_start_matches('[').trim_end_matches(']').to_owned(), None),
            };
            let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
            if !ok {
                return Err(format!("--resolver-allow {e:?}: expected HOST or HOST:PORT"));
            }
            allow.push(Allowed { host, port });
        }
        Ok(Self { allow })
    }

    fn allowed_host(&self, host: &str) -> bool {
        self.allow.iter().any(|a| a.host == host)
    }

    /// Checks a URL before any connection: `https`, a port that is 443 or allow-listed,
    /// and, for an IP literal, an address the policy accepts. Names are checked again at
    /// resolution, by [`FilteringDns`].
    pub fn check_url(&self, url: &str) -> Result<(), EgressRefused> {
        let parsed = reqwest::Url::parse(url).map_err(|_| EgressRefused(format!("{url}: not a URL")))?;
        if parsed.scheme() != "https" {
            return Err(EgressRefused(format!("{url}: only https is fetched")));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressRefused(format!("{url}: credentials in the URL")));
        }
        let Some(host) = parsed.host_str() else {
            return Err(EgressRefused(format!("{url}: no host")));
        };
        // IPv6 literals come bracketed; the allow-list holds them bare.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if url.len() > MAX_URL {
            return Err(EgressRefused(format!("URL longer than {MAX_URL} characters")));
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let listed = self.allow.iter().any(|a| a.host == host && a.port.is_none_or(|p| p == port));
        if port != 443 && !listed {
            return Err(EgressRefused(format!("{url}: port {port} is not allowed")));
        }
        // A host allowed on some port only is not allowed on another one, 443 included:
        // its name would otherwise pass resolution to the private addresses it has.
        if !listed && self.allowed_host(&host) {
            return Err(EgressRefused(format!("{url}: {host} is allowed on other ports only")));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !listed && !is_public(ip) {
                return Err(EgressRefused(format!("{url}: {ip} is not a public address")));
            }
        }
        Ok(())
    }

    /// The addresses of `host` a fetch may connect to; refused when none is left.
    pub fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, EgressRefused> {
        if self.allowed_host(&host.to_ascii_lowercase()) {
            return Ok(addrs);
        }
        let kept: Vec<SocketAddr> = addrs.iter().copied().filter(|a| is_public(a.ip())).collect();
        if kept.is_empty() {
            let seen: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            return Err(EgressRefused(format!("{host} resolves only to non-public addresses ({})", seen.join(", "))));
        }
        Ok(kept)
    }
}

/// True for an address a fetch may reach without an allow-list entry.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn public_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([10, 0, 0, 0], 8),      // RFC 1918
        ([100, 64, 0, 0], 10),   // CGNAT (RFC 6598); also Alibaba's metadata 100.100.100.200
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local; cloud metadata 169.254.169.254
        ([172, 16, 0, 0], 12),   // RFC 1918
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // RFC 1918
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
    ];
    !BLOCKED.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let [s0, s1, ..] = s;
    // Forms that embed an IPv4 address are judged by it: mapped, NAT64, 6to4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((u32::from(hi)) << 16) | u32::from(lo));
    if s0 == 0x64 && s1 == 0xff9b {
        return public_v4(embedded(s[6], s[7]));
    }
    if s0 == 0x2002 {
        return public_v4(embedded(s1, s[2]));
    }
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || s0 & 0xff00 == 0xff00 // multicast
        || s0 & 0xffc0 == 0xfe80 // link-local
        || s0 & 0xffc0 == 0xfec0 // site-local (deprecated)
        || s0 & 0xfe00 == 0xfc00 // unique local (fd00:ec2::254 is AWS's metadata)
        || (s0 == 0x2001 && s1 == 0x0db8) // documentation
        || (s0 == 0x0100 && s1 == 0 && s[2] == 0 && s[3] == 0) // discard
        || (s0 == 0 && s1 == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0); // IPv4-compatible (deprecated)
    !blocked
}

/// The HTTP client's DNS step: resolve once, keep only what the policy accepts.
pub struct FilteringDns {
    policy: Arc<EgressPolicy>,
}

impl FilteringDns {
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for FilteringDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is irrelevant here: the client puts the URL's own port on each address.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = policy.filter(&host, addrs).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal in an HTTP client error's source chain, if the policy refused it.
pub fn refusal_in<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e EgressRefused> {
    let mut cur: Option<&'e (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<EgressRefused>() {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} must be refused");
        }
        for a in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101"] {
            assert!(is_public(a.parse().unwrap()), "{a} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let p = EgressPolicy::public_only();
        assert!(p.check_url("https://example.com/did.json").is_ok());
        for bad in [
            "http://example.com/x",
            "https://example.com:8443/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "https://127.0.0.1/x",
            "https://u:p@example.com/x",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(p.check_url(bad).is_err(), "{bad}");
        }
        let p = EgressPolicy::with_allowed(&["127.0.0.1:8443".into(), "dev.internal".into()]).unwrap();
        assert!(p.check_url("https://127.0.0.1:8443/x").is_ok());
        assert!(p.check_url("https://127.0.0.1:9000/x").is_err(), "only the listed port");
        assert!(p.check_url("https://127.0.0.1/x").is_err(), "not even 443");
        assert!(p.check_url(&format!("https://example.com/{}", "a".repeat(MAX_URL))).is_err());
        assert!(p.check_url("https://dev.internal:9000/x").is_ok(), "a bare host allows any port");
        assert!(EgressPolicy::with_allowed(&["a b".into()]).is_err());
        assert!(EgressPolicy::with_allowed(&["h:99999".into()]).is_err());
    }

    #[test]
    fn resolution_keeps_only_public_addresses_unless_the_host_is_listed() {
        let p = EgressPolicy::with_allowed(&["dev.internal".into()]).unwrap();
        let mixed: Vec<SocketAddr> = vec!["10.0.0.1:0".parse().unwrap(), "93.184.216.34:0".parse().unwrap()];
        assert_eq!(p.filter("example.com", mixed.clone()).unwrap(), vec!["93.184.216.34:0".parse().unwrap()]);
        assert!(p.filter("example.com", vec!["127.0.0.1:0".parse().unwrap()]).is_err());
        assert_eq!(p.filter("dev.internal", mixed.clone()).unwrap(), mixed);
    }
}
