//! DHCPv4 messages: BOOTP's fixed fields (RFC 2131 section 2), the magic cookie, the
//! options (RFC 2132) with option overload (option 52: options continued in `file` and
//! `sname`) and RFC 3396's concatenation of an option split in parts, and the Relay
//! Agent Information option (82, RFC 3046) with its sub-options.
//!
//! [`Packet`] is the view (`new_checked`, then no accessor panics); [`Packet::options`]
//! walks the option areas; [`Request::parse`] gathers the options the engines use;
//! [`MessageBuilder`] writes messages (replies, and requests for tests and tools).

use std::borrow::Cow;

use core::net::Ipv4Addr;

use crate::pppoe::LineId;
use crate::pppoe::line::{BBF_VENDOR_ID, sub as tr101};
use crate::wire::ethernet::Mac;
use crate::wire::{WireError, get_u16, get_u32, put_u16};

/// The server's UDP port.
pub const SERVER_PORT: u16 = 67;
/// The client's UDP port.
pub const CLIENT_PORT: u16 = 68;
/// The magic cookie after the fixed fields (RFC 2131 section 3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The BROADCAST bit of `flags`.
pub const BROADCAST_FLAG: u16 = 0x8000;
/// Ethernet's `htype`.
pub const HTYPE_ETHERNET: u8 = 1;
/// The smallest message a BOOTP relay or client must accept (RFC 1542 section 2.1):
/// shorter replies are padded to it.
pub const MIN_LEN: usize = 300;

/// BOOTP `op` values.
pub mod op {
    /// From a client.
    pub const BOOTREQUEST: u8 = 1;
    /// From a server.
    pub const BOOTREPLY: u8 = 2;
}

/// DHCP Message Type values (option 53).
pub mod message_type {
    /// DHCPDISCOVER.
    pub const DISCOVER: u8 = 1;
    /// DHCPOFFER.
    pub const OFFER: u8 = 2;
    /// DHCPREQUEST.
    pub const REQUEST: u8 = 3;
    /// DHCPDECLINE.
    pub const DECLINE: u8 = 4;
    /// DHCPACK.
    pub const ACK: u8 = 5;
    /// DHCPNAK.
    pub const NAK: u8 = 6;
    /// DHCPRELEASE.
    pub const RELEASE: u8 = 7;
    /// DHCPINFORM.
    pub const INFORM: u8 = 8;

    /// The name of a type, for logs and counters.
    pub fn name(t: u8) -> &'static str {
        match t {
            DISCOVER => "discover",
            OFFER => "offer",
            REQUEST => "request",
            DECLINE => "decline",
            ACK => "ack",
            NAK => "nak",
            RELEASE => "release",
            INFORM => "inform",
            _ => "unknown",
        }
    }
}

/// Option codes (RFC 2132 and later).
pub mod option {
    /// Pad.
    pub const PAD: u8 = 0;
    /// Subnet Mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Router.
    pub const ROUTER: u8 = 3;
    /// Domain Name Server.
    pub const DNS: u8 = 6;
    /// Host Name.
    pub const HOST_NAME: u8 = 12;
    /// Domain Name.
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU.
    pub const MTU: u8 = 26;
    /// Broadcast Address.
    pub const BROADCAST: u8 = 28;
    /// Requested IP Address.
    pub const REQUESTED_IP: u8 = 50;
    /// IP Address Lease Time.
    pub const LEASE_TIME: u8 = 51;
    /// Option Overload.
    pub const OVERLOAD: u8 = 52;
    /// DHCP Message Type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server Identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter Request List.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Message (the text of a NAK).
    pub const MESSAGE: u8 = 56;
    /// Maximum DHCP Message Size.
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) Time Value.
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) Time Value.
    pub const REBINDING_TIME: u8 = 59;
    /// Vendor class identifier.
    pub const VENDOR_CLASS: u8 = 60;
    /// Client-identifier.
    pub const CLIENT_ID: u8 = 61;
    /// Relay Agent Information (RFC 3046).
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// Classless Static Route (RFC 3442).
    pub const CLASSLESS_ROUTE: u8 = 121;
    /// End.
    pub const END: u8 = 255;
}

/// Sub-options of the Relay Agent Information option.
pub mod relay_sub {
    /// Agent Circuit ID (RFC 3046).
    pub const CIRCUIT_ID: u8 = 1;
    /// Agent Remote ID (RFC 3046).
    pub const REMOTE_ID: u8 = 2;
    /// Link Selection (RFC 3527).
    pub const LINK_SELECTION: u8 = 5;
    /// Vendor-Specific Information (RFC 4243; TR-101's with enterprise 3561).
    pub const VENDOR_SPECIFIC: u8 = 9;
    /// Server Identifier Override (RFC 5107).
    pub const SERVER_ID_OVERRIDE: u8 = 11;
}

mod field {
    use core::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const COOKIE: Range<usize> = 236..240;
    pub const OPTIONS: usize = 240;
}

/// The fixed fields and the magic cookie.
pub const HEADER_LEN: usize = field::OPTIONS;

/// A view of a DHCP message (the UDP payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(get_u32(b, at))
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

    /// The fixed fields and the magic cookie: shorter is `Truncated`, a wrong cookie (a
    /// plain BOOTP message, or garbage) is `Malformed`.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::COOKIE] != MAGIC_COOKIE {
            return Err(WireError::Malformed);
        }
        Ok(())
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// `op`: 1 from a client, 2 from a server.
    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[field::OP]
    }

    /// Hardware address type (1: Ethernet).
    pub fn htype(&self) -> u8 {
        self.buffer.as_ref()[field::HTYPE]
    }

    /// Hardware address length (6 for Ethernet).
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Relay hops.
    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[field::HOPS]
    }

    /// Transaction id.
    pub fn xid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::XID)
    }

    /// Seconds since the client began.
    pub fn secs(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SECS)
    }

    /// Flags (the BROADCAST bit and zeros).
    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS)
    }

    /// Whether the client asked for broadcast replies.
    pub fn broadcast(&self) -> bool {
        self.flags() & BROADCAST_FLAG != 0
    }

    /// The client's current address (renewing, rebinding, releasing, informing).
    pub fn ciaddr(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::CIADDR)
    }

    /// "Your" address: the one a server gives.
    pub fn yiaddr(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::YIADDR)
    }

    /// The next server's address.
    pub fn siaddr(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::SIADDR)
    }

    /// The relay agent's address (0 when no relay).
    pub fn giaddr(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::GIADDR)
    }

    /// The 16-byte `chaddr` field.
    pub fn chaddr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::CHADDR]);
        a
    }

    /// The client's MAC: the first six bytes of `chaddr`.
    pub fn client_mac(&self) -> Mac {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::CHADDR][..6]);
        a
    }

    /// Whether `htype`/`hlen` say Ethernet.
    pub fn is_ethernet(&self) -> bool {
        self.htype() == HTYPE_ETHERNET && self.hlen() == 6
    }

    /// The `sname` field.
    pub fn sname(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SNAME]
    }

    /// The `file` field.
    pub fn file(&self) -> &[u8] {
        &self.buffer.as_ref()[field::FILE]
    }

    /// The options field (after the cookie, to the end of the buffer).
    pub fn options_field(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..]
    }

    /// The options of all areas in order: the options field, then `file` and `sname`
    /// when option 52 says they are overloaded (RFC 2131 section 4.1).
    pub fn options(&self) -> Options<'_> {
        let main = self.options_field();
        let overload = raw_options(main)
            .map_while(Result::ok)
            .find(|o| o.code == option::OVERLOAD)
            .and_then(|o| o.value.first().copied())
            .unwrap_or(0);
        let (file, sname) = (self.file(), self.sname());
        let areas: [&[u8]; 3] = match overload {
            1 => [main, file, &[]],
            2 => [main, sname, &[]],
            3 => [main, file, sname],
            _ => [main, &[], &[]],
        };
        Options {
            areas,
            area: 0,
            rest: areas[0],
            done: false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets `hops`.
    pub fn set_hops(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOPS] = v;
    }

    /// Sets `giaddr`.
    pub fn set_giaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::GIADDR..field::GIADDR + 4].copy_from_slice(&a.octets());
    }

    /// Sets `flags`.
    pub fn set_flags(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::FLAGS, v);
    }
}

/// One option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The code.
    pub code: u8,
    /// The value.
    pub value: &'a [u8],
}

/// The options of one area: stops at End, yields an error (then stops) at an option that
/// runs past the area.
pub fn raw_options(area: &[u8]) -> Options<'_> {
    Options {
        areas: [area, &[], &[]],
        area: 0,
        rest: area,
        done: false,
    }
}

/// Iterates over the options of a message's areas.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    areas: [&'a [u8]; 3],
    area: usize,
    rest: &'a [u8],
    done: bool,
}

impl<'a> Options<'a> {
    fn next_area(&mut self) -> bool {
        self.area += 1;
        match self.areas.get(self.area) {
            Some(a) => {
                self.rest = a;
                true
            }
            None => {
                self.done = true;
                false
            }
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Opt<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            match self.rest {
                [] | [option::END, ..] => {
                    if !self.next_area() {
                        return None;
                    }
                }
                [option::PAD, rest @ ..] => self.rest = rest,
                [code, len, rest @ ..] if usize::from(*len) <= rest.len() => {
                    let (value, tail) = rest.split_at(usize::from(*len));
                    self.rest = tail;
                    return Some(Ok(Opt { code: *code, value }));
                }
                _ => {
                    self.done = true;
                    return Some(Err(WireError::Truncated));
                }
            }
        }
    }
}

/// The options the engines read from a client's or server's message, with split options
/// joined (RFC 3396).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// DHCP Message Type.
    pub message_type: Option<u8>,
    /// Requested IP Address.
    pub requested_ip: Option<Ipv4Addr>,
    /// Server Identifier.
    pub server_id: Option<Ipv4Addr>,
    /// IP Address Lease Time (seconds).
    pub lease_time: Option<u32>,
    /// Client-identifier.
    pub client_id: Option<Cow<'a, [u8]>>,
    /// Host Name.
    pub host_name: Option<Cow<'a, [u8]>>,
    /// Vendor class identifier.
    pub vendor_class: Option<Cow<'a, [u8]>>,
    /// Parameter Request List.
    pub parameters: Option<Cow<'a, [u8]>>,
    /// Maximum DHCP Message Size.
    pub max_message_size: Option<u16>,
    /// The Relay Agent Information option's value, as received.
    pub relay_agent_info: Option<Cow<'a, [u8]>>,
    /// Subnet Mask (in a server's reply).
    pub subnet_mask: Option<Ipv4Addr>,
    /// Routers (in a server's reply).
    pub routers: Option<Cow<'a, [u8]>>,
    /// DNS servers (in a server's reply).
    pub dns: Option<Cow<'a, [u8]>>,
    /// Message (a NAK's text).
    pub message: Option<Cow<'a, [u8]>>,
}

fn join<'a>(slot: &mut Option<Cow<'a, [u8]>>, v: &'a [u8]) {
    match slot {
        None => *slot = Some(Cow::Borrowed(v)),
        Some(c) => c.to_mut().extend_from_slice(v),
    }
}

fn ip4(v: &[u8]) -> Result<Ipv4Addr, WireError> {
    match v {
        [a, b, c, d] => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => Err(WireError::Malformed),
    }
}

impl<'a> Request<'a> {
    /// Reads the options of `p`: an option running past its area, or a fixed-size
    /// option of the wrong size, is an error.
    pub fn parse<T: AsRef<[u8]>>(p: &'a Packet<T>) -> Result<Request<'a>, WireError> {
        let mut r = Request::default();
        let mut lease = None;
        let mut mms = None;
        for o in p.options() {
            let o = o?;
            match o.code {
                option::MESSAGE_TYPE => match o.value {
                    [t] => r.message_type = Some(*t),
                    _ => return Err(WireError::Malformed),
                },
                option::REQUESTED_IP => r.requested_ip = Some(ip4(o.value)?),
                option::SERVER_ID => r.server_id = Some(ip4(o.value)?),
                option::SUBNET_MASK => r.subnet_mask = Some(ip4(o.value)?),
                option::LEASE_TIME => lease = Some(o.value),
                option::MAX_MESSAGE_SIZE => mms = Some(o.value),
                option::CLIENT_ID => join(&mut r.client_id, o.value),
                option::HOST_NAME => join(&mut r.host_name, o.value),
                option::VENDOR_CLASS => join(&mut r.vendor_class, o.value),
                option::PARAMETER_REQUEST_LIST => join(&mut r.parameters, o.value),
                option::RELAY_AGENT_INFO => join(&mut r.relay_agent_info, o.value),
                option::ROUTER => join(&mut r.routers, o.value),
                option::DNS => join(&mut r.dns, o.value),
                option::MESSAGE => join(&mut r.message, o.value),
                _ => {}
            }
        }
        if let Some(v) = lease {
            r.lease_time = Some(match v {
                [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                _ => return Err(WireError::Malformed),
            });
        }
        if let Some(v) = mms {
            r.max_message_size = Some(match v {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => return Err(WireError::Malformed),
            });
        }
        Ok(r)
    }

    /// Whether the Parameter Request List names `code`.
    pub fn requests(&self, code: u8) -> bool {
        self.parameters
            .as_deref()
            .is_some_and(|p| p.contains(&code))
    }
}

/// The addresses of a list option (Router, DNS), whole addresses only.
pub fn addresses(v: &[u8]) -> impl Iterator<Item = Ipv4Addr> + '_ {
    v.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
}

/// Parses a Relay Agent Information value (RFC 3046) into the line identification:
/// Agent Circuit ID, Agent Remote ID, and the TR-101 data rates from the Broadband
/// Forum's Vendor-Specific sub-option (RFC 4243, enterprise 3561). A sub-option that runs
/// past the value is an error.
pub fn parse_relay_agent_info(v: &[u8]) -> Result<LineId, WireError> {
    let mut id = LineId::default();
    let mut rest = v;
    while !rest.is_empty() {
        let [kind, len, tail @ ..] = rest else {
            return Err(WireError::Truncated);
        };
        let len = usize::from(*len);
        if len > tail.len() {
            return Err(WireError::Truncated);
        }
        let (val, next) = tail.split_at(len);
        match *kind {
            relay_sub::CIRCUIT_ID => id.circuit_id = Some(val.to_vec()),
            relay_sub::REMOTE_ID => id.remote_id = Some(val.to_vec()),
            relay_sub::VENDOR_SPECIFIC => vendor_rates(val, &mut id)?,
            _ => {}
        }
        rest = next;
    }
    Ok(id)
}

/// RFC 4243: enterprise number, data length, data; for enterprise 3561 the data are
/// TR-101 sub-options (type, length, value).
fn vendor_rates(mut v: &[u8], id: &mut LineId) -> Result<(), WireError> {
    while !v.is_empty() {
        if v.len() < 5 {
            return Err(WireError::Truncated);
        }
        let enterprise = get_u32(v, 0);
        let n = usize::from(v[4]);
        let data = v.get(5..5 + n).ok_or(WireError::Truncated)?;
        if enterprise == BBF_VENDOR_ID {
            let mut d = data;
            while !d.is_empty() {
                let [k, l, t @ ..] = d else {
                    return Err(WireError::Truncated);
                };
                let l = usize::from(*l);
                let val = t.get(..l).ok_or(WireError::Truncated)?;
                match (*k, val) {
                    (tr101::RATE_UP, [a, b, c, e]) => {
                        id.rate_up_kbps = Some(u32::from_be_bytes([*a, *b, *c, *e]))
                    }
                    (tr101::RATE_DOWN, [a, b, c, e]) => {
                        id.rate_down_kbps = Some(u32::from_be_bytes([*a, *b, *c, *e]))
                    }
                    _ => {}
                }
                d = &t[l..];
            }
        }
        v = &v[5 + n..];
    }
    Ok(())
}

/// The Relay Agent Information value for `id`: Agent Circuit ID and Agent Remote ID
/// (each cut to 255 bytes), in that order, as a relay agent inserts them.
pub fn relay_agent_info(id: &LineId) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    for (k, d) in [
        (relay_sub::CIRCUIT_ID, &id.circuit_id),
        (relay_sub::REMOTE_ID, &id.remote_id),
    ] {
        if let Some(d) = d {
            let d = &d[..d.len().min(255)];
            v.push(k);
            v.push(d.len() as u8);
            v.extend_from_slice(d);
        }
    }
    v
}

/// The message `p` again with the options of the options field rewritten: every option
/// whose code is in `drop` left out, `add` appended last (where RFC 3046 puts the Relay
/// Agent Information option), End, padding to [`MIN_LEN`]. `file` and `sname` are
/// copied as they are (overloaded options there stay). Options past an option that does
/// not parse are lost; the engines only rewrite messages they parsed.
pub fn rewrite_options<T: AsRef<[u8]>>(
    p: &Packet<T>,
    drop: &[u8],
    add: Option<(u8, &[u8])>,
) -> Vec<u8> {
    let b = p.buffer.as_ref();
    let mut m = MessageBuilder {
        buf: b[..HEADER_LEN].to_vec(),
    };
    for o in raw_options(p.options_field()).map_while(Result::ok) {
        if !drop.contains(&o.code) {
            m.option(o.code, o.value);
        }
    }
    if let Some((code, value)) = add {
        m.option(code, value);
    }
    m.finish()
}

/// Writes a DHCP message: the fixed fields, the cookie, options (values over 255 bytes
/// split into parts, RFC 3396), End, and padding to [`MIN_LEN`].
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    /// A message with `op`, `xid` and `mac` in `chaddr` (Ethernet), other fields zero.
    pub fn new(op: u8, xid: u32, mac: Mac) -> MessageBuilder {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[field::OP] = op;
        buf[field::HTYPE] = HTYPE_ETHERNET;
        buf[field::HLEN] = 6;
        buf[field::XID..field::XID + 4].copy_from_slice(&xid.to_be_bytes());
        buf[field::CHADDR][..6].copy_from_slice(&mac);
        buf[field::COOKIE].copy_from_slice(&MAGIC_COOKIE);
        MessageBuilder { buf }
    }

    /// A reply to `req` (RFC 2131 table 3): BOOTREPLY, `htype`, `hlen`, `xid`, `flags`,
    /// `giaddr` and `chaddr` copied, the rest zero.
    pub fn reply_to<T: AsRef<[u8]>>(req: &Packet<T>) -> MessageBuilder {
        let b = req.buffer.as_ref();
        let mut buf = vec![0u8; HEADER_LEN];
        buf[field::OP] = op::BOOTREPLY;
        buf[field::HTYPE] = b[field::HTYPE];
        buf[field::HLEN] = b[field::HLEN];
        buf[field::XID..field::XID + 4].copy_from_slice(&b[field::XID..field::XID + 4]);
        buf[field::FLAGS..field::FLAGS + 2].copy_from_slice(&b[field::FLAGS..field::FLAGS + 2]);
        buf[field::GIADDR..field::GIADDR + 4].copy_from_slice(&b[field::GIADDR..field::GIADDR + 4]);
        buf[field::CHADDR].copy_from_slice(&b[field::CHADDR]);
        buf[field::COOKIE].copy_from_slice(&MAGIC_COOKIE);
        MessageBuilder { buf }
    }

    fn set_ip(&mut self, at: usize, a: Ipv4Addr) -> &mut Self {
        self.buf[at..at + 4].copy_from_slice(&a.octets());
        self
    }

    /// Sets `ciaddr`.
    pub fn ciaddr(&mut self, a: Ipv4Addr) -> &mut Self {
        self.set_ip(field::CIADDR, a)
    }

    /// Sets `yiaddr`.
    pub fn yiaddr(&mut self, a: Ipv4Addr) -> &mut Self {
        self.set_ip(field::YIADDR, a)
    }

    /// Sets `siaddr`.
    pub fn siaddr(&mut self, a: Ipv4Addr) -> &mut Self {
        self.set_ip(field::SIADDR, a)
    }

    /// Sets `giaddr`.
    pub fn giaddr(&mut self, a: Ipv4Addr) -> &mut Self {
        self.set_ip(field::GIADDR, a)
    }

    /// Sets `flags`.
    pub fn flags(&mut self, v: u16) -> &mut Self {
        put_u16(&mut self.buf, field::FLAGS, v);
        self
    }

    /// Sets `hops`.
    pub fn hops(&mut self, v: u8) -> &mut Self {
        self.buf[field::HOPS] = v;
        self
    }

    /// Sets `secs`.
    pub fn secs(&mut self, v: u16) -> &mut Self {
        put_u16(&mut self.buf, field::SECS, v);
        self
    }

    /// Appends option `code` with `value` (in 255-byte parts if longer).
    pub fn option(&mut self, code: u8, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            self.buf.extend_from_slice(&[code, 0]);
        }
        for part in value.chunks(255) {
            self.buf.push(code);
            self.buf.push(part.len() as u8);
            self.buf.extend_from_slice(part);
        }
        self
    }

    /// Appends an option holding one address.
    pub fn option_ip(&mut self, code: u8, a: Ipv4Addr) -> &mut Self {
        self.option(code, &a.octets())
    }

    /// Appends an option holding addresses (nothing if there are none).
    pub fn option_ips(&mut self, code: u8, a: &[Ipv4Addr]) -> &mut Self {
        if a.is_empty() {
            return self;
        }
        let v: Vec<u8> = a.iter().flat_map(|a| a.octets()).collect();
        self.option(code, &v)
    }

    /// Appends an option holding a 32-bit number.
    pub fn option_u32(&mut self, code: u8, v: u32) -> &mut Self {
        self.option(code, &v.to_be_bytes())
    }

    /// Appends raw bytes to the options field (options written by someone else).
    pub fn raw_options(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Options written so far (after the cookie).
    pub fn len(&self) -> usize {
        self.buf.len() - HEADER_LEN
    }

    /// Whether no option was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End, padding, the message.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut buf = core::mem::take(&mut self.buf);
        buf.push(option::END);
        if buf.len() < MIN_LEN {
            buf.resize(MIN_LEN, 0);
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_options_are_read_in_order() {
        let mut m = MessageBuilder::new(op::BOOTREQUEST, 7, [2, 0, 0, 0, 0, 1]);
        m.option(option::MESSAGE_TYPE, &[message_type::DISCOVER])
            .option(option::OVERLOAD, &[3]);
        let mut b = m.finish();
        // file: a host name, then End; sname: a client id.
        b[108..113].copy_from_slice(&[option::HOST_NAME, 2, b'p', b'c', 0xff]);
        b[44..49].copy_from_slice(&[option::CLIENT_ID, 3, 1, 2, 3]);
        let p = Packet::new_checked(&b[..]).unwrap();
        let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
        assert_eq!(codes, [53, 52, 12, 61]);
        let r = Request::parse(&p).unwrap();
        assert_eq!(r.host_name.as_deref(), Some(&b"pc"[..]));
        assert_eq!(r.client_id.as_deref(), Some(&[1u8, 2, 3][..]));
        // Without option 52, file and sname are not options.
        let mut plain = b.clone();
        plain[243..246].fill(option::PAD);
        let p = Packet::new_checked(&plain[..]).unwrap();
        assert_eq!(p.options().count(), 1);
    }

    #[test]
    fn split_options_are_joined_and_long_ones_split() {
        let long: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let mut m = MessageBuilder::new(op::BOOTREQUEST, 1, [2; 6]);
        m.option(option::CLIENT_ID, &long);
        let b = m.finish();
        assert_eq!(
            (b[240], b[241], b[240 + 2 + 255], b[240 + 2 + 255 + 1]),
            (61, 255, 61, 45)
        );
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Request::parse(&p).unwrap().client_id.as_deref(),
            Some(&long[..])
        );
    }

    #[test]
    fn bad_messages() {
        let b = MessageBuilder::new(op::BOOTREQUEST, 1, [2; 6]).finish();
        assert_eq!(
            Packet::new_checked(&b[..239]).err(),
            Some(WireError::Truncated)
        );
        let mut c = b.clone();
        c[236] = 0;
        assert_eq!(
            Packet::new_checked(&c[..]).err(),
            Some(WireError::Malformed)
        );
        // An option running past the end.
        let mut o = b.clone();
        o.truncate(240);
        o.extend_from_slice(&[option::HOST_NAME, 9, b'a']);
        let p = Packet::new_checked(&o[..]).unwrap();
        assert_eq!(p.options().last(), Some(Err(WireError::Truncated)));
        assert_eq!(Request::parse(&p), Err(WireError::Truncated));
        // A wrong-sized fixed option.
        let mut w = b.clone();
        w.truncate(240);
        w.extend_from_slice(&[option::REQUESTED_IP, 3, 1, 2, 3, 255]);
        let p = Packet::new_checked(&w[..]).unwrap();
        assert_eq!(Request::parse(&p), Err(WireError::Malformed));
        let mut w = b;
        w.truncate(240);
        w.extend_from_slice(&[option::LEASE_TIME, 2, 1, 2, 255]);
        let p = Packet::new_checked(&w[..]).unwrap();
        assert_eq!(Request::parse(&p), Err(WireError::Malformed));
    }

    #[test]
    fn options_are_rewritten_for_relaying() {
        let mut m = MessageBuilder::new(op::BOOTREQUEST, 9, [2; 6]);
        m.option(option::MESSAGE_TYPE, &[message_type::DISCOVER])
            .option(option::RELAY_AGENT_INFO, &[1, 1, b'x'])
            .option(option::HOST_NAME, b"h");
        let b = m.finish();
        let p = Packet::new_checked(&b[..]).unwrap();
        let r = rewrite_options(
            &p,
            &[option::RELAY_AGENT_INFO],
            Some((option::RELAY_AGENT_INFO, &[2, 1, b'y'])),
        );
        assert_eq!(&r[..240], &b[..240]);
        assert_eq!(
            &r[240..256],
            &[53, 1, 1, 12, 1, b'h', 82, 3, 2, 1, b'y', 255, 0, 0, 0, 0]
        );
        assert_eq!(r.len(), MIN_LEN);
        let stripped = rewrite_options(&Packet::new_checked(&r[..]).unwrap(), &[82], None);
        assert_eq!(&stripped[240..247], &[53, 1, 1, 12, 1, b'h', 255]);
    }

    #[test]
    fn relay_agent_info_with_tr101_rates() {
        let mut v = vec![1, 4, b'a', b'n', b'/', b'1', 2, 3, b'c', b'4', b'2'];
        // Vendor-specific: enterprise 3561, 6 bytes: RATE_DOWN 16000.
        v.extend_from_slice(&[9, 11, 0, 0, 0x0d, 0xe9, 6, 0x82, 4, 0, 0, 0x3e, 0x80]);
        let id = parse_relay_agent_info(&v).unwrap();
        assert_eq!(id.circuit_id.as_deref(), Some(&b"an/1"[..]));
        assert_eq!(id.remote_id.as_deref(), Some(&b"c42"[..]));
        assert_eq!(id.rate_down_kbps, Some(16_000));
        assert_eq!(relay_agent_info(&id), v[..11]);
        assert_eq!(
            parse_relay_agent_info(&[1, 5, 0]),
            Err(WireError::Truncated)
        );
        assert_eq!(parse_relay_agent_info(&[1]), Err(WireError::Truncated));
        assert_eq!(
            parse_relay_agent_info(&[9, 5, 0, 0, 0x0d, 0xe9, 9]),
            Err(WireError::Truncated)
        );
        // Another vendor's data is skipped.
        assert_eq!(
            parse_relay_agent_info(&[9, 7, 0, 0, 0, 9, 2, 0x82, 0]),
            Ok(LineId::default())
        );
    }
}
