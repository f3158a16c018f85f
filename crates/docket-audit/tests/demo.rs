//! On `docket demo` data the audit finds exactly the violations the demo
//! planted: recall and precision 100%, per rule, on the cases' numbers.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use docket_audit::audit::{audit, FindingStatus, Rule, Scope};
use docket_audit::{Calendar, RuleSet};
use docket_fold::case::{AsOf, Known};
use docket_fold::{Store, StoreLimits};
use docket_world::{self as world, Violation};

fn rule_of(violation: Violation) -> Rule {
    match violation {
        Violation::NoNotice => Rule::NoticeBeforeDesignation,
        Violation::WindowNotObserved => Rule::ObjectionWindowObserved,
        Violation::ObjectionUndecided => Rule::ObjectionDecidedInTime,
        Violation::MeasureWithoutMou => Rule::MeasureUnderMou,
        Violation::UncataloguedMeasure => Rule::MeasureCatalogued,
        Violation::MeasureOnUndesignated => Rule::MeasureOnlyWhileDesignated,
        Violation::NotLiftedAfterRestoration => Rule::RemovalInTime,
        Violation::IncompleteDecision => Rule::DecisionContent,
        Violation::UpheldNotRemedied => Rule::UpheldObjectionRemedied,
        Violation::MinorListed => Rule::MinorNotListed,
        Violation::EarlyRestoration => Rule::PublicityBeforeRestoration,
        Violation::TermTooLong => Rule::TermWithinMaximum,
        Violation::NoticeIncomplete => Rule::NoticeContent,
        Violation::DesignatedWhileObjectionPending => Rule::ObjectionAnsweredBeforeDesignation,
        Violation::MeasureAuthorityTooLow => Rule::MeasureAuthorityLevel,
        Violation::ServedLate | Violation::DecidedInWindow => Rule::ObjectionWindowObserved,
        Violation::ExtensionAfterExpiry => Rule::ExtensionWhileInForce,
        Violation::ExtensionsBeyondCap => Rule::TermWithinMaximum,
        Violation::BasisAfterDecision => Rule::DecisionContent,
        Violation::UpheldAfterDesignationNotRevoked => Rule::UpheldObjectionRemedied,
        Violation::RecordedLate => Rule::RecordedInTime,
        Violation::RestorationDecidedLate => Rule::RestorationDecidedInTime,
        Violation::RestorationFeeCollected => Rule::RestorationDecisionContent,
    }
}

/// Audits the store in `dir` and checks that the findings are exactly the planted violations, rule by rule.
fn audit_finds_exactly(dir: &std::path::Path, cases: u64, planted_cases: &[(String, Violation)]) {
    let (store, _) = Store::open(dir, StoreLimits::default()).expect("store");
    // Judged on the worlds' last day: what the generators record stops there.
    let as_of = AsOf { known: Known::All, valid_at: world::worlds_last_day() };
    let report = audit(&store, as_of, &Scope::default(), &RuleSet::bundled(), &Calendar::bundled()).expect("audit");
    assert_eq!(report.cases, cases);
    let value = serde_json::to_value(&report).expect("json");
    common::validate("audit-report.schema.json", &value).expect("the report validates under its schema");
    let mut found: BTreeMap<Rule, BTreeSet<String>> = BTreeMap::new();
    for finding in report.findings.iter().filter(|f| f.status != FindingStatus::Pending) {
        found.entry(finding.rule).or_default().insert(finding.number.to_string());
    }
    let mut planted: BTreeMap<Rule, BTreeSet<String>> = BTreeMap::new();
    for (number, violation) in planted_cases {
        planted.entry(rule_of(*violation)).or_default().insert(number.clone());
    }
    let mut table = String::new();
    let mut exact = true;
    for rule in Rule::all() {
        let want = planted.get(&rule).cloned().unwrap_or_default();
        let got = found.get(&rule).cloned().unwrap_or_default();
        let hits = want.intersection(&got).count();
        let recall = if want.is_empty() { 1.0 } else { hits as f64 / want.len() as f64 };
        let precision = if got.is_empty() { 1.0 } else { hits as f64 / got.len() as f64 };
        exact &= want == got;
        table += &format!(
            "{:32} planted {:3} found {:3} recall {recall:.2} precision {precision:.2}\n",
            rule.id(),
            want.len(),
            got.len()
        );
        if want != got {
            let extra = report.findings.iter().filter(|f| f.rule == rule && !want.contains(f.number.as_str()));
            for finding in extra.take(3) {
                table += &format!("  extra finding {}: {} ({:?})\n", finding.number, finding.what, finding.agency);
            }
            table += &format!(
                "  missed {:?}\n  extra {:?}\n",
                want.difference(&got).take(3).collect::<Vec<_>>(),
                got.difference(&want).take(3).collect::<Vec<_>>()
            );
        }
    }
    println!("{table}");
    let unplanted: Vec<Rule> = Rule::all().filter(|rule| !planted.contains_key(rule)).collect();
    assert_eq!(unplanted, [], "every rule has a planted violation");
    assert!(exact, "\n{table}");
}

#[test]
fn the_audit_finds_exactly_what_the_demo_planted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (built, _) = world::write_ledger(dir.path(), 1200, 5).expect("demo ledger");
    audit_finds_exactly(dir.path(), 1200, &built.planted);
}

/// The national world of the benchmarks (seven lists sharing three rule
/// sets, 150 measures, MOUs of 10 to 45 agencies, cases from 2016 to 2025)
/// plants one violation in fifty cases; the audit finds exactly those.
#[test]
fn the_audit_finds_exactly_what_the_national_generator_planted() {
    let world = world::World::national();
    assert_eq!(world.sizes(), (60, 150, 7));
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, mut events) = world::registry_events(&world, 9);
    let (mut planted, mut late) = (Vec::new(), std::collections::BTreeSet::new());
    // Three chunks: enough cases (60 planted) for every kind on its lists.
    for chunk in 0..3 {
        let built = world::national_chunk(&world, 9, chunk);
        events.extend(built.events);
        planted.extend(built.planted);
        late.extend(built.recorded_late);
    }
    world::write_events(dir.path(), 9, &root, &events, &late).expect("national ledger");
    audit_finds_exactly(dir.path(), 3 * world::NATIONAL_CHUNK_SUBJECTS, &planted);
}
