//! The RADIUS wire format (RFC 2865 §3, §5): a packet's header and its attributes, with
//! Vendor-Specific (26) sub-attributes split out, and typed attribute values.
//!
//! This level knows nothing of secrets: [`Packet::decode`] checks every length and
//! returns an error value for any malformed input, [`Packet::encode`] writes the
//! authenticator it is given. Signing and verification are in [`super::crypto`].

use std::net::Ipv4Addr;

/// Octets in the header: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// Octets in an authenticator.
pub const AUTHENTICATOR_LEN: usize = 16;
/// The largest value a standard attribute can carry.
pub const MAX_VALUE_LEN: usize = 253;
/// The largest value a vendor sub-attribute can carry (253 less vendor id, type, length).
pub const MAX_VENDOR_VALUE_LEN: usize = 247;
/// Attribute type of Vendor-Specific.
pub const VENDOR_SPECIFIC: u8 = 26;

/// A packet's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// Access-Request (RFC 2865).
    AccessRequest = 1,
    /// Access-Accept.
    AccessAccept = 2,
    /// Access-Reject.
    AccessReject = 3,
    /// Accounting-Request (RFC 2866).
    AccountingRequest = 4,
    /// Accounting-Response.
    AccountingResponse = 5,
    /// Access-Challenge.
    AccessChallenge = 11,
    /// Status-Server (RFC 5997).
    StatusServer = 12,
    /// Status-Client.
    StatusClient = 13,
    /// Disconnect-Request (RFC 5176).
    DisconnectRequest = 40,
    /// Disconnect-ACK.
    DisconnectAck = 41,
    /// Disconnect-NAK.
    DisconnectNak = 42,
    /// CoA-Request.
    CoaRequest = 43,
    /// CoA-ACK.
    CoaAck = 44,
    /// CoA-NAK.
    CoaNak = 45,
}

impl Code {
    /// The code for a wire value, if it is one we know.
    pub fn from_u8(v: u8) -> Option<Code> {
        Some(match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            _ => return None,
        })
    }

    /// True for codes a client sends (and a server answers).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Code::AccessRequest
                | Code::AccountingRequest
                | Code::StatusServer
                | Code::DisconnectRequest
                | Code::CoaRequest
        )
    }

    /// True if `reply` is a valid answer to a request with this code.
    pub fn is_answered_by(self, reply: Code) -> bool {
        match self {
            Code::AccessRequest => matches!(
                reply,
                Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
            ),
            Code::AccountingRequest => reply == Code::AccountingResponse,
            Code::StatusServer => {
                matches!(reply, Code::AccessAccept | Code::AccountingResponse)
            }
            Code::DisconnectRequest => matches!(reply, Code::DisconnectAck | Code::DisconnectNak),
            Code::CoaRequest => matches!(reply, Code::CoaAck | Code::CoaNak),
            _ => false,
        }
    }

    /// The RFC's name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Code::AccessRequest => "Access-Request",
            Code::AccessAccept => "Access-Accept",
            Code::AccessReject => "Access-Reject",
            Code::AccountingRequest => "Accounting-Request",
            Code::AccountingResponse => "Accounting-Response",
            Code::AccessChallenge => "Access-Challenge",
            Code::StatusServer => "Status-Server",
            Code::StatusClient => "Status-Client",
            Code::DisconnectRequest => "Disconnect-Request",
            Code::DisconnectAck => "Disconnect-ACK",
            Code::DisconnectNak => "Disconnect-NAK",
            Code::CoaRequest => "CoA-Request",
            Code::CoaAck => "CoA-ACK",
            Code::CoaNak => "CoA-NAK",
        }
    }
}

/// Which attribute: a standard type, or a vendor's sub-attribute inside Vendor-Specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrKey {
    /// A standard attribute type (1..=255).
    Std(u8),
    /// A vendor sub-attribute: (SMI private enterprise number, vendor type).
    Vendor(u32, u8),
}

/// One attribute: which one, and its raw value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Which attribute.
    pub key: AttrKey,
    /// The value as carried on the wire (User-Password in clear before signing).
    pub value: Vec<u8>,
}

/// An attribute's value does not have the shape its type needs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// An integer, date or address whose length is wrong.
    #[error("{key:?}: {len} octets where {want} are needed")]
    Length {
        /// The attribute.
        key: AttrKey,
        /// Octets it has.
        len: usize,
        /// Octets its type needs.
        want: usize,
    },
    /// A text attribute that is not UTF-8.
    #[error("{key:?}: not UTF-8 text")]
    NotText {
        /// The attribute.
        key: AttrKey,
    },
}

impl Attribute {
    /// Raw octets.
    pub fn octets(key: AttrKey, value: impl Into<Vec<u8>>) -> Attribute {
        Attribute {
            key,
            value: value.into(),
        }
    }

    /// Text (RFC 2865 "text", RFC 8044 "string" when UTF-8).
    pub fn text(key: AttrKey, value: &str) -> Attribute {
        Attribute::octets(key, value.as_bytes())
    }

    /// A 32-bit integer (also "enum" and "time"/"date").
    pub fn u32(key: AttrKey, value: u32) -> Attribute {
        Attribute::octets(key, value.to_be_bytes())
    }

    /// A 64-bit integer (RFC 6929 integer64).
    pub fn u64(key: AttrKey, value: u64) -> Attribute {
        Attribute::octets(key, value.to_be_bytes())
    }

    /// An IPv4 address.
    pub fn ipv4(key: AttrKey, value: Ipv4Addr) -> Attribute {
        Attribute::octets(key, value.octets())
    }

    fn fixed<const N: usize>(&self) -> Result<[u8; N], ValueError> {
        self.value
            .as_slice()
            .try_into()
            .map_err(|_| ValueError::Length {
                key: self.key,
                len: self.value.len(),
                want: N,
            })
    }

    /// The value as a 32-bit integer.
    pub fn as_u32(&self) -> Result<u32, ValueError> {
        self.fixed::<4>().map(u32::from_be_bytes)
    }

    /// The value as a 64-bit integer.
    pub fn as_u64(&self) -> Result<u64, ValueError> {
        self.fixed::<8>().map(u64::from_be_bytes)
    }

    /// The value as an IPv4 address.
    pub fn as_ipv4(&self) -> Result<Ipv4Addr, ValueError> {
        self.fixed::<4>().map(Ipv4Addr::from)
    }

    /// An ipv6prefix value (RFC 3162 2.3: a reserved octet, the length, then only the
    /// octets the length covers).
    pub fn ipv6_prefix(key: AttrKey, addr: std::net::Ipv6Addr, len: u8) -> Attribute {
        let len = len.min(128);
        let n = usize::from(len).div_ceil(8);
        let mut v = vec![0, len];
        v.extend_from_slice(&addr.octets()[..n]);
        Attribute::octets(key, v)
    }

    /// The value as an ipv6prefix: address (bits past the length cleared) and length.
    pub fn as_ipv6_prefix(&self) -> Result<(std::net::Ipv6Addr, u8), ValueError> {
        let v = &self.value;
        let bad = ValueError::Length {
            key: self.key,
            len: v.len(),
            want: 18,
        };
        if v.len() < 2 || v.len() > 18 || v[1] > 128 {
            return Err(bad);
        }
        let len = v[1];
        let n = usize::from(len).div_ceil(8);
        if v.len() < 2 + n {
            return Err(bad);
        }
        let mut o = [0u8; 16];
        o[..v.len() - 2].copy_from_slice(&v[2..]);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        Ok((std::net::Ipv6Addr::from(u128::from_be_bytes(o) & mask), len))
    }

    /// The value as UTF-8 text.
    pub fn as_text(&self) -> Result<&str, ValueError> {
        std::str::from_utf8(&self.value).map_err(|_| ValueError::NotText { key: self.key })
    }
}

/// Why bytes are not a RADIUS packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than 20 octets: no room for the header.
    #[error("{len} octets: shorter than the 20-octet header")]
    TooShort {
        /// Octets received.
        len: usize,
    },
    /// The Length field is below 20, above 4096, or more than was received.
    #[error(
        "length field says {declared} octets, {received} received (must be 20..=4096 and no more than received)"
    )]
    BadLength {
        /// The Length field.
        declared: usize,
        /// Octets received.
        received: usize,
    },
    /// A code this implementation does not know.
    #[error("unknown code {0}")]
    UnknownCode(u8),
    /// An attribute whose length is below 2 or runs past the packet.
    #[error("attribute at offset {offset}: length {len} is below 2 or runs past the packet")]
    BadAttribute {
        /// Offset of the attribute in the packet.
        offset: usize,
        /// Its Length field (0 if the packet ended before it).
        len: usize,
    },
}

/// Why a packet cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value longer than an attribute can carry.
    #[error("{key:?}: {len} octets is more than an attribute can carry ({max})")]
    ValueTooLong {
        /// The attribute.
        key: AttrKey,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The whole packet would exceed 4096 octets.
    #[error("packet would be {0} octets, more than 4096")]
    TooLong(usize),
    /// Vendor-Specific with vendor id 0 is reserved.
    #[error("vendor id 0 is reserved")]
    ZeroVendor,
    /// A User-Password longer than 128 octets cannot be hidden (RFC 2865 §5.2).
    #[error("User-Password of {0} octets: at most 128")]
    PasswordTooLong(usize),
}

/// A RADIUS packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// What kind of packet.
    pub code: Code,
    /// Matches a reply to its request.
    pub identifier: u8,
    /// Request or Response Authenticator, as on the wire.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl Packet {
    /// A packet with no attributes and a zero authenticator.
    pub fn new(code: Code, identifier: u8) -> Packet {
        Packet {
            code,
            identifier,
            authenticator: [0; AUTHENTICATOR_LEN],
            attributes: Vec::new(),
        }
    }

    /// Appends an attribute.
    pub fn push(&mut self, a: Attribute) -> &mut Self {
        self.attributes.push(a);
        self
    }

    /// The first attribute with this key.
    pub fn get(&self, key: AttrKey) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.key == key)
    }

    /// Every attribute with this key, in order.
    pub fn all(&self, key: AttrKey) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(move |a| a.key == key)
    }

    /// The octets [`Self::encode`] would write (it refuses more than
    /// [`MAX_PACKET_LEN`]).
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| match a.key {
                    AttrKey::Std(_) => 2 + a.value.len(),
                    AttrKey::Vendor(..) => 8 + a.value.len(),
                })
                .sum::<usize>()
    }

    /// Removes every attribute with this key.
    pub fn remove(&mut self, key: AttrKey) {
        self.attributes.retain(|a| a.key != key);
    }

    /// Parses a datagram. Octets beyond the Length field are padding and ignored
    /// (RFC 2865 §3). Vendor-Specific attributes whose contents are well-formed
    /// sub-attributes (type, length, value) are split into [`AttrKey::Vendor`] entries;
    /// any other Vendor-Specific stays whole as `Std(26)`.
    pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { len: bytes.len() });
        }
        let declared = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&declared) || declared > bytes.len() {
            return Err(DecodeError::BadLength {
                declared,
                received: bytes.len(),
            });
        }
        let code = Code::from_u8(bytes[0]).ok_or(DecodeError::UnknownCode(bytes[0]))?;
        let mut authenticator = [0u8; AUTHENTICATOR_LEN];
        authenticator.copy_from_slice(&bytes[4..HEADER_LEN]);
        let mut attributes = Vec::new();
        let body = &bytes[..declared];
        let mut off = HEADER_LEN;
        while off < declared {
            let len = body.get(off + 1).map_or(0, |l| *l as usize);
            if len < 2 || off + len > declared {
                return Err(DecodeError::BadAttribute { offset: off, len });
            }
            let ty = body[off];
            let value = &body[off + 2..off + len];
            if ty == VENDOR_SPECIFIC {
                push_vendor(value, &mut attributes);
            } else {
                attributes.push(Attribute::octets(AttrKey::Std(ty), value));
            }
            off += len;
        }
        Ok(Packet {
            code,
            identifier: bytes[1],
            authenticator,
            attributes,
        })
    }

    /// Writes the packet as it is: the authenticator field as given, User-Password as
    /// given (hide it first; [`super::crypto`] does both).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 16 * self.attributes.len());
        out.push(self.code as u8);
        out.push(self.identifier);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.authenticator);
        for a in &self.attributes {
            match a.key {
                AttrKey::Std(ty) => {
                    if a.value.len() > MAX_VALUE_LEN {
                        return Err(EncodeError::ValueTooLong {
                            key: a.key,
                            len: a.value.len(),
                            max: MAX_VALUE_LEN,
                        });
                    }
                    out.push(ty);
                    out.push((a.value.len() + 2) as u8);
                }
                AttrKey::Vendor(vendor, ty) => {
                    if vendor == 0 {
                        return Err(EncodeError::ZeroVendor);
                    }
                    if a.value.len() > MAX_VENDOR_VALUE_LEN {
                        return Err(EncodeError::ValueTooLong {
                            key: a.key,
                            len: a.value.len(),
                            max: MAX_VENDOR_VALUE_LEN,
                        });
                    }
                    out.push(VENDOR_SPECIFIC);
                    out.push((a.value.len() + 8) as u8);
                    out.extend_from_slice(&vendor.to_be_bytes());
                    out.push(ty);
                    out.push((a.value.len() + 2) as u8);
                }
            }
            out.extend_from_slice(&a.value);
        }
        if out.len() > MAX_PACKET_LEN {
            return Err(EncodeError::TooLong(out.len()));
        }
        let len = (out.len() as u16).to_be_bytes();
        out[2..4].copy_from_slice(&len);
        Ok(out)
    }
}

/// Splits a Vendor-Specific value into sub-attributes when it is well-formed, else keeps
/// it whole.
fn push_vendor(value: &[u8], out: &mut Vec<Attribute>) {
    let whole = || Attribute::octets(AttrKey::Std(VENDOR_SPECIFIC), value);
    if value.len() < 4 + 2 {
        out.push(whole());
        return;
    }
    let vendor = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
    let subs = &value[4..];
    let mut off = 0;
    let mut found = Vec::new();
    while off < subs.len() {
        let len = subs.get(off + 1).map_or(0, |l| *l as usize);
        if vendor == 0 || len < 2 || off + len > subs.len() {
            out.push(whole());
            return;
        }
        found.push(Attribute::octets(
            AttrKey::Vendor(vendor, subs[off]),
            &subs[off + 2..off + len],
        ));
        off += len;
    }
    out.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 2865 §7.1: the Access-Request from the example (nemo / arctangent), as sent.
    const RFC_ACCESS_REQUEST: &str = "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a0aee0406c0a80110050600000003";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_the_rfc_example() {
        let p = Packet::decode(&hex(RFC_ACCESS_REQUEST)).unwrap();
        assert_eq!(p.code, Code::AccessRequest);
        assert_eq!(p.identifier, 0);
        assert_eq!(p.attributes.len(), 4);
        assert_eq!(p.get(AttrKey::Std(1)).unwrap().as_text().unwrap(), "nemo");
        assert_eq!(
            p.get(AttrKey::Std(4)).unwrap().as_ipv4().unwrap(),
            Ipv4Addr::new(192, 168, 1, 16)
        );
        assert_eq!(p.get(AttrKey::Std(5)).unwrap().as_u32().unwrap(), 3);
        assert_eq!(p.encode().unwrap(), hex(RFC_ACCESS_REQUEST));
    }

    #[test]
    fn vendor_specific_round_trip() {
        let mut p = Packet::new(Code::AccessAccept, 7);
        p.push(Attribute::u64(AttrKey::Vendor(59999, 1), 5 << 32))
            .push(Attribute::text(AttrKey::Vendor(59999, 4), "web"))
            .push(Attribute::u32(AttrKey::Std(27), 3600));
        let bytes = p.encode().unwrap();
        assert_eq!(bytes.len(), 20 + (8 + 8) + (8 + 3) + 6);
        let q = Packet::decode(&bytes).unwrap();
        assert_eq!(q, p);
        assert_eq!(
            q.get(AttrKey::Vendor(59999, 1)).unwrap().as_u64(),
            Ok(5 << 32)
        );
    }

    #[test]
    fn several_sub_attributes_in_one_vsa_are_split() {
        let mut b = vec![2, 1, 0, 0];
        b.extend_from_slice(&[0; 16]);
        // VSA: vendor 59999, two sub-attributes.
        let subs = [5u8, 6, 0, 0, 0, 2, 4, 5, b'a', b'b', b'c'];
        b.push(26);
        b.push((2 + 4 + subs.len()) as u8);
        b.extend_from_slice(&59999u32.to_be_bytes());
        b.extend_from_slice(&subs);
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.attributes.len(), 2);
        assert_eq!(p.get(AttrKey::Vendor(59999, 5)).unwrap().as_u32(), Ok(2));
        assert_eq!(
            p.get(AttrKey::Vendor(59999, 4)).unwrap().as_text(),
            Ok("abc")
        );
    }

    #[test]
    fn opaque_vendor_specific_is_kept_whole() {
        let mut p = Packet::new(Code::AccessAccept, 1);
        // Sub-attribute length 9 overruns: kept as one opaque Vendor-Specific.
        p.push(Attribute::octets(
            AttrKey::Std(26),
            vec![0, 0, 0, 9, 1, 9, 0],
        ));
        let q = Packet::decode(&p.encode().unwrap()).unwrap();
        assert_eq!(q, p);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let good = hex(RFC_ACCESS_REQUEST);
        assert_eq!(
            Packet::decode(&good[..19]),
            Err(DecodeError::TooShort { len: 19 })
        );
        let mut short = good.clone();
        short[3] = 19;
        assert!(matches!(
            Packet::decode(&short),
            Err(DecodeError::BadLength { declared: 19, .. })
        ));
        assert!(matches!(
            Packet::decode(&good[..good.len() - 1]),
            Err(DecodeError::BadLength { .. })
        ));
        let mut code = good.clone();
        code[0] = 99;
        assert_eq!(Packet::decode(&code), Err(DecodeError::UnknownCode(99)));
        let mut attr = good.clone();
        attr[21] = 1; // User-Name length 1
        assert!(matches!(
            Packet::decode(&attr),
            Err(DecodeError::BadAttribute { offset: 20, len: 1 })
        ));
        let mut over = good.clone();
        over[21] = 200;
        assert!(matches!(
            Packet::decode(&over),
            Err(DecodeError::BadAttribute { offset: 20, .. })
        ));
        // Padding past the Length field is ignored.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0xff; 7]);
        assert_eq!(Packet::decode(&padded).unwrap().encode().unwrap(), good);
    }

    #[test]
    fn typed_values_check_length() {
        let a = Attribute::octets(AttrKey::Std(8), vec![1, 2, 3]);
        assert_eq!(
            a.as_ipv4(),
            Err(ValueError::Length {
                key: AttrKey::Std(8),
                len: 3,
                want: 4
            })
        );
        assert!(a.as_u64().is_err());
        assert!(
            Attribute::octets(AttrKey::Std(1), vec![0xff])
                .as_text()
                .is_err()
        );
    }

    #[test]
    fn encode_limits() {
        let mut p = Packet::new(Code::AccessRequest, 1);
        p.push(Attribute::octets(AttrKey::Std(25), vec![0; 254]));
        assert!(matches!(p.encode(), Err(EncodeError::ValueTooLong { .. })));
        let mut p = Packet::new(Code::AccessRequest, 1);
        p.push(Attribute::octets(AttrKey::Vendor(1, 1), vec![0; 248]));
        assert!(matches!(p.encode(), Err(EncodeError::ValueTooLong { .. })));
        let mut p = Packet::new(Code::AccessRequest, 1);
        for _ in 0..20 {
            p.push(Attribute::octets(AttrKey::Std(25), vec![0; 253]));
        }
        assert!(matches!(p.encode(), Err(EncodeError::TooLong(_))));
        let mut p = Packet::new(Code::AccessRequest, 1);
        p.push(Attribute::u32(AttrKey::Vendor(0, 1), 1));
        assert_eq!(p.encode(), Err(EncodeError::ZeroVendor));
    }

    fn arb_attribute() -> impl Strategy<Value = Attribute> {
        prop_oneof![
            (
                (1u8..=255).prop_filter("not VSA", |t| *t != 26),
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(t, v)| Attribute::octets(AttrKey::Std(t), v)),
            (
                1u32..100_000,
                any::<u8>(),
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(vendor, t, v)| Attribute::octets(AttrKey::Vendor(vendor, t), v)),
        ]
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = Packet::decode(&bytes);
        }

        #[test]
        fn any_header_with_random_attributes_decodes_without_panicking(
            code in prop::sample::select(vec![1u8, 2, 3, 4, 5, 11, 40, 41, 42, 43, 44, 45]),
            body in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut b = vec![code, 9, 0, 0];
            b.extend_from_slice(&[0; 16]);
            b.extend_from_slice(&body);
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            if let Ok(p) = Packet::decode(&b) {
                // Whatever decodes re-encodes to a packet that decodes the same.
                if let Ok(again) = p.encode() {
                    prop_assert_eq!(Packet::decode(&again).unwrap(), p);
                }
            }
        }

        #[test]
        fn round_trip(
            id in any::<u8>(),
            auth in any::<[u8; 16]>(),
            attrs in prop::collection::vec(arb_attribute(), 0..30),
        ) {
            let p = Packet { code: Code::AccountingRequest, identifier: id, authenticator: auth, attributes: attrs };
            let bytes = p.encode().unwrap();
            prop_assert_eq!(Packet::decode(&bytes).unwrap(), p);
        }
    }
}
