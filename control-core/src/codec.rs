//! The byte form of state the caller persists (DHCP leases, `dhcp::LeaseRecord` and
//! `dhcpv6::LeaseRecord`): a kind byte and a version byte, then big-endian integers and
//! length-prefixed byte strings. Reading checks every length and never panics; a record
//! of another kind or version is refused, not guessed at.

use crate::wire::WireError;

/// Builds a record.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    /// A record of `kind`, format `version`.
    pub(crate) fn new(kind: u8, version: u8) -> Writer {
        let mut v = Vec::with_capacity(96);
        v.push(kind);
        v.push(version);
        Writer(v)
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }

    /// A byte string of at most 65535 bytes (longer ones are cut).
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let v = &v[..v.len().min(u16::MAX as usize)];
        self.u16(v.len() as u16);
        self.raw(v)
    }

    /// An optional byte string: a presence byte, then the string.
    pub(crate) fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).bytes(v),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a record back.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Checks the kind and version bytes.
    pub(crate) fn new(b: &'a [u8], kind: u8, version: u8) -> Result<Reader<'a>, WireError> {
        match b {
            [k, v, rest @ ..] if *k == kind && *v == version => Ok(Reader(rest)),
            [_, _, ..] => Err(WireError::Malformed),
            _ => Err(WireError::Truncated),
        }
    }

    pub(crate) fn raw(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (v, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(v)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.raw(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.raw(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u16()? as usize;
        self.raw(n)
    }

    pub(crate) fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(WireError::Malformed),
        }
    }

    /// A presence byte: 0 or 1.
    pub(crate) fn flag(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed),
        }
    }

    /// Nothing may follow the last field.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut w = Writer::new(7, 1);
        w.u8(1)
            .u16(0x0203)
            .u32(0x0405_0607)
            .u64(9)
            .bytes(b"ab")
            .opt_bytes(None)
            .opt_bytes(Some(b"c"));
        let b = w.finish();
        let mut r = Reader::new(&b, 7, 1).unwrap();
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Ok(9));
        assert_eq!(r.bytes(), Ok(&b"ab"[..]));
        assert_eq!(r.opt_bytes(), Ok(None));
        assert_eq!(r.opt_bytes(), Ok(Some(&b"c"[..])));
        assert_eq!(r.finish(), Ok(()));
        assert!(Reader::new(&b, 7, 2).is_err());
        assert!(Reader::new(&b, 8, 1).is_err());
        assert_eq!(Reader::new(&b[..1], 7, 1).err(), Some(WireError::Truncated));
        let mut r = Reader::new(&b[..6], 7, 1).unwrap();
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u32(), Err(WireError::Truncated));
        let mut extra = b.clone();
        extra.push(0);
        let mut r = Reader::new(&extra, 7, 1).unwrap();
        r.raw(b.len() - 2).unwrap();
        assert_eq!(r.finish(), Err(WireError::Malformed));
    }
}
