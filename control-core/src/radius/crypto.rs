//! RADIUS secrets at work: User-Password hiding (RFC 2865 §5.2), Request and Response
//! Authenticators (RFC 2865 §3, RFC 2866 §3, RFC 5176 §3.5) and Message-Authenticator
//! (HMAC-MD5, RFC 3579 §3.2).
//!
//! Every packet we sign carries a Message-Authenticator as its first attribute (the
//! BlastRADIUS advice); [`verify_reply`] and [`verify_request`] check it and can require
//! it.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::packet::{
    AUTHENTICATOR_LEN, AttrKey, Attribute, Code, DecodeError, EncodeError, HEADER_LEN, Packet,
};

/// Attribute type of User-Password.
const USER_PASSWORD: u8 = 2;
/// Attribute type of Message-Authenticator.
const MESSAGE_AUTHENTICATOR: u8 = 80;
/// Offset of the Message-Authenticator value when it is the first attribute.
const MA_VALUE: usize = HEADER_LEN + 2;

/// Why a received packet is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed RADIUS packet.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The Request or Response Authenticator does not match: wrong secret, or forged.
    #[error("authenticator does not match (wrong secret?)")]
    BadAuthenticator,
    /// No Message-Authenticator where one is required.
    #[error("no Message-Authenticator")]
    MissingMessageAuthenticator,
    /// A Message-Authenticator that does not match, is not 16 octets, or appears twice.
    #[error("Message-Authenticator does not match")]
    BadMessageAuthenticator,
}

/// Why a hidden User-Password cannot be recovered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Hidden passwords are 16..=128 octets in steps of 16.
    #[error("hidden password of {0} octets: must be 16 to 128 in steps of 16")]
    BadLength(usize),
}

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = match <Hmac<Md5> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Compares in time independent of where the first difference is.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hides a User-Password (RFC 2865 §5.2): padded to a multiple of 16 with NULs, each
/// block XORed with MD5(secret + previous block), the first with the Request
/// Authenticator.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>, EncodeError> {
    if password.len() > 128 {
        return Err(EncodeError::PasswordTooLong(password.len()));
    }
    let padded = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded, 0);
    let mut prev: [u8; 16] = *authenticator;
    for block in out.chunks_mut(16) {
        let b = md5_of(&[secret, &prev]);
        for (c, k) in block.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(block);
    }
    Ok(out)
}

/// Recovers a hidden User-Password; trailing NUL padding is removed.
pub fn unhide_password(
    hidden: &[u8],
    secret: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>, PasswordError> {
    if hidden.is_empty() || hidden.len() > 128 || !hidden.len().is_multiple_of(16) {
        return Err(PasswordError::BadLength(hidden.len()));
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = authenticator;
    for block in hidden.chunks(16) {
        let b = md5_of(&[secret, prev]);
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        prev = block;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// Why a Tunnel-Password cannot be recovered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TunnelPasswordError {
    /// Tag, 2-octet salt, then 16 to 240 octets in steps of 16.
    #[error("Tunnel-Password of {0} octets: must be 3 + 16 to 240 in steps of 16")]
    BadLength(usize),
    /// The length octet inside says more than the encrypted string holds (wrong secret,
    /// or the wrong Request Authenticator).
    #[error("Tunnel-Password does not decrypt (its length octet says {0})")]
    BadPassword(u8),
}

/// The key stream of a Tunnel-Password (RFC 2868 §3.5) applied to `data` in place: the
/// first block XORed with MD5(secret + Request Authenticator + salt), each next with
/// MD5(secret + the previous ciphertext block). `encrypting` says which side of the XOR
/// the ciphertext is on.
fn tunnel_password_stream(
    data: &mut [u8],
    secret: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
    salt: [u8; 2],
    encrypting: bool,
) {
    let mut key = md5_of(&[secret, authenticator, &salt]);
    for block in data.chunks_mut(16) {
        let mut cipher = [0u8; 16];
        for (i, (c, k)) in block.iter_mut().zip(key).enumerate() {
            let before = *c;
            *c ^= k;
            cipher[i] = if encrypting { *c } else { before };
        }
        key = md5_of(&[secret, &cipher]);
    }
}

/// Decrypts a Tunnel-Password value (RFC 2868 §3.5: tag, salt, encrypted string) with
/// the RADIUS secret and the Request Authenticator of the Access-Request it answers:
/// its tag and the password. The string is a length octet, the password, then padding
/// (of any content: FreeRADIUS does not zero it) to a multiple of 16. The salt's high
/// bit is not checked (RFC 2868 says it must be set).
pub fn decrypt_tunnel_password(
    value: &[u8],
    secret: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<(u8, Vec<u8>), TunnelPasswordError> {
    let n = value.len();
    if !(3 + 16..=3 + 240).contains(&n) || !(n - 3).is_multiple_of(16) {
        return Err(TunnelPasswordError::BadLength(n));
    }
    let mut data = value[3..].to_vec();
    tunnel_password_stream(
        &mut data,
        secret,
        authenticator,
        [value[1], value[2]],
        false,
    );
    let len = data[0];
    if len as usize > data.len() - 1 {
        return Err(TunnelPasswordError::BadPassword(len));
    }
    Ok((value[0], data[1..=len as usize].to_vec()))
}

/// Encrypts `password` as a Tunnel-Password value with `tag` and `salt` (its high bit is
/// set here), padded with NULs: what a RADIUS server sends (tests, simulators).
pub fn encrypt_tunnel_password(
    tag: u8,
    password: &[u8],
    salt: [u8; 2],
    secret: &[u8],
    authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>, EncodeError> {
    if password.len() > 239 {
        return Err(EncodeError::PasswordTooLong(password.len()));
    }
    let salt = [salt[0] | 0x80, salt[1]];
    let mut data = vec![password.len() as u8];
    data.extend_from_slice(password);
    data.resize(data.len().div_ceil(16) * 16, 0);
    tunnel_password_stream(&mut data, secret, authenticator, salt, true);
    let mut out = vec![tag, salt[0], salt[1]];
    out.extend_from_slice(&data);
    Ok(out)
}

/// True for requests whose Request Authenticator is random (not a digest).
fn random_authenticator(code: Code) -> bool {
    matches!(code, Code::AccessRequest | Code::StatusServer)
}

/// The packet's attributes with any Message-Authenticator removed and a zero one first.
fn with_zero_ma(p: &Packet) -> Packet {
    let mut q = p.clone();
    q.attributes
        .retain(|a| a.key != AttrKey::Std(MESSAGE_AUTHENTICATOR));
    q.attributes.insert(
        0,
        Attribute::octets(AttrKey::Std(MESSAGE_AUTHENTICATOR), vec![0; 16]),
    );
    q
}

/// Signs a request for `secret`: adds Message-Authenticator, hides User-Password
/// (Access-Request) and fills in the Request Authenticator. For Access-Request and
/// Status-Server the authenticator is `p.authenticator` (the caller makes it random);
/// for Accounting-, CoA- and Disconnect-Request it is computed (RFC 2866 §3).
pub fn sign_request(p: &Packet, secret: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut q = with_zero_ma(p);
    if random_authenticator(p.code) {
        for a in &mut q.attributes {
            if a.key == AttrKey::Std(USER_PASSWORD) {
                a.value = hide_password(&a.value, secret, &p.authenticator)?;
            }
        }
    } else {
        q.authenticator = [0; AUTHENTICATOR_LEN];
    }
    let mut bytes = q.encode()?;
    let ma = hmac_md5(secret, &bytes);
    bytes[MA_VALUE..MA_VALUE + 16].copy_from_slice(&ma);
    if !random_authenticator(p.code) {
        let auth = md5_of(&[&bytes, secret]);
        bytes[4..HEADER_LEN].copy_from_slice(&auth);
    }
    Ok(bytes)
}

/// The authenticator field a reply's Message-Authenticator is computed over: the Request
/// Authenticator (RFC 3579 §3.2, RFC 5176 §3.5), except in Accounting-Response, where
/// FreeRADIUS (the reference server) uses sixteen zero octets as for Accounting-Request.
fn reply_hmac_vector(
    code: Code,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> [u8; AUTHENTICATOR_LEN] {
    if code == Code::AccountingResponse {
        [0; AUTHENTICATOR_LEN]
    } else {
        *request_authenticator
    }
}

/// Signs a reply to a request whose authenticator was `request_authenticator`: adds
/// Message-Authenticator and computes the Response Authenticator.
pub fn sign_reply(
    p: &Packet,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut q = with_zero_ma(p);
    q.authenticator = reply_hmac_vector(p.code, request_authenticator);
    let mut bytes = q.encode()?;
    let ma = hmac_md5(secret, &bytes);
    bytes[MA_VALUE..MA_VALUE + 16].copy_from_slice(&ma);
    bytes[4..HEADER_LEN].copy_from_slice(request_authenticator);
    let auth = md5_of(&[&bytes, secret]);
    bytes[4..HEADER_LEN].copy_from_slice(&auth);
    Ok(bytes)
}

/// Offsets of every Message-Authenticator value in a packet that decoded.
fn ma_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    let mut out = Vec::new();
    let mut off = HEADER_LEN;
    while off + 2 <= len {
        let l = bytes[off + 1] as usize;
        if l < 2 {
            break;
        }
        if bytes[off] == MESSAGE_AUTHENTICATOR {
            out.push((off + 2, l - 2));
        }
        off += l;
    }
    out
}

/// Checks the Message-Authenticator of `work` (a copy whose header already holds the
/// authenticator the HMAC was computed over) against `original`.
fn check_ma(
    original: &[u8],
    mut work: Vec<u8>,
    secret: &[u8],
    require: bool,
) -> Result<(), VerifyError> {
    let found = ma_offsets(original);
    match found.as_slice() {
        [] if require => Err(VerifyError::MissingMessageAuthenticator),
        [] => Ok(()),
        [(off, 16)] => {
            work[*off..*off + 16].fill(0);
            let want = hmac_md5(secret, &work);
            if ct_eq(&want, &original[*off..*off + 16]) {
                Ok(())
            } else {
                Err(VerifyError::BadMessageAuthenticator)
            }
        }
        _ => Err(VerifyError::BadMessageAuthenticator),
    }
}

/// Verifies a reply to a request whose authenticator was `request_authenticator`: the
/// Response Authenticator always, the Message-Authenticator when present, and its
/// presence when `require_ma`.
pub fn verify_reply(
    bytes: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
    require_ma: bool,
) -> Result<Packet, VerifyError> {
    let packet = Packet::decode(bytes)?;
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    let mut work = bytes[..len].to_vec();
    work[4..HEADER_LEN].copy_from_slice(request_authenticator);
    if !ct_eq(&md5_of(&[&work, secret]), &bytes[4..HEADER_LEN]) {
        return Err(VerifyError::BadAuthenticator);
    }
    let vector = reply_hmac_vector(packet.code, request_authenticator);
    if vector != *request_authenticator {
        // Accounting-Response: FreeRADIUS's zero vector, or the Request Authenticator as
        // other servers read RFC 3579.
        let mut zeroed = work.clone();
        zeroed[4..HEADER_LEN].copy_from_slice(&vector);
        if check_ma(&bytes[..len], zeroed, secret, require_ma).is_ok() {
            return Ok(packet);
        }
    }
    check_ma(&bytes[..len], work, secret, require_ma)?;
    Ok(packet)
}

/// Verifies a request received by a server. Accounting-, CoA- and Disconnect-Request:
/// the Request Authenticator (a digest over the packet and the secret); Access-Request
/// and Status-Server: their authenticator is random, so only the Message-Authenticator
/// proves the secret. The Message-Authenticator is checked when present and required
/// when `require_ma`. User-Password stays hidden (see [`unhide_password`]).
pub fn verify_request(
    bytes: &[u8],
    secret: &[u8],
    require_ma: bool,
) -> Result<Packet, VerifyError> {
    let packet = Packet::decode(bytes)?;
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    let mut work = bytes[..len].to_vec();
    if !random_authenticator(packet.code) {
        work[4..HEADER_LEN].fill(0);
        if !ct_eq(&md5_of(&[&work, secret]), &bytes[4..HEADER_LEN]) {
            return Err(VerifyError::BadAuthenticator);
        }
    }
    check_ma(&bytes[..len], work, secret, require_ma)?;
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SECRET: &[u8] = b"xyzzy5461";
    const REQ_AUTH: &str = "0f403f9473978057bd83d5cb98f4227a";

    fn req_auth() -> [u8; 16] {
        hex(REQ_AUTH).try_into().unwrap()
    }

    #[test]
    fn rfc_2865_password_example() {
        let hidden = hide_password(b"arctangent", SECRET, &req_auth()).unwrap();
        assert_eq!(hidden, hex("0dbe708d93d413ce3196e43f782a0aee"));
        assert_eq!(
            unhide_password(&hidden, SECRET, &req_auth()).unwrap(),
            b"arctangent"
        );
    }

    #[test]
    fn long_and_empty_passwords() {
        let a = req_auth();
        for pw in [&b""[..], b"x", &[7u8; 16], &[9u8; 17], &[1u8; 128]] {
            let h = hide_password(pw, SECRET, &a).unwrap();
            assert_eq!(h.len() % 16, 0);
            assert_eq!(unhide_password(&h, SECRET, &a).unwrap(), pw);
        }
        assert_eq!(
            hide_password(&[1; 129], SECRET, &a),
            Err(EncodeError::PasswordTooLong(129))
        );
        assert_eq!(
            unhide_password(&[0; 15], SECRET, &a),
            Err(PasswordError::BadLength(15))
        );
    }

    /// FreeRADIUS's own encoding of `Tunnel-Password := "foo"` (its unit tests
    /// src/tests/unit/protocols/radius/rfc2868.txt: secret testing123, Request
    /// Authenticator 00 01 .. 0f, salt from a seeded generator; padding not zeroed).
    #[test]
    fn freeradius_tunnel_password_vector() {
        let attr = hex("4515008e93e4f7681f3db7b92510832a9b1990330a");
        assert_eq!(attr[0], 69);
        assert_eq!(attr[1] as usize, attr.len());
        let auth: [u8; 16] = std::array::from_fn(|i| i as u8);
        let (tag, pw) = decrypt_tunnel_password(&attr[2..], b"testing123", &auth).unwrap();
        assert_eq!((tag, &pw[..]), (0, &b"foo"[..]));
        // Another secret or authenticator: the length octet is garbage (or, 1 time in
        // 16, a wrong password).
        assert_ne!(
            decrypt_tunnel_password(&attr[2..], b"testing124", &auth).map(|p| p.1),
            Ok(b"foo".to_vec())
        );
        assert_ne!(
            decrypt_tunnel_password(&attr[2..], b"testing123", &[0; 16]).map(|p| p.1),
            Ok(b"foo".to_vec())
        );
    }

    #[test]
    fn tunnel_passwords_round_trip() {
        let a = req_auth();
        for pw in [&b""[..], b"x", &[7u8; 15], &[9u8; 16], &[1u8; 239]] {
            let v = encrypt_tunnel_password(5, pw, [0x12, 0x34], SECRET, &a).unwrap();
            assert_eq!(&v[..3], &[5, 0x92, 0x34], "tag, salt with its high bit");
            assert_eq!((v.len() - 3) % 16, 0);
            assert_eq!(
                decrypt_tunnel_password(&v, SECRET, &a).unwrap(),
                (5, pw.to_vec())
            );
        }
        // Two blocks: the second block's key chains on the first ciphertext block.
        let v = encrypt_tunnel_password(1, &[0x41; 20], [0, 1], SECRET, &a).unwrap();
        assert_eq!(v.len(), 3 + 32);
        let mut tampered = v.clone();
        tampered[3 + 16] ^= 1;
        assert_ne!(
            decrypt_tunnel_password(&tampered, SECRET, &a).unwrap().1,
            vec![0x41; 20]
        );
        assert!(encrypt_tunnel_password(1, &[0; 240], [0, 1], SECRET, &a).is_err());
        for n in [0, 3, 18, 20, 3 + 256] {
            assert_eq!(
                decrypt_tunnel_password(&vec![0; n], SECRET, &a),
                Err(TunnelPasswordError::BadLength(n))
            );
        }
    }

    #[test]
    fn rfc_2865_accept_response_authenticator() {
        // RFC 2865 §7.1 Access-Accept (no Message-Authenticator in 1997).
        let accept =
            hex("0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103");
        let p = verify_reply(&accept, &req_auth(), SECRET, false).unwrap();
        assert_eq!(p.code, Code::AccessAccept);
        assert_eq!(
            verify_reply(&accept, &req_auth(), SECRET, true),
            Err(VerifyError::MissingMessageAuthenticator)
        );
        assert_eq!(
            verify_reply(&accept, &req_auth(), b"wrong", false),
            Err(VerifyError::BadAuthenticator)
        );
    }

    #[test]
    fn access_request_and_reply_round_trip() {
        let mut req = Packet::new(Code::AccessRequest, 42);
        req.authenticator = req_auth();
        req.push(Attribute::text(AttrKey::Std(1), "nemo"))
            .push(Attribute::text(AttrKey::Std(2), "arctangent"));
        let bytes = sign_request(&req, SECRET).unwrap();
        let got = verify_request(&bytes, SECRET, true).unwrap();
        assert_eq!(got.attributes[0].key, AttrKey::Std(80));
        let hidden = &got.get(AttrKey::Std(2)).unwrap().value;
        assert_eq!(
            unhide_password(hidden, SECRET, &got.authenticator).unwrap(),
            b"arctangent"
        );
        assert_eq!(
            verify_request(&bytes, b"other", true),
            Err(VerifyError::BadMessageAuthenticator)
        );

        let mut accept = Packet::new(Code::AccessAccept, 42);
        accept.push(Attribute::u32(AttrKey::Std(27), 60));
        let reply = sign_reply(&accept, &req_auth(), SECRET).unwrap();
        let ok = verify_reply(&reply, &req_auth(), SECRET, true).unwrap();
        assert_eq!(ok.get(AttrKey::Std(27)).unwrap().as_u32(), Ok(60));
        // A flipped attribute bit breaks the Response Authenticator.
        let mut bad = reply.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            verify_reply(&bad, &req_auth(), SECRET, true),
            Err(VerifyError::BadAuthenticator)
        );
    }

    #[test]
    fn forged_message_authenticator_is_caught() {
        // A reply whose Response Authenticator is right but whose Message-Authenticator
        // is not (what a BlastRADIUS-style forgery would produce).
        let mut accept = Packet::new(Code::AccessAccept, 1);
        accept.push(Attribute::octets(AttrKey::Std(80), vec![0x55; 16]));
        let mut bytes = accept.encode().unwrap();
        bytes[4..20].copy_from_slice(&req_auth());
        let auth = md5_of(&[&bytes, SECRET]);
        bytes[4..20].copy_from_slice(&auth);
        assert_eq!(
            verify_reply(&bytes, &req_auth(), SECRET, true),
            Err(VerifyError::BadMessageAuthenticator)
        );
    }

    #[test]
    fn accounting_and_coa_requests_verify() {
        for code in [
            Code::AccountingRequest,
            Code::CoaRequest,
            Code::DisconnectRequest,
        ] {
            let mut p = Packet::new(code, 3);
            p.push(Attribute::text(AttrKey::Std(44), "sess-1"));
            let bytes = sign_request(&p, SECRET).unwrap();
            assert!(verify_request(&bytes, SECRET, true).is_ok());
            assert_eq!(
                verify_request(&bytes, b"nope", false),
                Err(VerifyError::BadAuthenticator)
            );
            // Without Message-Authenticator, computed the RFC 2866 way.
            let mut plain = p.encode().unwrap();
            let auth = md5_of(&[&plain, SECRET]);
            plain[4..20].copy_from_slice(&auth);
            assert!(verify_request(&plain, SECRET, false).is_ok());
            assert_eq!(
                verify_request(&plain, SECRET, true),
                Err(VerifyError::MissingMessageAuthenticator)
            );
        }
    }

    #[test]
    fn accounting_response_uses_freeradius_vector_and_accepts_the_rfc_one() {
        let mut req = Packet::new(Code::AccountingRequest, 9);
        req.push(Attribute::text(AttrKey::Std(44), "s"));
        let sent = sign_request(&req, SECRET).unwrap();
        let auth: [u8; 16] = sent[4..20].try_into().unwrap();
        let resp = Packet::new(Code::AccountingResponse, 9);
        let bytes = sign_reply(&resp, &auth, SECRET).unwrap();
        assert!(verify_reply(&bytes, &auth, SECRET, true).is_ok());
        // The same reply signed the way RFC 3579 reads for Access replies.
        let mut q = with_zero_ma(&resp);
        q.authenticator = auth;
        let mut other = q.encode().unwrap();
        let ma = hmac_md5(SECRET, &other);
        other[MA_VALUE..MA_VALUE + 16].copy_from_slice(&ma);
        let ra = md5_of(&[&other, SECRET]);
        other[4..20].copy_from_slice(&ra);
        assert!(verify_reply(&other, &auth, SECRET, true).is_ok());
    }

    #[test]
    fn duplicate_message_authenticator_is_rejected() {
        let mut p = Packet::new(Code::AccessAccept, 1);
        p.push(Attribute::octets(AttrKey::Std(80), vec![0; 16]));
        p.push(Attribute::octets(AttrKey::Std(80), vec![0; 16]));
        let mut bytes = p.encode().unwrap();
        bytes[4..20].copy_from_slice(&req_auth());
        let auth = md5_of(&[&bytes, SECRET]);
        bytes[4..20].copy_from_slice(&auth);
        assert_eq!(
            verify_reply(&bytes, &req_auth(), SECRET, true),
            Err(VerifyError::BadMessageAuthenticator)
        );
    }
}
