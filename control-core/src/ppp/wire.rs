//! PPP control packets: the shared LCP/IPCP/IPv6CP format (RFC 1661 section 5: Code,
//! Identifier, Length, Data) with its options (type, length, value), PAP (RFC 1334) and
//! CHAP (RFC 1994). Views in smoltcp's style: `new_checked` validates every length the
//! accessors use, so no accessor panics afterwards. Octets past Length are padding (a
//! PPPoE frame padded to Ethernet's minimum) and ignored, as RFC 1661 says.
//!
//! Builders return `Vec<u8>`: this is the control plane, one packet per negotiation step.

use crate::wire::{WireError, get_u16, put_u16};

/// PPP protocol numbers (RFC 1700 / IANA "PPP DLL protocol numbers").
pub mod protocol {
    /// IPv4 datagrams.
    pub const IPV4: u16 = 0x0021;
    /// IPv6 datagrams.
    pub const IPV6: u16 = 0x0057;
    /// IP Control Protocol.
    pub const IPCP: u16 = 0x8021;
    /// IPv6 Control Protocol.
    pub const IPV6CP: u16 = 0x8057;
    /// Link Control Protocol.
    pub const LCP: u16 = 0xc021;
    /// Password Authentication Protocol.
    pub const PAP: u16 = 0xc023;
    /// Challenge Handshake Authentication Protocol.
    pub const CHAP: u16 = 0xc223;
}

/// Codes of LCP and the NCPs (RFC 1661 section 5; 12 and 13 from RFC 1570).
pub mod code {
    /// Configure-Request.
    pub const CONFIGURE_REQUEST: u8 = 1;
    /// Configure-Ack.
    pub const CONFIGURE_ACK: u8 = 2;
    /// Configure-Nak.
    pub const CONFIGURE_NAK: u8 = 3;
    /// Configure-Reject.
    pub const CONFIGURE_REJECT: u8 = 4;
    /// Terminate-Request.
    pub const TERMINATE_REQUEST: u8 = 5;
    /// Terminate-Ack.
    pub const TERMINATE_ACK: u8 = 6;
    /// Code-Reject.
    pub const CODE_REJECT: u8 = 7;
    /// Protocol-Reject (LCP only).
    pub const PROTOCOL_REJECT: u8 = 8;
    /// Echo-Request (LCP only).
    pub const ECHO_REQUEST: u8 = 9;
    /// Echo-Reply (LCP only).
    pub const ECHO_REPLY: u8 = 10;
    /// Discard-Request (LCP only).
    pub const DISCARD_REQUEST: u8 = 11;
    /// Identification (LCP, RFC 1570).
    pub const IDENTIFICATION: u8 = 12;
    /// Time-Remaining (LCP, RFC 1570).
    pub const TIME_REMAINING: u8 = 13;
}

/// LCP option types (RFC 1661 section 6).
pub mod lcp_option {
    /// Maximum-Receive-Unit.
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (RFC 1662).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol.
    pub const AUTH: u8 = 3;
    /// Quality-Protocol.
    pub const QUALITY: u8 = 4;
    /// Magic-Number.
    pub const MAGIC: u8 = 5;
    /// Protocol-Field-Compression.
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression.
    pub const ACFC: u8 = 8;
}

/// IPCP option types (RFC 1332, RFC 1877).
pub mod ipcp_option {
    /// IP-Addresses (deprecated).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol.
    pub const COMPRESSION: u8 = 2;
    /// IP-Address.
    pub const IP_ADDRESS: u8 = 3;
    /// Primary-DNS-Address.
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary-NBNS-Address.
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary-DNS-Address.
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary-NBNS-Address.
    pub const SECONDARY_NBNS: u8 = 132;
}

/// IPv6CP option types (RFC 5072).
pub mod ipv6cp_option {
    /// Interface-Identifier.
    pub const INTERFACE_ID: u8 = 1;
    /// IPv6-Compression-Protocol.
    pub const COMPRESSION: u8 = 2;
}

/// The CHAP algorithm number of MD5 (RFC 1994).
pub const CHAP_MD5: u8 = 5;

mod field {
    pub const CODE: usize = 0;
    pub const IDENT: usize = 1;
    pub const LENGTH: usize = 2;
    pub const DATA: usize = 4;
}

/// The length of the Code/Identifier/Length header.
pub const HEADER_LEN: usize = field::DATA;

/// A view of an LCP, IPCP or IPv6CP packet (and of PAP/CHAP's shared header).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking the header and that Length fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// At least a header, and 4 <= Length <= the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let l = get_u16(b, field::LENGTH) as usize;
        if l < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if l > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The Code field.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The Identifier field.
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENT]
    }

    /// The Length field.
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The Data field (up to Length; padding excluded).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..self.length() as usize]
    }

    /// The packet up to Length (padding excluded).
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.length() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Code field.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the Identifier field.
    pub fn set_identifier(&mut self, v: u8) {
        self.buffer.as_mut()[field::IDENT] = v;
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, v);
    }
}

/// Builds a control packet: header plus `data`.
pub fn build(code: u8, identifier: u8, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER_LEN + data.len());
    let len = (HEADER_LEN + data.len()).min(u16::MAX as usize) as u16;
    p.extend_from_slice(&[code, identifier]);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&data[..len as usize - HEADER_LEN]);
    p
}

/// One configuration option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The Type field.
    pub kind: u8,
    /// The value (after Type and Length).
    pub value: &'a [u8],
}

impl Opt<'_> {
    /// The value as a u16, when it has exactly two bytes.
    pub fn u16(&self) -> Option<u16> {
        (self.value.len() == 2).then(|| get_u16(self.value, 0))
    }

    /// The value as a u32, when it has exactly four bytes.
    pub fn u32(&self) -> Option<u32> {
        (self.value.len() == 4).then(|| crate::wire::get_u32(self.value, 0))
    }

    /// Appends the option (type, length, value) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_option(out, self.kind, self.value);
    }
}

/// Iterates over the options of a Configure-* packet's data. Yields an error (and then
/// stops) at an option whose Length is below 2 or runs past the data.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// The options in `data`.
pub fn options(data: &[u8]) -> Options<'_> {
    Options {
        rest: data,
        failed: false,
    }
}

/// Checks that `data` is a well-formed option list.
pub fn check_options(data: &[u8]) -> Result<(), WireError> {
    options(data).try_for_each(|o| o.map(|_| ()))
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Opt<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 2 {
            self.failed = true;
            return Some(Err(WireError::Truncated));
        }
        let kind = self.rest[0];
        let len = self.rest[1] as usize;
        if len < 2 {
            self.failed = true;
            return Some(Err(WireError::Malformed));
        }
        if len > self.rest.len() {
            self.failed = true;
            return Some(Err(WireError::Truncated));
        }
        let value = &self.rest[2..len];
        self.rest = &self.rest[len..];
        Some(Ok(Opt { kind, value }))
    }
}

/// Appends an option to `out` (values longer than 253 bytes are cut: no PPP option is).
pub fn put_option(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let v = &value[..value.len().min(253)];
    out.push(kind);
    out.push((v.len() + 2) as u8);
    out.extend_from_slice(v);
}

/// PAP (RFC 1334 section 2.2).
pub mod pap {
    use super::{HEADER_LEN, Packet, WireError, build};

    /// Authenticate-Request.
    pub const REQUEST: u8 = 1;
    /// Authenticate-Ack.
    pub const ACK: u8 = 2;
    /// Authenticate-Nak.
    pub const NAK: u8 = 3;

    /// A checked PAP packet: the header, and for a request both length-prefixed fields.
    #[derive(Debug, Clone)]
    pub struct PapPacket<T: AsRef<[u8]>> {
        inner: Packet<T>,
    }

    impl<T: AsRef<[u8]>> PapPacket<T> {
        /// Checks the header and, per code, the fields the accessors read.
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            let inner = Packet::new_checked(buffer)?;
            let d = inner.data();
            match inner.code() {
                REQUEST => {
                    let id_len = *d.first().ok_or(WireError::Truncated)? as usize;
                    let pw_at = 1 + id_len;
                    let pw_len = *d.get(pw_at).ok_or(WireError::Truncated)? as usize;
                    if d.len() < pw_at + 1 + pw_len {
                        return Err(WireError::Truncated);
                    }
                }
                ACK | NAK => {
                    // The Msg-Length byte may be absent in sloppy peers; tolerated.
                    if let Some(&l) = d.first()
                        && d.len() < 1 + l as usize
                    {
                        return Err(WireError::Truncated);
                    }
                }
                _ => return Err(WireError::Malformed),
            }
            Ok(PapPacket { inner })
        }

        /// The Code field.
        pub fn code(&self) -> u8 {
            self.inner.code()
        }

        /// The Identifier field.
        pub fn identifier(&self) -> u8 {
            self.inner.identifier()
        }

        /// Peer-ID of a request (empty for other codes).
        pub fn peer_id(&self) -> &[u8] {
            let d = self.inner.data();
            if self.code() != REQUEST {
                return &[];
            }
            let l = d[0] as usize;
            &d[1..1 + l]
        }

        /// Password of a request (empty for other codes).
        pub fn password(&self) -> &[u8] {
            let d = self.inner.data();
            if self.code() != REQUEST {
                return &[];
            }
            let at = 1 + d[0] as usize;
            let l = d[at] as usize;
            &d[at + 1..at + 1 + l]
        }

        /// Message of an Ack or Nak (empty for a request).
        pub fn message(&self) -> &[u8] {
            let d = self.inner.data();
            match (self.code(), d.first()) {
                (ACK | NAK, Some(&l)) => &d[1..1 + l as usize],
                _ => &[],
            }
        }
    }

    /// An Authenticate-Request (what a peer sends; used by tests and the generator).
    pub fn request(id: u8, peer_id: &[u8], password: &[u8]) -> Vec<u8> {
        let (p, w) = (
            &peer_id[..peer_id.len().min(255)],
            &password[..password.len().min(255)],
        );
        let mut d = Vec::with_capacity(2 + p.len() + w.len());
        d.push(p.len() as u8);
        d.extend_from_slice(p);
        d.push(w.len() as u8);
        d.extend_from_slice(w);
        build(REQUEST, id, &d)
    }

    /// An Authenticate-Ack or -Nak with `message`.
    pub fn reply(code: u8, id: u8, message: &[u8]) -> Vec<u8> {
        let m = &message[..message.len().min(255 - HEADER_LEN)];
        let mut d = Vec::with_capacity(1 + m.len());
        d.push(m.len() as u8);
        d.extend_from_slice(m);
        build(code, id, &d)
    }
}

/// CHAP (RFC 1994 section 4).
pub mod chap {
    use md5::{Digest, Md5};

    use super::{Packet, WireError, build};

    /// Challenge.
    pub const CHALLENGE: u8 = 1;
    /// Response.
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;

    /// A checked CHAP packet.
    #[derive(Debug, Clone)]
    pub struct ChapPacket<T: AsRef<[u8]>> {
        inner: Packet<T>,
    }

    impl<T: AsRef<[u8]>> ChapPacket<T> {
        /// Checks the header and, for Challenge/Response, the Value-Size.
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            let inner = Packet::new_checked(buffer)?;
            match inner.code() {
                CHALLENGE | RESPONSE => {
                    let d = inner.data();
                    let size = *d.first().ok_or(WireError::Truncated)? as usize;
                    if size == 0 {
                        return Err(WireError::Malformed);
                    }
                    if d.len() < 1 + size {
                        return Err(WireError::Truncated);
                    }
                }
                SUCCESS | FAILURE => {}
                _ => return Err(WireError::Malformed),
            }
            Ok(ChapPacket { inner })
        }

        /// The Code field.
        pub fn code(&self) -> u8 {
            self.inner.code()
        }

        /// The Identifier field.
        pub fn identifier(&self) -> u8 {
            self.inner.identifier()
        }

        /// The Value of a Challenge or Response (empty otherwise).
        pub fn value(&self) -> &[u8] {
            match self.code() {
                CHALLENGE | RESPONSE => {
                    let d = self.inner.data();
                    &d[1..1 + d[0] as usize]
                }
                _ => &[],
            }
        }

        /// The Name of a Challenge or Response (empty otherwise).
        pub fn name(&self) -> &[u8] {
            match self.code() {
                CHALLENGE | RESPONSE => {
                    let d = self.inner.data();
                    &d[1 + d[0] as usize..]
                }
                _ => &[],
            }
        }

        /// The Message of a Success or Failure (empty otherwise).
        pub fn message(&self) -> &[u8] {
            match self.code() {
                SUCCESS | FAILURE => self.inner.data(),
                _ => &[],
            }
        }
    }

    /// A Challenge or Response: Value-Size, Value, Name.
    pub fn challenge_or_response(code: u8, id: u8, value: &[u8], name: &[u8]) -> Vec<u8> {
        let v = &value[..value.len().min(255)];
        let mut d = Vec::with_capacity(1 + v.len() + name.len());
        d.push(v.len() as u8);
        d.extend_from_slice(v);
        d.extend_from_slice(name);
        build(code, id, &d)
    }

    /// A Success or Failure with `message`.
    pub fn result(code: u8, id: u8, message: &[u8]) -> Vec<u8> {
        build(code, id, message)
    }

    /// The CHAP-MD5 response value: MD5(Identifier || secret || challenge) (RFC 1994
    /// section 4.1). A store or RADIUS client compares the peer's Response with this.
    pub fn md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
        let mut h = Md5::new();
        h.update([id]);
        h.update(secret);
        h.update(challenge);
        h.finalize().into()
    }

    /// Whether `response` is the right CHAP-MD5 answer for `secret` (constant time in
    /// the compared bytes).
    pub fn verify_md5(id: u8, secret: &[u8], challenge: &[u8], response: &[u8]) -> bool {
        let want = md5_response(id, secret, challenge);
        response.len() == want.len()
            && response
                .iter()
                .zip(want.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An LCP Configure-Request as pppd's rp-pppoe plugin sends it: MRU 1492, Magic
    /// 0x1a2b3c4d; two bytes of Ethernet padding after Length.
    const LCP_CR: [u8; 16] = [
        0x01, 0x01, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xd4, 0x05, 0x06, 0x1a, 0x2b, 0x3c, 0x4d, 0x00,
        0x00,
    ];

    #[test]
    fn lcp_configure_request_fixture() {
        let p = Packet::new_checked(&LCP_CR[..]).unwrap();
        assert_eq!(p.code(), code::CONFIGURE_REQUEST);
        assert_eq!(p.identifier(), 1);
        assert_eq!(p.length(), 14);
        assert_eq!(p.packet().len(), 14);
        let opts: Vec<_> = options(p.data()).map(Result::unwrap).collect();
        assert_eq!(opts.len(), 2);
        assert_eq!((opts[0].kind, opts[0].u16()), (lcp_option::MRU, Some(1492)));
        assert_eq!(
            (opts[1].kind, opts[1].u32()),
            (lcp_option::MAGIC, Some(0x1a2b_3c4d))
        );
        let mut rebuilt = Vec::new();
        for o in &opts {
            o.write(&mut rebuilt);
        }
        assert_eq!(build(1, 1, &rebuilt), LCP_CR[..14]);
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert_eq!(
            Packet::new_checked(&LCP_CR[..3]).err(),
            Some(WireError::Truncated)
        );
        let mut short = LCP_CR;
        short[3] = 3;
        assert_eq!(
            Packet::new_checked(&short[..]).err(),
            Some(WireError::Malformed)
        );
        let mut long = LCP_CR;
        long[3] = 17;
        assert_eq!(
            Packet::new_checked(&long[..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(check_options(&[1, 4, 5]), Err(WireError::Truncated));
        assert_eq!(check_options(&[1, 1, 5, 6]), Err(WireError::Malformed));
        assert_eq!(check_options(&[1]), Err(WireError::Truncated));
        assert_eq!(check_options(&[]), Ok(()));
        let mut p = Packet::new_checked(LCP_CR).unwrap();
        p.set_code(2);
        p.set_identifier(9);
        p.set_length(4);
        assert_eq!((p.code(), p.identifier(), p.data()), (2, 9, &[][..]));
    }

    #[test]
    fn pap_request_fixture() {
        // Authenticate-Request id 7, Peer-ID "alice", Password "pw".
        let bytes = [
            0x01, 0x07, 0x00, 0x0d, 0x05, b'a', b'l', b'i', b'c', b'e', 0x02, b'p', b'w',
        ];
        let p = pap::PapPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.code(), p.identifier()), (pap::REQUEST, 7));
        assert_eq!(p.peer_id(), b"alice");
        assert_eq!(p.password(), b"pw");
        assert_eq!(p.message(), b"");
        assert_eq!(pap::request(7, b"alice", b"pw"), bytes);
        let mut cut = bytes;
        cut[10] = 3;
        assert_eq!(
            pap::PapPacket::new_checked(&cut[..]).err(),
            Some(WireError::Truncated)
        );
        let ack = pap::reply(pap::ACK, 7, b"ok");
        assert_eq!(ack, [0x02, 0x07, 0x00, 0x07, 0x02, b'o', b'k']);
        assert_eq!(
            pap::PapPacket::new_checked(&ack[..]).unwrap().message(),
            b"ok"
        );
        assert!(pap::PapPacket::new_checked(&[9u8, 1, 0, 4][..]).is_err());
    }

    #[test]
    fn chap_fixture_and_md5_vector() {
        // Challenge id 0x2a, 4-byte value, name "tg".
        let bytes = [
            0x01, 0x2a, 0x00, 0x0b, 0x04, 0xde, 0xad, 0xbe, 0xef, b't', b'g',
        ];
        let p = chap::ChapPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.code(), p.identifier()), (chap::CHALLENGE, 0x2a));
        assert_eq!(p.value(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(p.name(), b"tg");
        assert_eq!(
            chap::challenge_or_response(chap::CHALLENGE, 0x2a, &[0xde, 0xad, 0xbe, 0xef], b"tg"),
            bytes
        );
        // MD5(0x2a || "secret" || de ad be ef), computed independently with Python's
        // hashlib: hashlib.md5(b"\x2asecret\xde\xad\xbe\xef").hexdigest().
        let want = [
            0x59, 0xe6, 0x38, 0x7f, 0xd5, 0x7f, 0x3a, 0xb1, 0xd5, 0x7d, 0x52, 0x4c, 0xc9, 0x19,
            0xe1, 0x54,
        ];
        assert_eq!(
            chap::md5_response(0x2a, b"secret", &[0xde, 0xad, 0xbe, 0xef]),
            want
        );
        assert!(chap::verify_md5(
            0x2a,
            b"secret",
            &[0xde, 0xad, 0xbe, 0xef],
            &want
        ));
        assert!(!chap::verify_md5(
            0x2b,
            b"secret",
            &[0xde, 0xad, 0xbe, 0xef],
            &want
        ));
        assert!(!chap::verify_md5(
            0x2a,
            b"secret",
            &[0xde, 0xad, 0xbe, 0xef],
            &want[..15]
        ));
        let mut zero = bytes;
        zero[4] = 0;
        assert_eq!(
            chap::ChapPacket::new_checked(&zero[..]).err(),
            Some(WireError::Malformed)
        );
        let mut over = bytes;
        over[4] = 9;
        assert_eq!(
            chap::ChapPacket::new_checked(&over[..]).err(),
            Some(WireError::Truncated)
        );
        let s = chap::result(chap::SUCCESS, 0x2a, b"welcome");
        let p = chap::ChapPacket::new_checked(&s[..]).unwrap();
        assert_eq!(
            (p.message(), p.value(), p.name()),
            (&b"welcome"[..], &[][..], &[][..])
        );
    }
}
