//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::Ipv4Addr;

/// One's-complement sum of `data` as big-endian 16-bit words, not folded. An odd final
/// byte is padded with zero.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        acc += (rest[i] as u64) << 8;
    }
    // Fold 64 -> 32 bits keeping the carries (one's complement arithmetic).
    let folded = (acc & 0xffff_ffff) + (acc >> 32);
    let folded = (folded & 0xffff_ffff) + (folded >> 32);
    folded as u32
}

/// True when the 20 bytes `h` (an IPv4 header without options) sum to 0xffff, that is
/// when its checksum verifies. Summed as five 32-bit words in memory order: a one's
/// complement sum of 32-bit words folds to the sum of their 16-bit halves, and a sum of
/// byte-swapped words is the byte-swapped sum (RFC 1071 §2), which for 0xffff is itself.
#[inline(always)]
pub fn verifies_20(h: &[u8; 20]) -> bool {
    let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    fold_wide(w(0) + w(4) + w(8) + w(12) + w(16)) == 0xffff
}

/// Folds a one's complement sum below 2^40 (a few dozen 16- and 32-bit words) into 16
/// bits: three end-around carries of 16 bits each.
#[inline(always)]
pub fn fold_wide(s: u64) -> u16 {
    debug_assert!(s < 1 << 40);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Adds two unfolded one's-complement sums (from [`sum`] and [`pseudo_header_sum`]) with
/// the end-around carry: a plain `+` overflows when [`sum`] is near 2^32, which a
/// segment of large 32-bit words makes.
#[inline(always)]
pub fn add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u32
}

/// Folds a 32-bit one's-complement sum into 16 bits.
#[inline(always)]
pub fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The checksum field value for `data` (complement of the folded sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Sum of the IPv4 pseudo-header used by TCP and UDP.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u16::from_be_bytes([s[0], s[1]]) as u32
        + u16::from_be_bytes([s[2], s[3]]) as u32
        + u16::from_be_bytes([d[0], d[1]]) as u32
        + u16::from_be_bytes([d[2], d[3]]) as u32
        + protocol as u32
        + l4_len as u32
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changed
/// from `old` to `new`: `HC' = ~(~HC + ~m + m')`. Correct for every input, including the
/// 0x0000/0xffff cases that RFC 1141's form gets wrong.
#[inline(always)]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let s = (!hc as u32) + (!old as u32 & 0xffff) + new as u32;
    !fold(s)
}

/// RFC 1624 update for a 32-bit field (an address) that changed from `old` to `new`.
#[inline(always)]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let s = (!hc as u32) + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold(s)
}

/// Completes a checksum that a sender left partial (Linux `CHECKSUM_PARTIAL`, reported by
/// AF_PACKET as `TP_STATUS_CSUMNOTREADY`): the field at `csum_at` already holds the
/// pseudo-header sum, so the full checksum is the complement of the sum over `l4`.
/// `zero_is_ffff` is set for UDP, where a computed zero is sent as 0xffff.
pub fn complete_partial(l4: &mut [u8], csum_at: usize, zero_is_ffff: bool) -> bool {
    if l4.len() < csum_at + 2 {
        return false;
    }
    let mut c = checksum(l4);
    if c == 0 && zero_is_ffff {
        c = 0xffff;
    }
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: sum of these words is 0xddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn adding_sums_keeps_the_carry_past_32_bits() {
        // Five words of 0xffff_fffe sum (folded to 32 bits) near 2^32: the pseudo-header
        // must add with the end-around carry, as RFC 1071 adds 16-bit words.
        let data = [0xff, 0xff, 0xff, 0xfe].repeat(5);
        let pseudo = pseudo_header_sum([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17, 20);
        let words = data
            .chunks(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]) as u64);
        let by_16 = words.sum::<u64>() + pseudo as u64;
        assert_eq!(fold(add(sum(&data), pseudo)), fold_wide(by_16));
    }

    #[test]
    fn incremental_matches_full_recompute() {
        // An IPv4 header; change the TTL/protocol word and an address.
        let mut h = [
            0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&h), 0);

        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let inc = update16(c, old, new);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&h));
        h[10..12].copy_from_slice(&inc.to_be_bytes());

        let old_addr = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        let new_addr = 0x0a00_0001u32;
        h[16..20].copy_from_slice(&new_addr.to_be_bytes());
        let inc2 = update32(inc, old_addr, new_addr);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc2, checksum(&h));
    }

    proptest::proptest! {
        #[test]
        fn update16_equals_recompute(mut words in proptest::collection::vec(proptest::num::u16::ANY, 2..40),
                                     idx in 0usize..40, new in proptest::num::u16::ANY) {
            let idx = idx % words.len();
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let hc = checksum(&bytes(&words));
            let old = words[idx];
            words[idx] = new;
            let full = checksum(&bytes(&words));
            let inc = update16(hc, old, new);
            // Both are valid encodings of the same one's-complement value.
            proptest::prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }

        /// The 32-bit, memory-order verification says what the RFC 1071 sum says, for
        /// any 20 bytes and for each with its checksum filled in (which must verify).
        #[test]
        fn verifies_20_agrees_with_the_sum(mut h in proptest::array::uniform20(proptest::num::u8::ANY)) {
            proptest::prop_assert_eq!(verifies_20(&h), fold(sum(&h)) == 0xffff);
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            proptest::prop_assert!(verifies_20(&h));
            h[3] ^= 1;
            proptest::prop_assert!(!verifies_20(&h));
        }
    }
}
