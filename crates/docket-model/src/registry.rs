//! The registry state machine: who may sign what, as of any point in the log.
//!
//! The log's validator and the folds both feed events through [`Registry::apply`]
//! in log order, so that "as of sequence N" is the state after applying the
//! first N events. Registry events change the state; case events are only
//! authorised against it.
//!
//! Authorisation covers authenticity and form, never procedure (DESIGN.md
//! principle 2): a designation without a notice is recorded and left to the
//! auditor; a designation signed by an agency that does not run the list is refused.

use std::collections::{BTreeMap, BTreeSet};

use crate::crypto::{Digest, PublicKey};
use crate::event::{
    Body, CaseAction, CaseEvent, Event, LegalRef, MouParty, RegistryEvent, Role, Signer,
};
use crate::ids::{AgencyId, ListId, MeasureCode, MouId, RuleSetId};
use crate::time::Timestamp;

/// Why the registry refuses an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("registry events must be signed by the registry root key {expected}, not {actual}")]
    NotRootKey {
        expected: PublicKey,
        actual: PublicKey,
    },
    #[error("agency {0:?} is not registered")]
    UnknownAgency(AgencyId),
    #[error("key {key} is not registered to agency {agency:?}")]
    UnknownKey { agency: AgencyId, key: PublicKey },
    #[error("key {key} of agency {agency:?} is revoked from {invalid_from}")]
    RevokedKey {
        agency: AgencyId,
        key: PublicKey,
        invalid_from: Timestamp,
    },
    #[error("agency {agency:?} lacks the {role:?} role needed for {action}")]
    MissingRole {
        agency: AgencyId,
        role: Role,
        action: &'static str,
    },
    #[error(
        "agency {agency:?} is not the designating agency of list {list:?} ({designating:?} is)"
    )]
    NotDesignatingAgency {
        agency: AgencyId,
        list: ListId,
        designating: AgencyId,
    },
    #[error("list {0:?} is not defined")]
    UnknownList(ListId),
    #[error("{what} {name:?} already exists")]
    Duplicate { what: &'static str, name: String },
    #[error("key {key} is already registered (to {agency:?})")]
    KeyInUse { key: PublicKey, agency: AgencyId },
    #[error("measure {0:?} is not catalogued")]
    UnknownMeasure(MeasureCode),
    #[error("MOU {0:?} does not exist")]
    UnknownMou(MouId),
    #[error(
        "rule set {rule_set:?} version {version} is not newer than the published version {current}"
    )]
    StaleRuleSet {
        rule_set: RuleSetId,
        version: u32,
        current: u32,
    },
}

/// One key of an agency and when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// Effective time of the event that registered the key.
    pub valid_from: Timestamp,
    /// Set by a revocation.
    pub invalid_from: Option<Timestamp>,
}

/// A registered agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyState {
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub keys: BTreeMap<PublicKey, KeyState>,
}

/// A defined list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListState {
    pub name: String,
    pub designating_agency: AgencyId,
    pub rule_set: RuleSetId,
    pub legal_basis: Vec<LegalRef>,
}

/// A catalogued measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureState {
    pub description: String,
    pub authority: LegalRef,
}

/// One version of an MOU's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MouTerms {
    pub parties: Vec<MouParty>,
    pub effective_from: Timestamp,
    pub effective_until: Option<Timestamp>,
}

/// An MOU with every version of its terms, oldest first, so that "did this
/// MOU cover agency A and measure M at valid time T" can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MouState {
    pub list: ListId,
    pub terms: Vec<MouTerms>,
}

/// A published rule set version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetVersion {
    pub version: u32,
    pub digest: Digest,
    pub source: String,
    pub published_at: Timestamp,
}

/// The registry: agencies, keys, lists, measures, MOUs and rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            self.apply_registry(body, event.effective_at);
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
                    return Err(AuthError::NotRootKey {
                        expected: self.root,
                        actual: event.key,
                    });
                }
                self.check_registry(body)
            }
            (Signer::Agency(agency), Body::Case(body)) => {
                self.check_key(agency, &event.key, event.effective_at, recorded_at)?;
                self.check_case_role(agency, body)
            }
            // validate() refuses these pairings before an event gets here.
            (Signer::Registry, Body::Case(_)) | (Signer::Agency(_), Body::Registry(_)) => {
                Err(AuthError::NotRootKey {
                    expected: self.root,
                    actual: event.key,
                })
            }
        }
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
        let state = self
            .agencies
            .get(agency)
            .ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?;
        let key_state = state.keys.get(key).ok_or_else(|| AuthError::UnknownKey {
            agency: agency.clone(),
            key: *key,
        })?;
        if let Some(invalid_from) = key_state.invalid_from {
            if recorded_at >= invalid_from || effective_at >= invalid_from {
                return Err(AuthError::RevokedKey {
                    agency: agency.clone(),
                    key: *key,
                    invalid_from,
                });
            }
        }
        Ok(())
    }

    fn check_case_role(&self, agency: &AgencyId, body: &CaseEvent) -> Result<(), AuthError> {
        let list = self
            .lists
            .get(&body.list)
            .ok_or_else(|| AuthError::UnknownList(body.list.clone()))?;
        let roles = &self
            .agencies
            .get(agency)
            .ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?
            .roles;
        let is_designating =
            list.designating_agency == *agency && roles.contains(&Role::Designating);
        let not_designating = || AuthError::NotDesignatingAgency {
            agency: agency.clone(),
            list: body.list.clone(),
            designating: list.designating_agency.clone(),
        };
        match &body.action {
            CaseAction::Objection { .. } => {
                if is_designating || roles.contains(&Role::Intake) {
                    Ok(())
                } else {
                    Err(AuthError::MissingRole {
                        agency: agency.clone(),
                        role: Role::Intake,
                        action: "recording an objection",
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

    fn check_agency_role(
        &self,
        agency: &AgencyId,
        role: Role,
        action: &'static str,
    ) -> Result<(), AuthError> {
        let state = self
            .agencies
            .get(agency)
            .ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?;
        if state.roles.contains(&role) {
            Ok(())
        } else {
            Err(AuthError::MissingRole {
                agency: agency.clone(),
                role,
                action,
            })
        }
    }

    fn check_parties(&self, parties: &[MouParty]) -> Result<(), AuthError> {
        for party in parties {
            self.check_agency_role(&party.agency, Role::Responsible, "being a party to an MOU")?;
            if let Some(code) = party
                .measures
                .iter()
                .find(|code| !self.measures.contains_key(*code))
            {
                return Err(AuthError::UnknownMeasure(code.clone()));
            }
        }
        Ok(())
    }

    fn check_new_key(&self, key: &PublicKey) -> Result<(), AuthError> {
        match self.key_owners.get(key) {
            Some(agency) => Err(AuthError::KeyInUse {
                key: *key,
                agency: agency.clone(),
            }),
            None if *key == self.root => Err(AuthError::KeyInUse {
                key: *key,
                agency: AgencyId::parse("registry-root").unwrap_or_else(|_| unreachable!()),
            }),
            None => Ok(()),
        }
    }

    fn check_registry(&self, body: &RegistryEvent) -> Result<(), AuthError> {
        let duplicate = |what, name: &dyn std::fmt::Display| {
            Err(AuthError::Duplicate {
                what,
                name: name.to_string(),
            })
        };
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
                let state = self
                    .agencies
                    .get(agency)
                    .ok_or_else(|| AuthError::UnknownAgency(agency.clone()))?;
                match state.keys.get(key) {
                    None => Err(AuthError::UnknownKey {
                        agency: agency.clone(),
                        key: *key,
                    }),
                    Some(KeyState {
                        invalid_from: Some(invalid_from),
                        ..
                    }) => Err(AuthError::RevokedKey {
                        agency: agency.clone(),
                        key: *key,
                        invalid_from: *invalid_from,
                    }),
                    Some(_) => Ok(()),
                }
            }
            RegistryEvent::ListDefined {
                list,
                designating_agency,
                ..
            } => {
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
            RegistryEvent::MouSigned {
                mou, list, parties, ..
            } => {
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
            RegistryEvent::RuleSetPublished {
                rule_set, version, ..
            } => {
                match self
                    .rule_sets
                    .get(rule_set)
                    .and_then(|versions| versions.last())
                {
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

    fn apply_registry(&mut self, body: &RegistryEvent, effective_at: Timestamp) {
        let new_key = || KeyState {
            valid_from: effective_at,
            invalid_from: None,
        };
        match body.clone() {
            RegistryEvent::AgencyRegistered {
                agency,
                name,
                roles,
                keys,
            } => {
                for key in &keys {
                    self.key_owners.insert(*key, agency.clone());
                }
                let keys = keys.into_iter().map(|key| (key, new_key())).collect();
                self.agencies.insert(
                    agency,
                    AgencyState {
                        name,
                        roles: roles.into_iter().collect(),
                        keys,
                    },
                );
            }
            RegistryEvent::KeyAdded { agency, key } => {
                self.key_owners.insert(key, agency.clone());
                if let Some(state) = self.agencies.get_mut(&agency) {
                    state.keys.insert(key, new_key());
                }
            }
            RegistryEvent::KeyRevoked {
                agency,
                key,
                invalid_from,
            } => {
                if let Some(state) = self
                    .agencies
                    .get_mut(&agency)
                    .and_then(|a| a.keys.get_mut(&key))
                {
                    state.invalid_from = Some(invalid_from);
                }
            }
            RegistryEvent::ListDefined {
                list,
                name,
                designating_agency,
                rule_set,
                legal_basis,
            } => {
                self.lists.insert(
                    list,
                    ListState {
                        name,
                        designating_agency,
                        rule_set,
                        legal_basis,
                    },
                );
            }
            RegistryEvent::MeasureCatalogued {
                code,
                description,
                authority,
            } => {
                self.measures.insert(
                    code,
                    MeasureState {
                        description,
                        authority,
                    },
                );
            }
            RegistryEvent::MouSigned {
                mou,
                list,
                parties,
                effective_from,
                effective_until,
            } => {
                let terms = vec![MouTerms {
                    parties,
                    effective_from,
                    effective_until,
                }];
                self.mous.insert(mou, MouState { list, terms });
            }
            RegistryEvent::MouAmended {
                mou,
                parties,
                effective_from,
                effective_until,
            } => {
                if let Some(state) = self.mous.get_mut(&mou) {
                    state.terms.push(MouTerms {
                        parties,
                        effective_from,
                        effective_until,
                    });
                }
            }
            RegistryEvent::RuleSetPublished {
                rule_set,
                version,
                digest,
                source,
            } => {
                let entry = RuleSetVersion {
                    version,
                    digest,
                    source,
                    published_at: effective_at,
                };
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
        let terms = state
            .terms
            .iter()
            .rev()
            .find(|terms| terms.effective_from <= at);
        terms.is_some_and(|terms| {
            terms.effective_until.is_none_or(|until| at < until)
                && terms
                    .parties
                    .iter()
                    .any(|party| party.agency == *agency && party.measures.contains(measure))
        })
    }
}
