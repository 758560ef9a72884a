//! DHCPv6 bindings over a restart of the gateway (issue 16 item 1, as DHCPv4's leases):
//! every binding's start and renewal is handed to the shell as a [`LeaseChange`] (key
//! `v6.` and the subscriber's DHCPv4 key; the record below), its end as a removal, in
//! the same lease file as DHCPv4's. At the next start the shell hands the records back
//! ([`Core::dhcpv6_restore`]): the binding is bound again in the engine (a RENEW is
//! answered as if nothing happened), its delegated prefix taken out of the pool, and
//! the subscriber's session, when it opens again (its DHCPv4 lease's login, else a
//! login by MAC started here), gets the same /64 and, once its MAC is known, the
//! delegated prefix routed to it. While the gateway stops ([`Core::dhcp_stopping`]),
//! sessions that end keep their bindings.
//!
//! In relay mode the record also keeps the binding's server end
//! ([`dhcpv6::BindingServer`]: the server's DUID and address, the client's
//! Peer-Address), so that the gateway's own RELEASE after a restart (DISC, CoA, `ctl
//! session remove`) names the server as before; a server discards a RELEASE without its
//! Server Identifier (RFC 8415 18.3.7) and would keep the address and prefix bound.
//!
//! The record: kind `0x76`, version 2, a flag and the session's /64 (upper 64 bits, big
//! endian), the length of the lease (u16, big endian), [`dhcpv6::Lease::encode`]'s bytes
//! (times as Unix seconds), then a flag and in relay mode
//! [`dhcpv6::BindingServer::encode`]'s bytes (flag 0 and nothing in server mode). Version 1 (kept before the server end was: the /64, then
//! the lease to the end) is still read, without a server end. Refused, never guessed
//! at, if the kind or version differs or a byte is missing or left over.

use tollgate_dataplane::time::Instant;

use super::dhcp::{LeaseChange, lease_key};
use super::{Core, Output};
use crate::dhcpv6;
use crate::ipoe::Subscriber;
use crate::wire::WireError;

const KIND: u8 = 0x76;
const VERSION: u8 = 2;
/// The first version, without the lease's length and the server end.
const VERSION_1: u8 = 1;
const HEAD: usize = 11;

/// True if `b` is a persisted DHCPv6 binding (not a DHCPv4 lease).
pub fn is_binding_record(b: &[u8]) -> bool {
    b.first() == Some(&KIND)
}

/// The lease-file key of `sub`'s DHCPv6 binding.
pub fn binding_key(sub: &Subscriber) -> String {
    format!("v6.{}", lease_key(sub))
}

/// The record of `lease`, its session's /64 `prefix64` and, in relay mode, its server
/// end `from`.
pub fn encode(
    prefix64: Option<u64>,
    lease: &dhcpv6::Lease,
    from: Option<&dhcpv6::BindingServer>,
    now: Instant,
    unix: u64,
) -> Vec<u8> {
    let l = lease.encode(now, unix);
    let from = from.map(dhcpv6::BindingServer::encode);
    let mut b = Vec::with_capacity(HEAD + 3 + l.len() + from.as_ref().map_or(0, Vec::len));
    b.extend_from_slice(&[KIND, VERSION, u8::from(prefix64.is_some())]);
    b.extend_from_slice(&prefix64.unwrap_or(0).to_be_bytes());
    // A lease is far shorter than 64 KiB (a DUID is at most 130 bytes, DNS 255 servers).
    b.extend_from_slice(&(l.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    b.extend_from_slice(&l);
    b.push(u8::from(from.is_some()));
    if let Some(f) = from {
        b.extend_from_slice(&f);
    }
    b
}

/// A record read back: the session's /64, the binding and its server end (relay mode).
pub type Record = (Option<u64>, dhcpv6::Lease, Option<dhcpv6::BindingServer>);

/// Reads a record back onto the engine's clock.
pub fn decode(b: &[u8], now: Instant, unix: u64) -> Result<Record, WireError> {
    let head = b.get(..HEAD).ok_or(WireError::Truncated)?;
    if head[0] != KIND || !(head[1] == VERSION || head[1] == VERSION_1) || head[2] > 1 {
        return Err(WireError::Malformed);
    }
    let mut p = [0u8; 8];
    p.copy_from_slice(&head[3..HEAD]);
    let prefix64 = (head[2] == 1).then(|| u64::from_be_bytes(p));
    let rest = &b[HEAD..];
    if head[1] == VERSION_1 {
        return Ok((prefix64, dhcpv6::Lease::decode(rest, now, unix)?, None));
    }
    let n = rest.get(..2).ok_or(WireError::Truncated)?;
    let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
    let lease = rest.get(2..2 + n).ok_or(WireError::Truncated)?;
    let lease = dhcpv6::Lease::decode(lease, now, unix)?;
    let from = match &rest[2 + n..] {
        [0] => None,
        [1, f @ ..] => Some(dhcpv6::BindingServer::decode(f)?),
        [] => return Err(WireError::Truncated),
        _ => return Err(WireError::Malformed),
    };
    Ok((prefix64, lease, from))
}

impl Core {
    fn unix_secs(&self, now: Instant) -> u64 {
        (self.clock.unix_ns(now).max(0) / 1_000_000_000) as u64
    }

    /// Hands the shell `lease` to keep (at its start and every renewal).
    pub(super) fn dhcpv6_persist(&mut self, now: Instant, lease: &dhcpv6::Lease) {
        let sub = lease.subscriber;
        let prefix64 = self.ipoe_session_of(sub).and_then(|(id, _, _)| {
            let v6 = self.ipv6.as_ref()?;
            v6.sessions.get(&id).map(|a| a.prefix)
        });
        // A binding restored whose session is not back yet keeps its /64.
        let prefix64 = prefix64.or_else(|| {
            self.ipv6
                .as_ref()
                .and_then(|v| v.dhcp.as_ref())
                .and_then(|d| d.restored.get(&sub).copied().flatten())
        });
        // Relay mode: the server end, for the gateway's RELEASE after a restart.
        let from = self
            .ipv6
            .as_ref()
            .and_then(|v| v.dhcp.as_ref())
            .and_then(|d| d.server.binding_server(&sub, lease.id))
            .cloned();
        let unix = self.unix_secs(now);
        self.out.push_back(Output::Lease(LeaseChange {
            key: binding_key(&sub),
            lease: Some(encode(prefix64, lease, from.as_ref(), now, unix)),
        }));
    }

    /// The binding of `sub` ended: the shell forgets it (not while the gateway stops).
    pub(super) fn dhcpv6_forget(&mut self, sub: &Subscriber) {
        self.out.push_back(Output::Lease(LeaseChange {
            key: binding_key(sub),
            lease: None,
        }));
    }

    /// Takes back the DHCPv6 bindings the shell kept after a restart (records that are
    /// not [`is_binding_record`] are skipped): each live one is bound again, its
    /// delegated prefix taken from the pool, and its subscriber's session, when it
    /// opens, gets its /64 back; a subscriber whose DHCPv4 lease is not logging in again
    /// is logged in by MAC (`login_on_rs`). One that ran out meanwhile is forgotten.
    /// Returns how many are live again. Call it after [`Core::dhcp_restore`].
    pub fn dhcpv6_restore(&mut self, now: Instant, records: &[Vec<u8>]) -> usize {
        let unix = self.unix_secs(now);
        let mut live = 0;
        for b in records.iter().filter(|b| is_binding_record(b)) {
            let (prefix64, lease, from) = match decode(b, now, unix) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = ?e, "a persisted DHCPv6 binding does not decode; skipped");
                    continue;
                }
            };
            let sub = lease.subscriber;
            let delegated = lease.grant.prefix;
            let Some(v6) = self.ipv6.as_mut() else {
                return 0;
            };
            // The /64 waits for the session: no other session may take it meanwhile.
            let prefix64 = prefix64.filter(|hi| {
                let free = v6.claim_prefix(*hi);
                if !free {
                    tracing::warn!(subscriber = %sub, "a restored DHCPv6 binding's /64 is handed out already");
                }
                free
            });
            let Some(d) = v6.dhcp.as_mut() else {
                return 0;
            };
            let back = match d.server.restore(now, lease, from) {
                Ok(live) => live,
                Err(e) => {
                    tracing::warn!(subscriber = %sub, error = %e, "a persisted DHCPv6 binding not restored");
                    false
                }
            };
            if !back {
                if let Some(hi) = prefix64 {
                    v6.release_prefix(hi);
                }
                continue;
            }
            if let Some(p) = delegated
                && !d.claim_delegated(p)
            {
                tracing::warn!(subscriber = %sub, prefix = %p, "a restored delegated prefix is handed out already");
            }
            d.restored.insert(sub, prefix64);
            d.stats.restored += 1;
            live += 1;
            if self.ipoe_session_of(sub).is_none() && !self.dhcp_follows(&sub) {
                self.ipv6_login_by_mac(now, sub);
            }
        }
        self.dhcpv6_drain(now);
        live
    }

    /// The /64 a restored binding's session gets back, if `sub` has one waiting.
    pub(super) fn dhcpv6_restored_prefix(&self, sub: &Subscriber) -> Option<u64> {
        if self.dhcpv6_relay() {
            return self.dhcpv6_relay_prefix(sub);
        }
        let d = self.ipv6.as_ref()?.dhcp.as_ref()?;
        d.restored.get(sub).copied().flatten()
    }
}
