//! Flat tables: the one shape every tabular format (CSV, JSON Lines,
//! Parquet) writes. A table is a fixed list of typed, nullable columns; rows
//! are produced one at a time and handed to a [`Sink`](crate::write::Sink).

use docket_model::{Date, Timestamp};

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// A signed 64-bit integer.
    Int,
    /// True or false.
    Bool,
    /// An instant, µs since the epoch; text formats show RFC 3339 in UTC+8.
    Time,
    /// A calendar date (China Standard Time); text formats show `YYYY-MM-DD`.
    Date,
}

/// One column: its name (snake_case, also the JSON key and Parquet field) and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

/// Shorthand for a column in the tables' definitions.
pub const fn column(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

/// One cell. `Null` is an absent value (an empty CSV field, JSON `null`, a
/// Parquet null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Time(Timestamp),
    Date(Date),
}

impl Value {
    /// Text, from anything displayable.
    pub fn text(value: impl std::fmt::Display) -> Self {
        Self::Text(value.to_string())
    }

    /// Text if present, else null.
    pub fn opt_text(value: Option<impl std::fmt::Display>) -> Self {
        value.map_or(Self::Null, Self::text)
    }

    /// A time if present, else null.
    pub fn opt_time(value: Option<Timestamp>) -> Self {
        value.map_or(Self::Null, Self::Time)
    }

    /// A date if present, else null.
    pub fn opt_date(value: Option<Date>) -> Self {
        value.map_or(Self::Null, Self::Date)
    }

    /// An unsigned count or seq as an integer (saturating at `i64::MAX`).
    pub fn count(value: impl TryInto<i64>) -> Self {
        Self::Int(value.try_into().unwrap_or(i64::MAX))
    }

    /// Whether this value may stand in a column of `kind`.
    pub fn fits(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Self::Null, _)
                | (Self::Text(_), Kind::Text)
                | (Self::Int(_), Kind::Int)
                | (Self::Bool(_), Kind::Bool)
                | (Self::Time(_), Kind::Time)
                | (Self::Date(_), Kind::Date)
        )
    }

    /// The value as text formats show it; `None` for null.
    pub fn display(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Text(text) => Some(text.clone()),
            Self::Int(int) => Some(int.to_string()),
            Self::Bool(flag) => Some(flag.to_string()),
            Self::Time(time) => Some(time.to_string()),
            Self::Date(date) => Some(date.to_string()),
        }
    }
}

/// Days from 1970-01-01 to `date` (Parquet's DATE).
pub fn epoch_days(date: Date) -> i32 {
    let epoch = chrono::NaiveDate::default();
    i32::try_from((date.naive() - epoch).num_days()).unwrap_or(i32::MAX)
}
