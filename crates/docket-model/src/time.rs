//! Time: instants (valid time and system time) and calendar dates.
//!
//! Stored as integers (microseconds since the Unix epoch, days since 0001-01-01),
//! shown as RFC 3339 in China Standard Time (UTC+8), where dates are decided.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{YEAR_MAX, YEAR_MIN};

/// China Standard Time, the offset in which dates and deadlines are decided.
pub fn china_standard_time() -> FixedOffset {
    // 8 hours is within the ±24 h bound `east_opt` checks, so this cannot fail.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("UTC+8 is a valid offset"))
}

/// An instant, in microseconds since 1970-01-01T00:00:00Z. Years [`YEAR_MIN`]..=[`YEAR_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a time or date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    #[error("{0:?} is not an RFC 3339 timestamp with an offset (e.g. 2024-03-01T09:00:00+08:00)")]
    TimestampSyntax(String),
    #[error("{0:?} is not a date YYYY-MM-DD")]
    DateSyntax(String),
    #[error("year {0} is outside {YEAR_MIN}..={YEAR_MAX}")]
    YearRange(i64),
}

impl Timestamp {
    /// From microseconds since the epoch, checking the year range.
    pub fn from_micros(micros: i64) -> Result<Self, TimeError> {
        let time = DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or(TimeError::YearRange(micros / 31_557_600_000_000 + 1970))?;
        let year = time.year();
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
            return Err(TimeError::YearRange(year.into()));
        }
        Ok(Self(micros))
    }

    /// Microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 with any offset; the instant is what is kept.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let time = DateTime::parse_from_rfc3339(text).map_err(|_| TimeError::TimestampSyntax(text.to_owned()))?;
        Self::from_micros(time.timestamp_micros())
    }

    /// The instant in UTC+8.
    pub fn to_china(self) -> DateTime<FixedOffset> {
        china_standard_time().timestamp_nanos(self.0.saturating_mul(1000))
    }

    /// The calendar date in China Standard Time.
    pub fn china_date(self) -> Date {
        Date(self.to_china().date_naive())
    }

    /// The current time (for the CLI and the sequencer; the model itself never reads a clock).
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_china().to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = Cow::<str>::deserialize(deserializer)?;
            Self::parse(&text).map_err(de::Error::custom)
        } else {
            Self::from_micros(i64::deserialize(deserializer)?).map_err(de::Error::custom)
        }
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "RFC 3339 instant with offset; printed in UTC+8, microsecond precision",
            "type": "string",
            "format": "date-time",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
        })
    }
}

/// A calendar date (no time zone), e.g. the date of a basis document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

impl Date {
    /// Wraps a date, checking the year range.
    pub fn new(date: NaiveDate) -> Result<Self, TimeError> {
        if !(YEAR_MIN..=YEAR_MAX).contains(&date.year()) {
            return Err(TimeError::YearRange(date.year().into()));
        }
        Ok(Self(date))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| TimeError::DateSyntax(text.to_owned()))?;
        Self::new(date)
    }

    /// The date.
    pub fn naive(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i32(self.0.num_days_from_ce())
        }
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = Cow::<str>::deserialize(deserializer)?;
            Self::parse(&text).map_err(de::Error::custom)
        } else {
            let days = i32::deserialize(deserializer)?;
            let date = NaiveDate::from_num_days_from_ce_opt(days)
                .ok_or_else(|| de::Error::custom(TimeError::YearRange(i64::from(days) / 365)))?;
            Self::new(date).map_err(de::Error::custom)
        }
    }
}

impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "calendar date YYYY-MM-DD",
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_in_china_time_and_keep_the_instant() {
        let t = Timestamp::parse("2024-03-01T01:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2024-03-01T09:00:00+08:00");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        let late = Timestamp::parse("2024-03-01T17:30:00Z").unwrap();
        assert_eq!(late.china_date().to_string(), "2024-03-02");
    }

    #[test]
    fn out_of_range_years_are_refused() {
        assert!(matches!(Timestamp::parse("1899-12-31T23:00:00Z"), Err(TimeError::YearRange(1899))));
        assert!(matches!(Date::parse("2200-01-01"), Err(TimeError::YearRange(2200))));
        assert!(Timestamp::from_micros(i64::MAX).is_err());
        assert!(matches!(Date::parse("2024-02-30"), Err(TimeError::DateSyntax(_))));
    }
}
