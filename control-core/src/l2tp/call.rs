//! Incoming calls that carry PPP to this LNS (RFC 2661): what the ICCN tells about the
//! PPP negotiation the LAC already made (proxy LCP and proxy authentication, section
//! 4.4.5), and the data messages that carry the PPP frames the LNS sends.
//!
//! A session opened without Tollgate's Subscriber Address AVP is a PPP call: when it is
//! connected the engine hands the gateway a [`Call`], the gateway runs a
//! [`crate::ppp::Session`] for it and sends its frames with [`super::L2tp::ppp_frame`].

use std::net::SocketAddrV4;

use super::wire::{Message, attr};
use crate::ppp::{ProxyAuth, ProxyAuthType, ProxyLcp};

/// A connected PPP call (LNS), from its ICRQ and ICCN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Our session id.
    pub session: u16,
    /// Our tunnel id.
    pub tunnel: u16,
    /// The LAC.
    pub peer: SocketAddrV4,
    /// The LAC's Host Name.
    pub peer_host: String,
    /// The proxy LCP AVPs (26, 27, 28), when the LAC sent all three.
    pub proxy_lcp: Option<ProxyLcp>,
    /// The proxy authentication AVPs (29..33), when the LAC sent a type it knows.
    pub proxy_auth: Option<ProxyAuth>,
    /// Calling Number (AVP 22) from the ICRQ.
    pub calling_number: Option<String>,
}

/// The proxy LCP of an ICCN: all three Configure-Requests, or none.
pub fn proxy_lcp(m: &Message) -> Option<ProxyLcp> {
    let v = |a: u16| m.get(a).map(|a| a.value.clone());
    Some(ProxyLcp {
        initial_received: v(attr::INITIAL_RECEIVED_LCP_CONFREQ)?,
        last_sent: v(attr::LAST_SENT_LCP_CONFREQ)?,
        last_received: v(attr::LAST_RECEIVED_LCP_CONFREQ)?,
    })
}

/// The proxy authentication of an ICCN: a known Proxy Authen Type other than "none",
/// with the name, identifier and response (and the challenge for CHAP) it needs.
pub fn proxy_auth(m: &Message) -> Option<ProxyAuth> {
    let kind = ProxyAuthType::from_u16(m.u16(attr::PROXY_AUTHEN_TYPE)?)?;
    if !matches!(kind, ProxyAuthType::Chap | ProxyAuthType::Pap) {
        return None;
    }
    let v = |a: u16| m.get(a).map(|a| a.value.clone());
    let id = m.u16(attr::PROXY_AUTHEN_ID)?;
    let challenge = v(attr::PROXY_AUTHEN_CHALLENGE).unwrap_or_default();
    if kind == ProxyAuthType::Chap && challenge.is_empty() {
        return None;
    }
    Some(ProxyAuth {
        kind,
        name: v(attr::PROXY_AUTHEN_NAME)?,
        challenge,
        // RFC 2661 4.4.5: the ID is in the low byte of the two-byte value.
        id: (id & 0xff) as u8,
        response: v(attr::PROXY_AUTHEN_RESPONSE)?,
    })
}

/// An L2TP data message to the peer's `tunnel` and `session` carrying one PPP frame:
/// the six-byte header (no length, no sequence numbers, as the fast path sends), then
/// `ff 03`, the two-byte protocol and the packet.
pub fn data_message(tunnel: u16, session: u16, protocol: u16, packet: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(10 + packet.len());
    b.extend_from_slice(&[0x00, 0x02]);
    b.extend_from_slice(&tunnel.to_be_bytes());
    b.extend_from_slice(&session.to_be_bytes());
    b.extend_from_slice(&[0xff, 0x03]);
    b.extend_from_slice(&protocol.to_be_bytes());
    b.extend_from_slice(packet);
    b
}

#[cfg(test)]
mod tests {
    use super::super::wire::{Avp, kind};
    use super::*;

    fn avp(attr: u16, value: &[u8]) -> Avp {
        Avp {
            mandatory: false,
            hidden: false,
            vendor: 0,
            attr,
            value: value.to_vec(),
        }
    }

    fn iccn(avps: Vec<Avp>) -> Message {
        let mut all = vec![avp(attr::MESSAGE_TYPE, &kind::ICCN.to_be_bytes())];
        all.extend(avps);
        Message {
            tunnel: 1,
            session: 2,
            ns: 0,
            nr: 0,
            avps: all,
        }
    }

    #[test]
    fn a_data_message_is_header_acf_protocol_packet() {
        // LCP Terminate-Request id 7, no data, to tunnel 0x1234 session 0x0042.
        let m = data_message(0x1234, 0x42, 0xc021, &[0x05, 0x07, 0x00, 0x04]);
        assert_eq!(
            m,
            [
                0x00, 0x02, 0x12, 0x34, 0x00, 0x42, 0xff, 0x03, 0xc0, 0x21, 0x05, 0x07, 0x00, 0x04
            ]
        );
    }

    #[test]
    fn proxy_avps_of_an_iccn() {
        // MRU 1492 + Magic; the LAC's request: MRU 1492, CHAP-MD5, Magic.
        let client = [0x01, 0x04, 0x05, 0xd4, 0x05, 0x06, 0x11, 0x22, 0x33, 0x44];
        let lac = [
            0x01, 0x04, 0x05, 0xd4, 0x03, 0x05, 0xc2, 0x23, 0x05, 0x05, 0x06, 0xaa, 0xbb, 0xcc,
            0xdd,
        ];
        let m = iccn(vec![
            avp(attr::INITIAL_RECEIVED_LCP_CONFREQ, &client),
            avp(attr::LAST_SENT_LCP_CONFREQ, &lac),
            avp(attr::LAST_RECEIVED_LCP_CONFREQ, &client),
            avp(attr::PROXY_AUTHEN_TYPE, &[0, 2]),
            avp(attr::PROXY_AUTHEN_NAME, b"alice@isp.example"),
            avp(attr::PROXY_AUTHEN_CHALLENGE, &[9; 16]),
            avp(attr::PROXY_AUTHEN_ID, &[0, 0x17]),
            avp(attr::PROXY_AUTHEN_RESPONSE, &[7; 16]),
        ]);
        let l = proxy_lcp(&m).unwrap();
        assert_eq!(
            (
                &l.initial_received[..],
                &l.last_sent[..],
                &l.last_received[..]
            ),
            (&client[..], &lac[..], &client[..])
        );
        let a = proxy_auth(&m).unwrap();
        assert_eq!(a.kind, ProxyAuthType::Chap);
        assert_eq!(
            (&a.name[..], &a.challenge[..], a.id, &a.response[..]),
            (
                &b"alice@isp.example"[..],
                &[9u8; 16][..],
                0x17,
                &[7u8; 16][..]
            )
        );
        // PAP: no challenge needed; the response is the password.
        let pap = iccn(vec![
            avp(attr::PROXY_AUTHEN_TYPE, &[0, 3]),
            avp(attr::PROXY_AUTHEN_NAME, b"bob"),
            avp(attr::PROXY_AUTHEN_ID, &[0, 1]),
            avp(attr::PROXY_AUTHEN_RESPONSE, b"secret"),
        ]);
        let a = proxy_auth(&pap).unwrap();
        assert_eq!(
            (a.kind, &a.response[..]),
            (ProxyAuthType::Pap, &b"secret"[..])
        );
        assert_eq!(proxy_lcp(&pap), None);
        // CHAP without its challenge, an unknown type, "none": no proxy authentication.
        for bad in [
            vec![
                avp(attr::PROXY_AUTHEN_TYPE, &[0, 2]),
                avp(attr::PROXY_AUTHEN_NAME, b"c"),
                avp(attr::PROXY_AUTHEN_ID, &[0, 1]),
                avp(attr::PROXY_AUTHEN_RESPONSE, &[1; 16]),
            ],
            vec![avp(attr::PROXY_AUTHEN_TYPE, &[0, 9])],
            vec![avp(attr::PROXY_AUTHEN_TYPE, &[0, 4])],
        ] {
            assert_eq!(proxy_auth(&iccn(bad)), None);
        }
        // Two of the three LCP AVPs: no proxy LCP.
        let two = iccn(vec![
            avp(attr::INITIAL_RECEIVED_LCP_CONFREQ, &client),
            avp(attr::LAST_SENT_LCP_CONFREQ, &lac),
        ]);
        assert_eq!(proxy_lcp(&two), None);
    }
}
