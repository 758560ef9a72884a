//! Money: integer minor units (cents), and the one rounding rule.
//!
//! A rate is a price in minor units for `per` units of quantity (200 per 1 000 000 bytes
//! is 2.00 per MB). A charge line's amount is the exact rational `quantity × price / per`,
//! rounded half to even once, to whole minor units. Nothing is rounded before that, and
//! an invoice total is the plain sum of its line amounts. No floating point anywhere.

/// Rounds `num / den` to the nearest integer, ties to even. `den` must not be 0.
pub fn div_round_half_even(num: u128, den: u128) -> u128 {
    let q = num / den;
    let r = num % den;
    // Compare 2r with den without overflowing: r < den, so den - r > 0.
    let rest = den - r;
    if r > rest || (r == rest && q % 2 == 1) {
        q + 1
    } else {
        q
    }
}

/// The amount of a charge line: `quantity × price / per`, rounded half to even to whole
/// minor units. `None` when it does not fit an `i64` (or `per` is 0, which validation
/// refuses).
pub fn charge(quantity: u64, price: u64, per: u64) -> Option<i64> {
    if per == 0 {
        return None;
    }
    let num = u128::from(quantity).checked_mul(u128::from(price))?;
    i64::try_from(div_round_half_even(num, u128::from(per))).ok()
}

/// Formats minor units with `digits` decimals: `format_minor(123456, 2)` is `1234.56`.
pub fn format_minor(amount: i64, digits: u8) -> String {
    if digits == 0 {
        return amount.to_string();
    }
    let scale = 10u128.pow(u32::from(digits));
    let a = u128::from(amount.unsigned_abs());
    let sign = if amount < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0w$}",
        a / scale,
        a % scale,
        w = usize::from(digits)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even() {
        assert_eq!(div_round_half_even(5, 2), 2); // 2.5 -> 2
        assert_eq!(div_round_half_even(7, 2), 4); // 3.5 -> 4
        assert_eq!(div_round_half_even(11, 4), 3); // 2.75 -> 3
        assert_eq!(div_round_half_even(9, 4), 2); // 2.25 -> 2
        assert_eq!(div_round_half_even(0, 7), 0);
        assert_eq!(div_round_half_even(u128::MAX, u128::MAX), 1);
        assert_eq!(div_round_half_even(u128::MAX - 1, u128::MAX), 1);
    }

    #[test]
    fn charges_and_formatting() {
        // 1 200 000 bytes at 2.00 per MB = 240 cents.
        assert_eq!(charge(1_200_000, 200, 1_000_000), Some(240));
        // 1 byte at 1 cent per 3 bytes = 0.333 -> 0; 2 bytes -> 0.667 -> 1.
        assert_eq!(charge(1, 1, 3), Some(0));
        assert_eq!(charge(2, 1, 3), Some(1));
        assert_eq!(charge(1, 1, 0), None);
        assert_eq!(charge(u64::MAX, u64::MAX, 1), None);
        assert_eq!(format_minor(123_456, 2), "1234.56");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 3), "-0.005");
        assert_eq!(format_minor(42, 0), "42");
    }
}
