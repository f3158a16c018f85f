//! Parsing what a reader asks for: a subject, a time, a bitemporal point.
//! Shared by the command line (`--as-of`, `--valid-at`, `--subject`) and the
//! HTTP API (`as_of`, `valid_at`, `subject`), so both accept the same forms.

use docket_model::ids::{classify, Classified};
use docket_model::{Date, Name, SubjectId, Timestamp};

use crate::case::{AsOf, Known};
use crate::store::Store;

/// What is wrong with a query parameter; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} {value:?}: {reason}")]
pub struct QueryError {
    pub parameter: String,
    pub value: String,
    pub reason: String,
}

fn error(parameter: &str, value: &str, reason: impl std::fmt::Display) -> QueryError {
    QueryError { parameter: parameter.to_owned(), value: value.to_owned(), reason: reason.to_string() }
}

/// Parses a name (agency, list, measure): `parameter` names it in errors.
pub fn name(parameter: &str, text: &str) -> Result<Name, QueryError> {
    Name::parse(text).map_err(|e| error(parameter, text, e))
}

/// Parses a subject: `uscc:CODE`, `resident:NUMBER`, `SCHEME:VALUE`, or a bare
/// 18-character code whose scheme is recognised.
pub fn parse_subject(parameter: &str, text: &str) -> Result<SubjectId, QueryError> {
    let fail = |e: &dyn std::fmt::Display| error(parameter, text, e);
    let subject = match text.split_once(':') {
        Some(("uscc", code)) => SubjectId::Uscc(code.parse().map_err(|e| fail(&e))?),
        Some(("resident", code)) => SubjectId::Resident(code.parse().map_err(|e| fail(&e))?),
        Some((scheme, value)) => SubjectId::Other { scheme: name(parameter, scheme)?, value: value.to_owned() },
        None => match classify(text).map_err(|e| fail(&e))? {
            Classified::Uscc(code) => SubjectId::Uscc(code),
            Classified::Resident(id) => SubjectId::Resident(id),
        },
    };
    subject.validate().map_err(|e| fail(&e))?;
    Ok(subject)
}

/// Parses a time: RFC 3339, or a date (the start of that day in China Standard Time).
pub fn parse_time(parameter: &str, text: &str) -> Result<Timestamp, QueryError> {
    if let Ok(time) = Timestamp::parse(text) {
        return Ok(time);
    }
    let date = Date::parse(text)
        .map_err(|_| error(parameter, text, "expected RFC 3339 (2024-05-01T09:00:00+08:00) or a date (2024-05-01)"))?;
    let start = date.naive().and_hms_opt(0, 0, 0).ok_or_else(|| error(parameter, text, "no midnight"))?;
    let china = docket_model::time::china_standard_time();
    let local = start.and_local_timezone(china).single().ok_or_else(|| error(parameter, text, "ambiguous"))?;
    Timestamp::from_micros(local.timestamp_micros()).map_err(|e| error(parameter, text, e))
}

/// Resolves an as-of (a seq or a time) and a valid time into a bitemporal
/// point. Without a valid time it is the as-of time: what the ledger said
/// then, about then; without either, now.
///
/// "Everything recorded" is pinned to the store's watermark: a catch-up may
/// run beside the read, and one view must not mix a registry from before a
/// record with cases from after it.
pub fn resolve(store: &Store, as_of: Option<&str>, valid_at: Option<&str>) -> Result<AsOf, QueryError> {
    let (known, then) = match as_of {
        None => match store.records() {
            0 => (Known::All, Timestamp::now()),
            records => (Known::Through(records - 1), Timestamp::now()),
        },
        Some(text) if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) => {
            let seq: u64 = text.parse().map_err(|e| error("as-of", text, e))?;
            if seq >= store.records() {
                let reason =
                    format!("the log has {} records (seq 0..={})", store.records(), store.records().saturating_sub(1));
                return Err(error("as-of", text, reason));
            }
            let time = store
                .time_of(seq)
                .map_err(|e| error("as-of", text, e))?
                .ok_or_else(|| error("as-of", text, "no such record"))?;
            (Known::Through(seq), time)
        }
        Some(text) => {
            let time = parse_time("as-of", text)?;
            (Known::At(time), time)
        }
    };
    let valid_at = match valid_at {
        Some(text) => parse_time("valid-at", text)?,
        None => then,
    };
    Ok(AsOf { known, valid_at })
}
