//! DHCPv6 messages (RFC 8415 section 8 and 9): the client/server message and the relay
//! message views, options (code, length, value), the IA_NA / IAADDR / IA_PD / IAPREFIX
//! and Status Code values, DUIDs (section 11), the DNS Recursive Name Server option
//! (RFC 3646) and the client link-layer address option (RFC 6939), and builders.

use core::net::Ipv6Addr;

use crate::inet::ipv6::Prefix;
use crate::wire::ethernet::Mac;
use crate::wire::{WireError, get_u16, get_u32};

/// The client's UDP port.
pub const CLIENT_PORT: u16 = 546;
/// The server's (and relay agents') UDP port.
pub const SERVER_PORT: u16 = 547;

/// Message types.
pub mod message_type {
    /// SOLICIT.
    pub const SOLICIT: u8 = 1;
    /// ADVERTISE.
    pub const ADVERTISE: u8 = 2;
    /// REQUEST.
    pub const REQUEST: u8 = 3;
    /// CONFIRM.
    pub const CONFIRM: u8 = 4;
    /// RENEW.
    pub const RENEW: u8 = 5;
    /// REBIND.
    pub const REBIND: u8 = 6;
    /// REPLY.
    pub const REPLY: u8 = 7;
    /// RELEASE.
    pub const RELEASE: u8 = 8;
    /// DECLINE.
    pub const DECLINE: u8 = 9;
    /// RECONFIGURE.
    pub const RECONFIGURE: u8 = 10;
    /// INFORMATION-REQUEST.
    pub const INFORMATION_REQUEST: u8 = 11;
    /// RELAY-FORW.
    pub const RELAY_FORW: u8 = 12;
    /// RELAY-REPL.
    pub const RELAY_REPL: u8 = 13;

    /// The name of a type, for logs and counters.
    pub fn name(t: u8) -> &'static str {
        match t {
            SOLICIT => "solicit",
            ADVERTISE => "advertise",
            REQUEST => "request",
            CONFIRM => "confirm",
            RENEW => "renew",
            REBIND => "rebind",
            REPLY => "reply",
            RELEASE => "release",
            DECLINE => "decline",
            RECONFIGURE => "reconfigure",
            INFORMATION_REQUEST => "information_request",
            RELAY_FORW => "relay_forw",
            RELAY_REPL => "relay_repl",
            _ => "unknown",
        }
    }
}

/// Option codes.
pub mod option {
    /// Client Identifier (a DUID).
    pub const CLIENT_ID: u16 = 1;
    /// Server Identifier (a DUID).
    pub const SERVER_ID: u16 = 2;
    /// Identity Association for Non-temporary Addresses.
    pub const IA_NA: u16 = 3;
    /// Identity Association for Temporary Addresses.
    pub const IA_TA: u16 = 4;
    /// IA Address.
    pub const IAADDR: u16 = 5;
    /// Option Request.
    pub const ORO: u16 = 6;
    /// Preference.
    pub const PREFERENCE: u16 = 7;
    /// Elapsed Time.
    pub const ELAPSED_TIME: u16 = 8;
    /// Relay Message.
    pub const RELAY_MSG: u16 = 9;
    /// Status Code.
    pub const STATUS_CODE: u16 = 13;
    /// Rapid Commit.
    pub const RAPID_COMMIT: u16 = 14;
    /// Interface-Id (from a relay agent).
    pub const INTERFACE_ID: u16 = 18;
    /// DNS Recursive Name Server (RFC 3646).
    pub const DNS_SERVERS: u16 = 23;
    /// Domain Search List (RFC 3646).
    pub const DOMAIN_LIST: u16 = 24;
    /// Identity Association for Prefix Delegation.
    pub const IA_PD: u16 = 25;
    /// IA Prefix.
    pub const IAPREFIX: u16 = 26;
    /// Information Refresh Time.
    pub const INFORMATION_REFRESH_TIME: u16 = 32;
    /// Relay Agent Remote-ID (RFC 4649).
    pub const REMOTE_ID: u16 = 37;
    /// Relay Agent Subscriber-ID (RFC 4580).
    pub const SUBSCRIBER_ID: u16 = 38;
    /// Client Link-Layer Address (RFC 6939).
    pub const CLIENT_LINKLAYER_ADDR: u16 = 79;
}

/// Status codes.
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Failure, reason unspecified.
    pub const UNSPEC_FAIL: u16 = 1;
    /// The server has no addresses available to assign.
    pub const NO_ADDRS_AVAIL: u16 = 2;
    /// The client record (binding) is unavailable.
    pub const NO_BINDING: u16 = 3;
    /// The prefix of an address is not appropriate for the link.
    pub const NOT_ON_LINK: u16 = 4;
    /// The client must use multicast.
    pub const USE_MULTICAST: u16 = 5;
    /// The server has no prefixes available to delegate.
    pub const NO_PREFIX_AVAIL: u16 = 6;
}

/// DUID types (RFC 8415 section 11).
pub mod duid_type {
    /// Link-layer address plus time.
    pub const LLT: u16 = 1;
    /// Vendor-assigned, based on an enterprise number.
    pub const EN: u16 = 2;
    /// Link-layer address.
    pub const LL: u16 = 3;
    /// UUID (RFC 6355).
    pub const UUID: u16 = 4;
}

/// The hardware type of Ethernet (IANA ARP hardware types).
pub const HW_ETHERNET: u16 = 1;

mod field {
    use core::ops::Range;
    pub const MSG_TYPE: usize = 0;
    pub const TRANSACTION_ID: Range<usize> = 1..4;
    pub const OPTIONS: usize = 4;
    pub const HOP_COUNT: usize = 1;
    pub const LINK_ADDRESS: Range<usize> = 2..18;
    pub const PEER_ADDRESS: Range<usize> = 18..34;
    pub const RELAY_OPTIONS: usize = 34;
}

/// The header of a client/server message.
pub const HEADER_LEN: usize = field::OPTIONS;
/// The header of a relay message.
pub const RELAY_HEADER_LEN: usize = field::RELAY_OPTIONS;

/// A view of a client/server message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The message type and transaction id.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::MSG_TYPE]
    }

    /// The transaction id (24 bits).
    pub fn transaction_id(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::TRANSACTION_ID];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The options.
    pub fn options(&self) -> Options<'_> {
        options(&self.buffer.as_ref()[field::OPTIONS..])
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A view of a relay message (RELAY-FORW, RELAY-REPL).
#[derive(Debug, Clone)]
pub struct RelayPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn addr_at(b: &[u8], r: core::ops::Range<usize>) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[r]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]>> RelayPacket<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        RelayPacket { buffer }
    }

    /// Wraps `buffer`, checking [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The relay header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < RELAY_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::MSG_TYPE]
    }

    /// Hop count.
    pub fn hop_count(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_COUNT]
    }

    /// Link address (:: from a lightweight relay agent, RFC 6221).
    pub fn link_address(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::LINK_ADDRESS)
    }

    /// Peer address: the client's (or the previous relay's) address.
    pub fn peer_address(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::PEER_ADDRESS)
    }

    /// The options.
    pub fn options(&self) -> Options<'_> {
        options(&self.buffer.as_ref()[field::RELAY_OPTIONS..])
    }
}

/// One option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The code.
    pub code: u16,
    /// The value.
    pub value: &'a [u8],
}

/// Iterates over options: yields an error (then stops) at one that runs past the data.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    rest: &'a [u8],
}

/// The options in `data`.
pub fn options(data: &[u8]) -> Options<'_> {
    Options { rest: data }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Opt<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let code = get_u16(self.rest, 0);
        let len = usize::from(get_u16(self.rest, 2));
        if 4 + len > self.rest.len() {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let value = &self.rest[4..4 + len];
        self.rest = &self.rest[4 + len..];
        Some(Ok(Opt { code, value }))
    }
}

/// An IA_NA or IA_PD value: IAID, T1, T2 and its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ia<'a> {
    /// The identity association's id.
    pub iaid: u32,
    /// T1 (seconds).
    pub t1: u32,
    /// T2 (seconds).
    pub t2: u32,
    /// Its options (IAADDR / IAPREFIX, Status Code).
    pub options: &'a [u8],
}

impl<'a> Ia<'a> {
    /// Parses an IA_NA or IA_PD value.
    pub fn parse(v: &'a [u8]) -> Result<Ia<'a>, WireError> {
        if v.len() < 12 {
            return Err(WireError::Truncated);
        }
        Ok(Ia {
            iaid: get_u32(v, 0),
            t1: get_u32(v, 4),
            t2: get_u32(v, 8),
            options: &v[12..],
        })
    }

    /// The addresses of an IA_NA (IAADDR options that parse).
    pub fn addresses(&self) -> impl Iterator<Item = IaAddr> + 'a {
        options(self.options)
            .map_while(Result::ok)
            .filter(|o| o.code == option::IAADDR)
            .filter_map(|o| IaAddr::parse(o.value).ok())
    }

    /// The prefixes of an IA_PD (IAPREFIX options that parse).
    pub fn prefixes(&self) -> impl Iterator<Item = IaPrefix> + 'a {
        options(self.options)
            .map_while(Result::ok)
            .filter(|o| o.code == option::IAPREFIX)
            .filter_map(|o| IaPrefix::parse(o.value).ok())
    }

    /// The Status Code inside, if any.
    pub fn status(&self) -> Option<u16> {
        options(self.options)
            .map_while(Result::ok)
            .find(|o| o.code == option::STATUS_CODE && o.value.len() >= 2)
            .map(|o| get_u16(o.value, 0))
    }
}

/// An IA Address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaAddr {
    /// The address.
    pub address: Ipv6Addr,
    /// Preferred lifetime (seconds).
    pub preferred: u32,
    /// Valid lifetime (seconds).
    pub valid: u32,
}

impl IaAddr {
    /// Parses an IAADDR value (its own options are ignored).
    pub fn parse(v: &[u8]) -> Result<IaAddr, WireError> {
        if v.len() < 24 {
            return Err(WireError::Truncated);
        }
        Ok(IaAddr {
            address: addr_at(v, 0..16),
            preferred: get_u32(v, 16),
            valid: get_u32(v, 20),
        })
    }
}

/// An IA Prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaPrefix {
    /// The prefix.
    pub prefix: Prefix,
    /// Preferred lifetime (seconds).
    pub preferred: u32,
    /// Valid lifetime (seconds).
    pub valid: u32,
}

impl IaPrefix {
    /// Parses an IAPREFIX value (its own options are ignored); a length over 128 is
    /// malformed.
    pub fn parse(v: &[u8]) -> Result<IaPrefix, WireError> {
        if v.len() < 25 {
            return Err(WireError::Truncated);
        }
        let prefix = Prefix::new(addr_at(v, 9..25), v[8]).ok_or(WireError::Malformed)?;
        Ok(IaPrefix {
            prefix,
            preferred: get_u32(v, 0),
            valid: get_u32(v, 4),
        })
    }
}

/// The link-layer address in a DUID-LL or DUID-LLT of Ethernet, if that is what it is.
pub fn duid_mac(duid: &[u8]) -> Option<Mac> {
    if duid.len() < 4 || get_u16(duid, 2) != HW_ETHERNET {
        return None;
    }
    let ll = match get_u16(duid, 0) {
        duid_type::LL => &duid[4..],
        duid_type::LLT => duid.get(8..)?,
        _ => return None,
    };
    ll.try_into().ok()
}

/// DUID-LL of an Ethernet address (the server's DUID: stable across restarts, as the
/// port's MAC is).
pub fn duid_ll(mac: Mac) -> Vec<u8> {
    let mut d = Vec::with_capacity(10);
    d.extend_from_slice(&duid_type::LL.to_be_bytes());
    d.extend_from_slice(&HW_ETHERNET.to_be_bytes());
    d.extend_from_slice(&mac);
    d
}

/// The Ethernet address in a Client Link-Layer Address option (RFC 6939).
pub fn client_linklayer_mac(v: &[u8]) -> Option<Mac> {
    if v.len() != 8 || get_u16(v, 0) != HW_ETHERNET {
        return None;
    }
    v[2..].try_into().ok()
}

/// The addresses of a DNS Recursive Name Server option (whole addresses only).
pub fn dns_servers(v: &[u8]) -> impl Iterator<Item = Ipv6Addr> + '_ {
    v.chunks_exact(16).map(|c| addr_at(c, 0..16))
}

/// Appends an option.
pub fn put_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let v = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

/// One option as bytes (code, length, value).
pub fn option_bytes(code: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + value.len());
    put_option(&mut v, code, value);
    v
}

/// An IA_NA or IA_PD value.
pub fn ia(iaid: u32, t1: u32, t2: u32, inner: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + inner.len());
    v.extend_from_slice(&iaid.to_be_bytes());
    v.extend_from_slice(&t1.to_be_bytes());
    v.extend_from_slice(&t2.to_be_bytes());
    v.extend_from_slice(inner);
    v
}

/// An IAADDR option (code and all).
pub fn ia_addr_option(out: &mut Vec<u8>, address: Ipv6Addr, preferred: u32, valid: u32) {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&address.octets());
    v.extend_from_slice(&preferred.to_be_bytes());
    v.extend_from_slice(&valid.to_be_bytes());
    put_option(out, option::IAADDR, &v);
}

/// An IAPREFIX option (code and all).
pub fn ia_prefix_option(out: &mut Vec<u8>, prefix: Prefix, preferred: u32, valid: u32) {
    let mut v = Vec::with_capacity(25);
    v.extend_from_slice(&preferred.to_be_bytes());
    v.extend_from_slice(&valid.to_be_bytes());
    v.push(prefix.len());
    v.extend_from_slice(&prefix.addr().octets());
    put_option(out, option::IAPREFIX, &v);
}

/// A Status Code option (code and all).
pub fn status_option(out: &mut Vec<u8>, code: u16, message: &str) {
    let mut v = Vec::with_capacity(2 + message.len());
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(message.as_bytes());
    put_option(out, option::STATUS_CODE, &v);
}

/// A client/server message: type, transaction id, options.
pub fn message(msg_type: u8, transaction_id: u32, options: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + options.len());
    m.push(msg_type);
    m.extend_from_slice(&transaction_id.to_be_bytes()[1..]);
    m.extend_from_slice(options);
    m
}

/// A relay message: type, hop count, link and peer addresses, options.
pub fn relay_message(
    msg_type: u8,
    hop_count: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    options: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(RELAY_HEADER_LEN + options.len());
    m.push(msg_type);
    m.push(hop_count);
    m.extend_from_slice(&link.octets());
    m.extend_from_slice(&peer.octets());
    m.extend_from_slice(options);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ia_na_and_ia_pd_round_trip() {
        let a: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let p: Prefix = "2001:db8:100::/56".parse().unwrap();
        let mut inner = Vec::new();
        ia_addr_option(&mut inner, a, 1800, 3600);
        status_option(&mut inner, status::SUCCESS, "ok");
        let v = ia(7, 900, 1440, &inner);
        let ia_na = Ia::parse(&v).unwrap();
        assert_eq!((ia_na.iaid, ia_na.t1, ia_na.t2), (7, 900, 1440));
        assert_eq!(
            ia_na.addresses().collect::<Vec<_>>(),
            [IaAddr {
                address: a,
                preferred: 1800,
                valid: 3600
            }]
        );
        assert_eq!(ia_na.status(), Some(status::SUCCESS));
        let mut inner = Vec::new();
        ia_prefix_option(&mut inner, p, 1800, 3600);
        let pd = ia(1, 0, 0, &inner);
        assert_eq!(&pd[12..16], &[0, 26, 0, 25]);
        let ia_pd = Ia::parse(&pd).unwrap();
        assert_eq!(ia_pd.prefixes().next().map(|x| x.prefix), Some(p));
        assert_eq!(ia_pd.status(), None);
        assert_eq!(Ia::parse(&pd[..11]), Err(WireError::Truncated));
        let mut bad = inner.clone();
        bad[12] = 129;
        assert_eq!(IaPrefix::parse(&bad[4..]), Err(WireError::Malformed));
    }

    #[test]
    fn messages_options_and_duids() {
        let mut o = Vec::new();
        put_option(&mut o, option::CLIENT_ID, &duid_ll([2, 0, 0, 0, 0, 1]));
        put_option(&mut o, option::RAPID_COMMIT, &[]);
        let m = message(message_type::SOLICIT, 0x0a0b0c, &o);
        assert_eq!(&m[..4], &[1, 0x0a, 0x0b, 0x0c]);
        let p = Packet::new_checked(&m[..]).unwrap();
        assert_eq!((p.msg_type(), p.transaction_id()), (1, 0x0a0b0c));
        let opts: Vec<_> = p.options().map(Result::unwrap).collect();
        assert_eq!(opts[0].value, &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]);
        assert_eq!(
            opts[1],
            Opt {
                code: 14,
                value: &[]
            }
        );
        assert_eq!(duid_mac(opts[0].value), Some([2, 0, 0, 0, 0, 1]));
        let llt = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 2, 0, 0, 0, 0, 9];
        assert_eq!(duid_mac(&llt), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(duid_mac(&[0, 2, 0, 0, 0, 9, 1]), None);
        assert_eq!(
            duid_mac(&[0, 3, 0, 6, 1, 2, 3, 4, 5, 6]),
            None,
            "not Ethernet"
        );
        assert_eq!(
            client_linklayer_mac(&[0, 1, 2, 0, 0, 0, 0, 7]),
            Some([2, 0, 0, 0, 0, 7])
        );
        assert_eq!(client_linklayer_mac(&[0, 1, 2, 0, 0]), None);
        assert_eq!(
            Packet::new_checked(&m[..3]).err(),
            Some(WireError::Truncated)
        );
        let r: Vec<_> = options(&[0, 1, 0, 9, 1]).collect();
        assert_eq!(r, [Err(WireError::Truncated)]);
        assert_eq!(options(&[0, 1]).next(), Some(Err(WireError::Truncated)));
        let rm = relay_message(
            message_type::RELAY_FORW,
            0,
            Ipv6Addr::UNSPECIFIED,
            "fe80::1".parse().unwrap(),
            &o,
        );
        let rp = RelayPacket::new_checked(&rm[..]).unwrap();
        assert_eq!(
            (rp.msg_type(), rp.hop_count(), rp.link_address()),
            (12, 0, Ipv6Addr::UNSPECIFIED)
        );
        assert_eq!(rp.peer_address(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(rp.options().count(), 2);
        assert!(RelayPacket::new_checked(&rm[..33]).is_err());
        let dns: Vec<Ipv6Addr> = dns_servers(&[0u8; 40]).collect();
        assert_eq!(dns.len(), 2);
    }
}
