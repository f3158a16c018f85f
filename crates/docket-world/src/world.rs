//! The worlds' tables: agencies, the measure catalogue, lists and their
//! MOU parties, and where each world's calendar starts.

use docket_model::event::Role;
use docket_model::Timestamp;

/// Day 0 of the demo: 2024-01-01T00:00:00+08:00.
pub(crate) const DEMO_DAY_ZERO: i64 = 1_704_038_400_000_000;
/// Day 0 of the national world: 2016-01-01T00:00:00+08:00.
pub(crate) const NATIONAL_DAY_ZERO: i64 = 1_451_577_600_000_000;

pub(crate) fn at_from(base: i64, day: i64, hour: i64) -> Timestamp {
    Timestamp::from_micros(base + (day * 24 + hour) * 3_600_000_000)
        .unwrap_or_else(|_| unreachable!("demo times are in range"))
}

pub(crate) const RESPONSIBLE: [&str; 20] = [
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

pub(crate) const MEASURES: [(&str, &str); 32] = [
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
pub(crate) const LOW_AUTHORITY: usize = 31;

/// Responsible agencies of the national world beyond the demo's twenty.
pub(crate) const NATIONAL_RESPONSIBLE: [&str; 35] = [
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
pub(crate) const SECTORS: [&str; 40] = [
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
pub(crate) struct ListSpec {
    pub(crate) list: String,
    pub(crate) designating: String,
    pub(crate) rule_set: &'static str,
    /// MOU parties: agency and the indexes of the measures it may apply.
    pub(crate) parties: Vec<(String, Vec<usize>)>,
    /// Relative share of the national world's cases.
    pub(crate) weight: u64,
}

/// A generated world: its agencies, catalogue, lists and calendar of cases.
#[derive(Debug, Clone)]
pub struct World {
    pub(crate) national: bool,
    /// Day 0, in microseconds since the epoch (midnight, China time).
    pub(crate) day_zero: i64,
    /// Case `index` opens on day `10 + (index * start_step) % start_days`.
    pub(crate) start_step: u64,
    pub(crate) start_days: u64,
    pub(crate) agencies: Vec<(String, String, Vec<Role>)>,
    pub(crate) measures: Vec<(String, String)>,
    pub(crate) lists: Vec<ListSpec>,
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

    pub(crate) fn at(&self, day: i64, hour: i64) -> Timestamp {
        at_from(self.day_zero, day, hour)
    }

    pub(crate) fn measure(&self, index: usize) -> &str {
        &self.measures[index].0
    }
}

/// The last day the generated worlds reach: nothing after it is recorded,
/// since an agency records an act when it happens, never years ahead (the
/// ledger refuses valid times that lead the record by more than
/// `EFFECTIVE_LEAD_S_MAX`). Fixed, so that the worlds do not depend on the clock.
pub fn worlds_last_day() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00+08:00").unwrap_or_else(|_| unreachable!("a valid constant"))
}
