//! Instants as the API shows them: RFC 3339, UTC, millisecond precision.

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant with millisecond precision in years 0001–9999, shown as
/// `2024-03-01T12:34:56.789Z` (always UTC, always three fraction digits,
/// which is also what JavaScript's `Date` produced in the original API).
///
/// Built from Unix milliseconds the caller supplies (this crate reads no
/// clock), or parsed from any RFC 3339 text: other offsets are converted to
/// UTC and digits beyond milliseconds are truncated toward the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_millis: i64,
}

/// Why a timestamp was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not RFC 3339 text.
    NotRfc3339,
    /// Outside years 0001–9999.
    OutOfRange,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimestampError::NotRfc3339 => "not an RFC 3339 timestamp",
            TimestampError::OutOfRange => "timestamp outside years 0001-9999",
        })
    }
}

impl std::error::Error for TimestampError {}

impl Timestamp {
    /// 0001-01-01T00:00:00.000Z.
    pub const MIN_UNIX_MILLIS: i64 = -62_135_596_800_000;
    /// 9999-12-31T23:59:59.999Z.
    pub const MAX_UNIX_MILLIS: i64 = 253_402_300_799_999;

    pub fn from_unix_millis(unix_millis: i64) -> Result<Self, TimestampError> {
        if (Self::MIN_UNIX_MILLIS..=Self::MAX_UNIX_MILLIS).contains(&unix_millis) {
            Ok(Self { unix_millis })
        } else {
            Err(TimestampError::OutOfRange)
        }
    }

    pub fn unix_millis(&self) -> i64 {
        self.unix_millis
    }

    fn date_time(&self) -> OffsetDateTime {
        // In range by construction, so the conversion cannot fail.
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_millis) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, TimestampError> {
        let parsed = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimestampError::NotRfc3339)?;
        let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        let millis = i64::try_from(millis).map_err(|_| TimestampError::OutOfRange)?;
        Self::from_unix_millis(millis)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.date_time();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn millis_of(t: OffsetDateTime) -> i64 {
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn range_constants_are_the_documented_instants() {
        assert_eq!(
            Timestamp::MIN_UNIX_MILLIS,
            millis_of(datetime!(0001-01-01 0:00 UTC))
        );
        assert_eq!(
            Timestamp::MAX_UNIX_MILLIS,
            millis_of(datetime!(9999-12-31 23:59:59.999 UTC))
        );
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        let t = Timestamp::from_unix_millis(0).unwrap();
        assert_eq!(t.to_string(), "1970-01-01T00:00:00.000Z");
        let t = Timestamp::from_unix_millis(millis_of(datetime!(2024-02-29 13:04:05.067 UTC)));
        assert_eq!(t.unwrap().to_string(), "2024-02-29T13:04:05.067Z");
        let t = Timestamp::from_unix_millis(-1).unwrap();
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.999Z");
        let min = Timestamp::from_unix_millis(Timestamp::MIN_UNIX_MILLIS).unwrap();
        assert_eq!(min.to_string(), "0001-01-01T00:00:00.000Z");
        let max = Timestamp::from_unix_millis(Timestamp::MAX_UNIX_MILLIS).unwrap();
        assert_eq!(max.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn range_is_enforced() {
        assert_eq!(
            Timestamp::from_unix_millis(Timestamp::MIN_UNIX_MILLIS - 1),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            Timestamp::from_unix_millis(Timestamp::MAX_UNIX_MILLIS + 1),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            Timestamp::from_unix_millis(i64::MIN),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn parses_rfc3339_and_normalises_to_utc() {
        let t: Timestamp = "2024-01-01T10:00:00+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2024-01-01T08:00:00.000Z");
        let t: Timestamp = "2024-01-01T10:00:00.123456Z".parse().unwrap();
        assert_eq!(t.to_string(), "2024-01-01T10:00:00.123Z");
        let t: Timestamp = "1969-12-31T23:59:59.9999Z".parse().unwrap();
        assert_eq!(t.unix_millis(), -1);
        // RFC 3339 section 5.6 lets a space stand for the "T".
        let t: Timestamp = "2024-01-01 10:00:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2024-01-01T10:00:00.000Z");
        let s = "2023-07-08T09:10:11.012Z";
        assert_eq!(s.parse::<Timestamp>().unwrap().to_string(), s);
    }

    #[test]
    fn rejects_non_rfc3339() {
        for s in [
            "",
            "2024-01-01",
            "2024-01-01T10:00:00",
            "2024-01-01T10:00Z",
            "yesterday",
            "1704067200000",
        ] {
            assert_eq!(
                s.parse::<Timestamp>(),
                Err(TimestampError::NotRfc3339),
                "{s:?}"
            );
        }
    }
}
