//! Deterministic generated ledgers.
//!
//! * [`build`]: the demo, a registry with three lists (court judgment
//!   defaulters, civil aviation, tax), 24 agencies, 32 catalogued measures
//!   and their MOUs, and `subjects` cases that run the whole lifecycle, with
//!   a known number of procedural violations of each kind;
//! * [`World::national`] with [`registry_events`] and [`national_chunk`]: the
//!   national-scale world of the benchmarks, seven lists, 60 agencies, 150
//!   catalogued measures, MOUs binding 10 to 45 agencies, and cases opening
//!   over ten years (2016 to 2025), generated in independent chunks so that
//!   all cores can sign them and the result does not depend on how many.
//!
//! Everything (keys, identifiers, times, choices) follows from the seed.

use std::collections::{BTreeMap, HashMap};

use docket_model::event::*;
use docket_model::{Digest, EventId, Hash32, Name, PublicKey, ResidentId, SignedEvent, SubjectId, Timestamp, Uscc};
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
    /// A notice that does not state the legal basis or the party's rights.
    NoticeIncomplete,
    /// A timely objection answered only after the designation was decided.
    DesignatedWhileObjectionPending,
    /// A measure whose catalogued authority is a departmental rule.
    MeasureAuthorityTooLow,
    /// A notice issued on time but served 18 days later, so the designation
    /// falls inside the window counted from service.
    ServedLate,
    /// A decision taken inside the objection window, in force only after it.
    DecidedInWindow,
    /// A term extended a month after it ran out.
    ExtensionAfterExpiry,
    /// Two extensions that together exceed the cap (or any extension where none is allowed).
    ExtensionsBeyondCap,
    /// A basis document dated after the decision that rests on it.
    BasisAfterDecision,
    /// An objection against the designation in force, upheld and never acted on.
    UpheldAfterDesignationNotRevoked,
}

impl Violation {
    /// Every kind, in order.
    pub const ALL: [Violation; 21] = [
        Self::NoNotice,
        Self::WindowNotObserved,
        Self::ObjectionUndecided,
        Self::MeasureWithoutMou,
        Self::UncataloguedMeasure,
        Self::MeasureOnUndesignated,
        Self::NotLiftedAfterRestoration,
        Self::IncompleteDecision,
        Self::UpheldNotRemedied,
        // Ninth: the rotation in `build` puts kinds 0, 3, 6, 9, ... on the
        // defaulter list (the number of kinds is a multiple of three).
        Self::MinorListed,
        Self::EarlyRestoration,
        Self::TermTooLong,
        Self::NoticeIncomplete,
        Self::DesignatedWhileObjectionPending,
        Self::MeasureAuthorityTooLow,
        Self::ServedLate,
        Self::DecidedInWindow,
        Self::ExtensionAfterExpiry,
        Self::ExtensionsBeyondCap,
        Self::BasisAfterDecision,
        Self::UpheldAfterDesignationNotRevoked,
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

/// Day 0 of the demo: 2024-01-01T00:00:00+08:00.
const DEMO_DAY_ZERO: i64 = 1_704_038_400_000_000;
/// Day 0 of the national world: 2016-01-01T00:00:00+08:00.
const NATIONAL_DAY_ZERO: i64 = 1_451_577_600_000_000;

fn at_from(base: i64, day: i64, hour: i64) -> Timestamp {
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
    // Catalogued under a ministry's notice (a departmental rule), like the
    // hospital-order MOU's Internet licence ban in seed 000: only planted
    // violations apply it.
    ("deny-internet-licence-blacklist", "No Internet information service licence (MIIT blacklist notice)"),
];

/// The index in `MEASURES` of the measure whose authority is a departmental rule.
const LOW_AUTHORITY: usize = 31;

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

/// Responsible agencies of the national world beyond the demo's twenty.
const NATIONAL_RESPONSIBLE: [&str; 35] = [
    "mps",
    "mca",
    "moj",
    "mof",
    "mwr",
    "moa",
    "mofa",
    "most",
    "miit",
    "nea",
    "nrta",
    "sport",
    "nbs",
    "nhsa",
    "cnipa",
    "nmpa",
    "post",
    "forestry",
    "grain",
    "tobacco",
    "sasac",
    "audit-office",
    "ncac",
    "nda",
    "cea",
    "mva",
    "nfsra",
    "cma",
    "ncha",
    "nra",
    "acftu",
    "fire-rescue",
    "nhc-tcm",
    "mot-maritime",
    "cnsa",
];

/// Sectors of the national world's generated measures (three measures each).
const SECTORS: [&str; 40] = [
    "fisheries",
    "forestry",
    "mining",
    "energy",
    "water",
    "ports",
    "shipping",
    "trucking",
    "aviation-ops",
    "telecom",
    "broadcast",
    "publishing",
    "education",
    "healthcare",
    "pharma",
    "food",
    "agriculture",
    "construction",
    "real-estate",
    "banking",
    "insurance",
    "securities",
    "lottery",
    "tobacco",
    "salt",
    "grain",
    "chemicals",
    "explosives",
    "firearms",
    "cultural-relics",
    "tourism",
    "sports",
    "security-services",
    "auditing",
    "legal-services",
    "patents",
    "standards",
    "surveying",
    "environment",
    "customs-brokerage",
];

/// A list of a generated world.
#[derive(Debug, Clone)]
struct ListSpec {
    list: String,
    designating: String,
    rule_set: &'static str,
    /// MOU parties: agency and the indexes of the measures it may apply.
    parties: Vec<(String, Vec<usize>)>,
    /// Relative share of the national world's cases.
    weight: u64,
}

/// A generated world: its agencies, catalogue, lists and calendar of cases.
#[derive(Debug, Clone)]
pub struct World {
    national: bool,
    /// Day 0, in microseconds since the epoch (midnight, China time).
    day_zero: i64,
    /// Case `index` opens on day `10 + (index * start_step) % start_days`.
    start_step: u64,
    start_days: u64,
    agencies: Vec<(String, String, Vec<Role>)>,
    measures: Vec<(String, String)>,
    lists: Vec<ListSpec>,
}

impl World {
    /// The demo: three lists, 24 agencies, 32 measures, cases opening in 2024 and 2025.
    pub fn demo() -> Self {
        let court_parties: Vec<(String, Vec<usize>)> = RESPONSIBLE
            .iter()
            .enumerate()
            .map(|(i, agency)| {
                let (first, second) = (i % 31, (i * 7 + 3) % 31);
                (agency.to_string(), if first == second { vec![first] } else { vec![first, second] })
            })
            .chain([("caac".to_string(), vec![0]), ("sat".to_string(), vec![22, 23])])
            .collect();
        let owned = |parties: &[(&str, &[usize])]| -> Vec<(String, Vec<usize>)> {
            parties.iter().map(|(a, m)| (a.to_string(), m.to_vec())).collect()
        };
        let aviation_parties = owned(&[("caac", &[0]), ("china-railway", &[1]), ("mct", &[30])]);
        let tax_parties =
            owned(&[("sat", &[22, 23, 24]), ("customs", &[21]), ("pboc-credit", &[18, 19]), ("mof-procurement", &[8])]);
        let list = |list: &str, designating: &str, rule_set, parties| ListSpec {
            list: list.into(),
            designating: designating.into(),
            rule_set,
            parties,
            weight: 1,
        };
        let designating = [
            ("spc", "Supreme People's Court", vec![Role::Designating]),
            ("caac", "Civil Aviation Administration", vec![Role::Designating, Role::Responsible]),
            ("sat", "State Taxation Administration", vec![Role::Designating, Role::Responsible]),
        ];
        let mut agencies: Vec<(String, String, Vec<Role>)> =
            designating.iter().map(|(a, n, r)| (a.to_string(), n.to_string(), r.clone())).collect();
        agencies.extend(RESPONSIBLE.iter().map(|a| (a.to_string(), format!("Agency {a}"), vec![Role::Responsible])));
        agencies.push(("petitions".into(), "State Bureau for Letters and Calls".into(), vec![Role::Intake]));
        World {
            national: false,
            day_zero: DEMO_DAY_ZERO,
            start_step: 3,
            start_days: 500,
            agencies,
            measures: MEASURES.iter().map(|(c, d)| (c.to_string(), d.to_string())).collect(),
            lists: vec![
                list("cn-spc-defaulters", "spc", "cn-spc-defaulters", court_parties),
                list("cn-civil-aviation", "caac", "cn-civil-aviation-2018", aviation_parties),
                list("cn-tax-serious", "sat", "cn-serious-untrustworthy", tax_parties),
            ],
        }
    }

    /// The national world: seven lists (the court's defaulters more than half
    /// of all cases), 60 agencies, 150 catalogued measures, an MOU per list
    /// binding 10 to 45 agencies, and cases opening from 2016 to 2025.
    pub fn national() -> Self {
        let designating = [
            ("spc", "Supreme People's Court", false),
            ("caac", "Civil Aviation Administration", true),
            ("sat", "State Taxation Administration", true),
            ("mee", "Ministry of Ecology and Environment", true),
        ];
        let mut agencies: Vec<(String, String, Vec<Role>)> = designating
            .iter()
            .map(|(a, n, responsible)| {
                let roles =
                    if *responsible { vec![Role::Designating, Role::Responsible] } else { vec![Role::Designating] };
                (a.to_string(), n.to_string(), roles)
            })
            .collect();
        for agency in RESPONSIBLE.iter().chain(NATIONAL_RESPONSIBLE.iter()) {
            // Customs, market regulation and human resources also keep lists.
            let roles = if ["customs", "samr", "mohrss"].contains(agency) {
                vec![Role::Designating, Role::Responsible]
            } else {
                vec![Role::Responsible]
            };
            agencies.push((agency.to_string(), format!("Agency {agency}"), roles));
        }
        agencies.push(("petitions".into(), "State Bureau for Letters and Calls".into(), vec![Role::Intake]));
        let mut measures: Vec<(String, String)> =
            MEASURES.iter().map(|(c, d)| (c.to_string(), d.to_string())).collect();
        'sectors: for action in ["deny-permit", "suspend-qualification", "enhanced-inspection"] {
            for sector in SECTORS {
                if measures.len() == 150 {
                    break 'sectors;
                }
                measures.push((format!("{action}-{sector}"), format!("{action} ({sector})")));
            }
        }
        // Responsible agencies, in the order MOUs take them as parties.
        let responsible: Vec<String> =
            agencies.iter().filter(|(_, _, r)| r.contains(&Role::Responsible)).map(|(a, _, _)| a.clone()).collect();
        let specs: [(&str, &str, &'static str, usize, u64); 7] = [
            ("cn-spc-defaulters", "spc", "cn-spc-defaulters", 45, 55),
            ("cn-civil-aviation", "caac", "cn-civil-aviation-2018", 10, 10),
            ("cn-tax-serious", "sat", "cn-serious-untrustworthy", 30, 10),
            ("cn-customs-serious", "customs", "cn-serious-untrustworthy", 18, 6),
            ("cn-market-serious", "samr", "cn-serious-untrustworthy", 38, 8),
            ("cn-ecology-serious", "mee", "cn-serious-untrustworthy", 14, 5),
            ("cn-labour-serious", "mohrss", "cn-serious-untrustworthy", 24, 6),
        ];
        let lists = specs
            .iter()
            .enumerate()
            .map(|(l, (list, designating, rule_set, party_count, weight))| {
                let parties = (0..*party_count)
                    .map(|j| {
                        let agency = responsible[(l * 13 + j) % responsible.len()].clone();
                        let mut indexes: Vec<usize> = Vec::new();
                        for k in 0..1 + (j + l) % 3 {
                            // Index 149 stands in for the low-authority measure, which
                            // only the first party holds (see `registry`).
                            let m = match (l * 37 + j * 11 + k * 53) % 149 {
                                LOW_AUTHORITY => 149,
                                m => m,
                            };
                            if !indexes.contains(&m) {
                                indexes.push(m);
                            }
                        }
                        (agency, indexes)
                    })
                    .collect();
                ListSpec {
                    list: list.to_string(),
                    designating: designating.to_string(),
                    rule_set,
                    parties,
                    weight: *weight,
                }
            })
            .collect();
        World {
            national: true,
            day_zero: NATIONAL_DAY_ZERO,
            start_step: 7,
            start_days: 3400,
            agencies,
            measures,
            lists,
        }
    }

    /// Number of agencies, catalogued measures and lists.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.agencies.len(), self.measures.len(), self.lists.len())
    }

    /// The agencies' names, in registration order.
    pub fn agencies(&self) -> impl Iterator<Item = &str> {
        self.agencies.iter().map(|(a, _, _)| a.as_str())
    }

    fn at(&self, day: i64, hour: i64) -> Timestamp {
        at_from(self.day_zero, day, hour)
    }

    fn measure(&self, index: usize) -> &str {
        &self.measures[index].0
    }
}

struct Builder<'w> {
    seed: u64,
    events: Vec<SignedEvent>,
    root: SigningKey,
    world: &'w World,
    /// Agency keys by name (deriving one costs a scalar multiplication).
    keys: HashMap<String, SigningKey>,
}

impl<'w> Builder<'w> {
    fn new(world: &'w World, seed: u64) -> Self {
        Builder { seed, events: Vec::new(), root: key(seed, "registry-root"), world, keys: HashMap::new() }
    }

    fn registry(&mut self, day: i64, body: RegistryEvent) {
        let event = Event {
            format: FORMAT_VERSION,
            signer: Signer::Registry,
            key: PublicKey(self.root.verifying_key().to_bytes()),
            effective_at: self.world.at(day, 9),
            body: Body::Registry(body),
        };
        self.events.push(
            SignedEvent::sign(event, &self.root).unwrap_or_else(|error| unreachable!("demo registry event: {error}")),
        );
    }

    fn case(&mut self, agency: &str, when: Timestamp, case: &(Name, SubjectId, Name), action: CaseAction) {
        let seed = self.seed;
        let signing = self.keys.entry(agency.to_owned()).or_insert_with(|| key(seed, agency));
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
            .push(SignedEvent::sign(event, signing).unwrap_or_else(|error| unreachable!("demo case event: {error}")));
    }
}

fn legal(instrument: &str, article: &str) -> LegalRef {
    LegalRef { instrument: instrument.into(), article: article.into() }
}

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

/// The measure catalogue: every measure on a law, but one on a ministry's
/// notice (a departmental rule), which only planted violations apply.
fn catalogue(builder: &mut Builder) {
    let world = builder.world;
    for (index, (code, description)) in world.measures.iter().enumerate() {
        let (authority, level) = if index == LOW_AUTHORITY {
            let notice = "MIIT Notice on a Blacklist System for Illegal Internet Sites (2009) No. 371";
            (legal(notice, "item 2"), AuthorityLevel::DepartmentalRule)
        } else {
            (legal("Law on Joint Credit Discipline (demo)", &format!("art. {}", index + 1)), AuthorityLevel::Law)
        };
        builder.registry(
            0,
            RegistryEvent::MeasureCatalogued { code: name(code), description: description.clone(), authority, level },
        );
    }
}

fn registry(builder: &mut Builder) {
    let world = builder.world;
    for (agency, full, roles) in &world.agencies {
        let public = PublicKey(key(builder.seed, agency).verifying_key().to_bytes());
        builder.registry(
            0,
            RegistryEvent::AgencyRegistered {
                agency: name(agency),
                name: full.clone(),
                roles: roles.clone(),
                keys: vec![public],
            },
        );
    }
    catalogue(builder);
    let mut published: Vec<&str> = Vec::new();
    for spec in &world.lists {
        let legal_basis = vec![legal("Civil Procedure Law of the PRC", "art. 266")];
        if !published.contains(&spec.rule_set) {
            published.push(spec.rule_set);
            builder.registry(
                1,
                RegistryEvent::RuleSetPublished {
                    rule_set: name(spec.rule_set),
                    version: 1,
                    digest: Digest::Sha256(Hash32(Sha256::digest(rule_set_document(spec.rule_set)).into())),
                    source: format!("{} (demo)", spec.rule_set),
                },
            );
        }
        builder.registry(
            1,
            RegistryEvent::ListDefined {
                list: name(&spec.list),
                name: spec.list.clone(),
                designating_agency: name(&spec.designating),
                rule_set: name(spec.rule_set),
                legal_basis,
            },
        );
        // The first party may also apply the low-authority measure: the MOU
        // covers it, the catalogue's level is what is wrong.
        let parties = spec
            .parties
            .iter()
            .enumerate()
            .map(|(index, (agency, measures))| MouParty {
                agency: name(agency),
                measures: measures
                    .iter()
                    .copied()
                    .chain((index == 0).then_some(LOW_AUTHORITY))
                    .map(|m| name(world.measure(m)))
                    .collect(),
            })
            .collect();
        builder.registry(
            2,
            RegistryEvent::MouSigned {
                mou: name(&format!("mou-{}", spec.list)),
                list: name(&spec.list),
                parties,
                effective_from: world.at(2, 0),
                effective_until: None,
            },
        );
    }
}

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
    Demo { registry_root: builder.root, events: builder.events, violations, planted }
}

/// The registry events of `world` for `seed`, signed by its registry root (returned too).
pub fn registry_events(world: &World, seed: u64) -> (SigningKey, Vec<SignedEvent>) {
    let mut builder = Builder::new(world, seed);
    registry(&mut builder);
    (builder.root, builder.events)
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
    Demo { registry_root: builder.root, events: builder.events, violations, planted }
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
    term_months
}

/// The measures applied after the designation; returns every one in place
/// (agency, measure), to lift when the case ends.
fn apply_measures(builder: &mut Builder, rng: &mut Rng, plan: &Case, designate_day: i64) -> Vec<(String, String)> {
    let world = builder.world;
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
/// violation). Returns its day, if any.
fn end(builder: &mut Builder, rng: &mut Rng, plan: &Case, designate_day: i64) -> Option<i64> {
    let must = plan.is(Violation::NotLiftedAfterRestoration) || plan.is(Violation::EarlyRestoration);
    // Cases whose violation lies in the term or an objection against it run to their term.
    let never = plan.is(Violation::ExtensionAfterExpiry)
        || plan.is(Violation::ExtensionsBeyondCap)
        || plan.is(Violation::UpheldAfterDesignationNotRevoked);
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

/// The last day the generated worlds reach: nothing after it is recorded,
/// since an agency records an act when it happens, never years ahead (the
/// ledger refuses valid times that lead the record by more than
/// `EFFECTIVE_LEAD_S_MAX`). Fixed, so that the worlds do not depend on the clock.
pub fn worlds_last_day() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00+08:00").unwrap_or_else(|_| unreachable!("a valid constant"))
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
    // 2024-01-02T00:00:00+08:00: after the demo registers its keys (day 0, 09:00).
    let at = Timestamp::from_micros(1_704_124_800_000_000).unwrap_or_else(|_| unreachable!("in range"));
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
                                        legal_basis: vec![legal("Civil Procedure Law of the PRC", "art. 266")],
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
    let built = build(subjects, seed);
    let checkpoint = write_events(dir, seed, &built.registry_root, &built.events)?;
    Ok((built, checkpoint))
}

/// Writes `events` (a generated world's, registry first, signed with keys of
/// `seed`) into a new ledger in `dir`, as [`write_ledger`] does; returns the
/// signed checkpoint.
pub fn write_events(
    dir: &std::path::Path,
    seed: u64,
    registry_root: &SigningKey,
    events: &[SignedEvent],
) -> Result<String, crate::ledger::LedgerError> {
    use crate::ledger::{self, Ledger, LedgerError};
    let log_key = key(seed, "log");
    let root = PublicKey(registry_root.verifying_key().to_bytes());
    ledger::init(dir, &format!("docket.invalid/demo-{seed}"), &log_key, root, Some(registry_root))?;
    let agencies = dir.join("keys/agencies");
    std::fs::create_dir_all(&agencies)
        .map_err(|e| LedgerError::Config { path: agencies.display().to_string(), reason: e.to_string() })?;
    for event in events {
        if let Body::Registry(RegistryEvent::AgencyRegistered { agency, .. }) = &event.event().body {
            crate::keyfile::write(&agencies.join(format!("{agency}.key")), &key(seed, agency.as_str()), false)?;
        }
    }
    let mut ledger = Ledger::open(dir, crate::Config::default())?;
    for (number, batch) in events.chunks(DEMO_BATCH_EVENTS).enumerate() {
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
    ledger.checkpoint(&log_key)
}
