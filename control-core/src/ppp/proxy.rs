//! What L2TP (RFC 2661 section 4.4.5) carries of a PPP negotiation that a LAC made on
//! behalf of an LNS: the proxy LCP (three Configure-Requests' options) and the proxy
//! authentication (type, name, challenge, identifier, response).
//!
//! An LNS builds a [`super::Session`] from them with [`super::Session::from_proxy`]; a LAC
//! takes them from its own session with [`super::Session::hand_off`] and puts them in the
//! ICCN's AVPs 26..33.

/// The proxy LCP AVPs: the Value of each is the options of a Configure-Request (starting
/// at the first option, RFC 2661 4.4.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyLcp {
    /// Initial Received LCP CONFREQ (AVP 26): the client's first request.
    pub initial_received: Vec<u8>,
    /// Last Sent LCP CONFREQ (AVP 27): the LAC's request the client acknowledged.
    pub last_sent: Vec<u8>,
    /// Last Received LCP CONFREQ (AVP 28): the client's request the LAC acknowledged.
    pub last_received: Vec<u8>,
}

/// Proxy Authen Type (AVP 29) values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ProxyAuthType {
    /// Textual username/password exchange.
    Text = 1,
    /// PPP CHAP.
    Chap = 2,
    /// PPP PAP.
    Pap = 3,
    /// No authentication.
    None = 4,
    /// Microsoft CHAP version 1.
    MsChapV1 = 5,
}

impl ProxyAuthType {
    /// The type an AVP value names, if known.
    pub fn from_u16(v: u16) -> Option<ProxyAuthType> {
        Some(match v {
            1 => ProxyAuthType::Text,
            2 => ProxyAuthType::Chap,
            3 => ProxyAuthType::Pap,
            4 => ProxyAuthType::None,
            5 => ProxyAuthType::MsChapV1,
            _ => return None,
        })
    }
}

/// The proxy authentication AVPs (29..33).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// Proxy Authen Type (AVP 29).
    pub kind: ProxyAuthType,
    /// Proxy Authen Name (AVP 30): the PAP Peer-ID or the CHAP Name.
    pub name: Vec<u8>,
    /// Proxy Authen Challenge (AVP 31): the CHAP challenge (empty for PAP).
    pub challenge: Vec<u8>,
    /// Proxy Authen ID (AVP 32): the PAP or CHAP Identifier.
    pub id: u8,
    /// Proxy Authen Response (AVP 33): the CHAP response, or the PAP password.
    pub response: Vec<u8>,
}

impl core::fmt::Debug for ProxyAuth {
    /// Never prints the response: for PAP it is the password.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("kind", &self.kind)
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("id", &self.id)
            .field("challenge_len", &self.challenge.len())
            .field("response", &"<redacted>")
            .finish()
    }
}

/// What a LAC forwards of a session it hands to an LNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRecord {
    /// The LCP negotiation.
    pub lcp: ProxyLcp,
    /// The authentication exchange.
    pub auth: ProxyAuth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_response() {
        let a = ProxyAuth {
            kind: ProxyAuthType::Pap,
            name: b"alice".to_vec(),
            challenge: Vec::new(),
            id: 1,
            response: b"hunter2".to_vec(),
        };
        let s = format!("{a:?}");
        assert!(s.contains("alice") && !s.contains("hunter2"), "{s}");
        assert_eq!(ProxyAuthType::from_u16(2), Some(ProxyAuthType::Chap));
        assert_eq!(ProxyAuthType::from_u16(9), None);
    }
}
