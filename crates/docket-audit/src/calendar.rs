//! Calendars as data and period arithmetic.
//!
//! The rules (Civil Procedure Law art. 85, Administrative Penalty Law art. 85):
//! the starting day is not counted; a period of N calendar days ending on a
//! day that is not a working day (a weekend not adjusted to work, or a public
//! holiday) moves to the next working day; "N working days" counts only
//! working days: weekdays that are not holidays, plus adjusted working
//! weekends (调休). Dates are decided in China Standard Time.
//!
//! A deadline that reaches a year the calendar does not list is marked
//! provisional. In such a year it is decided by the weekday and the
//! fixed-date statutory holidays (National Holidays Measures art. 2: New
//! Year's Day, 1 May, 1 to 3 October), which hold every year whatever the
//! State Council's notice adds or moves; the lunar holidays and adjusted
//! working weekends are unknown until the notice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest period the arithmetic accepts (days or working days).
pub const PERIOD_DAYS_MAX: u32 = 3660;

/// One year of a calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Year {
    pub year: i32,
    /// The notice that set the year's holidays.
    pub source: String,
    pub holidays: Vec<Holiday>,
    /// Weekend days adjusted to be working days.
    pub working_days: Vec<NaiveDate>,
}

/// A public holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
}

/// A calendar document, as stored in `data/*.calendar.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDocument {
    pub id: String,
    /// Bumped whenever a year is added or amended.
    pub version: u32,
    pub about: String,
    pub years: Vec<Year>,
}

/// A calendar ready for arithmetic.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub id: String,
    pub version: u32,
    years: BTreeSet<i32>,
    holidays: BTreeMap<NaiveDate, String>,
    working_days: BTreeSet<NaiveDate>,
}

/// Why a calendar document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar document: {0}")]
    Syntax(String),
    #[error("calendar {id}: {date} is listed under year {year}")]
    WrongYear { id: String, date: NaiveDate, year: i32 },
    #[error("calendar {id}: {date} is both a holiday and an adjusted working day")]
    Both { id: String, date: NaiveDate },
    #[error("calendar {id}: adjusted working day {date} is not a weekend")]
    NotWeekend { id: String, date: NaiveDate },
    #[error("calendar {id}: year {year} is listed twice")]
    DuplicateYear { id: String, year: i32 },
}

/// The bundled State Council calendar, 2013 through 2026.
pub const CN_STATE_COUNCIL: &str = include_str!("../data/cn-state-council.calendar.json");

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The statutory holidays on fixed dates, the same every year: New Year's
/// Day, Labour Day (1 May) and National Day (1 to 3 October).
fn fixed_holiday(date: NaiveDate) -> Option<&'static str> {
    match (date.month(), date.day()) {
        (1, 1) => Some("New Year's Day (fixed date)"),
        (5, 1) => Some("Labour Day (fixed date)"),
        (10, 1..=3) => Some("National Day (fixed date)"),
        _ => None,
    }
}

impl Calendar {
    /// Parses and checks a calendar document.
    pub fn parse(text: &str) -> Result<Self, CalendarError> {
        let document: CalendarDocument =
            serde_json::from_str(text).map_err(|e| CalendarError::Syntax(e.to_string()))?;
        Self::from_document(document)
    }

    /// The bundled State Council calendar.
    pub fn bundled() -> Self {
        Self::parse(CN_STATE_COUNCIL).unwrap_or_else(|e| unreachable!("the bundled calendar is checked by tests: {e}"))
    }

    pub fn from_document(document: CalendarDocument) -> Result<Self, CalendarError> {
        let id = document.id.clone();
        let mut calendar = Self {
            id: document.id,
            version: document.version,
            years: BTreeSet::new(),
            holidays: BTreeMap::new(),
            working_days: BTreeSet::new(),
        };
        for year in document.years {
            if !calendar.years.insert(year.year) {
                return Err(CalendarError::DuplicateYear { id, year: year.year });
            }
            for holiday in year.holidays {
                if holiday.date.year() != year.year {
                    return Err(CalendarError::WrongYear { id, date: holiday.date, year: year.year });
                }
                calendar.holidays.insert(holiday.date, holiday.name);
            }
            for date in year.working_days {
                if date.year() != year.year {
                    return Err(CalendarError::WrongYear { id, date, year: year.year });
                }
                if calendar.holidays.contains_key(&date) {
                    return Err(CalendarError::Both { id, date });
                }
                if !is_weekend(date) {
                    return Err(CalendarError::NotWeekend { id, date });
                }
                calendar.working_days.insert(date);
            }
        }
        Ok(calendar)
    }

    /// The years the calendar covers.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Whether the calendar covers the year of `date`.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.years.contains(&date.year())
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.working_days.contains(&date) {
            return true;
        }
        self.holiday(date).is_none() && !is_weekend(date)
    }

    /// The holiday on `date`, if any: from the calendar in a year it covers,
    /// else the fixed-date statutory holiday on that day.
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        if self.covers(date) {
            self.holidays.get(&date).map(String::as_str)
        } else {
            fixed_holiday(date)
        }
    }

    /// The due date of `period` counted from `from` (not counted itself).
    pub fn due(&self, from: NaiveDate, period: Period) -> Result<Deadline, PeriodError> {
        let next = |date: NaiveDate| date.checked_add_days(Days::new(1)).ok_or(PeriodError::OutOfRange);
        let mut deadline = Deadline {
            from,
            period,
            due: from,
            provisional: false,
            calendar: format!("{} v{}", self.id, self.version),
            holidays_crossed: vec![],
            working_days_crossed: vec![],
            rolled_from: None,
        };
        let note = |deadline: &mut Deadline, date: NaiveDate| {
            deadline.provisional |= !self.covers(date);
            if let Some(name) = self.holiday(date) {
                deadline.holidays_crossed.push(HolidayCrossed { date, name: name.to_owned() });
            }
            if self.working_days.contains(&date) {
                deadline.working_days_crossed.push(date);
            }
        };
        match period {
            Period::WorkingDays(n) | Period::Days(n) if n > PERIOD_DAYS_MAX => return Err(PeriodError::TooLong(n)),
            Period::WorkingDays(n) => {
                let mut counted = 0;
                let mut date = from;
                while counted < n {
                    date = next(date)?;
                    note(&mut deadline, date);
                    if self.is_working_day(date) {
                        counted += 1;
                    }
                }
                deadline.due = date;
            }
            Period::Days(n) => {
                let mut date = from;
                for _ in 0..n {
                    date = next(date)?;
                    note(&mut deadline, date);
                }
                if !self.is_working_day(date) {
                    deadline.rolled_from = Some(date);
                    while !self.is_working_day(date) {
                        date = next(date)?;
                        note(&mut deadline, date);
                    }
                }
                deadline.due = date;
            }
        }
        Ok(deadline)
    }
}

/// A period in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Working days: skip weekends and holidays, count adjusted working weekends.
    WorkingDays(u32),
    /// Calendar days; a last day that is not a working day moves to the next working day.
    Days(u32),
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WorkingDays(n) => write!(f, "{n} working days"),
            Self::Days(n) => write!(f, "{n} days"),
        }
    }
}

/// Why a period cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("period of {0} days is longer than {PERIOD_DAYS_MAX}")]
    TooLong(u32),
    #[error("the date is out of range")]
    OutOfRange,
}

/// A holiday a period crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HolidayCrossed {
    pub date: NaiveDate,
    pub name: String,
}

/// A computed deadline and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Deadline {
    pub from: NaiveDate,
    pub period: Period,
    /// The last day on which the act is in time.
    pub due: NaiveDate,
    /// The calendar does not cover every day the period reached.
    pub provisional: bool,
    /// Calendar id and version.
    pub calendar: String,
    pub holidays_crossed: Vec<HolidayCrossed>,
    pub working_days_crossed: Vec<NaiveDate>,
    /// A calendar-day period whose last day was not a working day.
    pub rolled_from: Option<NaiveDate>,
}
