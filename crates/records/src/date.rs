//! Dates of birth of year, month or day precision.

use std::fmt;

use crate::error::{ValidationError, Violation};

/// A date of birth: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, year 0001–9999,
/// month 01–12, day 01–31.
///
/// Beyond the contract's ranges the day must exist in its month of the
/// proleptic Gregorian calendar: February 30, April 31 and February 29 of a
/// common year are rejected (a leap year is divisible by 4, except centuries
/// not divisible by 400). Only ASCII digits are accepted.
///
/// Its `Debug` shows only the precision, not the date (patient data).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateOfBirth {
    year: u16,
    /// A day is only ever present together with its month.
    month: Option<(u8, Option<u8>)>,
}

impl DateOfBirth {
    /// Parses a value of the `dateOfBirth` field.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::parse_at("dateOfBirth", s)
    }

    /// Parses a value found at JSON path `field`.
    pub(crate) fn parse_at(field: &str, s: &str) -> Result<Self, ValidationError> {
        let fail = |v| Err(ValidationError::new(field, v));
        let b = s.as_bytes();
        let shape_ok = matches!(b.len(), 4 | 7 | 10)
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return fail(Violation::DateFormat);
        }
        // The shape check guarantees ASCII digits, so these cannot fail.
        let num = |range: std::ops::Range<usize>| -> u16 {
            b[range].iter().fold(0, |n, d| n * 10 + u16::from(d - b'0'))
        };
        let year = num(0..4);
        if year == 0 {
            return fail(Violation::YearOutOfRange);
        }
        if b.len() == 4 {
            return Ok(Self { year, month: None });
        }
        let month = num(5..7) as u8;
        if !(1..=12).contains(&month) {
            return fail(Violation::MonthOutOfRange);
        }
        if b.len() == 7 {
            return Ok(Self {
                year,
                month: Some((month, None)),
            });
        }
        let day = num(8..10) as u8;
        if !(1..=31).contains(&day) {
            return fail(Violation::DayOutOfRange);
        }
        if day > days_in_month(year, month) {
            return fail(Violation::NoSuchDay);
        }
        Ok(Self {
            year,
            month: Some((month, Some(day))),
        })
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    pub fn month(&self) -> Option<u8> {
        self.month.map(|(m, _)| m)
    }

    pub fn day(&self) -> Option<u8> {
        self.month.and_then(|(_, d)| d)
    }

    /// The first day this date can mean, as `YYYY-MM-DD`: `1980` gives
    /// `1980-01-01`, `1980-06` gives `1980-06-01`. This is the sortable
    /// `dateOfBirthKey` stored beside a patient, and the lower bound of a
    /// `dateOfBirthFrom` search.
    pub fn first_day_key(&self) -> String {
        let month = self.month().unwrap_or(1);
        let day = self.day().unwrap_or(1);
        format!("{:04}-{:02}-{:02}", self.year, month, day)
    }

    /// The last day this date can mean: `1980` gives `1980-12-31`, `1980-02`
    /// gives `1980-02-29`. The upper bound of a `dateOfBirthTo` search, so
    /// that "to 1980" includes all of 1980.
    pub fn last_day_key(&self) -> String {
        let month = self.month().unwrap_or(12);
        let day = self
            .day()
            .unwrap_or_else(|| days_in_month(self.year, month));
        format!("{:04}-{:02}-{:02}", self.year, month, day)
    }
}

/// The API spelling, exactly as it was accepted.
impl fmt::Display for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some((month, day)) = self.month {
            write!(f, "-{month:02}")?;
            if let Some(day) = day {
                write!(f, "-{day:02}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = match self.month {
            None => "year",
            Some((_, None)) => "month",
            Some((_, Some(_))) => "day",
        };
        write!(f, "DateOfBirth(<{precision} precision>)")
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if time::util::is_leap_year(i32::from(year)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(s: &str) -> Violation {
        DateOfBirth::parse(s).unwrap_err().violation
    }

    #[test]
    fn each_form_parses_and_round_trips() {
        for s in [
            "1980",
            "1980-06",
            "1980-06-15",
            "0001",
            "9999-12-31",
            "0001-01-01",
        ] {
            let d = DateOfBirth::parse(s).unwrap();
            assert_eq!(d.to_string(), s);
        }
        let d = DateOfBirth::parse("1980-06-15").unwrap();
        assert_eq!((d.year(), d.month(), d.day()), (1980, Some(6), Some(15)));
        let d = DateOfBirth::parse("1980-06").unwrap();
        assert_eq!((d.year(), d.month(), d.day()), (1980, Some(6), None));
        let d = DateOfBirth::parse("1980").unwrap();
        assert_eq!((d.year(), d.month(), d.day()), (1980, None, None));
    }

    #[test]
    fn year_bounds() {
        assert_eq!(violation("0000"), Violation::YearOutOfRange);
        assert_eq!(violation("0000-01-01"), Violation::YearOutOfRange);
        assert!(DateOfBirth::parse("0001").is_ok());
        assert!(DateOfBirth::parse("9999").is_ok());
        assert_eq!(violation("10000"), Violation::DateFormat);
        assert_eq!(violation("10000-01-01"), Violation::DateFormat);
    }

    #[test]
    fn month_bounds() {
        assert_eq!(violation("1980-00"), Violation::MonthOutOfRange);
        assert_eq!(violation("1980-13"), Violation::MonthOutOfRange);
        assert_eq!(violation("1980-13-01"), Violation::MonthOutOfRange);
        assert!(DateOfBirth::parse("1980-01").is_ok());
        assert!(DateOfBirth::parse("1980-12").is_ok());
    }

    #[test]
    fn day_bounds_and_calendar() {
        assert_eq!(violation("1980-01-00"), Violation::DayOutOfRange);
        assert_eq!(violation("1980-01-32"), Violation::DayOutOfRange);
        assert!(DateOfBirth::parse("1980-01-31").is_ok());
        assert!(DateOfBirth::parse("1980-01-01").is_ok());
        assert_eq!(violation("1980-04-31"), Violation::NoSuchDay);
        assert!(DateOfBirth::parse("1980-04-30").is_ok());
        assert_eq!(violation("1980-02-30"), Violation::NoSuchDay);
        // Leap years: divisible by 4, centuries only when divisible by 400.
        assert!(DateOfBirth::parse("1980-02-29").is_ok());
        assert!(DateOfBirth::parse("2000-02-29").is_ok());
        assert_eq!(violation("1981-02-29"), Violation::NoSuchDay);
        assert_eq!(violation("1900-02-29"), Violation::NoSuchDay);
        assert!(DateOfBirth::parse("1981-02-28").is_ok());
    }

    #[test]
    fn malformed_shapes() {
        for s in [
            "",
            "198",
            "80",
            "1980-1",
            "1980-1-01",
            "1980/01/01",
            "1980-01-1",
            "1980-01-01T00:00",
            "+980",
            "198O",
            "１９８０",
            "1980-",
            "1980-01-",
            " 1980",
            "1980 ",
        ] {
            assert_eq!(violation(s), Violation::DateFormat, "{s:?}");
        }
    }

    #[test]
    fn errors_name_the_given_field() {
        let e = DateOfBirth::parse_at("dateOfBirthTo", "x").unwrap_err();
        assert_eq!(e.field, "dateOfBirthTo");
        assert_eq!(
            e.message(),
            "dateOfBirthTo must be YYYY, YYYY-MM or YYYY-MM-DD"
        );
    }

    #[test]
    fn range_keys() {
        let k = |s: &str| {
            let d = DateOfBirth::parse(s).unwrap();
            (d.first_day_key(), d.last_day_key())
        };
        assert_eq!(k("1980"), ("1980-01-01".into(), "1980-12-31".into()));
        assert_eq!(k("1980-02"), ("1980-02-01".into(), "1980-02-29".into()));
        assert_eq!(k("1981-02"), ("1981-02-01".into(), "1981-02-28".into()));
        assert_eq!(k("1981-04"), ("1981-04-01".into(), "1981-04-30".into()));
        assert_eq!(k("1981-04-07"), ("1981-04-07".into(), "1981-04-07".into()));
        assert_eq!(k("0001"), ("0001-01-01".into(), "0001-12-31".into()));
    }

    #[test]
    fn debug_hides_the_date() {
        let d = DateOfBirth::parse("1980-06-15").unwrap();
        let shown = format!("{d:?}");
        assert!(!shown.contains("1980"), "{shown}");
    }
}
