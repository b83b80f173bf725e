//! The trusted proxy list: addresses and CIDR networks, parsed once from the configuration.
//!
//! Owns [`TrustedProxies`] and its membership test. Never reads a request: [`super::resolve`]
//! asks it whether a peer or a forwarded hop is trusted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::http1::grammar::parse_decimal;

/// One entry of a [`TrustedProxies`] list: a network with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    V4 { network: u32, prefix: u8 },
    V6 { network: u128, prefix: u8 },
}

impl Net {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or an IPv6 address with `/n`.
    fn parse(entry: &str) -> Result<Net, String> {
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (entry, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid trusted proxy {entry:?}: {addr:?} is not an IPv4 or IPv6 address"))?;
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) => match parse_decimal(digits.as_bytes(), 3) {
                Some(n) if n <= u32::from(max) => n as u8,
                _ => {
                    return Err(format!(
                        "invalid trusted proxy {entry:?}: the prefix length must be a number from 0 to {max}"
                    ))
                }
            },
        };
        Ok(match ip {
            IpAddr::V4(ip) => Net::V4 { network: u32::from(ip) & mask_v4(prefix), prefix },
            IpAddr::V6(ip) => Net::V6 { network: u128::from(ip) & mask_v6(prefix), prefix },
        })
    }

    /// Whether the address is in this network. `v4` is the address as IPv4 when it is one
    /// (directly or IPv4-mapped); `v6` is the address as IPv6 (IPv4 addresses mapped).
    fn contains(&self, v4: Option<Ipv4Addr>, v6: Ipv6Addr) -> bool {
        match *self {
            Net::V4 { network, prefix } => v4.is_some_and(|ip| u32::from(ip) & mask_v4(prefix) == network),
            Net::V6 { network, prefix } => u128::from(v6) & mask_v6(prefix) == network,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { network, prefix: 32 } => write!(f, "{}", Ipv4Addr::from(network)),
            Net::V4 { network, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(network)),
            Net::V6 { network, prefix: 128 } => write!(f, "{}", Ipv6Addr::from(network)),
            Net::V6 { network, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(network)),
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

/// The peers whose forwarded headers are believed, and how many proxy hops to walk back.
///
/// Entries are exact addresses or CIDR networks, IPv4 or IPv6. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) matches the IPv4 entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
    hops: usize,
}

impl TrustedProxies {
    /// Parses a comma-separated list such as `"127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"`.
    ///
    /// Whitespace around entries and empty entries are ignored, so `""` trusts nobody. A
    /// network may have host bits set (`10.1.2.3/8` means `10.0.0.0/8`); a prefix longer than
    /// 32 (IPv4) or 128 (IPv6) is an error. `hops` is how many proxies, nearest first, may
    /// append to the forwarded lists: 1 takes the rightmost entry, 0 ignores (and removes)
    /// forwarded headers even from trusted peers.
    ///
    /// # Errors
    ///
    /// A message naming the first entry that is not an address or a network.
    pub fn parse(list: &str, hops: usize) -> Result<TrustedProxies, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Net::parse)
            .collect::<Result<Vec<Net>, String>>()?;
        Ok(TrustedProxies { nets, hops })
    }

    /// Trusts no peer: forwarded headers are always removed.
    #[cfg(test)]
    pub fn none() -> Self {
        TrustedProxies { nets: Vec::new(), hops: 0 }
    }

    /// Whether no peer is trusted.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// How many proxy hops the forwarded lists are walked back, at most.
    pub fn hops(&self) -> usize {
        self.hops
    }

    /// Whether `ip` is one of the trusted addresses or in one of the trusted networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v4, v6) = match ip {
            IpAddr::V4(ip) => (Some(ip), ip.to_ipv6_mapped()),
            IpAddr::V6(ip) => (ip.to_ipv4_mapped(), ip),
        };
        self.nets.iter().any(|net| net.contains(v4, v6))
    }
}

impl fmt::Display for TrustedProxies {
    /// The entries in canonical form (host bits cleared), comma-separated; without the hops.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_masks_host_bits() {
        let trusted = TrustedProxies::parse(" 127.0.0.1, 10.1.2.3/8,::1 , fd00::1/8,, ", 2).unwrap();
        assert_eq!(trusted.to_string(), "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8");
        assert_eq!(trusted.hops(), 2);
        assert!(!trusted.is_empty());
        assert!(TrustedProxies::parse("", 1).unwrap().is_empty());
        assert!(TrustedProxies::parse(" , ", 1).unwrap().is_empty());
        assert!(TrustedProxies::none().is_empty());
        assert_eq!(TrustedProxies::parse("0.0.0.0/0, ::/0", 1).unwrap().to_string(), "0.0.0.0/0, ::/0");
    }

    #[test]
    fn parse_errors_name_the_bad_entry() {
        let cases = [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "10.0.0.0/8/8",
            "localhost",
            "10.0.0",
            "10.0.0.256",
            "[::1]",
            "fe80::1%eth0",
            "/8",
            "1.2.3.4 5.6.7.8",
        ];
        for entry in cases {
            let error = TrustedProxies::parse(&format!("127.0.0.1, {entry}"), 1).unwrap_err();
            assert!(error.contains(&format!("{entry:?}")), "{entry}: {error}");
        }
    }

    #[test]
    fn membership() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8, 192.168.1.0/24, ::1, fd00::/8", 1).unwrap();
        let cases: [(&str, bool); 14] = [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("192.168.1.77", true),
            ("192.168.2.1", false),
            ("::1", true),
            ("::2", false),
            ("fd12:3456::1", true),
            ("fe00::1", false),
            ("::ffff:10.9.8.7", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:11.0.0.1", false),
            ("::10.0.0.1", false),
        ];
        for (ip, expected) in cases {
            assert_eq!(trusted.contains(ip.parse().unwrap()), expected, "{ip}");
        }
        let all = TrustedProxies::parse("0.0.0.0/0", 1).unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(all.contains("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        let mapped = TrustedProxies::parse("::ffff:10.0.0.0/104", 1).unwrap();
        assert!(mapped.contains("10.1.1.1".parse().unwrap()));
        assert!(!mapped.contains("11.1.1.1".parse().unwrap()));
        assert!(!TrustedProxies::none().contains("127.0.0.1".parse().unwrap()));
    }
}
