//! `case::next_change` against `evaluate` and the publicity maximum: over
//! every case of a demo world and many valid times, the answer at a valid
//! time (the case view, and whether its entry is on the public list) equals
//! the answer at every later valid time before the next change (the instant
//! just before it, and points between), which is what lets the pages reuse
//! one computation for later valid times.

// Tests panic on failure.
#![allow(clippy::unwrap_used)]

use docket_fold::case::{evaluate, next_change, AsOf, CaseState, Known};
use docket_fold::views::{Publication, PublicityMax, Source};
use docket_fold::{CaseView, Fold, Status};
use docket_model::{PublicKey, Registry, Timestamp};

/// Publicity maxima short enough to run out inside the demo's years.
fn publication(registry: &Registry) -> Publication {
    let mut publication = Publication::none();
    for (_, list) in registry.lists() {
        let max = Some(PublicityMax { minor: 3, general: 7, serious: 14 });
        publication.insert(list.rule_set.as_str(), 1, max);
        for version in registry.rule_set(&list.rule_set) {
            publication.insert(list.rule_set.as_str(), version.version, max);
        }
    }
    publication
}

/// Whether the case's designation is on the public list at `at` by its status and the publicity maximum.
fn listed(view: &CaseView, registry: &Registry, publication: &Publication, at: i64) -> bool {
    let ends = registry.list(&view.list).and_then(|list| publication.ends(registry, list, view));
    view.status == Some(Status::Designated) && ends.is_none_or(|end| at < end.micros())
}

fn demo() -> (Fold, Vec<CaseState>) {
    let world = docket_world::build(150, 11);
    let mut fold = Fold::new(PublicKey(world.registry_root.verifying_key().to_bytes()));
    let start = docket_world::worlds_last_day().micros();
    for (seq, event) in (0u64..).zip(&world.events) {
        let time = Timestamp::from_micros(start + i64::try_from(seq).unwrap()).unwrap();
        fold.apply(seq, time, event).unwrap();
    }
    let registry = fold.registry(Known::All).unwrap();
    let mut cases = vec![];
    for (list, _) in registry.lists() {
        fold.for_list(list, &mut |case| cases.push(case)).unwrap();
    }
    (fold, cases)
}

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).unwrap()
}

#[test]
fn the_answer_holds_until_the_next_change() {
    let (fold, cases) = demo();
    assert!(cases.len() > 100, "{} cases", cases.len());
    let publication = publication(&fold.registry(Known::All).unwrap());
    let day = 86_400_000_000_i64;
    let mut changes = 0;
    let mut term_ends = 0;
    let mut caps = 0;
    for case in &cases {
        // Valid times: before, between and after the case's own facts, and
        // (as the system knew it) partway through the log.
        let mut times: Vec<i64> =
            case.facts.iter().flat_map(|f| [f.effective_at.micros() - 1, f.effective_at.micros()]).collect();
        let last = times.iter().copied().max().unwrap();
        times.extend([last + 200 * day, last + 2_000 * day]);
        let knowns = [Known::All, Known::Through(case.facts[case.facts.len() / 2].seq)];
        for known in knowns {
            let registry = fold.registry(known).unwrap();
            for &t in &times {
                let as_of = AsOf { known, valid_at: at(t) };
                let view = evaluate(case, &registry, as_of);
                let next = next_change(case, &registry, &publication, as_of);
                let on_list = listed(&view, &registry, &publication, t);
                let end = next.map_or(t + 3_000 * day, |n| n.micros());
                assert!(end > t, "{}: next change {end} is not after {t}", case.number);
                for probe in [t + 1, t + (end - t) / 2, end - 1].into_iter().filter(|p| *p < end) {
                    let later = evaluate(case, &registry, AsOf { known, valid_at: at(probe) });
                    assert_eq!(later, view, "{}: the answer changed at {probe}, before {end}", case.number);
                    let still = listed(&later, &registry, &publication, probe);
                    assert_eq!(still, on_list, "{}: left or joined the list at {probe}, before {end}", case.number);
                }
                if let Some(n) = next {
                    changes += 1;
                    let fact = case.facts.iter().any(|f| f.effective_at == n);
                    let term = view.designation.as_ref().and_then(|d| d.until) == Some(n);
                    term_ends += usize::from(term && !fact);
                    caps += usize::from(!term && !fact);
                }
            }
        }
    }
    assert!(
        changes > 0 && term_ends > 0 && caps > 0,
        "the test saw {changes} changes, {term_ends} of them term ends, {caps} publicity maxima running out"
    );
}
