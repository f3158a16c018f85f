//! A deterministic demo ledger: a registry with three lists (court
//! judgment defaulters, civil aviation, tax), 24 agencies, 32 catalogued
//! measures and their MOUs, and `subjects` cases that run the whole
//! lifecycle, with a known number of procedural violations of each kind.
//!
//! Everything (keys, identifiers, times, choices) follows from the seed.

use std::collections::BTreeMap;

use docket_model::event::*;
use docket_model::{Digest, Hash32, Name, PublicKey, ResidentId, SignedEvent, SubjectId, Timestamp, Uscc};
use ed25519_dalek::SigningKey;
use sha2::{Digest as _, Sha256};

/// A violation the demo plants on purpose, for the auditor to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Violation {
    /// Designation decision with no notice before it.
    NoNotice,
    /// Designation in force before the objection window closed.
    WindowNotObserved,
    /// A timely objection that is never decided.
    ObjectionUndecided,
    /// A measure applied by an agency whose MOU does not cover it.
    MeasureWithoutMou,
    /// A measure that is not in the catalogue.
    UncataloguedMeasure,
    /// A measure applied to a case that was never designated.
    MeasureOnUndesignated,
    /// Measures left in place after restoration.
    NotLiftedAfterRestoration,
    /// Decision document with empty required fields and no basis.
    IncompleteDecision,
    /// An objection upheld, and the designation made anyway and never revoked.
    UpheldNotRemedied,
    /// A resident under 18 on the defaulter list (planted on that list only).
    MinorListed,
    /// Credit restoration before the minimum publicity period.
    EarlyRestoration,
    /// A term longer than the rule set's maximum, with no extension.
    TermTooLong,
}

impl Violation {
    /// Every kind, in order.
    pub const ALL: [Violation; 12] = [
        Self::NoNotice,
        Self::WindowNotObserved,
        Self::ObjectionUndecided,
        Self::MeasureWithoutMou,
        Self::UncataloguedMeasure,
        Self::MeasureOnUndesignated,
        Self::NotLiftedAfterRestoration,
        Self::IncompleteDecision,
        Self::UpheldNotRemedied,
        // Ninth: the rotation in `build` puts kinds 0, 3, 6 and 9 on the defaulter list.
        Self::MinorListed,
        Self::EarlyRestoration,
        Self::TermTooLong,
    ];
}

/// The demo's events and what was planted in them.
#[derive(Debug)]
pub struct Demo {
    pub registry_root: SigningKey,
    pub events: Vec<SignedEvent>,
    /// Number of cases planted with each violation (one violation per case at most).
    pub violations: BTreeMap<Violation, u64>,
    /// The ground truth: case number and the violation planted in it.
    pub planted: Vec<(String, Violation)>,
}

/// The deterministic key named `name` for demo seed `seed`.
pub fn key(seed: u64, name: &str) -> SigningKey {
    let digest: [u8; 32] = Sha256::digest(format!("docket demo key {seed}: {name}")).into();
    SigningKey::from_bytes(&digest)
}

fn name(text: &str) -> Name {
    Name::parse(text).unwrap_or_else(|error| unreachable!("demo names are valid: {error}"))
}

fn at(day: i64, hour: i64) -> Timestamp {
    // Day 0 is 2024-01-01T00:00:00+08:00.
    let base = 1_704_038_400_000_000i64;
    Timestamp::from_micros(base + (day * 24 + hour) * 3_600_000_000)
        .unwrap_or_else(|_| unreachable!("demo times are in range"))
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const RESPONSIBLE: [&str; 20] = [
    "china-railway",
    "mof-procurement",
    "pboc-credit",
    "nfra",
    "mohrss",
    "samr",
    "mnr",
    "mohurd",
    "moe",
    "mot",
    "nia-exit",
    "customs",
    "nhc",
    "mem",
    "csrc",
    "ndrc",
    "mofcom",
    "cac",
    "mct",
    "nppa",
];

const MEASURES: [(&str, &str); 32] = [
    ("restrict-air-travel", "No purchase of air tickets"),
    ("restrict-rail-soft-berth", "No soft berths or first-class high-speed rail seats"),
    ("restrict-luxury-hotel", "No stays in star-rated hotels"),
    ("restrict-golf", "No golf or high-consumption leisure"),
    ("restrict-property-purchase", "No purchase of real estate"),
    ("restrict-luxury-vehicle", "No purchase of non-essential vehicles"),
    ("restrict-private-school", "Children may not attend high-fee private schools"),
    ("restrict-overseas-travel", "No overseas travel for tourism"),
    ("bar-government-procurement", "Barred from government procurement"),
    ("bar-public-bidding", "Barred from bidding on public construction projects"),
    ("bar-state-land", "Barred from acquiring state land-use rights"),
    ("bar-subsidies", "No government subsidies or support funds"),
    ("deny-bond-issuance", "No issuance of corporate bonds"),
    ("deny-stock-listing", "No listing or refinancing on exchanges"),
    ("deny-financial-license", "No licence for financial institutions"),
    ("restrict-executive-post", "May not serve as legal representative or executive"),
    ("restrict-civil-service", "May not be hired as a civil servant"),
    ("deny-honours", "No public honours or titles"),
    ("credit-rating-downgrade", "Considered in credit ratings"),
    ("loan-review-tightened", "Stricter review of loan applications"),
    ("insurance-premium-review", "Premiums reviewed by insurers"),
    ("customs-enhanced-inspection", "Enhanced customs inspection"),
    ("tax-enhanced-supervision", "Enhanced tax supervision"),
    ("restrict-invoice-supply", "Restricted supply of VAT invoices"),
    ("deny-export-rebate", "No export tax rebates"),
    ("deny-production-license", "No new production licences"),
    ("deny-medical-license", "No new medical practice licences"),
    ("deny-safety-license", "No new work safety licences"),
    ("deny-broadcast-license", "No broadcasting or publication licences"),
    ("deny-internet-service-license", "No Internet information service licences"),
    ("deny-tourism-license", "No travel agency licences"),
    ("public-disclosure", "Publication on the national credit portal"),
];

fn uscc(rng: &mut Rng) -> Uscc {
    let alphabet = Uscc::alphabet();
    let mut first: String = "91".into();
    first.push_str(&format!("{:06}", 110000 + rng.below(540000)));
    for _ in 0..9 {
        first.push(alphabet[rng.below(31) as usize] as char);
    }
    let check = Uscc::check_character(first.as_bytes());
    Uscc::parse(&format!("{first}{check}")).unwrap_or_else(|error| unreachable!("generated USCC is valid: {error}"))
}

fn resident(rng: &mut Rng) -> ResidentId {
    resident_born(rng, 1950, 50)
}

/// A resident id with a birth year in `from..from + years`.
fn resident_born(rng: &mut Rng, from: u64, years: u64) -> ResidentId {
    let first = format!(
        "{:06}{:04}{:02}{:02}{:03}",
        110101 + rng.below(500000),
        from + rng.below(years),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(1000)
    );
    let check = ResidentId::check_character(first.as_bytes());
    ResidentId::parse(&format!("{first}{check}")).unwrap_or_else(|error| unreachable!("generated id is valid: {error}"))
}

struct Builder {
    seed: u64,
    events: Vec<SignedEvent>,
    root: SigningKey,
}

impl Builder {
    fn registry(&mut self, day: i64, body: RegistryEvent) {
        let event = Event {
            format: FORMAT_VERSION,
            signer: Signer::Registry,
            key: PublicKey(self.root.verifying_key().to_bytes()),
            effective_at: at(day, 9),
            body: Body::Registry(body),
        };
        self.events.push(
            SignedEvent::sign(event, &self.root).unwrap_or_else(|error| unreachable!("demo registry event: {error}")),
        );
    }

    fn case(&mut self, agency: &str, when: Timestamp, case: &(Name, SubjectId, Name), action: CaseAction) {
        let signing = key(self.seed, agency);
        let event = Event {
            format: FORMAT_VERSION,
            signer: Signer::Agency(name(agency)),
            key: PublicKey(signing.verifying_key().to_bytes()),
            effective_at: when,
            body: Body::Case(CaseEvent {
                list: case.0.clone(),
                subject: case.1.clone(),
                number: case.2.clone(),
                expected_version: None,
                action,
            }),
        };
        self.events
            .push(SignedEvent::sign(event, &signing).unwrap_or_else(|error| unreachable!("demo case event: {error}")));
    }
}

fn legal(instrument: &str, article: &str) -> LegalRef {
    LegalRef { instrument: instrument.into(), article: article.into() }
}

/// A list: id, designating agency, rule set, MOU parties (agency, measure indexes).
type ListSpec = (&'static str, &'static str, &'static str, Vec<(&'static str, Vec<usize>)>);

/// The demo's lists.
/// The rule set documents the demo publishes: docket-audit's bundled files,
/// so the registry's digests match what the auditor applies.
fn rule_set_document(id: &str) -> &'static str {
    match id {
        "cn-spc-defaulters" => include_str!("../../docket-audit/data/cn-spc-defaulters.rules.json"),
        "cn-civil-aviation-2018" => include_str!("../../docket-audit/data/cn-civil-aviation-2018.rules.json"),
        "cn-serious-untrustworthy" => include_str!("../../docket-audit/data/cn-serious-untrustworthy.rules.json"),
        other => unreachable!("the demo defines no list with rule set {other}"),
    }
}

fn lists() -> Vec<ListSpec> {
    let court_parties: Vec<(&str, Vec<usize>)> = RESPONSIBLE
        .iter()
        .enumerate()
        .map(|(i, agency)| {
            let (first, second) = (i % 31, (i * 7 + 3) % 31);
            (*agency, if first == second { vec![first] } else { vec![first, second] })
        })
        .chain([("caac", vec![0]), ("sat", vec![22, 23])])
        .collect();
    let aviation_parties = vec![("caac", vec![0]), ("china-railway", vec![1]), ("mct", vec![30])];
    let tax_parties = vec![
        ("sat", vec![22, 23, 24]),
        ("customs", vec![21]),
        ("pboc-credit", vec![18, 19]),
        ("mof-procurement", vec![8]),
    ];
    vec![
        ("cn-spc-defaulters", "spc", "cn-spc-defaulters", court_parties),
        ("cn-civil-aviation", "caac", "cn-civil-aviation-2018", aviation_parties),
        ("cn-tax-serious", "sat", "cn-serious-untrustworthy", tax_parties),
    ]
}

fn registry(builder: &mut Builder) {
    let designating = [
        ("spc", "Supreme People's Court", vec![Role::Designating]),
        ("caac", "Civil Aviation Administration", vec![Role::Designating, Role::Responsible]),
        ("sat", "State Taxation Administration", vec![Role::Designating, Role::Responsible]),
    ];
    let mut agencies: Vec<(String, String, Vec<Role>)> =
        designating.iter().map(|(a, n, r)| (a.to_string(), n.to_string(), r.clone())).collect();
    agencies.extend(RESPONSIBLE.iter().map(|a| (a.to_string(), format!("Agency {a}"), vec![Role::Responsible])));
    agencies.push(("petitions".into(), "State Bureau for Letters and Calls".into(), vec![Role::Intake]));
    for (agency, full, roles) in agencies {
        let public = PublicKey(key(builder.seed, &agency).verifying_key().to_bytes());
        builder.registry(
            0,
            RegistryEvent::AgencyRegistered { agency: name(&agency), name: full, roles, keys: vec![public] },
        );
    }
    for (code, description) in MEASURES {
        let authority = legal(
            "Opinions on Joint Disciplinary Measures against Untrustworthy Persons",
            &format!("item {}", code.len()),
        );
        builder.registry(
            0,
            RegistryEvent::MeasureCatalogued { code: name(code), description: description.into(), authority },
        );
    }
    for (list, designating, rule_set, parties) in lists() {
        let legal_basis = vec![legal("Civil Procedure Law of the PRC", "art. 266")];
        builder.registry(
            1,
            RegistryEvent::RuleSetPublished {
                rule_set: name(rule_set),
                version: 1,
                digest: Digest::Sha256(Hash32(Sha256::digest(rule_set_document(rule_set)).into())),
                source: format!("{rule_set} (demo)"),
            },
        );
        builder.registry(
            1,
            RegistryEvent::ListDefined {
                list: name(list),
                name: list.into(),
                designating_agency: name(designating),
                rule_set: name(rule_set),
                legal_basis,
            },
        );
        let parties = parties
            .into_iter()
            .map(|(agency, measures)| MouParty {
                agency: name(agency),
                measures: measures.into_iter().map(|m| name(MEASURES[m].0)).collect(),
            })
            .collect();
        builder.registry(
            2,
            RegistryEvent::MouSigned {
                mou: name(&format!("mou-{list}")),
                list: name(list),
                parties,
                effective_from: at(2, 0),
                effective_until: None,
            },
        );
    }
}

/// Builds the demo: registry first, then `subjects` cases.
pub fn build(subjects: u64, seed: u64) -> Demo {
    let mut builder = Builder { seed, events: Vec::new(), root: key(seed, "registry-root") };
    registry(&mut builder);
    let lists = lists();
    let mut rng = Rng(seed);
    let mut violations = BTreeMap::new();
    let mut planted = Vec::new();
    for index in 0..subjects {
        let (list, designating, _, parties) = &lists[(index % 3) as usize];
        // One planted violation in about a quarter of the cases, by rotation.
        let violation = (index % 4 == 3)
            .then(|| Violation::ALL[((index / 4) % Violation::ALL.len() as u64) as usize])
            .filter(|v| *v != Violation::MinorListed || *list == "cn-spc-defaulters");
        let subject = if violation == Some(Violation::MinorListed) {
            // Born 2010-2011: 13 to 16 when designated in 2024-2026.
            SubjectId::Resident(resident_born(&mut rng, 2010, 2))
        } else if rng.chance(60) {
            SubjectId::Uscc(uscc(&mut rng))
        } else {
            SubjectId::Resident(resident(&mut rng))
        };
        let case = (name(list), subject, name(&format!("({})demo-{index}", 2024 + index % 3)));
        if let Some(v) = violation {
            *violations.entry(v).or_insert(0) += 1;
            planted.push((case.2.to_string(), v));
        }
        lifecycle(&mut builder, &mut rng, index, &case, designating, parties, violation);
    }
    Demo { registry_root: builder.root, events: builder.events, violations, planted }
}

#[allow(clippy::too_many_arguments)]
fn lifecycle(
    builder: &mut Builder,
    rng: &mut Rng,
    index: u64,
    case: &(Name, SubjectId, Name),
    designating: &str,
    parties: &[(&str, Vec<usize>)],
    violation: Option<Violation>,
) {
    let start = 10 + (index as i64 * 3) % 500;
    let notice_at = at(start, 10);
    let v = |kind| violation == Some(kind);
    if !v(Violation::NoNotice) {
        builder.case(
            designating,
            notice_at,
            case,
            CaseAction::Notice {
                served_at: notice_at,
                method: ServiceMethod::Post,
                matter: "Failure to perform an effective judgment".into(),
                rights: "Objection within 7 working days".into(),
            },
        );
    }
    if v(Violation::MeasureOnUndesignated) {
        let (agency, measures) = &parties[0];
        builder.case(
            agency,
            at(start + 2, 9),
            case,
            CaseAction::MeasureApplied {
                measure: name(MEASURES[measures[0]].0),
                mou: name(&format!("mou-{}", case.0)),
            },
        );
        return;
    }
    // Without a notice the case opens with the designation, so nothing can come before it.
    let objects = !v(Violation::NoNotice)
        && (rng.chance(30) || v(Violation::ObjectionUndecided) || v(Violation::UpheldNotRemedied));
    if objects {
        builder.case(
            "petitions",
            at(start + 3, 15),
            case,
            CaseAction::Objection {
                received_at: at(start + 3, 15),
                grounds: "The debt was paid".into(),
                evidence: vec![],
            },
        );
        if !v(Violation::ObjectionUndecided) {
            let objection = builder.events.last().map(SignedEvent::id).unwrap_or_else(|| unreachable!("just pushed"));
            // An upheld objection ends the case before a designation, so a
            // case planted with a later violation never has one upheld.
            let uphold = (rng.chance(20) && violation.is_none()) || v(Violation::UpheldNotRemedied);
            let outcome = if uphold { ObjectionOutcome::Upheld } else { ObjectionOutcome::Rejected };
            let upheld = outcome == ObjectionOutcome::Upheld;
            builder.case(
                designating,
                at(start + 12, 9),
                case,
                CaseAction::ObjectionDecision { objection, outcome, reasons: "Reviewed".into() },
            );
            if upheld && !v(Violation::UpheldNotRemedied) {
                return;
            }
        }
    }
    let designate_day = if v(Violation::WindowNotObserved) { start + 2 } else { start + 20 };
    let term_months: u16 = if case.0.as_str() == "cn-civil-aviation" { 12 } else { 24 };
    // Two years beyond the usual term exceeds every list's maximum (12, 24, 36 months).
    let term_months = if v(Violation::TermTooLong) { term_months + 24 } else { term_months };
    let complete = !v(Violation::IncompleteDecision);
    let basis = complete.then(|| BasisDocument {
        issuer: "People's Court".into(),
        number: format!("({})执{index}号", 2023),
        date: docket_model::Date::new(chrono::NaiveDate::from_ymd_opt(2023, 6, 1).unwrap_or_default())
            .unwrap_or_else(|_| unreachable!()),
        digest: Digest::Sha256(Hash32(Sha256::digest(index.to_be_bytes()).into())),
    });
    let text = |t: &str| {
        if complete {
            t.to_owned()
        } else {
            String::new()
        }
    };
    builder.case(
        designating,
        at(designate_day, 9),
        case,
        CaseAction::DesignationDecision {
            basis,
            reasons: text("Able to perform but refuses"),
            legal_basis: vec![legal(
                "SPC Provisions on Publishing the List of Dishonest Judgment Defaulters",
                "art. 1",
            )],
            measures_warning: text("Joint disciplinary measures apply"),
            removal_conditions: text("Full performance"),
            remedies: text("Correction request; review"),
            severity: Severity::Serious,
            // Civil aviation designations run one year; the others two.
            term_months: Some(term_months),
        },
    );
    let mou = name(&format!("mou-{}", case.0));
    let appliers: Vec<&(&str, Vec<usize>)> = parties.iter().take(2 + rng.below(4) as usize).collect();
    for (offset, (agency, measures)) in appliers.iter().enumerate() {
        builder.case(
            agency,
            at(designate_day + 1 + offset as i64, 9),
            case,
            CaseAction::MeasureApplied { measure: name(MEASURES[measures[0]].0), mou: mou.clone() },
        );
    }
    // Every measure in place, by agency, to lift when the case ends.
    let mut in_place: Vec<(&str, &str)> =
        appliers.iter().map(|(agency, measures)| (*agency, MEASURES[measures[0]].0)).collect();
    if v(Violation::MeasureWithoutMou) {
        let (agency, measures) = appliers[0];
        let outside = (1..31)
            .map(|step| MEASURES[(measures[0] + step) % 31].0)
            .find(|code| !measures.iter().any(|m| MEASURES[*m].0 == *code))
            .unwrap_or(MEASURES[31].0);
        builder.case(
            agency,
            at(designate_day + 6, 9),
            case,
            CaseAction::MeasureApplied { measure: name(outside), mou: mou.clone() },
        );
        in_place.push((agency, outside));
    }
    if v(Violation::UncataloguedMeasure) {
        builder.case(
            appliers[0].0,
            at(designate_day + 6, 9),
            case,
            CaseAction::MeasureApplied { measure: name("deny-hospital-internet-license"), mou: mou.clone() },
        );
        in_place.push((appliers[0].0, "deny-hospital-internet-license"));
    }
    // The case ends by restoration, or by its term; the measures are lifted
    // the next day (unless the violation is not lifting them).
    // Restored within 60-260 days: before the 12-month publicity minimum, which
    // binds only a credit restoration (the early-restoration violation).
    let restored = (rng.chance(40) || v(Violation::NotLiftedAfterRestoration) || v(Violation::EarlyRestoration))
        .then(|| designate_day + 60 + rng.below(200) as i64);
    if let Some(day) = restored {
        builder.case(
            designating,
            at(day, 9),
            case,
            CaseAction::Restoration {
                reason: if v(Violation::EarlyRestoration) {
                    RestorationReason::CreditRepaired
                } else {
                    RestorationReason::ObligationsPerformed
                },
                statement: "Paid in full".into(),
            },
        );
        if v(Violation::NotLiftedAfterRestoration) {
            return;
        }
    }
    let ended = match restored {
        Some(day) => at(day, 9),
        None => {
            let in_force = at(designate_day, 9).to_china();
            let end = in_force.checked_add_months(chrono::Months::new(term_months.into())).unwrap_or(in_force);
            Timestamp::from_micros(end.timestamp_micros()).unwrap_or_else(|_| unreachable!("demo times are in range"))
        }
    };
    for (offset, (agency, measure)) in in_place.iter().enumerate() {
        let lifted = Timestamp::from_micros(ended.micros() + (24 + offset as i64) * 3_600_000_000)
            .unwrap_or_else(|_| unreachable!("demo times are in range"));
        builder.case(
            agency,
            lifted,
            case,
            CaseAction::MeasureLifted { measure: name(measure), reason: LiftReason::CaseClosed },
        );
    }
}

/// A Unified Social Credit Code for benchmark subject `index` (`91110000` then the index).
pub fn bench_uscc(index: u64) -> Uscc {
    let first = format!("91110000{index:09}");
    let check = Uscc::check_character(first.as_bytes());
    Uscc::parse(&format!("{first}{check}")).unwrap_or_else(|error| unreachable!("a generated code is valid: {error}"))
}

/// Notices opening the cases `from..from + count` on the defaulter list, each
/// for its own subject ([`bench_uscc`]), signed by the demo court of `seed`,
/// on all cores: the workload of the ingest benchmarks.
pub fn notices(from: u64, count: u64, seed: u64) -> Vec<SignedEvent> {
    let key = key(seed, "spc");
    let public = PublicKey(key.verifying_key().to_bytes());
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let chunk = count.div_ceil(threads).max(1);
    let at = Timestamp::from_micros(1_704_038_400_000_000).unwrap_or_else(|_| unreachable!("in range"));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let key = key.clone();
                scope.spawn(move || {
                    (from + t * chunk..from + ((t + 1) * chunk).min(count))
                        .map(|i| {
                            let event = Event {
                                format: FORMAT_VERSION,
                                signer: Signer::Agency(name("spc")),
                                key: public,
                                effective_at: at,
                                body: Body::Case(CaseEvent {
                                    list: name("cn-spc-defaulters"),
                                    subject: SubjectId::Uscc(bench_uscc(i)),
                                    number: name(&format!("(2024)京0105执{i}号")),
                                    expected_version: Some(0),
                                    action: CaseAction::Notice {
                                        served_at: at,
                                        method: ServiceMethod::Post,
                                        matter: "Failure to perform the payment obligation in an effective judgment"
                                            .into(),
                                        rights: "You may object in writing within 7 working days of service.".into(),
                                    },
                                }),
                            };
                            SignedEvent::sign(event, &key).unwrap_or_else(|error| unreachable!("signs: {error}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| unreachable!("signing does not panic"))).collect()
    })
}

/// Events per write (one `fdatasync` each) when [`write_ledger`] appends the demo.
pub const DEMO_BATCH_EVENTS: usize = 4096;

/// Writes the demo of `subjects` subjects into a new ledger in `dir`: the
/// demo's log key and registry root (its secret key under `keys/`), every
/// agency's key under `keys/agencies/`, every event appended in batches of
/// [`DEMO_BATCH_EVENTS`], and a signed checkpoint. Returns the demo (keys and
/// planted violations) and the checkpoint.
pub fn write_ledger(
    dir: &std::path::Path,
    subjects: u64,
    seed: u64,
) -> Result<(Demo, String), crate::ledger::LedgerError> {
    use crate::ledger::{self, Ledger, LedgerError};
    let built = build(subjects, seed);
    let log_key = key(seed, "log");
    let root = PublicKey(built.registry_root.verifying_key().to_bytes());
    ledger::init(dir, &format!("docket.invalid/demo-{seed}"), &log_key, root, Some(&built.registry_root))?;
    let agencies = dir.join("keys/agencies");
    std::fs::create_dir_all(&agencies)
        .map_err(|e| LedgerError::Config { path: agencies.display().to_string(), reason: e.to_string() })?;
    for event in &built.events {
        if let Body::Registry(RegistryEvent::AgencyRegistered { agency, .. }) = &event.event().body {
            crate::keyfile::write(&agencies.join(format!("{agency}.key")), &key(seed, agency.as_str()), false)?;
        }
    }
    let mut ledger = Ledger::open(dir, crate::Config::default())?;
    for (number, batch) in built.events.chunks(DEMO_BATCH_EVENTS).enumerate() {
        let results = ledger.log.append_batch_with(batch.to_vec(), Timestamp::now(), true)?;
        for (offset, (result, event)) in results.iter().zip(batch).enumerate() {
            if let Err(refusal) = result {
                let index = number * DEMO_BATCH_EVENTS + offset;
                return Err(LedgerError::DemoRefused {
                    index,
                    kind: event.event().kind().name(),
                    reason: refusal.to_string(),
                });
            }
        }
    }
    let checkpoint = ledger.checkpoint(&log_key)?;
    Ok((built, checkpoint))
}
