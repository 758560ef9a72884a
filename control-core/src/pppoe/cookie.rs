//! The AC-Cookie (RFC 2516 section 5.2): what a PADO gives and a PADR must return, so
//! that sessions are only created for clients that received our offer at their own
//! address and line. It is self-contained (nothing is stored per PADI, so a PADI flood
//! costs no memory):
//!
//! ```text
//! key id (1) | issued, seconds on the caller's clock (4) | HMAC-MD5(secret, key id |
//!   issued | client MAC | port | S-VLAN | C-VLAN) (16)
//! ```
//!
//! The secret comes from the caller (its CSPRNG, at start); [`Cookies::rotate`] installs a
//! new one and keeps the previous for cookies still in their validity window.

use hmac::{Hmac, Mac as _};
use md5::Md5;

use super::line::Line;
use crate::time::Instant;
use crate::wire::ethernet::Mac;

/// The cookie's length.
pub const COOKIE_LEN: usize = 21;

/// Why a returned cookie is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// Wrong length, unknown key, or a MAC that does not verify: not ours, or not for
    /// this client and line.
    #[error("forged AC-Cookie")]
    Forged,
    /// Ours, but older than the validity window (or from the future).
    #[error("expired AC-Cookie")]
    Expired,
}

#[derive(Clone)]
struct Key {
    id: u8,
    secret: [u8; 32],
}

/// The cookie keys.
#[derive(Clone)]
pub struct Cookies {
    current: Key,
    previous: Option<Key>,
    lifetime_secs: u64,
}

impl core::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Cookies")
            .field("key_id", &self.current.id)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

fn mac_of(key: &Key, issued: u32, client: Mac, line: Line) -> [u8; 16] {
    let mut m = match <Hmac<Md5> as hmac::Mac>::new_from_slice(&key.secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => return [0; 16],
    };
    m.update(&[key.id]);
    m.update(&issued.to_be_bytes());
    m.update(&client);
    m.update(&line.port.to_be_bytes());
    m.update(&line.svlan.unwrap_or(0xffff).to_be_bytes());
    m.update(&line.cvlan.unwrap_or(0xffff).to_be_bytes());
    m.finalize().into_bytes().into()
}

impl Cookies {
    /// Keys from `secret`, cookies valid for `lifetime_secs`.
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> Cookies {
        Cookies {
            current: Key { id: 0, secret },
            previous: None,
            lifetime_secs,
        }
    }

    /// Installs a new secret; cookies under the previous one stay valid until they
    /// expire.
    pub fn rotate(&mut self, secret: [u8; 32]) {
        let next = Key {
            id: self.current.id.wrapping_add(1),
            secret,
        };
        self.previous = Some(core::mem::replace(&mut self.current, next));
    }

    /// A cookie for `client` on `line`, issued at `now`.
    pub fn mint(&self, now: Instant, client: Mac, line: Line) -> [u8; COOKIE_LEN] {
        let issued = now.secs() as u32;
        let mut c = [0u8; COOKIE_LEN];
        c[0] = self.current.id;
        c[1..5].copy_from_slice(&issued.to_be_bytes());
        c[5..].copy_from_slice(&mac_of(&self.current, issued, client, line));
        c
    }

    /// Checks a returned cookie.
    pub fn verify(
        &self,
        cookie: &[u8],
        now: Instant,
        client: Mac,
        line: Line,
    ) -> Result<(), CookieError> {
        if cookie.len() != COOKIE_LEN {
            return Err(CookieError::Forged);
        }
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == cookie[0])
            .ok_or(CookieError::Forged)?;
        let issued = u32::from_be_bytes([cookie[1], cookie[2], cookie[3], cookie[4]]);
        let want = mac_of(key, issued, client, line);
        let diff = want
            .iter()
            .zip(&cookie[5..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(CookieError::Forged);
        }
        let age = (now.secs() as u32).wrapping_sub(issued);
        if u64::from(age) > self.lifetime_secs {
            return Err(CookieError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [2, 0, 0, 0, 0, 1];
    const LINE: Line = Line {
        port: 1,
        svlan: Some(100),
        cvlan: Some(7),
    };

    #[test]
    fn cookies_verify_only_for_their_client_line_and_window() {
        let c = Cookies::new([7; 32], 60);
        let t = Instant(100_000_000_000);
        let k = c.mint(t, MAC, LINE);
        assert_eq!(c.verify(&k, t.add_ms(60_000), MAC, LINE), Ok(()));
        assert_eq!(
            c.verify(&k, t.add_ms(61_000), MAC, LINE),
            Err(CookieError::Expired)
        );
        assert_eq!(
            c.verify(&k, t, [2, 0, 0, 0, 0, 2], LINE),
            Err(CookieError::Forged)
        );
        let other_line = Line {
            cvlan: Some(8),
            ..LINE
        };
        assert_eq!(c.verify(&k, t, MAC, other_line), Err(CookieError::Forged));
        let mut flipped = k;
        flipped[20] ^= 1;
        assert_eq!(c.verify(&flipped, t, MAC, LINE), Err(CookieError::Forged));
        // A forger who changes the issue time breaks the MAC.
        let mut later = k;
        later[4] ^= 1;
        assert_eq!(c.verify(&later, t, MAC, LINE), Err(CookieError::Forged));
        assert_eq!(c.verify(&k[..20], t, MAC, LINE), Err(CookieError::Forged));
        // Another secret does not verify ours.
        let other = Cookies::new([8; 32], 60);
        assert_eq!(other.verify(&k, t, MAC, LINE), Err(CookieError::Forged));
        // Issued in the future (clock confusion): refused as expired.
        assert_eq!(
            c.verify(&k, Instant(t.0 - 2_000_000_000), MAC, LINE),
            Err(CookieError::Expired)
        );
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_one_generation() {
        let mut c = Cookies::new([1; 32], 60);
        let t = Instant(5_000_000_000);
        let old = c.mint(t, MAC, LINE);
        c.rotate([2; 32]);
        let new = c.mint(t, MAC, LINE);
        assert_ne!(old, new);
        assert_eq!(c.verify(&old, t, MAC, LINE), Ok(()));
        assert_eq!(c.verify(&new, t, MAC, LINE), Ok(()));
        c.rotate([3; 32]);
        assert_eq!(c.verify(&old, t, MAC, LINE), Err(CookieError::Forged));
        assert_eq!(c.verify(&new, t, MAC, LINE), Ok(()));
        assert!(!format!("{c:?}").contains("secret"));
    }
}
