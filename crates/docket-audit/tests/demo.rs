//! On `docket demo` data the audit finds exactly the violations the demo
//! planted: recall and precision 100%, per rule, on the cases' numbers.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use docket_audit::audit::{audit, FindingStatus, Rule, Scope};
use docket_audit::{Calendar, RuleSet};
use docket_fold::case::{AsOf, Known};
use docket_fold::{Store, StoreLimits};
use docket_log::demo::{self, Violation};
use docket_model::Timestamp;

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
    }
}

#[test]
fn the_audit_finds_exactly_what_the_demo_planted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (built, _) = demo::write_ledger(dir.path(), 1200, 5).expect("demo ledger");
    let (store, _) = Store::open(dir.path(), StoreLimits::default()).expect("store");
    let as_of = AsOf { known: Known::All, valid_at: Timestamp::now() };
    let report = audit(&store, as_of, &Scope::default(), &RuleSet::bundled(), &Calendar::bundled()).expect("audit");
    assert_eq!(report.cases, 1200);
    let value = serde_json::to_value(&report).expect("json");
    common::validate("audit-report.schema.json", &value).expect("the report validates under its schema");
    let mut found: BTreeMap<Rule, BTreeSet<String>> = BTreeMap::new();
    for finding in report.findings.iter().filter(|f| f.status != FindingStatus::Pending) {
        found.entry(finding.rule).or_default().insert(finding.number.to_string());
    }
    let mut planted: BTreeMap<Rule, BTreeSet<String>> = BTreeMap::new();
    for (number, violation) in &built.planted {
        planted.entry(rule_of(*violation)).or_default().insert(number.clone());
    }
    let mut table = String::new();
    let mut exact = true;
    for rule in Rule::ALL {
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
            table += &format!(
                "  missed {:?}\n  extra {:?}\n",
                want.difference(&got).take(3).collect::<Vec<_>>(),
                got.difference(&want).take(3).collect::<Vec<_>>()
            );
        }
    }
    println!("{table}");
    assert!(planted.len() == Rule::ALL.len(), "every kind is planted");
    assert!(exact, "\n{table}");
}
