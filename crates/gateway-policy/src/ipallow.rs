//! Client IP allow-list.
//!
//! The address comes from Spin's `spin-client-addr` header (the TCP peer),
//! never from `x-forwarded-for` or `forwarded`, which a client can write.
//! Behind a load balancer or ingress that peer is the proxy, so in such a
//! deployment the list names the proxy, and per-client filtering belongs to
//! the proxy or the network policy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an allow-list entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("allow-list entry {0}: empty (stray comma?)")]
    Empty(usize),
    #[error("allow-list entry {position} `{entry}`: not an IP address")]
    BadAddress { position: usize, entry: String },
    #[error("allow-list entry {position} `{entry}`: prefix length must be 0-32 for IPv4 and 0-128 for IPv6")]
    BadPrefix { position: usize, entry: String },
    #[error("allow-list entry {position} `{entry}`: address has bits set beyond the prefix")]
    HostBitsSet { position: usize, entry: String },
}

/// Why a `spin-client-addr` value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client address is not `ip:port` or `[ipv6]:port`")]
pub struct ClientAddrError;

/// One network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => masked_v4(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(a)) => masked_v6(a, self.prefix) == net,
            _ => false,
        }
    }
}

fn masked_v4(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) & mask)
}

fn masked_v6(addr: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(addr) & mask)
}

/// The networks clients may connect from. Empty allows every address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowList {
    networks: Vec<Cidr>,
}

impl IpAllowList {
    /// Parses a comma-separated list such as
    /// `10.0.0.0/8, 192.168.1.10/32, ::1/128`. A bare address means that one
    /// host. An empty (or all-blank) value allows every address. An address
    /// with bits beyond its prefix (`10.0.0.1/8`) is refused as the likely
    /// typo it is.
    pub fn parse(list: &str) -> Result<IpAllowList, CidrError> {
        if list.trim().is_empty() {
            return Ok(IpAllowList::default());
        }
        let networks = list
            .split(',')
            .enumerate()
            .map(|(index, entry)| parse_cidr(index + 1, entry.trim()))
            .collect::<Result<_, _>>()?;
        Ok(IpAllowList { networks })
    }

    pub fn allows_all(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `addr` may connect. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.1.2.3`) are checked as the IPv4 address they carry.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.allows_all() || self.networks.iter().any(|net| net.contains(addr))
    }

    /// Checks the `spin-client-addr` header value; a missing or unreadable
    /// value is refused unless the list allows everyone.
    pub fn allows_client_addr(&self, spin_client_addr: Option<&str>) -> bool {
        if self.allows_all() {
            return true;
        }
        spin_client_addr
            .and_then(|value| parse_client_addr(value).ok())
            .is_some_and(|addr| self.allows(addr))
    }
}

/// The IP of a `spin-client-addr` value (`127.0.0.1:56936`, `[::1]:5000`).
pub fn parse_client_addr(value: &str) -> Result<IpAddr, ClientAddrError> {
    value
        .trim()
        .parse::<SocketAddr>()
        .map(|socket| socket.ip())
        .map_err(|_| ClientAddrError)
}

fn parse_cidr(position: usize, entry: &str) -> Result<Cidr, CidrError> {
    if entry.is_empty() {
        return Err(CidrError::Empty(position));
    }
    // Entries are configuration, not secrets; shortened to keep messages sane.
    let shown = || entry.chars().take(60).collect::<String>();
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry, None),
    };
    let network: IpAddr = address.parse().map_err(|_| CidrError::BadAddress {
        position,
        entry: shown(),
    })?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(text)
            if !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(CidrError::BadPrefix {
                    position,
                    entry: shown(),
                })?
        }
        Some(_) => {
            return Err(CidrError::BadPrefix {
                position,
                entry: shown(),
            })
        }
    };
    let masked = match network {
        IpAddr::V4(a) => IpAddr::V4(masked_v4(a, prefix)),
        IpAddr::V6(a) => IpAddr::V6(masked_v6(a, prefix)),
    };
    if masked != network {
        return Err(CidrError::HostBitsSet {
            position,
            entry: shown(),
        });
    }
    Ok(Cidr { network, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn empty_list_allows_everyone() {
        for text in ["", "  ", "\t"] {
            let list = IpAllowList::parse(text).unwrap();
            assert!(list.allows_all());
            assert!(list.allows(ip("203.0.113.9")));
            assert!(list.allows_client_addr(None));
        }
    }

    #[test]
    fn ipv4_and_ipv6_membership() {
        let list =
            IpAllowList::parse("10.0.0.0/8, 192.168.1.10/32, ::1/128,2001:db8::/32, 172.16.5.4")
                .unwrap();
        for inside in [
            "10.0.0.0",
            "10.255.255.255",
            "192.168.1.10",
            "::1",
            "2001:db8:ffff::1",
            "172.16.5.4",
        ] {
            assert!(list.allows(ip(inside)), "{inside}");
        }
        for outside in [
            "11.0.0.0",
            "9.255.255.255",
            "192.168.1.11",
            "::2",
            "2001:db9::",
            "172.16.5.5",
            "127.0.0.1",
        ] {
            assert!(!list.allows(ip(outside)), "{outside}");
        }
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert!(list.allows(ip("::ffff:10.1.2.3")));
        assert!(!list.allows(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn zero_prefixes_match_their_family_only() {
        let v4 = IpAllowList::parse("0.0.0.0/0").unwrap();
        assert!(v4.allows(ip("8.8.8.8")));
        assert!(!v4.allows(ip("2001:db8::1")));
        let v6 = IpAllowList::parse("::/0").unwrap();
        assert!(v6.allows(ip("2001:db8::1")));
        assert!(!v6.allows(ip("8.8.8.8")));
    }

    #[test]
    fn spin_client_addr_values() {
        assert_eq!(parse_client_addr("127.0.0.1:56936"), Ok(ip("127.0.0.1")));
        assert_eq!(parse_client_addr("[::1]:5000"), Ok(ip("::1")));
        for bad in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost:80",
            "",
            "127.0.0.1:99999",
        ] {
            assert_eq!(parse_client_addr(bad), Err(ClientAddrError), "{bad}");
        }
        let list = IpAllowList::parse("127.0.0.0/8, ::1/128").unwrap();
        assert!(list.allows_client_addr(Some("127.0.0.1:56936")));
        assert!(list.allows_client_addr(Some("[::1]:5000")));
        assert!(!list.allows_client_addr(Some("[::2]:5000")));
        assert!(!list.allows_client_addr(Some("10.0.0.1:80")));
        assert!(
            !list.allows_client_addr(Some("garbage")),
            "unreadable address is refused"
        );
        assert!(!list.allows_client_addr(None), "missing address is refused");
    }

    #[test]
    fn malformed_entries() {
        let cases = [
            ("10.0.0.0/8,", CidrError::Empty(2)),
            (",10.0.0.0/8", CidrError::Empty(1)),
            ("10.0.0.0/8,,::1", CidrError::Empty(2)),
            (
                "10.0.0/8",
                CidrError::BadAddress {
                    position: 1,
                    entry: "10.0.0/8".into(),
                },
            ),
            (
                "localhost",
                CidrError::BadAddress {
                    position: 1,
                    entry: "localhost".into(),
                },
            ),
            (
                "10.0.0.0/33",
                CidrError::BadPrefix {
                    position: 1,
                    entry: "10.0.0.0/33".into(),
                },
            ),
            (
                "::/129",
                CidrError::BadPrefix {
                    position: 1,
                    entry: "::/129".into(),
                },
            ),
            (
                "10.0.0.0/",
                CidrError::BadPrefix {
                    position: 1,
                    entry: "10.0.0.0/".into(),
                },
            ),
            (
                "10.0.0.0/+8",
                CidrError::BadPrefix {
                    position: 1,
                    entry: "10.0.0.0/+8".into(),
                },
            ),
            (
                "10.0.0.0/8/8",
                CidrError::BadPrefix {
                    position: 1,
                    entry: "10.0.0.0/8/8".into(),
                },
            ),
            (
                "10.0.0.1/8",
                CidrError::HostBitsSet {
                    position: 1,
                    entry: "10.0.0.1/8".into(),
                },
            ),
            (
                "::1, 2001:db8::1/32",
                CidrError::HostBitsSet {
                    position: 2,
                    entry: "2001:db8::1/32".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(IpAllowList::parse(text), Err(expected), "{text:?}");
        }
    }
}
