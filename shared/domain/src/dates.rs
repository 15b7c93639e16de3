//! Timestamps as campaign tools write them, normalised to RFC 3339 UTC.

use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Utc};

/// Parses an ISO-8601 timestamp with an explicit offset.
///
/// Accepts `Z`, `+00:00` and `+0000` style offsets (any offset, converted to
/// UTC) and optional fractional seconds. A timestamp without an offset is
/// refused: guessing a time zone for an offer's validity is worse than asking.
///
/// Years are 0001 to 9999 (in UTC): stored text then always has four year
/// digits, so that text order is time order (`+10000-…` would sort before
/// `2024-…`), and date arithmetic on it cannot overflow.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    // Anything longer is not a timestamp; no need to hand it to the parser.
    if text.len() > 64 {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::<FixedOffset>::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|parsed| parsed.with_timezone(&Utc))
        .filter(|at| (MIN_YEAR..=MAX_YEAR).contains(&at.year()))
}

/// The first and last years a timestamp may have.
pub const MIN_YEAR: i32 = 1;
pub const MAX_YEAR: i32 = 9_999;

/// Formats a timestamp as RFC 3339 in UTC with a `Z` suffix, e.g. `2023-10-20T17:37:37Z`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Serde adapter that stores `DateTime<Utc>` as RFC 3339 UTC text.
pub mod rfc3339 {
    use super::{format_timestamp, parse_timestamp};
    use chrono::{DateTime, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_timestamp(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_timestamp(&text).ok_or_else(|| D::Error::custom(format!("not a timestamp: {text}")))
    }

    /// The same for optional timestamps.
    pub mod option {
        use super::{format_timestamp, parse_timestamp};
        use chrono::{DateTime, Utc};
        use serde::{de::Error, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => serializer.serialize_str(&format_timestamp(*at)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(deserializer)? {
                Some(text) => parse_timestamp(&text)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(format!("not a timestamp: {text}"))),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_utc_offset_spellings() {
        let expected = "2023-10-20T17:37:37Z";
        for text in [
            "2023-10-20T17:37:37+0000",
            "2023-10-20T17:37:37+00:00",
            "2023-10-20T17:37:37Z",
        ] {
            let parsed = parse_timestamp(text).unwrap_or_else(|| panic!("{text} should parse"));
            assert_eq!(format_timestamp(parsed), expected, "{text}");
        }
    }

    #[test]
    fn accepts_the_first_and_last_years() {
        for text in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"] {
            let parsed = parse_timestamp(text).unwrap_or_else(|| panic!("{text} should parse"));
            assert_eq!(parse_timestamp(&format_timestamp(parsed)), Some(parsed));
        }
    }

    #[test]
    fn converts_other_offsets_to_utc_and_keeps_fractions() {
        let parsed = parse_timestamp("2023-10-20T19:37:37.250+0200").expect("parses");
        assert_eq!(format_timestamp(parsed), "2023-10-20T17:37:37.250Z");
    }

    #[test]
    fn refuses_text_without_offset_or_date() {
        for text in [
            "2023-10-20T17:37:37",
            "2023-10-20",
            "yesterday",
            "",
            "2023-13-40T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "+275000-01-01T00:00:00+0000",
            "-0001-01-01T00:00:00+0000",
            "0000-12-31T23:00:00Z",
            "0001-01-01T00:00:00+0100",
        ] {
            assert!(parse_timestamp(text).is_none(), "{text} should not parse");
        }
    }
}
