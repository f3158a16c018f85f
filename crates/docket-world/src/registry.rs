//! The registry every world starts with: agencies and their keys, the
//! measure catalogue, rule sets, lists and MOUs; and the builder that signs
//! each event with its signer's key.

use std::collections::HashMap;

use docket_model::event::*;
use docket_model::{Digest, Hash32, PublicKey, SignedEvent, SubjectId, Timestamp};
use ed25519_dalek::SigningKey;

use crate::world::{World, LOW_AUTHORITY};
use crate::{key, name};
use docket_model::Name;

/// Signs each event of a world with its signer's key.
pub(crate) struct Builder<'w> {
    pub(crate) seed: u64,
    pub(crate) events: Vec<SignedEvent>,
    pub(crate) root: SigningKey,
    pub(crate) world: &'w World,
    /// Events planted to be recorded late (see [`crate::Demo::recorded_late`]).
    pub(crate) late: Vec<docket_model::EventId>,
    /// Agency keys by name (deriving one costs a scalar multiplication).
    keys: HashMap<String, SigningKey>,
}

impl<'w> Builder<'w> {
    pub(crate) fn new(world: &'w World, seed: u64) -> Self {
        Builder {
            seed,
            events: Vec::new(),
            root: key(seed, "registry-root"),
            world,
            late: Vec::new(),
            keys: HashMap::new(),
        }
    }

    pub(crate) fn registry(&mut self, day: i64, body: RegistryEvent) {
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

    pub(crate) fn case(&mut self, agency: &str, when: Timestamp, case: &(Name, SubjectId, Name), action: CaseAction) {
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

pub(crate) fn legal(instrument: &str, article: &str) -> LegalRef {
    LegalRef { instrument: instrument.into(), article: article.into() }
}

/// The digest of rule set `id` as docket-audit bundles it, so that the
/// registry's digests match what the auditor applies.
fn rule_set_digest(id: &str) -> Digest {
    Digest::Sha256(Hash32(docket_audit::rules::RuleSet::digest(bundled_rule_set(id))))
}

/// The version of rule set `id` as docket-audit bundles it.
fn rule_set_version(id: &str) -> u32 {
    docket_audit::rules::RuleSet::parse(bundled_rule_set(id))
        .unwrap_or_else(|error| unreachable!("bundled rule sets are checked by tests: {error}"))
        .version
}

fn bundled_rule_set(id: &str) -> &'static str {
    let file = format!("{id}.rules.json");
    docket_audit::rules::BUNDLED
        .iter()
        .find_map(|(name, text)| (*name == file).then_some(*text))
        .unwrap_or_else(|| unreachable!("the worlds define no list with rule set {id}"))
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

pub(crate) fn registry(builder: &mut Builder) {
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
                    version: rule_set_version(spec.rule_set),
                    digest: rule_set_digest(spec.rule_set),
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

/// The registry events of `world` for `seed`, signed by its registry root (returned too).
pub fn registry_events(world: &World, seed: u64) -> (SigningKey, Vec<SignedEvent>) {
    let mut builder = Builder::new(world, seed);
    registry(&mut builder);
    (builder.root, builder.events)
}
