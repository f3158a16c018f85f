//! Named limits on everything the model accepts. Units come last in every name.
//!
//! These limits are part of the format: an event that breaks one is refused at
//! decode time, wherever it comes from (JSON, canonical bytes, the log).

/// Largest canonical event encoding accepted (the bytes that are signed).
pub const EVENT_SIZE_BYTES_MAX: usize = 64 * 1024;
/// Longest free-text field (reasons, grounds, remedies, descriptions).
pub const TEXT_BYTES_MAX: usize = 8 * 1024;
/// Longest short name (agency, list, measure, MOU, rule set, case number, labels).
pub const NAME_BYTES_MAX: usize = 128;
/// Longest value of a subject identifier in an "other" scheme.
pub const OTHER_ID_BYTES_MAX: usize = 64;
/// Most roles one agency may hold.
pub const ROLES_PER_AGENCY_MAX: usize = 8;
/// Most keys registered in one agency-registered event.
pub const KEYS_PER_EVENT_MAX: usize = 16;
/// Most legal references cited by one event.
pub const LEGAL_REFS_PER_EVENT_MAX: usize = 32;
/// Most parties (responsible agencies) in one MOU event. One real MOU binds 40+ agencies.
pub const MOU_PARTIES_MAX: usize = 256;
/// Most measure codes granted to one MOU party.
pub const MEASURES_PER_PARTY_MAX: usize = 256;
/// Most evidence digests attached to one objection.
pub const EVIDENCE_PER_OBJECTION_MAX: usize = 64;
/// Most evidence digests attached to one restoration application.
pub const EVIDENCE_PER_APPLICATION_MAX: usize = 64;
/// Longest term one event may state, in months: a decision's designation
/// term, or one extension (SPC allows 1–3 years of extension; 10 years is a
/// generous ceiling that still catches unit mistakes). Enforced at decode.
///
/// Not to be confused with docket-audit's `rules::RULE_SET_TERM_MONTHS_MAX`
/// (240), the bound on a rule set's term parameters: those may cap several
/// extensions together, so that bound is at least this one.
pub const EVENT_TERM_MONTHS_MAX: u16 = 120;
/// Earliest and latest year accepted in any timestamp or date.
pub const YEAR_MIN: i32 = 1900;
/// See [`YEAR_MIN`].
pub const YEAR_MAX: i32 = 2199;
/// How far an agency's act's valid time (`effective_at`) may lead the time
/// the ledger records it, in seconds (registry acts are not bounded). An act may be recorded shortly before it
/// takes effect (a decision in force from a later day); anything further
/// ahead is a clock or unit mistake. How far valid time may lag behind the
/// record is a due-process question for the audit, not a refusal.
pub const EFFECTIVE_LEAD_S_MAX: i64 = 31 * 24 * 3600;

// How the limits relate, checked when the crate compiles.

// One free-text field at its longest fits an event, with room for the rest of it.
const _: () = assert!(TEXT_BYTES_MAX < EVENT_SIZE_BYTES_MAX);
// The longest lists of fixed-size items fit an event: the most keys one
// registration names (32-byte public keys), the most evidence digests one
// objection attaches (32 bytes each).
const _: () = assert!(KEYS_PER_EVENT_MAX * 32 < EVENT_SIZE_BYTES_MAX);
const _: () = assert!(EVIDENCE_PER_OBJECTION_MAX * 32 < EVENT_SIZE_BYTES_MAX);
const _: () = assert!(EVIDENCE_PER_APPLICATION_MAX * 32 < EVENT_SIZE_BYTES_MAX);
// A term is at least a month.
const _: () = assert!(EVENT_TERM_MONTHS_MAX >= 1);
// The years are a range, and every instant in them is an i64 of
// microseconds from 1970 (`Timestamp`), with room to spare: no year-checked
// time overflows.
const _: () = assert!(YEAR_MIN < YEAR_MAX);
const _: () = assert!((YEAR_MAX as i64 - 1970 + 1) * 366 * 86_400 * 1_000_000 < i64::MAX / 2);
const _: () = assert!((1970 - YEAR_MIN as i64) * 366 * 86_400 * 1_000_000 < i64::MAX / 2);
// The lead is positive and, in microseconds (how `registry` compares it), an i64.
const _: () = assert!(EFFECTIVE_LEAD_S_MAX > 0 && EFFECTIVE_LEAD_S_MAX.checked_mul(1_000_000).is_some());
