//! The L2TPv2 control message codec (RFC 2661 sections 3, 4): the header, AVPs, hidden
//! AVPs (4.3) and the tunnel authentication's Challenge Response (4.4.3, CHAP-style).
//!
//! Decoding never panics: every length is checked against what is there, and a message
//! that cannot be read is a [`DecodeError`] naming what is wrong. Encoding builds the
//! whole message once; the reliable-delivery layer patches Ns and Nr in place on each
//! (re)transmission.

use md5::{Digest, Md5};

/// Message types (the value of the Message Type AVP).
pub mod kind {
    /// Start-Control-Connection-Request.
    pub const SCCRQ: u16 = 1;
    /// Start-Control-Connection-Reply.
    pub const SCCRP: u16 = 2;
    /// Start-Control-Connection-Connected.
    pub const SCCCN: u16 = 3;
    /// Stop-Control-Connection-Notification.
    pub const STOPCCN: u16 = 4;
    /// Hello (keepalive).
    pub const HELLO: u16 = 6;
    /// Outgoing-Call-Request.
    pub const OCRQ: u16 = 7;
    /// Outgoing-Call-Reply.
    pub const OCRP: u16 = 8;
    /// Outgoing-Call-Connected.
    pub const OCCN: u16 = 9;
    /// Incoming-Call-Request.
    pub const ICRQ: u16 = 10;
    /// Incoming-Call-Reply.
    pub const ICRP: u16 = 11;
    /// Incoming-Call-Connected.
    pub const ICCN: u16 = 12;
    /// Call-Disconnect-Notify.
    pub const CDN: u16 = 14;
    /// WAN-Error-Notify.
    pub const WEN: u16 = 15;
    /// Set-Link-Info.
    pub const SLI: u16 = 16;

    /// The RFC's name of a message type.
    pub fn name(k: u16) -> &'static str {
        match k {
            SCCRQ => "SCCRQ",
            SCCRP => "SCCRP",
            SCCCN => "SCCCN",
            STOPCCN => "StopCCN",
            HELLO => "HELLO",
            OCRQ => "OCRQ",
            OCRP => "OCRP",
            OCCN => "OCCN",
            ICRQ => "ICRQ",
            ICRP => "ICRP",
            ICCN => "ICCN",
            CDN => "CDN",
            WEN => "WEN",
            SLI => "SLI",
            _ => "unknown",
        }
    }

    /// True for the types this implementation knows (others are ignored, or end the
    /// tunnel when sent with the M bit).
    pub fn known(k: u16) -> bool {
        name(k) != "unknown"
    }
}

/// IETF attribute types (vendor 0).
pub mod attr {
    /// Message Type.
    pub const MESSAGE_TYPE: u16 = 0;
    /// Result Code.
    pub const RESULT_CODE: u16 = 1;
    /// Protocol Version.
    pub const PROTOCOL_VERSION: u16 = 2;
    /// Framing Capabilities.
    pub const FRAMING_CAPABILITIES: u16 = 3;
    /// Bearer Capabilities.
    pub const BEARER_CAPABILITIES: u16 = 4;
    /// Tie Breaker.
    pub const TIE_BREAKER: u16 = 5;
    /// Firmware Revision.
    pub const FIRMWARE_REVISION: u16 = 6;
    /// Host Name.
    pub const HOST_NAME: u16 = 7;
    /// Vendor Name.
    pub const VENDOR_NAME: u16 = 8;
    /// Assigned Tunnel ID.
    pub const ASSIGNED_TUNNEL_ID: u16 = 9;
    /// Receive Window Size.
    pub const RECEIVE_WINDOW_SIZE: u16 = 10;
    /// Challenge.
    pub const CHALLENGE: u16 = 11;
    /// Q.931 Cause Code.
    pub const Q931_CAUSE: u16 = 12;
    /// Challenge Response.
    pub const CHALLENGE_RESPONSE: u16 = 13;
    /// Assigned Session ID.
    pub const ASSIGNED_SESSION_ID: u16 = 14;
    /// Call Serial Number.
    pub const CALL_SERIAL_NUMBER: u16 = 15;
    /// Minimum BPS.
    pub const MINIMUM_BPS: u16 = 16;
    /// Maximum BPS.
    pub const MAXIMUM_BPS: u16 = 17;
    /// Bearer Type.
    pub const BEARER_TYPE: u16 = 18;
    /// Framing Type.
    pub const FRAMING_TYPE: u16 = 19;
    /// Called Number.
    pub const CALLED_NUMBER: u16 = 21;
    /// Calling Number.
    pub const CALLING_NUMBER: u16 = 22;
    /// Sub-Address.
    pub const SUB_ADDRESS: u16 = 23;
    /// (Tx) Connect Speed.
    pub const TX_CONNECT_SPEED: u16 = 24;
    /// Physical Channel ID.
    pub const PHYSICAL_CHANNEL_ID: u16 = 25;
    /// Initial Received LCP CONFREQ.
    pub const INITIAL_RECEIVED_LCP_CONFREQ: u16 = 26;
    /// Last Sent LCP CONFREQ.
    pub const LAST_SENT_LCP_CONFREQ: u16 = 27;
    /// Last Received LCP CONFREQ.
    pub const LAST_RECEIVED_LCP_CONFREQ: u16 = 28;
    /// Proxy Authen Type.
    pub const PROXY_AUTHEN_TYPE: u16 = 29;
    /// Proxy Authen Name.
    pub const PROXY_AUTHEN_NAME: u16 = 30;
    /// Proxy Authen Challenge.
    pub const PROXY_AUTHEN_CHALLENGE: u16 = 31;
    /// Proxy Authen ID.
    pub const PROXY_AUTHEN_ID: u16 = 32;
    /// Proxy Authen Response.
    pub const PROXY_AUTHEN_RESPONSE: u16 = 33;
    /// Call Errors.
    pub const CALL_ERRORS: u16 = 34;
    /// ACCM.
    pub const ACCM: u16 = 35;
    /// Random Vector.
    pub const RANDOM_VECTOR: u16 = 36;
    /// Private Group ID.
    pub const PRIVATE_GROUP_ID: u16 = 37;
    /// Rx Connect Speed.
    pub const RX_CONNECT_SPEED: u16 = 38;
    /// Sequencing Required.
    pub const SEQUENCING_REQUIRED: u16 = 39;

    /// True for the attribute types RFC 2661 defines.
    pub fn known(a: u16) -> bool {
        a <= SEQUENCING_REQUIRED && a != 20
    }
}

/// Tollgate's vendor-specific AVPs (docs/l2tp.md). The vendor id is 32473, the
/// enterprise number RFC 5612 sets aside for documentation: replace it with your own
/// registered number in a deployment that talks to other vendors' equipment. They are
/// sent without the M bit, so a peer that does not know them ignores them.
pub mod vendor {
    /// The vendor id.
    pub const TOLLGATE: u16 = 32473;
    /// Switchover (in ICRQ): the session this one replaces, as the receiver's tunnel id
    /// and session id (two u16). The receiver gives the new session the old one's
    /// subscriber; the sender closes the old one with a CDN once the new one is connected.
    pub const SWITCHOVER: u16 = 1;
    /// Subscriber Address (in ICRQ): the IPv4 address the session carries.
    pub const SUBSCRIBER_ADDRESS: u16 = 2;
    /// Customer (in ICRQ): the name of the customer the session belongs to.
    pub const CUSTOMER: u16 = 3;
    /// Service Level (in ICRQ): the session's service level, bit/s as a u64.
    pub const SERVICE_LEVEL: u16 = 4;

    /// True for the attributes Tollgate defines.
    pub fn known(a: u16) -> bool {
        (SWITCHOVER..=SERVICE_LEVEL).contains(&a)
    }
}

/// The Broadband Forum's (ADSL Forum's) AVPs of RFC 5515, which a LAC sends in the ICRQ
/// of a PPPoE subscriber's call: the line's TR-101 identifiers from its PADI/PADR.
pub mod access_line {
    /// The vendor id (ADSL Forum, 3561).
    pub const VENDOR: u16 = 3561;
    /// Agent-Circuit-Id: the access node's identifier of the subscriber's line.
    pub const AGENT_CIRCUIT_ID: u16 = 1;
    /// Agent-Remote-Id: the subscriber's identifier as the access node knows it.
    pub const AGENT_REMOTE_ID: u16 = 2;
}

/// Result codes of StopCCN and CDN (RFC 2661 4.4.2), and the general error codes.
pub mod result {
    /// StopCCN: general request to clear the control connection.
    pub const STOP_CLEAR: u16 = 1;
    /// StopCCN / CDN: general error; the error code says which.
    pub const GENERAL_ERROR: u16 = 2;
    /// StopCCN: the requester is not authorised (challenge failed).
    pub const NOT_AUTHORIZED: u16 = 4;
    /// StopCCN: the protocol version is not supported.
    pub const BAD_VERSION: u16 = 5;
    /// StopCCN: the requester is being shut down.
    pub const SHUTTING_DOWN: u16 = 6;
    /// StopCCN: finite state machine error.
    pub const FSM_ERROR: u16 = 7;
    /// CDN: call disconnected for administrative reasons.
    pub const CDN_ADMIN: u16 = 3;
    /// CDN: call failed for lack of appropriate facilities.
    pub const CDN_NO_FACILITIES: u16 = 4;

    /// Error code: no general error.
    pub const ERR_NONE: u16 = 0;
    /// Error code: length is wrong (a required AVP missing or malformed).
    pub const ERR_LENGTH: u16 = 2;
    /// Error code: a field is out of range or a reserved field was non-zero.
    pub const ERR_RANGE: u16 = 3;
    /// Error code: insufficient resources.
    pub const ERR_RESOURCES: u16 = 4;
    /// Error code: invalid session id.
    pub const ERR_SESSION: u16 = 5;
    /// Error code: unknown mandatory AVP.
    pub const ERR_UNKNOWN_MANDATORY: u16 = 8;
}

/// Header flags of every control message: T, L, S, version 2.
const CONTROL_FLAGS: u16 = 0xc802;
/// Length of a control header (with Length, Ns and Nr).
pub const HEADER_LEN: usize = 12;
/// AVP header: flags and length, vendor, attribute.
const AVP_HEADER: usize = 6;
const M_BIT: u16 = 0x8000;
const H_BIT: u16 = 0x4000;
const RESERVED_BITS: u16 = 0x3c00;
const LEN_MASK: u16 = 0x03ff;
/// The longest AVP value (10-bit length).
pub const AVP_VALUE_MAX: usize = LEN_MASK as usize - AVP_HEADER;

/// One attribute-value pair, with a hidden value already revealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avp {
    /// The M bit: the receiver must understand it or end the tunnel or session.
    pub mandatory: bool,
    /// It arrived hidden (H bit).
    pub hidden: bool,
    /// Vendor id (0: IETF).
    pub vendor: u16,
    /// Attribute type.
    pub attr: u16,
    /// The value (revealed, for a hidden AVP).
    pub value: Vec<u8>,
}

impl Avp {
    /// The value as a u16, if it is two bytes.
    pub fn u16(&self) -> Option<u16> {
        <[u8; 2]>::try_from(&self.value[..])
            .ok()
            .map(u16::from_be_bytes)
    }

    /// The value as a u32, if it is four bytes.
    pub fn u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(&self.value[..])
            .ok()
            .map(u32::from_be_bytes)
    }

    /// The value as a u64, if it is eight bytes.
    pub fn u64(&self) -> Option<u64> {
        <[u8; 8]>::try_from(&self.value[..])
            .ok()
            .map(u64::from_be_bytes)
    }

    /// True if this implementation knows the attribute.
    pub fn known(&self) -> bool {
        match self.vendor {
            0 => attr::known(self.attr),
            vendor::TOLLGATE => vendor::known(self.attr),
            _ => false,
        }
    }
}

/// A decoded control message. No AVPs: a ZLB acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Tunnel id in the header (the receiver's).
    pub tunnel: u16,
    /// Session id in the header (the receiver's).
    pub session: u16,
    /// Sequence number of this message.
    pub ns: u16,
    /// Next sequence number the sender expects.
    pub nr: u16,
    /// The AVPs, Message Type first.
    pub avps: Vec<Avp>,
}

/// A Result Code AVP's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultCode {
    /// The result.
    pub result: u16,
    /// The error code, when given.
    pub error: Option<u16>,
    /// The message, when given.
    pub message: String,
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "result {}", self.result)?;
        if let Some(e) = self.error {
            write!(f, " error {e}")?;
        }
        if !self.message.is_empty() {
            write!(f, " ({})", self.message)?;
        }
        Ok(())
    }
}

impl Message {
    /// True for a zero-length-body acknowledgement.
    pub fn is_zlb(&self) -> bool {
        self.avps.is_empty()
    }

    /// The message type (0 for a ZLB; decoding checked the first AVP is Message Type).
    pub fn kind(&self) -> u16 {
        self.avps.first().and_then(Avp::u16).unwrap_or(0)
    }

    /// True if the Message Type AVP has the M bit (an unknown type then ends the tunnel).
    pub fn kind_mandatory(&self) -> bool {
        self.avps.first().is_some_and(|a| a.mandatory)
    }

    /// The IETF AVP `attr`.
    pub fn get(&self, attr: u16) -> Option<&Avp> {
        self.vendor_get(0, attr)
    }

    /// The AVP `attr` of `vendor`.
    pub fn vendor_get(&self, vendor: u16, attr: u16) -> Option<&Avp> {
        self.avps
            .iter()
            .skip(1)
            .find(|a| a.vendor == vendor && a.attr == attr)
    }

    /// The two-byte IETF AVP `attr`.
    pub fn u16(&self, attr: u16) -> Option<u16> {
        self.get(attr).and_then(Avp::u16)
    }

    /// A string AVP (lossy UTF-8).
    pub fn text(&self, attr: u16) -> Option<String> {
        self.get(attr)
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
    }

    /// The first AVP with the M bit that this implementation does not know.
    pub fn unknown_mandatory(&self) -> Option<&Avp> {
        self.avps.iter().find(|a| a.mandatory && !a.known())
    }

    /// The Result Code AVP, if present and well formed.
    pub fn result_code(&self) -> Option<ResultCode> {
        let v = &self.get(attr::RESULT_CODE)?.value;
        let result = u16::from_be_bytes(v.get(0..2)?.try_into().ok()?);
        let error = v
            .get(2..4)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_be_bytes);
        let message = v
            .get(4..)
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .unwrap_or_default();
        Some(ResultCode {
            result,
            error,
            message,
        })
    }
}

/// Why a control message could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than a control header, not version 2, or not a control header (T, L and S
    /// set, no offset).
    #[error("not an L2TPv2 control header")]
    Header,
    /// The Length field says more than the datagram holds, or less than a header.
    #[error("the Length field ({declared}) does not fit the {actual}-byte datagram")]
    Length {
        /// The Length field.
        declared: u16,
        /// Bytes in the datagram.
        actual: usize,
    },
    /// An AVP's length is below its header or runs past the message.
    #[error("AVP {index} has a bad length")]
    AvpLength {
        /// Its position in the message (0-based).
        index: usize,
    },
    /// The first AVP is not a two-byte Message Type.
    #[error("the first AVP is not a Message Type")]
    NoMessageType,
    /// A hidden AVP with the M bit that cannot be revealed (no shared secret, no
    /// Random Vector before it, or a revealed length that does not fit).
    #[error("hidden mandatory AVP {attr} of vendor {vendor} cannot be revealed: {why}")]
    Hidden {
        /// Its vendor.
        vendor: u16,
        /// Its attribute type.
        attr: u16,
        /// What was missing.
        why: &'static str,
    },
}

fn get_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The Challenge Response (RFC 2661 4.4.3): MD5 of the message type of the message that
/// carries it (2 in SCCRP, 3 in SCCCN), the shared secret and the challenge.
pub fn challenge_response(message_type: u16, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    md5_of(&[&[message_type as u8], secret, challenge])
}

/// XORs `data` with the hiding key stream of RFC 2661 4.3: the first block's key is
/// MD5(attribute type, secret, random vector), each next one MD5(secret, previous
/// ciphertext block). `reveal` chooses whether `data` is ciphertext (true) or plaintext.
fn hide_stream(data: &mut [u8], attr: u16, secret: &[u8], vector: &[u8], reveal: bool) {
    let mut key = md5_of(&[&attr.to_be_bytes(), secret, vector]);
    for chunk in data.chunks_mut(16) {
        let mut cipher = [0u8; 16];
        for (i, b) in chunk.iter_mut().enumerate() {
            if reveal {
                cipher[i] = *b;
                *b ^= key[i];
            } else {
                *b ^= key[i];
                cipher[i] = *b;
            }
        }
        key = md5_of(&[secret, &cipher[..chunk.len()]]);
    }
}

/// Reveals a hidden value: the subformat is the original length (u16), the value, and
/// padding.
fn reveal(value: &[u8], attr: u16, secret: &[u8], vector: &[u8]) -> Option<Vec<u8>> {
    let mut v = value.to_vec();
    hide_stream(&mut v, attr, secret, vector, true);
    let len = get_u16(&v, 0)? as usize;
    v.get(2..2 + len).map(<[u8]>::to_vec)
}

/// Decodes a control message (the UDP payload). Hidden AVPs are revealed with `secret`;
/// one that cannot be is dropped, or is an error when it has the M bit.
pub fn decode(datagram: &[u8], secret: Option<&[u8]>) -> Result<Message, DecodeError> {
    let flags = get_u16(datagram, 0).ok_or(DecodeError::Header)?;
    if flags & 0xcb0f != CONTROL_FLAGS || datagram.len() < HEADER_LEN {
        return Err(DecodeError::Header);
    }
    let declared = get_u16(datagram, 2).ok_or(DecodeError::Header)?;
    if (declared as usize) < HEADER_LEN || declared as usize > datagram.len() {
        return Err(DecodeError::Length {
            declared,
            actual: datagram.len(),
        });
    }
    let body = &datagram[HEADER_LEN..declared as usize];
    let h = |at| get_u16(datagram, at).ok_or(DecodeError::Header);
    let mut m = Message {
        tunnel: h(4)?,
        session: h(6)?,
        ns: h(8)?,
        nr: h(10)?,
        avps: Vec::new(),
    };
    let mut at = 0;
    let mut vector: Option<Vec<u8>> = None;
    while at < body.len() {
        let index = m.avps.len();
        let bad = DecodeError::AvpLength { index };
        let f = get_u16(body, at).ok_or(bad.clone())?;
        let len = (f & LEN_MASK) as usize;
        if len < AVP_HEADER || at + len > body.len() {
            return Err(bad);
        }
        let vendor = get_u16(body, at + 2).ok_or(bad.clone())?;
        let attr = get_u16(body, at + 4).ok_or(bad)?;
        let raw = &body[at + AVP_HEADER..at + len];
        at += len;
        let mandatory = f & M_BIT != 0;
        let hidden = f & H_BIT != 0;
        if f & RESERVED_BITS != 0 {
            // RFC 2661 4.1: treated as an unrecognised AVP.
            m.avps.push(Avp {
                mandatory,
                hidden,
                vendor: u16::MAX,
                attr,
                value: raw.to_vec(),
            });
            continue;
        }
        let value = if hidden {
            let why = match (secret, vector.as_deref()) {
                (None, _) => Err("no shared secret"),
                (_, None) => Err("no Random Vector before it"),
                (Some(s), Some(v)) => reveal(raw, attr, s, v).ok_or("bad hidden length"),
            };
            match why {
                Ok(v) => v,
                Err(why) if mandatory => {
                    return Err(DecodeError::Hidden { vendor, attr, why });
                }
                Err(_) => continue,
            }
        } else {
            raw.to_vec()
        };
        if vendor == 0 && attr == attr::RANDOM_VECTOR {
            vector = Some(value.clone());
        }
        m.avps.push(Avp {
            mandatory,
            hidden,
            vendor,
            attr,
            value,
        });
    }
    if let Some(first) = m.avps.first()
        && (first.vendor != 0 || first.attr != attr::MESSAGE_TYPE || first.u16().is_none())
    {
        return Err(DecodeError::NoMessageType);
    }
    Ok(m)
}

/// Builds one control message. Tunnel and session ids are set here; Ns and Nr are
/// patched by the reliable-delivery layer with [`set_sequence`].
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
    secret: Option<Vec<u8>>,
    vector: Option<[u8; 16]>,
    random: [u8; 16],
}

impl Builder {
    /// A message of type `kind` to the peer's `tunnel` and `session`.
    pub fn new(kind: u16, tunnel: u16, session: u16) -> Builder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&CONTROL_FLAGS.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&tunnel.to_be_bytes());
        buf.extend_from_slice(&session.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        let b = Builder {
            buf,
            secret: None,
            vector: None,
            random: [0; 16],
        };
        b.u16(true, attr::MESSAGE_TYPE, kind)
    }

    /// Lets [`Self::hidden`] hide values with `secret`, using `random` for the Random
    /// Vector (the caller's randomness keeps this module deterministic).
    pub fn hiding(mut self, secret: &[u8], random: [u8; 16]) -> Builder {
        self.secret = Some(secret.to_vec());
        self.random = random;
        self
    }

    /// Appends an AVP (values longer than an AVP can hold are cut).
    pub fn avp(mut self, mandatory: bool, vendor: u16, attr: u16, value: &[u8]) -> Builder {
        let value = &value[..value.len().min(AVP_VALUE_MAX)];
        let flags = if mandatory { M_BIT } else { 0 } | (AVP_HEADER + value.len()) as u16;
        self.buf.extend_from_slice(&flags.to_be_bytes());
        self.buf.extend_from_slice(&vendor.to_be_bytes());
        self.buf.extend_from_slice(&attr.to_be_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    /// Appends an IETF u16 AVP.
    pub fn u16(self, mandatory: bool, attr: u16, v: u16) -> Builder {
        self.avp(mandatory, 0, attr, &v.to_be_bytes())
    }

    /// Appends an IETF u32 AVP.
    pub fn u32(self, mandatory: bool, attr: u16, v: u32) -> Builder {
        self.avp(mandatory, 0, attr, &v.to_be_bytes())
    }

    /// Appends an AVP hidden with the secret given to [`Self::hiding`] (plain when none
    /// was), after a Random Vector AVP if this message has none yet.
    pub fn hidden(mut self, mandatory: bool, vendor: u16, attr: u16, value: &[u8]) -> Builder {
        let Some(secret) = self.secret.clone() else {
            return self.avp(mandatory, vendor, attr, value);
        };
        let vector = match self.vector {
            Some(v) => v,
            None => {
                let v = self.random;
                self = self.avp(true, 0, attr::RANDOM_VECTOR, &v);
                self.vector = Some(v);
                v
            }
        };
        let value = &value[..value.len().min(AVP_VALUE_MAX - 2)];
        let mut sub = Vec::with_capacity(value.len() + 2);
        sub.extend_from_slice(&(value.len() as u16).to_be_bytes());
        sub.extend_from_slice(value);
        hide_stream(&mut sub, attr, &secret, &vector, false);
        let flags = H_BIT | if mandatory { M_BIT } else { 0 } | (AVP_HEADER + sub.len()) as u16;
        self.buf.extend_from_slice(&flags.to_be_bytes());
        self.buf.extend_from_slice(&vendor.to_be_bytes());
        self.buf.extend_from_slice(&attr.to_be_bytes());
        self.buf.extend_from_slice(&sub);
        self
    }

    /// Appends a Result Code AVP.
    pub fn result(self, result: u16, error: u16, message: &str) -> Builder {
        let mut v = Vec::with_capacity(4 + message.len());
        v.extend_from_slice(&result.to_be_bytes());
        v.extend_from_slice(&error.to_be_bytes());
        v.extend_from_slice(message.as_bytes());
        self.avp(true, 0, attr::RESULT_CODE, &v)
    }

    /// The message, with its Length filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len().min(u16::MAX as usize) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// A zero-length-body acknowledgement.
pub fn zlb(tunnel: u16, ns: u16, nr: u16) -> Vec<u8> {
    let mut m = Builder {
        buf: Vec::new(),
        secret: None,
        vector: None,
        random: [0; 16],
    };
    m.buf.extend_from_slice(&CONTROL_FLAGS.to_be_bytes());
    m.buf.extend_from_slice(&(HEADER_LEN as u16).to_be_bytes());
    m.buf.extend_from_slice(&tunnel.to_be_bytes());
    m.buf.extend_from_slice(&[0, 0]);
    m.buf.extend_from_slice(&ns.to_be_bytes());
    m.buf.extend_from_slice(&nr.to_be_bytes());
    m.buf
}

/// Writes Ns and Nr into an encoded message (no-op on anything shorter than a header).
pub fn set_sequence(msg: &mut [u8], ns: u16, nr: u16) {
    if let Some(h) = msg.get_mut(8..12) {
        h[..2].copy_from_slice(&ns.to_be_bytes());
        h[2..].copy_from_slice(&nr.to_be_bytes());
    }
}

/// Ns of an encoded message.
pub fn ns_of(msg: &[u8]) -> u16 {
    get_u16(msg, 8).unwrap_or(0)
}

/// The message type of an encoded message (for logs), 0 for a ZLB.
pub fn kind_of(msg: &[u8]) -> u16 {
    if msg.len() >= HEADER_LEN + 8 {
        get_u16(msg, HEADER_LEN + 6).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_hidden_and_vendor_avps() {
        let secret = b"tunnel secret";
        let bytes = Builder::new(kind::ICRQ, 0x1234, 0)
            .hiding(secret, [7; 16])
            .u16(true, attr::ASSIGNED_SESSION_ID, 42)
            .u32(true, attr::CALL_SERIAL_NUMBER, 9)
            .hidden(false, 0, attr::CALLING_NUMBER, b"10.10.0.11")
            .hidden(
                false,
                vendor::TOLLGATE,
                vendor::SUBSCRIBER_ADDRESS,
                &[10, 10, 0, 11],
            )
            .avp(false, vendor::TOLLGATE, vendor::CUSTOMER, b"acme")
            .finish();
        let mut bytes = bytes;
        set_sequence(&mut bytes, 3, 4);
        let m = decode(&bytes, Some(secret)).unwrap();
        assert_eq!((m.tunnel, m.session, m.ns, m.nr), (0x1234, 0, 3, 4));
        assert_eq!(m.kind(), kind::ICRQ);
        assert_eq!(kind_of(&bytes), kind::ICRQ);
        assert_eq!(m.u16(attr::ASSIGNED_SESSION_ID), Some(42));
        let calling = m.get(attr::CALLING_NUMBER).unwrap();
        assert!(calling.hidden);
        assert_eq!(calling.value, b"10.10.0.11");
        assert_eq!(
            m.vendor_get(vendor::TOLLGATE, vendor::SUBSCRIBER_ADDRESS)
                .unwrap()
                .value,
            [10, 10, 0, 11]
        );
        assert_eq!(
            m.vendor_get(vendor::TOLLGATE, vendor::CUSTOMER)
                .unwrap()
                .value,
            b"acme"
        );
        assert!(m.unknown_mandatory().is_none());
        // On the wire the hidden values are not in the clear.
        assert!(!bytes.windows(10).any(|w| w == b"10.10.0.11"));
        // Without the secret the non-mandatory hidden AVPs are dropped, not an error.
        let m = decode(&bytes, None).unwrap();
        assert!(m.get(attr::CALLING_NUMBER).is_none());
    }

    /// RFC 2661 4.3 by hand for a short value: one MD5 block of attribute type, secret
    /// and vector XORed over length and value.
    #[test]
    fn hiding_matches_the_rfc_construction() {
        let (secret, vector) = (b"s3cret".as_slice(), [0xabu8; 16]);
        let bytes = Builder::new(kind::ICCN, 1, 2)
            .hiding(secret, vector)
            .hidden(true, 0, attr::TX_CONNECT_SPEED, &1_000_000u32.to_be_bytes())
            .finish();
        // Message Type (8), Random Vector (6 + 16), then the hidden AVP.
        let avp = &bytes[HEADER_LEN + 8 + 22..];
        assert_eq!(u16::from_be_bytes([avp[0], avp[1]]), 0xc000 | 12);
        let key = md5_of(&[&attr::TX_CONNECT_SPEED.to_be_bytes(), secret, &vector]);
        let plain: Vec<u8> = avp[6..].iter().zip(key).map(|(c, k)| c ^ k).collect();
        assert_eq!(plain, [0, 4, 0x00, 0x0f, 0x42, 0x40]);
        let m = decode(&bytes, Some(secret)).unwrap();
        assert_eq!(
            m.get(attr::TX_CONNECT_SPEED).unwrap().u32(),
            Some(1_000_000)
        );
        assert_eq!(
            decode(&bytes, None),
            Err(DecodeError::Hidden {
                vendor: 0,
                attr: attr::TX_CONNECT_SPEED,
                why: "no shared secret"
            })
        );
        // A long value spans several blocks.
        let long = vec![0x5a; 70];
        let bytes = Builder::new(kind::ICRQ, 1, 0)
            .hiding(secret, vector)
            .hidden(false, 0, attr::CALLED_NUMBER, &long)
            .finish();
        assert_eq!(
            decode(&bytes, Some(secret))
                .unwrap()
                .get(attr::CALLED_NUMBER)
                .unwrap()
                .value,
            long
        );
    }

    #[test]
    fn challenge_response_is_chap_md5() {
        let r = challenge_response(kind::SCCRP, b"secret", &[1, 2, 3, 4]);
        assert_eq!(r, md5_of(&[&[2u8], b"secret", &[1, 2, 3, 4]]));
        assert_ne!(r, challenge_response(kind::SCCCN, b"secret", &[1, 2, 3, 4]));
    }

    #[test]
    fn zlb_and_result_code() {
        let z = zlb(9, 5, 6);
        let m = decode(&z, None).unwrap();
        assert!(m.is_zlb());
        assert_eq!((m.tunnel, m.ns, m.nr, m.kind()), (9, 5, 6, 0));
        let b = Builder::new(kind::STOPCCN, 9, 0)
            .u16(true, attr::ASSIGNED_TUNNEL_ID, 3)
            .result(
                result::GENERAL_ERROR,
                result::ERR_UNKNOWN_MANDATORY,
                "AVP 99",
            )
            .finish();
        let rc = decode(&b, None).unwrap().result_code().unwrap();
        assert_eq!(rc.result, 2);
        assert_eq!(rc.error, Some(8));
        assert_eq!(rc.to_string(), "result 2 error 8 (AVP 99)");
    }

    #[test]
    fn malformed_is_an_error_never_a_panic() {
        let good = Builder::new(kind::HELLO, 1, 0).finish();
        assert_eq!(decode(&good[..11], None), Err(DecodeError::Header));
        let mut data_msg = good.clone();
        data_msg[0] = 0x00;
        assert_eq!(decode(&data_msg, None), Err(DecodeError::Header));
        let mut long = good.clone();
        long[3] = 200;
        assert!(matches!(
            decode(&long, None),
            Err(DecodeError::Length { .. })
        ));
        let mut avp_len = good.clone();
        avp_len[HEADER_LEN + 1] = 40;
        assert_eq!(
            decode(&avp_len, None),
            Err(DecodeError::AvpLength { index: 0 })
        );
        let not_type = Builder::new(kind::HELLO, 1, 0).finish();
        let mut not_type = not_type;
        not_type[HEADER_LEN + 5] = attr::HOST_NAME as u8;
        assert_eq!(decode(&not_type, None), Err(DecodeError::NoMessageType));
        // Unknown mandatory AVPs decode, and are reported.
        let b = Builder::new(kind::SCCRQ, 0, 0)
            .avp(true, 0, 200, b"x")
            .avp(true, 9999, 1, b"y")
            .finish();
        let m = decode(&b, None).unwrap();
        assert_eq!(m.unknown_mandatory().map(|a| a.attr), Some(200));
        // Every truncation and every single-byte change is an answer, not a panic.
        let full = Builder::new(kind::ICRQ, 1, 0)
            .hiding(b"k", [1; 16])
            .hidden(true, 0, attr::CALLING_NUMBER, b"0123456789abcdefghij")
            .finish();
        for n in 0..full.len() {
            let _ = decode(&full[..n], Some(b"k"));
            for bit in 0..8 {
                let mut f = full.clone();
                f[n] ^= 1 << bit;
                let _ = decode(&f, Some(b"k"));
            }
        }
    }
}
