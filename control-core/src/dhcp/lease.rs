//! A DHCPv4 lease: the session's address and what was granted with it, and its persisted
//! form. The caller stores [`Lease::encode`]'s bytes (in its database, keyed by
//! [`Lease::id`] or the subscriber) at every [`super::Event::SessionStarted`] and
//! [`super::Event::LeaseRenewed`], deletes them at [`super::Event::SessionEnded`], and
//! after a restart hands them back with [`Lease::decode`] and `Server::restore` /
//! `Relay::restore`. Times are stored as Unix seconds (the engine's clock is monotonic
//! and starts again at a restart), so the caller passes its wall clock next to `now`.

use core::net::Ipv4Addr;
use core::time::Duration;

use super::{Grant, LoginId};
use crate::codec::{Reader, Writer};
use crate::ipoe::Subscriber;
use crate::pppoe::{Line, LineId};
use crate::time::Instant;
use crate::wire::WireError;

/// A lease the server granted (or, in relay mode, the external server did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The login this lease belongs to.
    pub id: LoginId,
    /// The line and MAC.
    pub subscriber: Subscriber,
    /// The User-Name the login used.
    pub user: Vec<u8>,
    /// What was granted: address, mask, router, DNS, lease time.
    pub grant: Grant,
    /// The client's Client-identifier, if it sent one.
    pub client_id: Option<Vec<u8>>,
    /// Option 82 of the login, if any.
    pub line_id: Option<LineId>,
    /// The relay agent (`giaddr`) the client came through, if any.
    pub relay: Option<Ipv4Addr>,
    /// Relay mode: the external server's identifier.
    pub server: Option<Ipv4Addr>,
    /// When the first ACK went out.
    pub started: Instant,
    /// When the lease runs out unless renewed.
    pub expires: Instant,
}

/// `t` on the caller's wall clock, given that `now` is `unix_now` (whole seconds).
pub fn to_unix(t: Instant, now: Instant, unix_now: u64) -> u64 {
    if t >= now {
        unix_now.saturating_add(t.since(now).as_secs())
    } else {
        unix_now.saturating_sub(now.since(t).as_secs())
    }
}

/// Unix time `u` on the engine's clock, given that `now` is `unix_now`.
pub fn from_unix(u: u64, now: Instant, unix_now: u64) -> Instant {
    if u >= unix_now {
        now + Duration::from_secs(u - unix_now)
    } else {
        Instant(
            now.0
                .saturating_sub((unix_now - u).saturating_mul(1_000_000_000)),
        )
    }
}

const KIND: u8 = 0x44;
const VERSION: u8 = 1;

fn put_ip(w: &mut Writer, a: Ipv4Addr) {
    w.raw(&a.octets());
}

fn get_ip(r: &mut Reader<'_>) -> Result<Ipv4Addr, WireError> {
    Ok(Ipv4Addr::from(r.array::<4>()?))
}

fn opt_ip(w: &mut Writer, a: Option<Ipv4Addr>) {
    match a {
        None => {
            w.u8(0);
        }
        Some(a) => {
            w.u8(1);
            put_ip(w, a);
        }
    }
}

fn get_opt_ip(r: &mut Reader<'_>) -> Result<Option<Ipv4Addr>, WireError> {
    Ok(if r.flag()? { Some(get_ip(r)?) } else { None })
}

pub(crate) fn put_line(w: &mut Writer, l: Line) {
    w.u16(l.port);
    w.u16(l.svlan.map_or(0xffff, |v| v));
    w.u16(l.cvlan.map_or(0xffff, |v| v));
}

pub(crate) fn get_line(r: &mut Reader<'_>) -> Result<Line, WireError> {
    let port = r.u16()?;
    let vid = |v: u16| if v == 0xffff { None } else { Some(v) };
    Ok(Line {
        port,
        svlan: vid(r.u16()?),
        cvlan: vid(r.u16()?),
    })
}

pub(crate) fn put_line_id(w: &mut Writer, id: Option<&LineId>) {
    match id {
        None => {
            w.u8(0);
        }
        Some(id) => {
            w.u8(1)
                .opt_bytes(id.circuit_id.as_deref())
                .opt_bytes(id.remote_id.as_deref());
            for r in [id.rate_up_kbps, id.rate_down_kbps] {
                match r {
                    None => w.u8(0),
                    Some(v) => w.u8(1).u32(v),
                };
            }
        }
    }
}

pub(crate) fn get_line_id(r: &mut Reader<'_>) -> Result<Option<LineId>, WireError> {
    if !r.flag()? {
        return Ok(None);
    }
    let circuit_id = r.opt_bytes()?.map(<[u8]>::to_vec);
    let remote_id = r.opt_bytes()?.map(<[u8]>::to_vec);
    let mut rate =
        || -> Result<Option<u32>, WireError> { Ok(if r.flag()? { Some(r.u32()?) } else { None }) };
    let rate_up_kbps = rate()?;
    let rate_down_kbps = rate()?;
    Ok(Some(LineId {
        circuit_id,
        remote_id,
        rate_up_kbps,
        rate_down_kbps,
    }))
}

impl Lease {
    /// The leased address.
    pub fn address(&self) -> Ipv4Addr {
        self.grant.address
    }

    /// The persisted form, times as Unix seconds (`now` is `unix_now` on the caller's
    /// wall clock).
    pub fn encode(&self, now: Instant, unix_now: u64) -> Vec<u8> {
        let mut w = Writer::new(KIND, VERSION);
        w.u64(self.id.0);
        put_line(&mut w, self.subscriber.line);
        w.raw(&self.subscriber.mac);
        w.bytes(&self.user);
        let g = &self.grant;
        put_ip(&mut w, g.address);
        put_ip(&mut w, g.mask);
        opt_ip(&mut w, g.router);
        w.u8(g.dns.len().min(255) as u8);
        for d in g.dns.iter().take(255) {
            put_ip(&mut w, *d);
        }
        w.u32(g.lease_secs());
        w.opt_bytes(g.domain_name.as_deref());
        match g.mtu {
            None => w.u8(0),
            Some(m) => w.u8(1).u16(m),
        };
        w.opt_bytes(self.client_id.as_deref());
        put_line_id(&mut w, self.line_id.as_ref());
        opt_ip(&mut w, self.relay);
        opt_ip(&mut w, self.server);
        w.u64(to_unix(self.started, now, unix_now));
        w.u64(to_unix(self.expires, now, unix_now));
        w.finish()
    }

    /// Reads a persisted lease back onto the engine's clock (`now` is `unix_now`).
    pub fn decode(b: &[u8], now: Instant, unix_now: u64) -> Result<Lease, WireError> {
        let mut r = Reader::new(b, KIND, VERSION)?;
        let id = LoginId(r.u64()?);
        let line = get_line(&mut r)?;
        let mac = r.array::<6>()?;
        let user = r.bytes()?.to_vec();
        let address = get_ip(&mut r)?;
        let mask = get_ip(&mut r)?;
        let router = get_opt_ip(&mut r)?;
        let n = r.u8()?;
        let mut dns = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            dns.push(get_ip(&mut r)?);
        }
        let lease_time = Duration::from_secs(u64::from(r.u32()?));
        let domain_name = r.opt_bytes()?.map(<[u8]>::to_vec);
        let mtu = if r.flag()? { Some(r.u16()?) } else { None };
        let client_id = r.opt_bytes()?.map(<[u8]>::to_vec);
        let line_id = get_line_id(&mut r)?;
        let relay = get_opt_ip(&mut r)?;
        let server = get_opt_ip(&mut r)?;
        let started = from_unix(r.u64()?, now, unix_now);
        let expires = from_unix(r.u64()?, now, unix_now);
        r.finish()?;
        Ok(Lease {
            id,
            subscriber: Subscriber { line, mac },
            user,
            grant: Grant {
                address,
                mask,
                router,
                dns,
                lease_time,
                domain_name,
                mtu,
            },
            client_id,
            line_id,
            relay,
            server,
            started,
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Lease {
        Lease {
            id: LoginId(42),
            subscriber: Subscriber {
                line: Line {
                    port: 1,
                    svlan: Some(100),
                    cvlan: None,
                },
                mac: [2, 0, 0, 0, 0, 7],
            },
            user: b"02:00:00:00:00:07".to_vec(),
            grant: Grant {
                address: Ipv4Addr::new(100, 64, 0, 7),
                mask: Ipv4Addr::new(255, 255, 0, 0),
                router: Some(Ipv4Addr::new(100, 64, 0, 1)),
                dns: vec![Ipv4Addr::new(9, 9, 9, 9), Ipv4Addr::new(1, 1, 1, 1)],
                lease_time: Duration::from_secs(600),
                domain_name: Some(b"isp.example".to_vec()),
                mtu: Some(1500),
            },
            client_id: Some(vec![1, 2, 0, 0, 0, 0, 7]),
            line_id: Some(LineId {
                circuit_id: Some(b"an1 eth 1/1/1:100".to_vec()),
                remote_id: None,
                rate_up_kbps: Some(1000),
                rate_down_kbps: None,
            }),
            relay: None,
            server: Some(Ipv4Addr::new(192, 0, 2, 67)),
            started: Instant(5_000_000_000),
            expires: Instant(605_000_000_000),
        }
    }

    #[test]
    fn leases_survive_a_restart() {
        let l = sample();
        // Persisted at engine time 100 s = Unix 1_700_000_000.
        let b = l.encode(Instant(100_000_000_000), 1_700_000_000);
        // Restored after a restart: engine time 2 s = Unix 1_700_000_060.
        let back = Lease::decode(&b, Instant(2_000_000_000), 1_700_000_060).unwrap();
        assert_eq!(back.grant, l.grant);
        assert_eq!(
            (back.id, back.subscriber, &back.user),
            (l.id, l.subscriber, &l.user)
        );
        assert_eq!(
            (back.line_id.as_ref(), back.server),
            (l.line_id.as_ref(), l.server)
        );
        // Expiry was 505 s after the save, i.e. 445 s after the restore.
        assert_eq!(back.expires, Instant(447_000_000_000));
        // Started 95 s before the save: 155 s before the restore, clamped at the origin.
        assert_eq!(back.started, Instant(0));
        assert!(Lease::decode(&b[..b.len() - 1], Instant(0), 0).is_err());
        let mut v2 = b.clone();
        v2[1] = 2;
        assert_eq!(Lease::decode(&v2, Instant(0), 0), Err(WireError::Malformed));
    }

    #[test]
    fn wall_clock_conversions() {
        let now = Instant(10_000_000_000);
        assert_eq!(to_unix(Instant(13_000_000_000), now, 1000), 1003);
        assert_eq!(to_unix(Instant(4_000_000_000), now, 1000), 994);
        assert_eq!(from_unix(1003, now, 1000), Instant(13_000_000_000));
        assert_eq!(from_unix(994, now, 1000), Instant(4_000_000_000));
        assert_eq!(from_unix(0, now, 1000), Instant(0));
    }
}
