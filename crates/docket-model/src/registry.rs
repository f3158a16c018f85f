//! The registry state machine: who may sign what, as of any point in the log.
//!
//! The log's validator and the folds both feed events through [`Registry::apply`]
//! in log order, so that "as of sequence N" is the state after applying the
//! first N events. Registry events change the state; case events are only
//! authorised against it.
//!
//! Authorisation covers authenticity and form, never procedure (the log
//! records acts; the audit judges them): a designation without a notice is recorded and left to the
//! auditor; a designation signed by an agency that does not run the list is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::crypto::{Digest, PublicKey};
use crate::event::{
    AuthorityLevel, Body, CaseAction, CaseEvent, Event, LegalRef, MouParty, RegistryEvent, Role, Signer,
};
use crate::ids::{AgencyId, ListId, MeasureCode, MouId, RuleSetId};
use crate::time::Timestamp;

/// Why the registry refuses an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("registry events must be signed by the registry root key {expected}, not {actual}")]
    NotRootKey { expected: PublicKey, actual: PublicKey },
    #[error("agency \"{0}\" is not registered")]
    UnknownAgency(AgencyId),
    #[error("key {key} is not registered to agency \"{agency}\"")]
    UnknownKey { agency: AgencyId, key: PublicKey },
    #[error("key {key} of agency \"{agency}\" is revoked from {invalid_from}")]
    RevokedKey { agency: AgencyId, key: PublicKey, invalid_from: Timestamp },
    #[error("key {key} of agency \"{agency}\" is valid from {valid_from}; it cannot sign an act effective at {effective_at}")]
    KeyNotYetValid { agency: AgencyId, key: PublicKey, valid_from: Timestamp, effective_at: Timestamp },
    #[error(
        "effective_at {effective_at} is more than {lead_s_max} s after the time the ledger records it ({recorded_at})"
    )]
    EffectiveTooFarAhead { effective_at: Timestamp, recorded_at: Timestamp, lead_s_max: i64 },
    #[error("agency \"{agency}\" lacks the {role:?} role needed for {action}")]
    MissingRole { agency: AgencyId, role: Role, action: &'static str },
    #[error("agency \"{agency}\" is not the designating agency of list \"{list}\" (\"{designating}\" is)")]
    NotDesignatingAgency { agency: AgencyId, list: ListId, designating: AgencyId },
    #[error("list \"{0}\" is not defined")]
    UnknownList(ListId),
    #[error("{what} {name:?} already exists")]
    Duplicate { what: &'static str, name: String },
    #[error("key {0} is the registry root key and cannot be an agency key")]
    RootKeyReused(PublicKey),
    #[error("key {key} is already registered (to \"{agency}\")")]
    KeyInUse { key: PublicKey, agency: AgencyId },
    #[error("measure \"{0}\" is not catalogued")]
    UnknownMeasure(MeasureCode),
    #[error("MOU \"{0}\" does not exist")]
    UnknownMou(MouId),
    #[error("rule set \"{rule_set}\" version {version} is not newer than the published version {current}")]
    StaleRuleSet { rule_set: RuleSetId, version: u32, current: u32 },
}

/// An agency's act may be recorded a little before it takes effect (a
/// decision in force from a later day), never years ahead. Registry acts
/// are not bounded: the conference publishes rule sets and MOUs that take
/// effect later.
fn check_lead(effective_at: Timestamp, recorded_at: Timestamp) -> Result<(), AuthError> {
    let lead_s_max = crate::limits::EFFECTIVE_LEAD_S_MAX;
    if effective_at.micros() > recorded_at.micros().saturating_add(lead_s_max.saturating_mul(1_000_000)) {
        return Err(AuthError::EffectiveTooFarAhead { effective_at, recorded_at, lead_s_max });
    }
    Ok(())
}

/// One key of an agency and when it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyState {
    /// Effective time of the event that registered the key.
    pub valid_from: Timestamp,
    /// Set by a revocation.
    pub invalid_from: Option<Timestamp>,
}

/// A registered agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgencyState {
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub keys: BTreeMap<PublicKey, KeyState>,
}

/// A defined list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListState {
    pub name: String,
    pub designating_agency: AgencyId,
    pub rule_set: RuleSetId,
    pub legal_basis: Vec<LegalRef>,
}

/// A catalogued measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MeasureState {
    pub description: String,
    pub authority: LegalRef,
    /// The authority's level in the hierarchy of norms.
    pub level: AuthorityLevel,
}

/// One version of an MOU's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MouTerms {
    pub parties: Vec<MouParty>,
    pub effective_from: Timestamp,
    pub effective_until: Option<Timestamp>,
    /// When the ledger recorded these terms (system time): an amendment may
    /// take effect retroactively, but nobody could act on it before this.
    pub recorded_at: Timestamp,
}

/// An MOU with every version of its terms, oldest first, so that "did this
/// MOU cover agency A and measure M at valid time T" can be answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MouState {
    pub list: ListId,
    pub terms: Vec<MouTerms>,
}

impl MouState {
    /// The terms in force at valid time `at`: the latest version whose
    /// `effective_from` is not after `at`, unless it has ended by `at`.
    pub fn terms_at(&self, at: Timestamp) -> Option<&MouTerms> {
        self.terms_known_at(at, None)
    }

    /// The terms in force at valid time `at` as the ledger stood at system
    /// time `known` (None: everything recorded).
    pub fn terms_known_at(&self, at: Timestamp, known: Option<Timestamp>) -> Option<&MouTerms> {
        let recorded = |terms: &&MouTerms| known.is_none_or(|known| terms.recorded_at <= known);
        let terms = self.terms.iter().rev().filter(recorded).find(|terms| terms.effective_from <= at)?;
        terms.effective_until.is_none_or(|until| at < until).then_some(terms)
    }

    /// Whether the terms in force at `at` bind `agency` to `measure`.
    pub fn binds(&self, agency: &AgencyId, measure: &MeasureCode, at: Timestamp) -> bool {
        self.binds_as_known(agency, measure, at, None)
    }

    /// Whether the terms in force at `at`, as recorded by system time `known`,
    /// bind `agency` to `measure`.
    pub fn binds_as_known(
        &self,
        agency: &AgencyId,
        measure: &MeasureCode,
        at: Timestamp,
        known: Option<Timestamp>,
    ) -> bool {
        self.terms_known_at(at, known)
            .is_some_and(|terms| terms.parties.iter().any(|p| p.agency == *agency && p.measures.contains(measure)))
    }
}

/// A published rule set version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleSetVersion {
    pub version: u32,
    pub digest: Digest,
    pub source: String,
    pub published_at: Timestamp,
}

/// The registry: agencies, keys, lists, measures, MOUs and rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registry {
    root: PublicKey,
    agencies: BTreeMap<AgencyId, AgencyState>,
    key_owners: BTreeMap<PublicKey, AgencyId>,
    lists: BTreeMap<ListId, ListState>,
    measures: BTreeMap<MeasureCode, MeasureState>,
    mous: BTreeMap<MouId, MouState>,
    rule_sets: BTreeMap<RuleSetId, Vec<RuleSetVersion>>,
}

impl Registry {
    /// An empty registry governed by the given root key.
    pub fn new(root: PublicKey) -> Self {
        Self {
            root,
            agencies: BTreeMap::new(),
            key_owners: BTreeMap::new(),
            lists: BTreeMap::new(),
            measures: BTreeMap::new(),
            mous: BTreeMap::new(),
            rule_sets: BTreeMap::new(),
        }
    }

    /// Authorises an event appended at system time `recorded_at`, then applies
    /// it. On error the registry is unchanged.
    pub fn apply(&mut self, event: &Event, recorded_at: Timestamp) -> Result<(), AuthError> {
        self.authorize(event, recorded_at)?;
        if let Body::Registry(body) = &event.body {
            self.apply_registry(body, event.effective_at, recorded_at);
        }
        Ok(())
    }

    /// Whether the event may be appended at system time `recorded_at`: the key
    /// is the signer's and valid, the signer's role allows the act on this
    /// list, and a registry event's references resolve.
    pub fn authorize(&self, event: &Event, recorded_at: Timestamp) -> Result<(), AuthError> {
        match (&event.signer, &event.body) {
            (Signer::Registry, Body::Registry(body)) => {
                if event.key != self.root {
                    return Err(AuthError::NotRootKey { expected: self.root, actual: event.key });
                }
                self.check_registry(body)
            }
            (Signer::Agency(agency), Body::Case(body)) => {
                check_lead(event.effective_at, recorded_at)?;
                self.check_key(agency, &event.key, event.effective_at, recorded_at)?;
                self.check_case_role(agency, body)
            }
            // validate() refuses these pairings before an event gets here.
            (Signer::Registry, Body::Case(_)) | (Signer::Agency(_), Body::Registry(_)) => {
                Err(AuthError::NotRootKey { expected: self.root, actual: event.key })
            }
        }
    }

    /// Whether `key` may sign for `agency` at `at` (registered, not revoked
    /// by then): the check for signed requests.
    pub fn check_key_at(&self, agency: &AgencyId, key: &PublicKey, at: Timestamp) -> Result<(), AuthError> {
        self.check_key(agency, key, at, at)
    }

    /// A key signs for its agency once registered. A revoked key signs nothing
    /// recorded, or declared effective, at or after its `invalid_from`; the
    /// second half stops a compromised key from back-dating.
    fn check_key(
        &self,
        agency: &AgencyId,
        key: &PublicKey,
        effective_at: Timestamp,
        recorded_at: Timestamp,
    ) -> Result<(), AuthError> {
        let state = self.agencies.get(agency).ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?;
        let key_state =
            state.keys.get(key).ok_or_else(|| AuthError::UnknownKey { agency: agency.clone(), key: *key })?;
        if let Some(invalid_from) = key_state.invalid_from {
            if recorded_at >= invalid_from || effective_at >= invalid_from {
                return Err(AuthError::RevokedKey { agency: agency.clone(), key: *key, invalid_from });
            }
        }
        // A key signs only acts inside its validity in valid time: a key
        // registered today cannot sign for an act dated before it existed.
        if effective_at < key_state.valid_from {
            return Err(AuthError::KeyNotYetValid {
                agency: agency.clone(),
                key: *key,
                valid_from: key_state.valid_from,
                effective_at,
            });
        }
        Ok(())
    }

    fn check_case_role(&self, agency: &AgencyId, body: &CaseEvent) -> Result<(), AuthError> {
        let list = self.lists.get(&body.list).ok_or_else(|| AuthError::UnknownList(body.list.clone()))?;
        let roles = &self.agencies.get(agency).ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?.roles;
        let is_designating = list.designating_agency == *agency && roles.contains(&Role::Designating);
        let not_designating = || AuthError::NotDesignatingAgency {
            agency: agency.clone(),
            list: body.list.clone(),
            designating: list.designating_agency.clone(),
        };
        match &body.action {
            CaseAction::Objection { .. } | CaseAction::RestorationApplication { .. } => {
                if is_designating || roles.contains(&Role::Intake) {
                    Ok(())
                } else {
                    Err(AuthError::MissingRole {
                        agency: agency.clone(),
                        role: Role::Intake,
                        action: "recording an objection or a restoration application",
                    })
                }
            }
            CaseAction::MeasureApplied { .. } | CaseAction::MeasureLifted { .. } => {
                if roles.contains(&Role::Responsible) {
                    Ok(())
                } else {
                    Err(AuthError::MissingRole {
                        agency: agency.clone(),
                        role: Role::Responsible,
                        action: "applying or lifting a measure",
                    })
                }
            }
            _ if is_designating => Ok(()),
            _ => Err(not_designating()),
        }
    }

    fn check_agency_role(&self, agency: &AgencyId, role: Role, action: &'static str) -> Result<(), AuthError> {
        let state = self.agencies.get(agency).ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?;
        if state.roles.contains(&role) {
            Ok(())
        } else {
            Err(AuthError::MissingRole { agency: agency.clone(), role, action })
        }
    }

    fn check_parties(&self, parties: &[MouParty]) -> Result<(), AuthError> {
        for party in parties {
            self.check_agency_role(&party.agency, Role::Responsible, "being a party to an MOU")?;
            if let Some(code) = party.measures.iter().find(|code| !self.measures.contains_key(*code)) {
                return Err(AuthError::UnknownMeasure(code.clone()));
            }
        }
        Ok(())
    }

    fn check_new_key(&self, key: &PublicKey) -> Result<(), AuthError> {
        match self.key_owners.get(key) {
            Some(agency) => Err(AuthError::KeyInUse { key: *key, agency: agency.clone() }),
            None if *key == self.root => Err(AuthError::RootKeyReused(*key)),
            None => Ok(()),
        }
    }

    fn check_registry(&self, body: &RegistryEvent) -> Result<(), AuthError> {
        let duplicate = |what, name: &dyn std::fmt::Display| Err(AuthError::Duplicate { what, name: name.to_string() });
        match body {
            RegistryEvent::AgencyRegistered { agency, keys, .. } => {
                if self.agencies.contains_key(agency) {
                    return duplicate("agency", agency);
                }
                keys.iter().try_for_each(|key| self.check_new_key(key))
            }
            RegistryEvent::KeyAdded { agency, key } => {
                if !self.agencies.contains_key(agency) {
                    return Err(AuthError::UnknownAgency(agency.clone()));
                }
                self.check_new_key(key)
            }
            RegistryEvent::KeyRevoked { agency, key, .. } => {
                let state = self.agencies.get(agency).ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?;
                match state.keys.get(key) {
                    None => Err(AuthError::UnknownKey { agency: agency.clone(), key: *key }),
                    Some(KeyState { invalid_from: Some(invalid_from), .. }) => {
                        Err(AuthError::RevokedKey { agency: agency.clone(), key: *key, invalid_from: *invalid_from })
                    }
                    Some(_) => Ok(()),
                }
            }
            RegistryEvent::ListDefined { list, designating_agency, .. } => {
                if self.lists.contains_key(list) {
                    return duplicate("list", list);
                }
                self.check_agency_role(designating_agency, Role::Designating, "designating a list")
            }
            RegistryEvent::MeasureCatalogued { code, .. } => {
                if self.measures.contains_key(code) {
                    return duplicate("measure", code);
                }
                Ok(())
            }
            RegistryEvent::MouSigned { mou, list, parties, .. } => {
                if self.mous.contains_key(mou) {
                    return duplicate("MOU", mou);
                }
                if !self.lists.contains_key(list) {
                    return Err(AuthError::UnknownList(list.clone()));
                }
                self.check_parties(parties)
            }
            RegistryEvent::MouAmended { mou, parties, .. } => {
                if !self.mous.contains_key(mou) {
                    return Err(AuthError::UnknownMou(mou.clone()));
                }
                self.check_parties(parties)
            }
            RegistryEvent::RuleSetPublished { rule_set, version, .. } => {
                match self.rule_sets.get(rule_set).and_then(|versions| versions.last()) {
                    Some(current) if current.version >= *version => Err(AuthError::StaleRuleSet {
                        rule_set: rule_set.clone(),
                        version: *version,
                        current: current.version,
                    }),
                    _ => Ok(()),
                }
            }
        }
    }

    fn apply_registry(&mut self, body: &RegistryEvent, effective_at: Timestamp, recorded_at: Timestamp) {
        let new_key = || KeyState { valid_from: effective_at, invalid_from: None };
        match body.clone() {
            RegistryEvent::AgencyRegistered { agency, name, roles, keys } => {
                for key in &keys {
                    self.key_owners.insert(*key, agency.clone());
                }
                let keys = keys.into_iter().map(|key| (key, new_key())).collect();
                self.agencies.insert(agency, AgencyState { name, roles: roles.into_iter().collect(), keys });
            }
            RegistryEvent::KeyAdded { agency, key } => {
                self.key_owners.insert(key, agency.clone());
                if let Some(state) = self.agencies.get_mut(&agency) {
                    state.keys.insert(key, new_key());
                }
            }
            RegistryEvent::KeyRevoked { agency, key, invalid_from } => {
                if let Some(state) = self.agencies.get_mut(&agency).and_then(|a| a.keys.get_mut(&key)) {
                    state.invalid_from = Some(invalid_from);
                }
            }
            RegistryEvent::ListDefined { list, name, designating_agency, rule_set, legal_basis } => {
                self.lists.insert(list, ListState { name, designating_agency, rule_set, legal_basis });
            }
            RegistryEvent::MeasureCatalogued { code, description, authority, level } => {
                self.measures.insert(code, MeasureState { description, authority, level });
            }
            RegistryEvent::MouSigned { mou, list, parties, effective_from, effective_until } => {
                let terms = vec![MouTerms { parties, effective_from, effective_until, recorded_at }];
                self.mous.insert(mou, MouState { list, terms });
            }
            RegistryEvent::MouAmended { mou, parties, effective_from, effective_until } => {
                if let Some(state) = self.mous.get_mut(&mou) {
                    state.terms.push(MouTerms { parties, effective_from, effective_until, recorded_at });
                }
            }
            RegistryEvent::RuleSetPublished { rule_set, version, digest, source } => {
                let entry = RuleSetVersion { version, digest, source, published_at: effective_at };
                self.rule_sets.entry(rule_set).or_default().push(entry);
            }
        }
    }

    /// The registry root key.
    pub fn root(&self) -> &PublicKey {
        &self.root
    }
    /// A registered agency.
    pub fn agency(&self, agency: &AgencyId) -> Option<&AgencyState> {
        self.agencies.get(agency)
    }
    /// Every registered agency.
    pub fn agencies(&self) -> impl Iterator<Item = (&AgencyId, &AgencyState)> {
        self.agencies.iter()
    }
    /// A defined list.
    pub fn list(&self, list: &ListId) -> Option<&ListState> {
        self.lists.get(list)
    }
    /// Every defined list.
    pub fn lists(&self) -> impl Iterator<Item = (&ListId, &ListState)> {
        self.lists.iter()
    }
    /// A catalogued measure.
    pub fn measure(&self, code: &MeasureCode) -> Option<&MeasureState> {
        self.measures.get(code)
    }
    /// An MOU and its terms.
    pub fn mou(&self, mou: &MouId) -> Option<&MouState> {
        self.mous.get(mou)
    }
    /// Every MOU.
    pub fn mous(&self) -> impl Iterator<Item = (&MouId, &MouState)> {
        self.mous.iter()
    }
    /// Published versions of a rule set, oldest first.
    pub fn rule_set(&self, rule_set: &RuleSetId) -> &[RuleSetVersion] {
        self.rule_sets.get(rule_set).map_or(&[], Vec::as_slice)
    }

    /// Whether `mou` covers `agency` applying `measure` on `list` at valid time `at`:
    /// the terms in force at `at` (the latest version whose `effective_from` is
    /// not after `at`) name the agency with the measure, and have not ended.
    pub fn mou_covers(
        &self,
        mou: &MouId,
        list: &ListId,
        agency: &AgencyId,
        measure: &MeasureCode,
        at: Timestamp,
    ) -> bool {
        let Some(state) = self.mous.get(mou) else {
            return false;
        };
        if state.list != *list {
            return false;
        }
        state.binds(agency, measure, at)
    }

    /// Whether the MOU covered the act as the ledger stood when the act was
    /// recorded (`recorded_at`): a later, retroactive amendment does not count.
    pub fn mou_covered_when_recorded(
        &self,
        mou: &MouId,
        list: &ListId,
        agency: &AgencyId,
        measure: &MeasureCode,
        at: Timestamp,
        recorded_at: Timestamp,
    ) -> bool {
        self.mous
            .get(mou)
            .is_some_and(|state| state.list == *list && state.binds_as_known(agency, measure, at, Some(recorded_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CaseAction, ServiceMethod, FORMAT_VERSION};
    use crate::golden;
    use crate::ids::{Name, SubjectId, Uscc};

    fn name(text: &str) -> Name {
        Name::parse(text).unwrap()
    }
    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }
    fn key(label: &str) -> PublicKey {
        PublicKey(golden::signing_key(label).verifying_key().to_bytes())
    }
    fn registry_event(body: RegistryEvent) -> Event {
        Event {
            format: FORMAT_VERSION,
            signer: Signer::Registry,
            key: key("registry-root"),
            effective_at: at("2024-01-01T00:00:00+08:00"),
            body: Body::Registry(body),
        }
    }
    fn case_event(agency: &str, key_label: &str, effective: &str, action: CaseAction) -> Event {
        Event {
            format: FORMAT_VERSION,
            signer: Signer::Agency(name(agency)),
            key: key(key_label),
            effective_at: at(effective),
            body: Body::Case(CaseEvent {
                list: name("defaulters"),
                subject: SubjectId::Uscc(Uscc::parse("91110105MA01ABCD13").unwrap()),
                number: name("(2024)1"),
                expected_version: None,
                action,
            }),
        }
    }
    fn register(registry: &mut Registry, agency: &str, roles: Vec<Role>) {
        let body = RegistryEvent::AgencyRegistered {
            agency: name(agency),
            name: agency.into(),
            roles,
            keys: vec![key(agency)],
        };
        registry.apply(&registry_event(body), at("2024-01-01T00:00:00+08:00")).unwrap();
    }
    fn notice() -> CaseAction {
        CaseAction::Notice {
            served_at: at("2024-03-01T00:00:00+08:00"),
            method: ServiceMethod::Post,
            matter: String::new(),
            legal_basis: vec![],
            rights: String::new(),
        }
    }
    fn measure(code: &str) -> CaseAction {
        CaseAction::MeasureApplied { measure: name(code), mou: name("mou") }
    }

    /// A registry with a court (designating), an airline regulator (responsible),
    /// a petitions office (intake), one list, two measures and one MOU.
    fn setup() -> Registry {
        let mut registry = Registry::new(key("registry-root"));
        register(&mut registry, "court", vec![Role::Designating]);
        register(&mut registry, "caac", vec![Role::Responsible]);
        register(&mut registry, "petitions", vec![Role::Intake]);
        let now = at("2024-01-01T00:00:00+08:00");
        let list = RegistryEvent::ListDefined {
            list: name("defaulters"),
            name: "x".into(),
            designating_agency: name("court"),
            rule_set: name("rules"),
            legal_basis: vec![],
        };
        registry.apply(&registry_event(list), now).unwrap();
        for code in ["fly", "rail"] {
            let authority = LegalRef { instrument: "law".into(), article: "1".into() };
            registry
                .apply(
                    &registry_event(RegistryEvent::MeasureCatalogued {
                        code: name(code),
                        description: String::new(),
                        authority,
                        level: AuthorityLevel::Law,
                    }),
                    now,
                )
                .unwrap();
        }
        let parties = vec![MouParty { agency: name("caac"), measures: vec![name("fly")] }];
        let mou = RegistryEvent::MouSigned {
            mou: name("mou"),
            list: name("defaulters"),
            parties,
            effective_from: at("2024-01-01T00:00:00+08:00"),
            effective_until: None,
        };
        registry.apply(&registry_event(mou), now).unwrap();
        registry
    }

    #[test]
    fn roles_decide_who_signs_what() {
        let registry = setup();
        let now = at("2024-05-01T00:00:00+08:00");
        let t = "2024-03-01T00:00:00+08:00";
        assert_eq!(registry.authorize(&case_event("court", "court", t, notice()), now), Ok(()));
        assert!(matches!(
            registry.authorize(&case_event("caac", "caac", t, notice()), now),
            Err(AuthError::NotDesignatingAgency { .. })
        ));
        assert_eq!(registry.authorize(&case_event("caac", "caac", t, measure("fly")), now), Ok(()));
        assert!(matches!(
            registry.authorize(&case_event("court", "court", t, measure("fly")), now),
            Err(AuthError::MissingRole { role: Role::Responsible, .. })
        ));
        let objection = CaseAction::Objection { received_at: at(t), grounds: String::new(), evidence: vec![] };
        assert_eq!(registry.authorize(&case_event("petitions", "petitions", t, objection.clone()), now), Ok(()));
        assert_eq!(registry.authorize(&case_event("court", "court", t, objection.clone()), now), Ok(()));
        assert!(matches!(
            registry.authorize(&case_event("caac", "caac", t, objection), now),
            Err(AuthError::MissingRole { role: Role::Intake, .. })
        ));
        // A key of another agency is not this agency's key.
        assert!(matches!(
            registry.authorize(&case_event("court", "caac", t, notice()), now),
            Err(AuthError::UnknownKey { .. })
        ));
        // Uncatalogued measures are recorded: the auditor flags them, the registry does not refuse them.
        assert_eq!(registry.authorize(&case_event("caac", "caac", t, measure("ban-internet")), now), Ok(()));
    }

    #[test]
    fn registry_events_need_the_root_key_and_resolving_references() {
        let mut registry = setup();
        let now = at("2024-05-01T00:00:00+08:00");
        let mut forged = registry_event(RegistryEvent::KeyAdded { agency: name("court"), key: key("mallory") });
        forged.key = key("court");
        assert!(matches!(registry.apply(&forged, now), Err(AuthError::NotRootKey { .. })));
        let reuse = registry_event(RegistryEvent::KeyAdded { agency: name("court"), key: key("caac") });
        assert!(matches!(registry.apply(&reuse, now), Err(AuthError::KeyInUse { .. })));
        let bad_party = vec![MouParty { agency: name("court"), measures: vec![name("fly")] }];
        let mou = RegistryEvent::MouSigned {
            mou: name("mou-2"),
            list: name("defaulters"),
            parties: bad_party,
            effective_from: now,
            effective_until: None,
        };
        assert!(matches!(
            registry.apply(&registry_event(mou), now),
            Err(AuthError::MissingRole { role: Role::Responsible, .. })
        ));
        let unknown_measure = vec![MouParty { agency: name("caac"), measures: vec![name("swim")] }];
        let mou = RegistryEvent::MouSigned {
            mou: name("mou-3"),
            list: name("defaulters"),
            parties: unknown_measure,
            effective_from: now,
            effective_until: None,
        };
        assert!(matches!(registry.apply(&registry_event(mou), now), Err(AuthError::UnknownMeasure(_))));
        let before = registry.clone();
        let duplicate = RegistryEvent::AgencyRegistered {
            agency: name("court"),
            name: String::new(),
            roles: vec![Role::Oversight],
            keys: vec![key("other")],
        };
        assert!(matches!(registry.apply(&registry_event(duplicate), now), Err(AuthError::Duplicate { .. })));
        assert_eq!(registry, before, "a refused event changes nothing");
        let rules = |version| {
            registry_event(RegistryEvent::RuleSetPublished {
                rule_set: name("rules"),
                version,
                digest: crate::Digest::Blake3(crate::Hash32([0; 32])),
                source: String::new(),
            })
        };
        registry.apply(&rules(2), now).unwrap();
        assert!(matches!(registry.apply(&rules(2), now), Err(AuthError::StaleRuleSet { current: 2, .. })));
    }

    #[test]
    fn valid_time_lies_inside_the_keys_validity_and_leads_the_record_by_a_bounded_time() {
        let registry = setup();
        let recorded = at("2024-06-01T00:00:00+08:00");
        // The court's key is registered effective 2024-01-01: it cannot sign for 2023, nor 1970.
        for before in ["2023-12-31T23:59:59+08:00", "1970-01-01T00:00:00+08:00"] {
            let early = case_event("court", "court", before, notice());
            assert!(matches!(registry.authorize(&early, recorded), Err(AuthError::KeyNotYetValid { .. })), "{before}");
        }
        let from_registration = case_event("court", "court", "2024-01-01T00:00:00+08:00", notice());
        assert_eq!(registry.authorize(&from_registration, recorded), Ok(()));
        // Valid time may lead the record by EFFECTIVE_LEAD_S_MAX, not more (2199 is a unit mistake).
        let lead = case_event("court", "court", "2024-07-02T00:00:00+08:00", notice());
        assert_eq!(registry.authorize(&lead, recorded), Ok(()), "31 days ahead");
        for ahead in ["2024-07-02T00:00:01+08:00", "2199-01-01T00:00:00+08:00"] {
            let far = case_event("court", "court", ahead, notice());
            assert!(
                matches!(registry.authorize(&far, recorded), Err(AuthError::EffectiveTooFarAhead { .. })),
                "{ahead}"
            );
        }
    }

    #[test]
    fn a_revoked_key_signs_nothing_recorded_or_effective_after_invalid_from() {
        let mut registry = setup();
        let revoke = RegistryEvent::KeyRevoked {
            agency: name("court"),
            key: key("court"),
            invalid_from: at("2024-04-01T00:00:00+08:00"),
        };
        registry.apply(&registry_event(revoke), at("2024-04-02T00:00:00+08:00")).unwrap();
        let early = case_event("court", "court", "2024-03-01T00:00:00+08:00", notice());
        // Recorded before invalid_from, declared before it: still valid (replay of old history).
        assert_eq!(registry.authorize(&early, at("2024-03-31T00:00:00+08:00")), Ok(()));
        // Recorded after invalid_from: refused even though back-dated.
        assert!(matches!(
            registry.authorize(&early, at("2024-04-02T00:00:00+08:00")),
            Err(AuthError::RevokedKey { .. })
        ));
        // Declared effective after invalid_from: refused.
        let late = case_event("court", "court", "2024-04-01T00:00:00+08:00", notice());
        assert!(matches!(
            registry.authorize(&late, at("2024-03-31T00:00:00+08:00")),
            Err(AuthError::RevokedKey { .. })
        ));
        // A new key restores the agency's ability to sign.
        registry
            .apply(
                &registry_event(RegistryEvent::KeyAdded { agency: name("court"), key: key("court-2") }),
                at("2024-04-03T00:00:00+08:00"),
            )
            .unwrap();
        assert_eq!(
            registry.authorize(
                &case_event("court", "court-2", "2024-04-05T00:00:00+08:00", notice()),
                at("2024-04-05T00:00:00+08:00")
            ),
            Ok(())
        );
    }

    #[test]
    fn mou_coverage_follows_amendments_in_valid_time() {
        let mut registry = setup();
        let (mou, list, caac, fly, rail) = (name("mou"), name("defaulters"), name("caac"), name("fly"), name("rail"));
        let march = at("2024-03-01T00:00:00+08:00");
        assert!(registry.mou_covers(&mou, &list, &caac, &fly, march));
        assert!(!registry.mou_covers(&mou, &list, &caac, &rail, march));
        assert!(!registry.mou_covers(&mou, &list, &caac, &fly, at("2023-12-31T00:00:00+08:00")));
        let parties = vec![MouParty { agency: caac.clone(), measures: vec![fly.clone(), rail.clone()] }];
        let amended = RegistryEvent::MouAmended {
            mou: mou.clone(),
            parties,
            effective_from: at("2024-06-01T00:00:00+08:00"),
            effective_until: Some(at("2025-01-01T00:00:00+08:00")),
        };
        registry.apply(&registry_event(amended), march).unwrap();
        assert!(!registry.mou_covers(&mou, &list, &caac, &rail, march), "amendment is not retroactive");
        assert!(registry.mou_covers(&mou, &list, &caac, &rail, at("2024-07-01T00:00:00+08:00")));
        assert!(!registry.mou_covers(&mou, &list, &caac, &fly, at("2025-01-01T00:00:00+08:00")), "ended");
        assert!(!registry.mou_covers(&mou, &name("other-list"), &caac, &fly, march));
    }
}
