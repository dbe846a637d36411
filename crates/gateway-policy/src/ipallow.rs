//! Client IP allow-list, and the client's address behind trusted proxies.
//!
//! The address starts as Spin's `spin-client-addr` header (the TCP peer).
//! Behind an ingress that peer is the proxy, so the client's own address is
//! taken from `x-forwarded-for`, but only when the peer is one of the
//! configured [`TrustedProxies`]: from anyone else the header is client text
//! and is ignored. The walk goes right to left (each proxy appends the
//! address it saw), so entries a client wrote itself, on the left, are never
//! reached while a trusted proxy stands between.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an allow-list entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("entry {0}: empty")]
    Empty(usize),
    #[error("entry {position} `{entry}`: not an IP address or network")]
    BadAddress { position: usize, entry: String },
    #[error("entry {position} `{entry}`: prefix length must be 0-32 for IPv4 and 0-128 for IPv6")]
    BadPrefix { position: usize, entry: String },
    #[error("entry {position} `{entry}`: address has bits set beyond the prefix")]
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
        let entries: Vec<&str> = list.split(',').map(str::trim).collect();
        IpAllowList::from_entries(&entries)
    }

    /// The list from one entry per network; no entries allows every address.
    pub fn from_entries<S: AsRef<str>>(entries: &[S]) -> Result<IpAllowList, CidrError> {
        Ok(IpAllowList {
            networks: parse_entries(entries)?,
        })
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
        self.allows_client(TrustedProxies::default().client_address(spin_client_addr, &[]))
    }

    /// Checks a client address as [`TrustedProxies::client_address`] found
    /// it; an address that could not be found is refused unless the list
    /// allows everyone.
    pub fn allows_client(&self, client: Result<IpAddr, ClientAddressError>) -> bool {
        self.allows_all() || client.is_ok_and(|addr| self.allows(addr))
    }
}

/// Why the client's address could not be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientAddressError {
    /// No readable peer address (`spin-client-addr` missing or garbled).
    #[error("the peer address is unknown")]
    Unknown,
    /// A trusted proxy sent no `x-forwarded-for`.
    #[error("a trusted proxy sent no x-forwarded-for")]
    NotForwarded,
    /// An `x-forwarded-for` entry walked over is not an address.
    #[error("x-forwarded-for entry {0} from the right is not an address")]
    UnreadableForwardedFor(usize),
    /// More entries than any real proxy chain has.
    #[error("x-forwarded-for has more than {MAX_FORWARDED_FOR_HOPS} entries")]
    TooManyHops,
}

/// Longest `x-forwarded-for` chain walked; deployments have one or two
/// proxies, and the bound keeps a hostile header from costing work.
pub const MAX_FORWARDED_FOR_HOPS: usize = 16;

/// The networks of the proxies (the ingress controller's pods) whose
/// `x-forwarded-for` is believed. Empty trusts no one: the TCP peer is the
/// client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
}

impl TrustedProxies {
    pub fn from_entries<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, CidrError> {
        Ok(TrustedProxies {
            networks: parse_entries(entries)?,
        })
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.networks.iter().any(|net| net.contains(addr))
    }

    /// The client's address. `spin_client_addr` is the TCP peer;
    /// `forwarded_for` every `x-forwarded-for` value in the order received.
    /// A peer that is not a trusted proxy is the client, whatever the
    /// header says. From a trusted proxy, the nearest entry (from the right)
    /// that is not itself a trusted proxy is the client; if every entry is
    /// one, the leftmost is.
    pub fn client_address(
        &self,
        spin_client_addr: Option<&str>,
        forwarded_for: &[&str],
    ) -> Result<IpAddr, ClientAddressError> {
        let peer = spin_client_addr
            .and_then(|value| parse_client_addr(value).ok())
            .ok_or(ClientAddressError::Unknown)?;
        if !self.trusts(peer) {
            return Ok(peer);
        }
        let entries: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        if entries.iter().all(|e| e.is_empty()) {
            return Err(ClientAddressError::NotForwarded);
        }
        if entries.len() > MAX_FORWARDED_FOR_HOPS {
            return Err(ClientAddressError::TooManyHops);
        }
        let mut client = peer;
        for (from_right, entry) in entries.iter().rev().enumerate() {
            let addr = parse_forwarded_entry(entry)
                .ok_or(ClientAddressError::UnreadableForwardedFor(from_right + 1))?;
            client = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        Ok(client)
    }
}

/// One `x-forwarded-for` entry: an address, `[ipv6]`, `[ipv6]:port` or
/// `ipv4:port` (proxies differ in whether they add the port).
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

fn parse_entries<S: AsRef<str>>(entries: &[S]) -> Result<Vec<Cidr>, CidrError> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| parse_cidr(index + 1, entry.as_ref().trim()))
        .collect()
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

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::from_entries(entries).unwrap()
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let none = TrustedProxies::default();
        let spoofed = ["10.1.2.3"];
        assert_eq!(
            none.client_address(Some("203.0.113.7:4000"), &spoofed),
            Ok(ip("203.0.113.7"))
        );
        let ingress = proxies(&["10.240.0.0/16"]);
        assert_eq!(
            ingress.client_address(Some("203.0.113.7:4000"), &spoofed),
            Ok(ip("203.0.113.7")),
            "a peer outside the proxy networks is the client"
        );
        assert_eq!(
            ingress.client_address(None, &spoofed),
            Err(ClientAddressError::Unknown)
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_nearest_untrusted_entry_is_the_client() {
        let ingress = proxies(&["10.240.0.0/16", "fd00::/8"]);
        let peer = Some("10.240.0.5:51000");
        let from = |values: &[&str]| ingress.client_address(peer, values);
        assert_eq!(from(&["198.51.100.4"]), Ok(ip("198.51.100.4")));
        // A client that writes its own header gets its entry pushed left;
        // the proxy's appended entry is what counts.
        assert_eq!(from(&["10.1.2.3, 198.51.100.4"]), Ok(ip("198.51.100.4")));
        assert_eq!(from(&["10.1.2.3", "198.51.100.4"]), Ok(ip("198.51.100.4")));
        // Proxies in the chain are skipped.
        assert_eq!(
            from(&["198.51.100.4, 10.240.3.3, [fd00::9]:443"]),
            Ok(ip("198.51.100.4"))
        );
        assert_eq!(from(&["198.51.100.4:1234"]), Ok(ip("198.51.100.4")));
        assert_eq!(from(&["[2001:db8::7]"]), Ok(ip("2001:db8::7")));
        // Only proxies: the leftmost is where the request started.
        assert_eq!(from(&["10.240.9.9, 10.240.3.3"]), Ok(ip("10.240.9.9")));
        assert_eq!(from(&[]), Err(ClientAddressError::NotForwarded));
        assert_eq!(from(&[" , "]), Err(ClientAddressError::NotForwarded));
        assert_eq!(
            from(&["198.51.100.4, unknown"]),
            Err(ClientAddressError::UnreadableForwardedFor(1))
        );
        // Garbage to the left of the client is never read.
        assert_eq!(from(&["garbage, 198.51.100.4"]), Ok(ip("198.51.100.4")));
        let long = vec!["10.240.0.1"; MAX_FORWARDED_FOR_HOPS + 1].join(",");
        assert_eq!(from(&[&long]), Err(ClientAddressError::TooManyHops));
    }

    #[test]
    fn the_allow_list_refuses_a_client_it_cannot_place() {
        let list = IpAllowList::from_entries(&["198.51.100.0/24"]).unwrap();
        assert!(list.allows_client(Ok(ip("198.51.100.4"))));
        assert!(!list.allows_client(Ok(ip("10.1.2.3"))));
        assert!(!list.allows_client(Err(ClientAddressError::NotForwarded)));
        assert!(IpAllowList::default().allows_client(Err(ClientAddressError::Unknown)));
        assert_eq!(
            TrustedProxies::from_entries(&["10.0.0.0/8", ""]),
            Err(CidrError::Empty(2))
        );
    }
}
