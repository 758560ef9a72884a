//! What rating is fed: usage records. The control plane hands them to
//! `tollgate_control::rating::Rater` (`record_session`, `record_bandwidth_change`,
//! `record_tunnel_usage`, `record_service_usage`); operators and tests load them from
//! JSON lines with `tollgate billing import`. Every record has an `id`, unique within its
//! kind: the same record stored twice is stored once.
//!
//! Times are Unix seconds (UTC), written either as an integer or as RFC 3339
//! (`"2024-05-01T08:00:00Z"`). Counters follow the gateway's convention: `tx` is what
//! the subscriber sent, `rx` what it received; bytes are IPv4 total-length bytes.

use serde::{Deserialize, Deserializer, Serialize};

use super::calendar::parse_timestamp;

/// The counters of one session, or of one part of it, between `start` and `stop`
/// (the final counters at disconnect, or the difference between two interim readings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionUsage {
    /// Unique record id (e.g. node, Acct-Session-Id and the reading's sequence).
    pub id: String,
    /// The subscriber (user name).
    pub user: String,
    /// The billing account, when the accounting side knows it; else the user's account
    /// from `[[rating.account]]`, else a personal account named after the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The session (channel) id.
    pub session: String,
    /// When counting started (Unix seconds).
    #[serde(deserialize_with = "time")]
    pub start: i64,
    /// When counting stopped.
    #[serde(deserialize_with = "time")]
    pub stop: i64,
    /// Packets the subscriber sent.
    pub tx_packets: u64,
    /// Bytes the subscriber sent.
    pub tx_bytes: u64,
    /// Packets the subscriber received.
    pub rx_packets: u64,
    /// Bytes the subscriber received.
    pub rx_bytes: u64,
    /// The terminate cause (RADIUS Acct-Terminate-Cause name) when the session ended
    /// with this record; absent for an interim reading. A record with a cause ends the
    /// session's declared bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A change of a session's declared bandwidth: from `at` on it is `bps`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthChange {
    /// Unique record id.
    pub id: String,
    /// The subscriber.
    pub user: String,
    /// The billing account, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The session whose bandwidth changed.
    pub session: String,
    /// When (Unix seconds).
    #[serde(deserialize_with = "time")]
    pub at: i64,
    /// The new declared bandwidth, bit/s (0 releases it).
    pub bps: u64,
    /// Why: `config`, `ctl`, `coa`, `service-level`, `start`, ...
    #[serde(default)]
    pub reason: String,
}

/// A customer's use of a tunnel on a physical line, from `start` to `stop` (TUN-5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelUsage {
    /// Unique record id.
    pub id: String,
    /// The customer's billing account.
    pub account: String,
    /// The user, when the tunnel is one user's; else the charge is the account's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Tunnel id.
    pub tunnel: String,
    /// Physical line id.
    pub line: String,
    /// Start of use.
    #[serde(deserialize_with = "time")]
    pub start: i64,
    /// End of use.
    #[serde(deserialize_with = "time")]
    pub stop: i64,
}

/// Metered use of a supplementary service under a contract (seed 000, claim 19).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceUsage {
    /// Unique record id.
    pub id: String,
    /// The billing account holding the contract.
    pub account: String,
    /// The user who used it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The contract's name (`[[rating.contract]] name`).
    pub contract: String,
    /// When.
    #[serde(deserialize_with = "time")]
    pub at: i64,
    /// How much (in the contract's unit).
    pub quantity: u64,
}

/// One record of any kind, as a line of `tollgate billing import` (`"type"` says which).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// `{"type": "session", ...}`
    Session(SessionUsage),
    /// `{"type": "bandwidth", ...}`
    Bandwidth(BandwidthChange),
    /// `{"type": "tunnel", ...}`
    Tunnel(TunnelUsage),
    /// `{"type": "service", ...}`
    Service(ServiceUsage),
}

impl Record {
    /// The kind's name, as in `"type"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Session(_) => "session",
            Record::Bandwidth(_) => "bandwidth",
            Record::Tunnel(_) => "tunnel",
            Record::Service(_) => "service",
        }
    }

    /// The record id.
    pub fn id(&self) -> &str {
        match self {
            Record::Session(r) => &r.id,
            Record::Bandwidth(r) => &r.id,
            Record::Tunnel(r) => &r.id,
            Record::Service(r) => &r.id,
        }
    }

    /// Checks what serde cannot; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let nonempty = |what: &str, v: &str| {
            if v.trim().is_empty() {
                Err(format!("`{what}` is empty"))
            } else {
                Ok(())
            }
        };
        nonempty("id", self.id())?;
        let fits = |what: &str, v: u64| {
            if v > i64::MAX as u64 {
                Err(format!("`{what}` {v} is larger than {}", i64::MAX))
            } else {
                Ok(())
            }
        };
        match self {
            Record::Session(r) => {
                nonempty("user", &r.user)?;
                nonempty("session", &r.session)?;
                if r.stop < r.start {
                    return Err(format!("`stop` {} is before `start` {}", r.stop, r.start));
                }
                fits("tx_packets", r.tx_packets)?;
                fits("tx_bytes", r.tx_bytes)?;
                fits("rx_packets", r.rx_packets)?;
                fits("rx_bytes", r.rx_bytes)?;
            }
            Record::Bandwidth(r) => {
                nonempty("user", &r.user)?;
                nonempty("session", &r.session)?;
                fits("bps", r.bps)?;
            }
            Record::Tunnel(r) => {
                nonempty("account", &r.account)?;
                nonempty("tunnel", &r.tunnel)?;
                nonempty("line", &r.line)?;
                if r.stop < r.start {
                    return Err(format!("`stop` {} is before `start` {}", r.stop, r.start));
                }
            }
            Record::Service(r) => {
                nonempty("account", &r.account)?;
                nonempty("contract", &r.contract)?;
                fits("quantity", r.quantity)?;
            }
        }
        Ok(())
    }
}

/// A time field: Unix seconds or an RFC 3339 string.
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        Secs(i64),
        Text(String),
    }
    match T::deserialize(d)? {
        T::Secs(s) => Ok(s),
        T::Text(s) => parse_timestamp(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_time_forms_and_checks() {
        let r: Record = serde_json::from_str(
            r#"{"type":"session","id":"s1","user":"alice","session":"c1",
                "start":"2024-05-01T00:00:00Z","stop":1714525200,
                "tx_packets":1,"tx_bytes":100,"rx_packets":2,"rx_bytes":200}"#,
        )
        .unwrap();
        let Record::Session(s) = &r else {
            panic!("not a session")
        };
        assert_eq!(s.start, 1_714_521_600);
        assert_eq!(s.stop - s.start, 3600);
        assert!(r.validate().is_ok());
        let bad: Record = serde_json::from_str(
            r#"{"type":"tunnel","id":"t","account":"a","tunnel":"t1","line":"l1","start":10,"stop":5}"#,
        )
        .unwrap();
        assert!(bad.validate().unwrap_err().contains("before"));
        assert!(
            serde_json::from_str::<Record>(
                r#"{"type":"bandwidth","id":"b","user":"u","session":"s","at":"yesterday","bps":1}"#
            )
            .is_err()
        );
        // The stored form round-trips.
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
