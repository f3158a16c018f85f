//! Cases: the demo's and the national world's, each running the lifecycle
//! from notice to the lifting of its measures, with at most one planted
//! violation.

use std::collections::BTreeMap;

use docket_model::event::*;
use docket_model::{Digest, EventId, Hash32, Name, SignedEvent, SubjectId, Timestamp};
use sha2::{Digest as _, Sha256};

use crate::random::{resident, resident_born, uscc, Rng};
use crate::registry::{legal, registry, Builder};
use crate::world::{worlds_last_day, ListSpec, World, LOW_AUTHORITY};
use crate::{name, Demo, Violation};

/// Builds the demo: registry first, then `subjects` cases.
pub fn build(subjects: u64, seed: u64) -> Demo {
    let world = World::demo();
    let mut builder = Builder::new(&world, seed);
    registry(&mut builder);
    let mut rng = Rng(seed);
    let mut violations = BTreeMap::new();
    let mut planted = Vec::new();
    for index in 0..subjects {
        let spec = &world.lists[(index % 3) as usize];
        // One planted violation in about a quarter of the cases, by rotation.
        let violation = (index % 4 == 3).then(|| Violation::ALL[((index / 4) % Violation::ALL.len() as u64) as usize]);
        let number = format!("({})demo-{index}", 2024 + index % 3);
        open_case(&mut builder, &mut rng, index, spec, number, violation, &mut violations, &mut planted);
    }
    let recorded_late = builder.late.into_iter().collect();
    Demo { registry_root: builder.root, events: builder.events, violations, planted, recorded_late }
}

/// Subjects per chunk of [`national_chunk`].
pub const NATIONAL_CHUNK_SUBJECTS: u64 = 1000;

/// One case in fifty of the national world has a planted violation.
pub const NATIONAL_VIOLATION_EVERY: u64 = 50;

/// The cases of chunk `chunk` of the national world (subjects
/// `chunk * NATIONAL_CHUNK_SUBJECTS ..` the next chunk), each event signed by
/// its agency: the same for a seed whatever else is generated, so chunks can
/// be built on any core in any order. The events are in case order; the
/// `Demo`'s registry root is the world's.
pub fn national_chunk(world: &World, seed: u64, chunk: u64) -> Demo {
    let mut builder = Builder::new(world, seed);
    let mut rng = Rng(seed ^ (chunk + 1).wrapping_mul(0xa076_1d64_78bd_642f));
    let mut violations = BTreeMap::new();
    let mut planted = Vec::new();
    let total: u64 = world.lists.iter().map(|l| l.weight).sum();
    for index in chunk * NATIONAL_CHUNK_SUBJECTS..(chunk + 1) * NATIONAL_CHUNK_SUBJECTS {
        let mut pick = rng.below(total);
        let spec = world
            .lists
            .iter()
            .find(|l| {
                let hit = pick < l.weight;
                pick = pick.saturating_sub(l.weight);
                hit
            })
            .unwrap_or(&world.lists[0]);
        let violation = (index % NATIONAL_VIOLATION_EVERY == NATIONAL_VIOLATION_EVERY - 1)
            .then(|| Violation::ALL[((index / NATIONAL_VIOLATION_EVERY) % Violation::ALL.len() as u64) as usize]);
        let start = 10 + (index * world.start_step) % world.start_days;
        const COURTS: [&str; 8] = ["京0105", "沪0115", "粤0304", "浙0106", "苏0508", "川0107", "鄂0102", "鲁0202"];
        let number = format!("({}){}执{index}号", 2016 + start / 365, COURTS[(index % 8) as usize]);
        open_case(&mut builder, &mut rng, index, spec, number, violation, &mut violations, &mut planted);
    }
    let recorded_late = builder.late.into_iter().collect();
    Demo { registry_root: builder.root, events: builder.events, violations, planted, recorded_late }
}

/// Opens case `index` on list `spec`: its subject, then its lifecycle; records a planted violation.
#[allow(clippy::too_many_arguments)]
fn open_case(
    builder: &mut Builder,
    rng: &mut Rng,
    index: u64,
    spec: &ListSpec,
    number: String,
    violation: Option<Violation>,
    violations: &mut BTreeMap<Violation, u64>,
    planted: &mut Vec<(String, Violation)>,
) {
    // Minors are planted on the defaulter list only.
    let violation = violation.filter(|v| *v != Violation::MinorListed || spec.list == "cn-spc-defaulters");
    let start = 10 + (index * builder.world.start_step) % builder.world.start_days;
    let subject = if violation == Some(Violation::MinorListed) {
        // Born two to three years before the year the case opens minus twelve:
        // 13 to 16 when designated (the demo's 2010-2011 for 2024-2026).
        let year = if builder.world.national { 2016 + start / 365 - 14 } else { 2010 };
        SubjectId::Resident(resident_born(rng, year, 2))
    } else if rng.chance(60) {
        SubjectId::Uscc(uscc(rng))
    } else if builder.world.national {
        // Born 1950-1994: adults when the first cases open in 2016.
        SubjectId::Resident(resident_born(rng, 1950, 45))
    } else {
        SubjectId::Resident(resident(rng))
    };
    let case = (name(&spec.list), subject, name(&number));
    if let Some(v) = violation {
        *violations.entry(v).or_insert(0) += 1;
        planted.push((number, v));
    }
    lifecycle(builder, rng, &Case { index, start: start as i64, case: &case, spec, violation });
}

/// One case of the generated world, from the notice to the lifting of the
/// measures, with `violation` planted in it.
struct Case<'c> {
    index: u64,
    start: i64,
    case: &'c (Name, SubjectId, Name),
    spec: &'c ListSpec,
    violation: Option<Violation>,
}

impl Case<'_> {
    fn is(&self, kind: Violation) -> bool {
        self.violation == Some(kind)
    }
}

fn lifecycle(builder: &mut Builder, rng: &mut Rng, plan: &Case) {
    let world = builder.world;
    if !plan.is(Violation::NoNotice) {
        notice(builder, plan);
    }
    if plan.is(Violation::MeasureOnUndesignated) {
        let (agency, measures) = &plan.spec.parties[0];
        let action = CaseAction::MeasureApplied {
            measure: name(world.measure(measures[0])),
            mou: name(&format!("mou-{}", plan.case.0)),
        };
        builder.case(agency, world.at(plan.start + 2, 9), plan.case, action);
        return;
    }
    if !objections_before(builder, rng, plan) {
        return;
    }
    let designate_day = if plan.is(Violation::WindowNotObserved) { plan.start + 2 } else { plan.start + 20 };
    let term_months = designation(builder, plan, designate_day);
    let mut in_place = apply_measures(builder, rng, plan, designate_day);
    after_designation(builder, plan, designate_day, term_months);
    let restored = end(builder, rng, plan, designate_day);
    if restored.is_some() && plan.is(Violation::NotLiftedAfterRestoration) {
        return;
    }
    let ended = match restored {
        Some(day) => world.at(day, 9),
        None => add_months(world.at(designate_day, 9), term_months.into()),
    };
    for (offset, (agency, measure)) in in_place.drain(..).enumerate() {
        let lifted = Timestamp::from_micros(ended.micros() + (24 + offset as i64) * 3_600_000_000)
            .unwrap_or_else(|_| unreachable!("demo times are in range"));
        // A term that has not run out by the worlds' last day is still in
        // force: its measures are not lifted yet.
        if lifted > worlds_last_day() {
            continue;
        }
        let action = CaseAction::MeasureLifted { measure: name(&measure), reason: LiftReason::CaseClosed };
        builder.case(&agency, lifted, plan.case, action);
    }
}

/// `months` calendar months after `at`, in China Standard Time.
fn add_months(at: Timestamp, months: u32) -> Timestamp {
    let local = at.to_china();
    let end = local.checked_add_months(chrono::Months::new(months)).unwrap_or(local);
    Timestamp::from_micros(end.timestamp_micros()).unwrap_or_else(|_| unreachable!("demo times are in range"))
}

/// The notice, issued on the start day; served the same day, or 18 days
/// later when that is the violation.
fn notice(builder: &mut Builder, plan: &Case) {
    let world = builder.world;
    let issued = world.at(plan.start, 10);
    let served_at = if plan.is(Violation::ServedLate) { world.at(plan.start + 18, 10) } else { issued };
    let incomplete = plan.is(Violation::NoticeIncomplete);
    let action = CaseAction::Notice {
        served_at,
        method: ServiceMethod::Post,
        matter: "Failure to perform an effective judgment".into(),
        legal_basis: if incomplete { vec![] } else { vec![legal("Civil Procedure Law of the PRC", "art. 266")] },
        rights: if incomplete { String::new() } else { "Objection within 7 working days".into() },
    };
    builder.case(&plan.spec.designating, issued, plan.case, action);
}

/// Objections before the designation; false when an upheld one ends the case.
fn objections_before(builder: &mut Builder, rng: &mut Rng, plan: &Case) -> bool {
    let world = builder.world;
    let designating = plan.spec.designating.as_str();
    if plan.is(Violation::DesignatedWhileObjectionPending) {
        // Lodged on day 8 (within the window), answered on day 22 (within
        // the 15-day review), but the designation came on day 20.
        let objection = objection(builder, plan, world.at(plan.start + 8, 15));
        let action = CaseAction::ObjectionDecision {
            objection,
            outcome: ObjectionOutcome::Rejected,
            reasons: "Reviewed".into(),
        };
        builder.case(designating, world.at(plan.start + 22, 9), plan.case, action);
        return true;
    }
    // Without a notice the case opens with the designation, so nothing can
    // come before it; a decision taken on day 5 would precede the answer.
    let quiet = plan.is(Violation::NoNotice) || plan.is(Violation::DecidedInWindow);
    let objects =
        !quiet && (rng.chance(30) || plan.is(Violation::ObjectionUndecided) || plan.is(Violation::UpheldNotRemedied));
    if !objects {
        return true;
    }
    let objection = objection(builder, plan, world.at(plan.start + 3, 15));
    if plan.is(Violation::ObjectionUndecided) {
        return false;
    }
    // An upheld objection ends the case before a designation, so a case
    // planted with a later violation never has one upheld.
    let upheld = (rng.chance(20) && plan.violation.is_none()) || plan.is(Violation::UpheldNotRemedied);
    let outcome = if upheld { ObjectionOutcome::Upheld } else { ObjectionOutcome::Rejected };
    let action = CaseAction::ObjectionDecision { objection, outcome, reasons: "Reviewed".into() };
    builder.case(designating, world.at(plan.start + 12, 9), plan.case, action);
    !upheld || plan.is(Violation::UpheldNotRemedied)
}

/// An objection received (and recorded) at `at`; returns its id.
fn objection(builder: &mut Builder, plan: &Case, at: Timestamp) -> EventId {
    let action = CaseAction::Objection { received_at: at, grounds: "The debt was paid".into(), evidence: vec![] };
    builder.case("petitions", at, plan.case, action);
    builder.events.last().map(SignedEvent::id).unwrap_or_else(|| unreachable!("just pushed"))
}

/// The designation decision, in force on `designate_day`; returns its term.
fn designation(builder: &mut Builder, plan: &Case, designate_day: i64) -> u16 {
    let world = builder.world;
    let term_months: u16 = if plan.case.0.as_str() == "cn-civil-aviation" { 12 } else { 24 };
    // Two years beyond the usual term exceeds every list's maximum (12, 24, 36
    // months); a term extended after it ran out is planted on a one-year term.
    let term_months = match plan.violation {
        Some(Violation::TermTooLong) => term_months + 24,
        Some(Violation::ExtensionAfterExpiry) => 12,
        _ => term_months,
    };
    let complete = !plan.is(Violation::IncompleteDecision);
    // Decided the morning it takes effect (day 20: after the longest window,
    // which around the Spring Festival and National Day runs to day 19), or,
    // planted, on day 5 of the window.
    let decided_at =
        if plan.is(Violation::DecidedInWindow) { world.at(plan.start + 5, 16) } else { world.at(designate_day, 8) };
    // The demo's judgments are all dated 2023-06-01; the national world's two
    // months before the decision; a planted one five days after it.
    let basis_date = if plan.is(Violation::BasisAfterDecision) {
        world.at(designate_day + 5, 0).to_china().date_naive()
    } else if world.national {
        world.at(designate_day - 60, 0).to_china().date_naive()
    } else {
        chrono::NaiveDate::from_ymd_opt(2023, 6, 1).unwrap_or_default()
    };
    let basis = complete.then(|| BasisDocument {
        issuer: "People's Court".into(),
        number: format!("({})执{}号", basis_date.format("%Y"), plan.index),
        date: docket_model::Date::new(basis_date).unwrap_or_else(|_| unreachable!()),
        digest: Digest::Sha256(Hash32(Sha256::digest(plan.index.to_be_bytes()).into())),
    });
    let text = |t: &str| if complete { t.to_owned() } else { String::new() };
    let action = CaseAction::DesignationDecision {
        decided_at,
        basis,
        reasons: text("Able to perform but refuses"),
        legal_basis: vec![legal("SPC Provisions on Publishing the List of Dishonest Judgment Defaulters", "art. 1")],
        measures_warning: text("Joint disciplinary measures apply"),
        removal_conditions: text("Full performance"),
        remedies: text("Correction request; review"),
        severity: Severity::Serious,
        // Civil aviation designations run one year; the others two.
        term_months: Some(term_months),
    };
    builder.case(&plan.spec.designating, world.at(designate_day, 9), plan.case, action);
    if plan.is(Violation::RecordedLate) {
        let decision = builder.events.last().map(SignedEvent::id).unwrap_or_else(|| unreachable!("just pushed"));
        builder.late.push(decision);
    }
    term_months
}

/// The measures applied after the designation; returns every one in place
/// (agency, measure), to lift when the case ends.
fn apply_measures(builder: &mut Builder, rng: &mut Rng, plan: &Case, designate_day: i64) -> Vec<(String, String)> {
    let world = builder.world;
    // A decision recorded a month late has no measures: they would be
    // recorded after it, late as well, and each would be a finding of its own.
    if plan.is(Violation::RecordedLate) {
        return vec![];
    }
    let parties = &plan.spec.parties;
    let mou = name(&format!("mou-{}", plan.case.0));
    let appliers: Vec<&(String, Vec<usize>)> = if world.national {
        // Two to seven parties, from anywhere in the MOU.
        let from = rng.below(parties.len() as u64) as usize;
        parties.iter().cycle().skip(from).take((2 + rng.below(6) as usize).min(parties.len())).collect()
    } else {
        parties.iter().take(2 + rng.below(4) as usize).collect()
    };
    let mut in_place: Vec<(String, String)> = vec![];
    let mut apply = |builder: &mut Builder, agency: &str, measure: &str, day: i64| {
        let action = CaseAction::MeasureApplied { measure: name(measure), mou: mou.clone() };
        builder.case(agency, world.at(day, 9), plan.case, action);
        in_place.push((agency.to_owned(), measure.to_owned()));
    };
    for (offset, (agency, measures)) in appliers.iter().enumerate() {
        apply(builder, agency, world.measure(measures[0]), designate_day + 1 + offset as i64);
    }
    let (agency, measures) = appliers[0];
    if plan.is(Violation::MeasureWithoutMou) {
        let last = world.measures.len() - 1;
        let outside = (1..last)
            .map(|step| world.measure((measures[0] + step) % last))
            .find(|code| !measures.iter().any(|m| world.measure(*m) == *code) && *code != world.measure(LOW_AUTHORITY))
            .unwrap_or(world.measure(last));
        apply(builder, agency, outside, designate_day + 6);
    }
    if plan.is(Violation::UncataloguedMeasure) {
        apply(builder, agency, "deny-hospital-internet-license", designate_day + 6);
    }
    if plan.is(Violation::MeasureAuthorityTooLow) {
        // The MOU's first party holds the low-authority measure.
        apply(builder, &parties[0].0, world.measure(LOW_AUTHORITY), designate_day + 7);
    }
    in_place
}

/// What happens while the designation is in force: extensions, objections against it.
fn after_designation(builder: &mut Builder, plan: &Case, designate_day: i64, term_months: u16) {
    let world = builder.world;
    let designating = plan.spec.designating.as_str();
    let extend = |months: u16| CaseAction::TermExtended { months, reasons: "Still not performed".into(), basis: None };
    match plan.violation {
        Some(Violation::ExtensionAfterExpiry) => {
            let late = add_months(world.at(designate_day, 9), u32::from(term_months) + 1);
            builder.case(designating, late, plan.case, extend(12));
        }
        Some(Violation::ExtensionsBeyondCap) => {
            // 24 + 24 months: each within 12-36 on the defaulter list, 48 together over its cap of 36.
            builder.case(designating, world.at(designate_day + 30, 9), plan.case, extend(24));
            builder.case(designating, world.at(designate_day + 40, 9), plan.case, extend(24));
        }
        Some(Violation::UpheldAfterDesignationNotRevoked) => {
            let objection = objection(builder, plan, world.at(designate_day + 10, 15));
            let action = CaseAction::ObjectionDecision {
                objection,
                outcome: ObjectionOutcome::Upheld,
                reasons: "Paid before listing".into(),
            };
            builder.case(designating, world.at(designate_day + 15, 9), plan.case, action);
        }
        _ => {}
    }
}

/// Restoration (some cases, and the violations that need one) between 60
/// and 260 days after the designation: before the 12-month publicity
/// minimum, which binds only a credit restoration (the early-restoration
/// violation). Other cases may apply for credit restoration (see
/// [`application`]). Returns the day the case was restored, if it was.
fn end(builder: &mut Builder, rng: &mut Rng, plan: &Case, designate_day: i64) -> Option<i64> {
    let must = plan.is(Violation::NotLiftedAfterRestoration) || plan.is(Violation::EarlyRestoration);
    // Cases whose violation lies in the term or an objection against it run to their term.
    let never = plan.is(Violation::ExtensionAfterExpiry)
        || plan.is(Violation::ExtensionsBeyondCap)
        || plan.is(Violation::UpheldAfterDesignationNotRevoked);
    let applies = plan.is(Violation::RestorationDecidedLate) || plan.is(Violation::RestorationFeeCollected);
    if applies || (!must && !never && rng.chance(20)) {
        return application(builder, rng, plan, designate_day);
    }
    let day = ((rng.chance(40) && !never) || must).then(|| designate_day + 60 + rng.below(200) as i64)?;
    let reason = if plan.is(Violation::EarlyRestoration) {
        RestorationReason::CreditRepaired
    } else {
        RestorationReason::ObligationsPerformed
    };
    let action = CaseAction::Restoration { reason, statement: "Paid in full".into() };
    builder.case(&plan.spec.designating, builder.world.at(day, 9), plan.case, action);
    Some(day)
}

/// An application for credit restoration (seed 004 (11)-(12)), received by
/// the intake agency, accepted the next day and decided a week after
/// receipt (within the 10 working days the bundled rule sets allow), with no
/// fee. Granted only after the 12-month publicity minimum (day 370) on lists
/// whose term runs longer; otherwise, and for the planted violations, refused
/// with reasons on day 100: 40 days after receipt when planted late, with a
/// fee when planted so. Returns the day of a grant.
fn application(builder: &mut Builder, rng: &mut Rng, plan: &Case, designate_day: i64) -> Option<i64> {
    let world = builder.world;
    let planted = plan.violation.is_some();
    let long_term = plan.case.0.as_str() != "cn-civil-aviation" && !plan.is(Violation::ExtensionAfterExpiry);
    let grant = !planted && long_term && rng.chance(70);
    let received = designate_day + if grant { 370 } else { 100 };
    let decided = received + if plan.is(Violation::RestorationDecidedLate) { 40 } else { 7 };
    if world.at(decided, 9) > worlds_last_day() {
        return None;
    }
    let action = CaseAction::RestorationApplication {
        received_at: world.at(received, 10),
        grounds: "Obligations performed; corrected".into(),
        evidence: vec![],
    };
    builder.case("petitions", world.at(received, 10), plan.case, action);
    let application = builder.events.last().map(SignedEvent::id).unwrap_or_else(|| unreachable!("just pushed"));
    let designating = plan.spec.designating.as_str();
    builder.case(designating, world.at(received + 1, 9), plan.case, CaseAction::RestorationAccepted { application });
    let reasons = if grant { "Conditions met" } else { "Obligations not yet performed" };
    let action = CaseAction::RestorationDecision {
        application,
        granted: grant,
        reasons: reasons.into(),
        fees_collected_fen: if plan.is(Violation::RestorationFeeCollected) { 20_000 } else { 0 },
    };
    builder.case(designating, world.at(decided, 9), plan.case, action);
    grant.then_some(decided)
}
