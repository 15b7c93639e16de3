//! Money amounts of the app's API (contract section 7: a redemption's
//! `totalCost` and `discount`): >= 0, below 10^9, at most four decimal
//! places by value (amount x 10^4 is an integer: `1.50000` and `1e-4` are
//! amounts, `1e-5` is not).
//!
//! An amount is read from the JSON number's own text, digit by digit, never
//! through a binary float: `0.10000000000000000001` has more than four
//! decimal places even though the nearest double is `0.1`. Held as a whole
//! number of ten-thousandths (below 10^13), every amount the API accepts is
//! summed exactly by campaign statistics.

use serde_json::Number;

/// Decimal places an amount may have.
pub const AMOUNT_DECIMALS: i64 = 4;
/// Amounts are below this many whole units.
pub const AMOUNT_LIMIT: u64 = 1_000_000_000;
/// Ten-thousandths in one unit.
const UNIT: u64 = 10_000;
/// The most digits of an amount in ten-thousandths (below 10^13).
const MAX_DIGITS: i64 = 13;
/// Exponents are clamped here: beyond it any non-zero amount is out of
/// bounds either way, and the arithmetic below cannot overflow.
const MAX_EXPONENT: i64 = 1_000_000;

/// An amount of money, in ten-thousandths of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Amount {
    ten_thousandths: u64,
}

impl Amount {
    pub const ZERO: Amount = Amount { ten_thousandths: 0 };

    /// The amount of `ten_thousandths`, if it is below the limit.
    pub fn from_ten_thousandths(ten_thousandths: u64) -> Option<Amount> {
        (ten_thousandths < AMOUNT_LIMIT * UNIT).then_some(Amount { ten_thousandths })
    }

    pub fn ten_thousandths(self) -> u64 {
        self.ten_thousandths
    }

    /// Reads a JSON number's text exactly; `None` for anything that is not
    /// a number within the bounds (a string, a negative number, 1e9, five
    /// decimal places). `-0` is zero.
    pub fn parse(text: &str) -> Option<Amount> {
        let text = text.trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
            None => (unsigned, None),
        };
        let (whole, fraction) = match mantissa.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (mantissa, None),
        };
        let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(whole) || fraction.is_some_and(|fraction| !digits_only(fraction)) {
            return None;
        }
        let exponent = match exponent {
            Some(text) => parse_exponent(text)?,
            None => 0,
        };
        let fraction = fraction.unwrap_or_default();
        // value = significant x 10^-scale
        let all_digits = format!("{whole}{fraction}");
        let significant = all_digits.trim_start_matches('0');
        let without_trailing = significant.trim_end_matches('0');
        if without_trailing.is_empty() {
            return Some(Amount::ZERO);
        }
        if negative {
            return None;
        }
        let stripped = i64::try_from(significant.len() - without_trailing.len()).ok()?;
        let fraction_len = i64::try_from(fraction.len()).ok()?;
        let scale = fraction_len - exponent - stripped;
        if scale > AMOUNT_DECIMALS {
            return None;
        }
        let shift = AMOUNT_DECIMALS - scale;
        let digits = i64::try_from(without_trailing.len()).ok()?;
        if digits.checked_add(shift)? > MAX_DIGITS {
            return None;
        }
        let mut ten_thousandths: u64 = without_trailing.parse().ok()?;
        for _ in 0..shift {
            ten_thousandths = ten_thousandths.checked_mul(10)?;
        }
        Amount::from_ten_thousandths(ten_thousandths)
    }

    /// The shortest decimal text of the amount: `12.5`, `10`, `0.0001`.
    pub fn to_text(self) -> String {
        let whole = self.ten_thousandths / UNIT;
        let fraction = self.ten_thousandths % UNIT;
        if fraction == 0 {
            return whole.to_string();
        }
        let fraction = format!("{fraction:04}");
        format!("{whole}.{}", fraction.trim_end_matches('0'))
    }

    /// The amount as a JSON number: a whole number as an integer (as
    /// DynamoDB gives it back), else the double nearest to it, whose
    /// shortest text is the amount's own (13 significant digits at most).
    pub fn to_number(self) -> Number {
        let whole = self.ten_thousandths / UNIT;
        if self.ten_thousandths.is_multiple_of(UNIT) {
            return Number::from(whole);
        }
        // Both exact as doubles; IEEE division rounds to the nearest.
        let value = self.ten_thousandths as f64 / UNIT as f64;
        Number::from_f64(value).unwrap_or_else(|| Number::from(whole))
    }
}

/// An exponent's text: an optional sign and digits, clamped to
/// ±[`MAX_EXPONENT`].
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    let magnitude = if digits.len() > 7 {
        MAX_EXPONENT
    } else {
        digits.parse::<i64>().unwrap_or(0).min(MAX_EXPONENT)
    };
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn units(text: &str) -> Option<u64> {
        Amount::parse(text).map(Amount::ten_thousandths)
    }

    #[test]
    fn the_contracts_examples() {
        assert_eq!(units("1.50000"), Some(15_000));
        assert_eq!(units("1e-4"), Some(1));
        assert_eq!(units("1E-4"), Some(1));
        assert_eq!(units("1e-5"), None);
        assert_eq!(units("999999999.9999"), Some(9_999_999_999_999));
        assert_eq!(units("1e9"), None);
        assert_eq!(units("1000000000"), None);
        assert_eq!(units("999999999.99990"), Some(9_999_999_999_999));
        assert_eq!(units("0.00001"), None);
        assert_eq!(units("12.34567"), None);
        assert_eq!(units("-1"), None);
        assert_eq!(units("-0.0001"), None);
        assert_eq!(units("-0"), Some(0));
        assert_eq!(units("0e999999999999999999999"), Some(0));
        assert_eq!(units("0"), Some(0));
        assert_eq!(units("100"), Some(1_000_000));
        assert_eq!(units("1.5e2"), Some(1_500_000));
        assert_eq!(units("12345e-4"), Some(12_345));
        assert_eq!(units("1e+8"), Some(1_000_000_000_000));
        assert_eq!(units("1e30"), None);
        assert_eq!(units("1e-100"), None);
        assert_eq!(units("1e99999999999999999999"), None);
        assert_eq!(units("1e-99999999999999999999"), None);
        // The nearest double is 0.1; the value has 20 decimal places.
        assert_eq!(units("0.10000000000000000001"), None);
        for text in [
            "\"12\"", "NaN", "nan", "Infinity", "", ".5", "5.", "1e", "1e+", "--1", "0x10", "1_0",
            "true", "null",
        ] {
            assert_eq!(units(text), None, "{text}");
        }
    }

    #[test]
    fn text_and_numbers_are_the_shortest_exact_forms() {
        let of = |text: &str| Amount::parse(text).expect(text);
        assert_eq!(of("10.0").to_text(), "10");
        assert_eq!(of("1.50000").to_text(), "1.5");
        assert_eq!(of("1e-4").to_text(), "0.0001");
        assert_eq!(of("999999999.9999").to_text(), "999999999.9999");
        assert_eq!(of("10.0").to_number(), Number::from(10));
        assert_eq!(
            of("999999999.9999").to_number().to_string(),
            "999999999.9999"
        );
        assert_eq!(of("0.0001").to_number().to_string(), "0.0001");
    }

    proptest! {
        /// Every amount in bounds reads back from its text and its number,
        /// and the number's text is the amount's.
        #[test]
        fn every_amount_round_trips(units in 0u64..AMOUNT_LIMIT * UNIT) {
            let amount = Amount::from_ten_thousandths(units).expect("in bounds");
            prop_assert_eq!(Amount::parse(&amount.to_text()), Some(amount));
            let number = amount.to_number();
            prop_assert_eq!(Amount::parse(&number.to_string()), Some(amount));
        }

        /// Any text: never a panic, and what is accepted is within bounds.
        #[test]
        fn any_text_is_read_or_refused(text in "-?[0-9]{0,20}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{0,25})?") {
            if let Some(amount) = Amount::parse(&text) {
                prop_assert!(amount.ten_thousandths() < AMOUNT_LIMIT * UNIT);
            }
        }
    }
}
