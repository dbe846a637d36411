//! `createdDate`: one canonical text form, since it is hashed.

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant in years 0001–9999 with millisecond precision, always written
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`. Fixed width, so the text sorts like the
/// instant and a range query on it is a string comparison. Parsing accepts
/// only that exact form: a record's hashed text has one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditTime {
    unix_millis: i64,
}

/// Outside years 0001–9999, or not the canonical text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidAuditTime;

impl fmt::Display for InvalidAuditTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a time of the form YYYY-MM-DDTHH:MM:SS.mmmZ in years 0001-9999")
    }
}

impl std::error::Error for InvalidAuditTime {}

const MIN_UNIX_MILLIS: i64 = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
const MAX_UNIX_MILLIS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

impl AuditTime {
    /// From Unix milliseconds the caller read from its clock.
    pub fn from_unix_millis(unix_millis: i64) -> Result<Self, InvalidAuditTime> {
        if (MIN_UNIX_MILLIS..=MAX_UNIX_MILLIS).contains(&unix_millis) {
            Ok(Self { unix_millis })
        } else {
            Err(InvalidAuditTime)
        }
    }

    pub fn unix_millis(&self) -> i64 {
        self.unix_millis
    }
}

impl FromStr for AuditTime {
    type Err = InvalidAuditTime;

    fn from_str(s: &str) -> Result<Self, InvalidAuditTime> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| InvalidAuditTime)?;
        let millis = i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
            .map_err(|_| InvalidAuditTime)?;
        let parsed = Self::from_unix_millis(millis)?;
        // Any other spelling of the same instant is refused.
        if parsed.to_string() == s {
            Ok(parsed)
        } else {
            Err(InvalidAuditTime)
        }
    }
}

impl fmt::Display for AuditTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In range by construction, so the conversion cannot fail.
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_millis) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
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

    fn millis(t: OffsetDateTime) -> i64 {
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn bounds_are_years_1_to_9999() {
        assert_eq!(MIN_UNIX_MILLIS, millis(datetime!(0001-01-01 0:00 UTC)));
        assert_eq!(
            MAX_UNIX_MILLIS,
            millis(datetime!(9999-12-31 23:59:59.999 UTC))
        );
        assert!(AuditTime::from_unix_millis(MIN_UNIX_MILLIS).is_ok());
        assert!(AuditTime::from_unix_millis(MAX_UNIX_MILLIS).is_ok());
        assert_eq!(
            AuditTime::from_unix_millis(MIN_UNIX_MILLIS - 1),
            Err(InvalidAuditTime)
        );
        assert_eq!(
            AuditTime::from_unix_millis(MAX_UNIX_MILLIS + 1),
            Err(InvalidAuditTime)
        );
    }

    #[test]
    fn canonical_text_round_trips() {
        let t =
            AuditTime::from_unix_millis(millis(datetime!(2024-05-06 07:08:09.010 UTC))).unwrap();
        assert_eq!(t.to_string(), "2024-05-06T07:08:09.010Z");
        assert_eq!("2024-05-06T07:08:09.010Z".parse::<AuditTime>(), Ok(t));
        assert_eq!(
            AuditTime::from_unix_millis(-1).unwrap().to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn other_spellings_are_refused() {
        for s in [
            "2024-05-06T07:08:09.01Z",
            "2024-05-06T07:08:09Z",
            "2024-05-06T09:08:09.010+02:00",
            "2024-05-06t07:08:09.010z",
            "2024-05-06T07:08:09.0100Z",
            "2024-05-06 07:08:09.010Z",
            "",
        ] {
            assert_eq!(s.parse::<AuditTime>(), Err(InvalidAuditTime), "{s}");
        }
    }
}
