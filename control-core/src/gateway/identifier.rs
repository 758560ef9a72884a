//! What identifies a subscriber at login besides its user id: a MAC, a mobile id or a
//! fixed address. Logins carry them ([`super::aaa::LoginRequest`]); the stores look
//! subscribers up by them.

use std::fmt;
use std::net::Ipv4Addr;

use tollgate_dataplane::MacAddr;

/// What identifies a subscriber besides the user id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// The subscriber device's MAC.
    Mac(MacAddr),
    /// A mobile device identifier (IMSI, IMEI, MSISDN: whatever the access side sends).
    MobileId(String),
    /// A fixed IPv4 address.
    Ip(Ipv4Addr),
}

impl Identifier {
    /// `mac`, `mobile_id` or `ip`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identifier::Mac(_) => "mac",
            Identifier::MobileId(_) => "mobile_id",
            Identifier::Ip(_) => "ip",
        }
    }

    /// The value in its canonical spelling.
    pub fn value(&self) -> String {
        match self {
            Identifier::Mac(m) => m.to_string(),
            Identifier::MobileId(s) => s.clone(),
            Identifier::Ip(a) => a.to_string(),
        }
    }

    /// From a kind and a value; the error says what is wrong.
    pub fn parse(kind: &str, value: &str) -> Result<Identifier, String> {
        match kind {
            "mac" => value
                .parse::<MacAddr>()
                .map(Identifier::Mac)
                .map_err(|e| format!("{value:?}: {e}")),
            "mobile_id" => {
                if value.is_empty() || value.len() > 64 || value.chars().any(char::is_whitespace) {
                    Err(format!(
                        "{value:?}: a mobile id is 1 to 64 characters without spaces"
                    ))
                } else {
                    Ok(Identifier::MobileId(value.to_string()))
                }
            }
            "ip" => value
                .parse::<Ipv4Addr>()
                .map(Identifier::Ip)
                .map_err(|_| format!("{value:?} is not an IPv4 address")),
            _ => Err(format!(
                "{kind:?} is not an identifier kind (mac, mobile_id, ip)"
            )),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}
