//! Period arithmetic, table-tested against dates worked out by hand from the
//! State Council holiday notices, for every period the rule sets use:
//! the 7-working-day objection window, the 15-day objection review, the
//! 3-working-day correction and removal periods. Around Spring Festival and
//! National Day in several years, with adjusted working weekends before and
//! after the holidays, and across the calendar's edges (provisional).
//!
//! The rules (Civil Procedure Law art. 85): the starting day is not counted;
//! a calendar-day period whose last day is not a working day ends on the next
//! working day; working days skip weekends and holidays and count adjusted
//! working weekends.

use chrono::NaiveDate;
use docket_audit::{Calendar, Period};

fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

struct Row {
    why: &'static str,
    from: &'static str,
    period: Period,
    due: &'static str,
    rolled_from: Option<&'static str>,
    adjusted: &'static [&'static str],
}

const WINDOW: Period = Period::WorkingDays(7);
const REVIEW: Period = Period::Days(15);
const THREE: Period = Period::WorkingDays(3);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Objection window, 7 working days, across National Day.
    Row { why: "window, National Day 2019: Sun 29 Sep and Sat 12 Oct are working days", from: "2019-09-27", period: WINDOW, due: "2019-10-12", rolled_from: None, adjusted: &["2019-09-29", "2019-10-12"] },
    Row { why: "window, Mid-Autumn + National Day 2023: 29 Sep to 6 Oct off, 7-8 Oct worked", from: "2023-09-28", period: WINDOW, due: "2023-10-13", rolled_from: None, adjusted: &["2023-10-07", "2023-10-08"] },
    Row { why: "window, National Day 2024", from: "2024-09-27", period: WINDOW, due: "2024-10-12", rolled_from: None, adjusted: &["2024-09-29", "2024-10-12"] },
    Row { why: "window, National Day + Mid-Autumn 2025: 1-8 Oct off, Sun 28 Sep and Sat 11 Oct worked", from: "2025-09-26", period: WINDOW, due: "2025-10-13", rolled_from: None, adjusted: &["2025-09-28", "2025-10-11"] },
    Row { why: "window, ordinary weeks", from: "2024-03-04", period: WINDOW, due: "2024-03-13", rolled_from: None, adjusted: &[] },
    // Correction and removal, 3 working days, across Spring Festival.
    Row { why: "removal, Spring Festival 2015: the adjusted Sunday 15 Feb counts", from: "2015-02-13", period: THREE, due: "2015-02-17", rolled_from: None, adjusted: &["2015-02-15"] },
    Row { why: "removal, Spring Festival 2019: Sat 2 and Sun 3 Feb are working days", from: "2019-02-01", period: THREE, due: "2019-02-11", rolled_from: None, adjusted: &["2019-02-02", "2019-02-03"] },
    Row { why: "removal, Spring Festival 2020, extended to 2 Feb", from: "2020-01-22", period: THREE, due: "2020-02-04", rolled_from: None, adjusted: &[] },
    Row { why: "removal, Spring Festival 2024: Eve (9 Feb) is a working day, Sun 18 Feb too", from: "2024-02-08", period: THREE, due: "2024-02-19", rolled_from: None, adjusted: &["2024-02-18"] },
    Row { why: "correction, Spring Festival 2026: Sat 14 Feb worked, 15-23 Feb off", from: "2026-02-12", period: THREE, due: "2026-02-24", rolled_from: None, adjusted: &["2026-02-14"] },
    Row { why: "start day not counted, even when it is a holiday", from: "2024-10-01", period: Period::WorkingDays(1), due: "2024-10-08", rolled_from: None, adjusted: &[] },
    // Objection review, 15 calendar days, rolling off holidays and weekends.
    Row { why: "review ends on National Day 2024: moves to Tue 8 Oct", from: "2024-09-16", period: REVIEW, due: "2024-10-08", rolled_from: Some("2024-10-01"), adjusted: &["2024-09-29"] },
    Row { why: "review ends in Spring Festival 2019: moves to Mon 11 Feb", from: "2019-01-21", period: REVIEW, due: "2019-02-11", rolled_from: Some("2019-02-05"), adjusted: &["2019-02-02", "2019-02-03"] },
    Row { why: "review ends in Spring Festival 2023: the next working day is the adjusted Saturday 28 Jan", from: "2023-01-06", period: REVIEW, due: "2023-01-28", rolled_from: Some("2023-01-21"), adjusted: &["2023-01-28"] },
    Row { why: "review ends on an adjusted working Sunday: no move", from: "2024-09-14", period: REVIEW, due: "2024-09-29", rolled_from: None, adjusted: &["2024-09-29"] },
    Row { why: "review ends on an ordinary Saturday: moves to Monday", from: "2024-03-01", period: REVIEW, due: "2024-03-18", rolled_from: Some("2024-03-16"), adjusted: &[] },
    Row { why: "review ends on a Friday: no move", from: "2024-02-29", period: REVIEW, due: "2024-03-15", rolled_from: None, adjusted: &[] },
    Row { why: "leap day counted", from: "2024-02-20", period: Period::Days(10), due: "2024-03-01", rolled_from: None, adjusted: &[] },
];

#[test]
fn the_table_holds() {
    let calendar = Calendar::bundled();
    let mut failures = vec![];
    for row in TABLE {
        let deadline = calendar.due(d(row.from), row.period).expect("computable");
        let adjusted: Vec<NaiveDate> = row.adjusted.iter().map(|a| d(a)).collect();
        if deadline.due != d(row.due)
            || deadline.rolled_from != row.rolled_from.map(d)
            || deadline.working_days_crossed != adjusted
            || deadline.provisional
        {
            failures.push(format!(
                "{}: {} from {}: wanted {} (rolled from {:?}, adjusted {:?}), got {} (rolled from {:?}, adjusted {:?}, provisional {})",
                row.why, row.period, row.from, row.due, row.rolled_from, row.adjusted,
                deadline.due, deadline.rolled_from, deadline.working_days_crossed, deadline.provisional
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn holidays_crossed_are_named() {
    let deadline = Calendar::bundled().due(d("2024-02-08"), THREE).expect("computable");
    let names: Vec<(String, &str)> =
        deadline.holidays_crossed.iter().map(|h| (h.date.to_string(), h.name.as_str())).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert_eq!(names[0].0, "2024-02-10");
    assert!(names.iter().all(|(_, n)| n.contains("Spring Festival")), "{names:?}");
}

#[test]
fn beyond_the_calendar_is_provisional() {
    let calendar = Calendar::bundled();
    let years: Vec<i32> = calendar.years().collect();
    assert_eq!((years[0], years[years.len() - 1]), (2013, 2026));
    assert_eq!(years.len(), 14, "every year from 2013 through 2026");
    // Into 2027: weekdays and the fixed-date holidays only. Friday 1 January
    // 2027 is New Year's Day whatever the notice says, so 7 working days from
    // Monday 28 December 2026 end on Thursday 7 January, not the 6th.
    let into = calendar.due(d("2026-12-28"), WINDOW).expect("computable");
    assert!(into.provisional);
    assert_eq!(into.due, d("2027-01-07"));
    let crossed: Vec<String> = into.holidays_crossed.iter().map(|h| h.date.to_string()).collect();
    assert_eq!(crossed, ["2027-01-01"]);
    // National Day 2027 (Friday 1 to Sunday 3 October): 3 working days from
    // Wednesday 29 September are the 30th, Monday 4 and Tuesday 5 October.
    let october = calendar.due(d("2027-09-29"), THREE).expect("computable");
    assert_eq!((october.due, october.provisional), (d("2027-10-05"), true));
    // Labour Day 2028 is a Monday: one working day from Friday 28 April is Tuesday 2 May.
    let may = calendar.due(d("2028-04-28"), Period::WorkingDays(1)).expect("computable");
    assert_eq!(may.due, d("2028-05-02"));
    // A calendar-day period ending on 1 May 2028 rolls to the next working day.
    let rolled = calendar.due(d("2028-04-21"), Period::Days(10)).expect("computable");
    assert_eq!((rolled.rolled_from, rolled.due), (Some(d("2028-05-01")), d("2028-05-02")));
    // Before 2013.
    assert!(calendar.due(d("2012-12-20"), THREE).expect("computable").provisional);
    // Within the calendar, near its edge: not provisional.
    assert!(!calendar.due(d("2026-12-21"), THREE).expect("computable").provisional);
}

#[test]
fn limits_are_enforced() {
    let calendar = Calendar::bundled();
    assert!(calendar.due(d("2024-01-01"), Period::Days(3661)).is_err());
    assert!(calendar.due(NaiveDate::MAX, Period::Days(1)).is_err());
}

#[test]
fn broken_calendars_are_refused() {
    let base = |years: &str| format!(r#"{{"id": "t", "version": 1, "about": "", "years": [{years}]}}"#);
    let year = |y: i32, holidays: &str, working: &str| {
        format!(r#"{{"year": {y}, "source": "s", "holidays": [{holidays}], "working_days": [{working}]}}"#)
    };
    let cases = [
        ("holiday in the wrong year", base(&year(2024, r#"{"date": "2025-01-01", "name": "x"}"#, ""))),
        ("adjusted working day on a weekday", base(&year(2024, "", r#""2024-03-04""#))),
        (
            "both holiday and working day",
            base(&year(2024, r#"{"date": "2024-03-02", "name": "x"}"#, r#""2024-03-02""#)),
        ),
        ("year twice", base(&format!("{},{}", year(2024, "", ""), year(2024, "", "")))),
        ("unknown field", base(&year(2024, "", "").replace("\"source\"", "\"colour\": 1, \"source\""))),
    ];
    for (what, text) in cases {
        assert!(Calendar::parse(&text).is_err(), "{what} must be refused");
    }
}
