//! Events: what agencies and the registry root sign.
//!
//! One [`Event`] type covers both families: registry events (signed by the
//! registry root) and case events (signed by an agency). The variant order of
//! every enum here is part of the canonical encoding: variants are only ever
//! appended, never reordered or removed, and a change of any field bumps
//! [`FORMAT_VERSION`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crypto::{Digest, EventId, PublicKey};
use crate::ids::{AgencyId, CaseNumber, ListId, MeasureCode, MouId, RuleSetId, SubjectId};
use crate::time::{Date, Timestamp};

/// Version of the event format. Bumped on any change to the encoding.
pub const FORMAT_VERSION: u16 = 3;

/// An event as signed: the envelope and its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Format version; must be [`FORMAT_VERSION`].
    pub format: u16,
    /// Who signs: the registry root or an agency.
    pub signer: Signer,
    /// The key that signs; the registry says whose it is and when it is valid.
    pub key: PublicKey,
    /// Valid time: when the act took effect, as the signer declares it.
    pub effective_at: Timestamp,
    /// What happened.
    pub body: Body,
}

/// Who signs an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    /// The registry root (the interagency conference's key).
    Registry,
    /// An agency, acting with one of its registered keys.
    Agency(AgencyId),
}

/// The two families of events.
// Boxing the larger variant would cost an allocation per decoded event on the
// verify and fold hot paths, to save bytes in a value that is rarely moved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Who may do what: agencies, keys, lists, measures, MOUs, rule sets.
    Registry(RegistryEvent),
    /// One step in one case.
    Case(CaseEvent),
}

/// A role an agency holds. Roles say which kinds of events an agency may sign;
/// the registry adds per-list checks (only a list's designating agency designates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sets lists, notifies, decides, designates, restores, revokes.
    Designating,
    /// Applies and lifts measures under MOUs.
    Responsible,
    /// Receives objections on behalf of designating agencies.
    Intake,
    /// Replays and audits; signs nothing about cases.
    Oversight,
}

/// A citation of law: instrument and article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalRef {
    /// The instrument, e.g. "Civil Procedure Law of the PRC".
    pub instrument: String,
    /// Article, paragraph or item, e.g. "art. 262".
    pub article: String,
}

/// The level of a legal instrument in the hierarchy of norms (Legislation
/// Law). Measures that restrict rights must rest on a law, an administrative
/// regulation or a decision or order of the State Council (seed 004 (9));
/// the auditor's rule set says which levels suffice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityLevel {
    /// A law of the National People's Congress or its Standing Committee.
    Law,
    /// An administrative regulation of the State Council.
    AdministrativeRegulation,
    /// A decision or order of the State Council.
    StateCouncilDecision,
    /// A judicial interpretation of the Supreme People's Court (its "provisions").
    JudicialInterpretation,
    /// A local regulation of a provincial or city people's congress.
    LocalRegulation,
    /// A departmental rule of a State Council department (e.g. a ministry's order).
    DepartmentalRule,
    /// A local government rule.
    LocalRule,
    /// A normative document (notice, opinion, MOU) below the rules.
    NormativeDocument,
}

/// One responsible agency in an MOU, with the measures it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MouParty {
    pub agency: AgencyId,
    pub measures: Vec<MeasureCode>,
}

/// Registry events, signed by the registry root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RegistryEvent {
    /// An agency joins, with its roles and first keys.
    AgencyRegistered { agency: AgencyId, name: String, roles: Vec<Role>, keys: Vec<PublicKey> },
    /// An agency gets another key, valid from the event's effective time.
    KeyAdded { agency: AgencyId, key: PublicKey },
    /// A key stops being valid at `invalid_from` (which may be in the past:
    /// a compromised key invalidates what it signed after that instant).
    KeyRevoked { agency: AgencyId, key: PublicKey, invalid_from: Timestamp },
    /// A list is set up, with its designating agency, rule set and legal basis.
    ListDefined {
        list: ListId,
        name: String,
        designating_agency: AgencyId,
        rule_set: RuleSetId,
        legal_basis: Vec<LegalRef>,
    },
    /// A measure enters the catalogue with the law that authorises it and
    /// that law's level in the hierarchy of norms.
    MeasureCatalogued { code: MeasureCode, description: String, authority: LegalRef, level: AuthorityLevel },
    /// An MOU binds responsible agencies to measures on a list.
    MouSigned {
        mou: MouId,
        list: ListId,
        parties: Vec<MouParty>,
        effective_from: Timestamp,
        effective_until: Option<Timestamp>,
    },
    /// An MOU's parties or dates change; the new terms replace the old from `effective_from`.
    MouAmended { mou: MouId, parties: Vec<MouParty>, effective_from: Timestamp, effective_until: Option<Timestamp> },
    /// A rule set version is published; its document is identified by digest.
    RuleSetPublished { rule_set: RuleSetId, version: u32, digest: Digest, source: String },
}

/// A case event: one step in the case of one subject on one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseEvent {
    pub list: ListId,
    pub subject: SubjectId,
    /// The case number as the designating agency writes it.
    pub number: CaseNumber,
    /// If set, the append is refused unless the case has exactly this many events.
    pub expected_version: Option<u64>,
    pub action: CaseAction,
}

/// The case a case event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CaseRef {
    pub list: ListId,
    pub subject: SubjectId,
    pub number: CaseNumber,
}

impl CaseEvent {
    /// The case this event belongs to.
    pub fn case_ref(&self) -> CaseRef {
        CaseRef { list: self.list.clone(), subject: self.subject.clone(), number: self.number.clone() }
    }
}

/// How a notice was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceMethod {
    InPerson,
    Post,
    Electronic,
    /// Public announcement, when the party cannot be reached.
    Publication,
}

/// Outcome of an objection review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionOutcome {
    /// The objection is founded; the designation must be revoked.
    Upheld,
    /// The objection is unfounded.
    Rejected,
    /// Partly founded; the listed information is corrected as described.
    Corrected { correction: String },
}

/// The legally effective document a designation rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasisDocument {
    /// Issuing body, e.g. "Beijing Chaoyang District People's Court".
    pub issuer: String,
    /// Document number, e.g. "(2023)京0105民初1234号".
    pub number: String,
    pub date: Date,
    pub digest: Digest,
}

/// Severity, which sets publicity periods under the credit restoration measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    General,
    Serious,
}

/// Why a revocation: the designation should not have been made, or no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// An objection against the designation was upheld.
    ObjectionUpheld,
    /// The designation was made in error (wrong subject, wrong facts).
    Error,
    /// The basis document was set aside (judgment overturned, penalty annulled).
    BasisSetAside,
}

/// Why a restoration (removal from the list). A closed vocabulary, after the
/// SPC rules art. 10 and the credit restoration measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestorationReason {
    /// The obligations in the basis document are fully performed.
    ObligationsPerformed,
    /// A settlement with the applicant is performed.
    SettlementPerformed,
    /// The applicant asked for removal.
    ApplicantRequest,
    /// The enforcement was terminated (e.g. bankruptcy accepted).
    EnforcementTerminated,
    /// Credit restoration completed after the minimum publicity period.
    CreditRepaired,
    /// The subject died or was dissolved.
    SubjectCeased,
}

/// Why a measure was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiftReason {
    /// The case was restored, revoked or expired.
    CaseClosed,
    /// The MOU that allowed it ended or no longer covers it.
    MouEnded,
    /// It was applied in error.
    Error,
}

/// Steps in a case. Which agency may sign each is the registry's business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseAction {
    /// The party is informed of the matter, its legal basis and rights. Opens
    /// the case. Periods run from `served_at`, the day the party was served,
    /// not from the day the notice was issued (the event's effective time).
    /// Fields may be empty: the auditor flags what is missing.
    Notice { served_at: Timestamp, method: ServiceMethod, matter: String, legal_basis: Vec<LegalRef>, rights: String },
    /// The party objects; recorded by the designating agency or an intake
    /// agency. Periods run from `received_at`, when the objection reached the
    /// agency, not from when it was recorded.
    Objection { received_at: Timestamp, grounds: String, evidence: Vec<Digest> },
    /// The objection named by `objection` is decided.
    ObjectionDecision { objection: EventId, outcome: ObjectionOutcome, reasons: String },
    /// The designation decision, taken on `decided_at` and in force from the
    /// event's effective time (which may be later). Fields may be empty: the
    /// ledger records, the auditor flags what is missing.
    DesignationDecision {
        /// When the decision was taken (signed), distinct from the date it takes effect.
        decided_at: Timestamp,
        basis: Option<BasisDocument>,
        reasons: String,
        legal_basis: Vec<LegalRef>,
        measures_warning: String,
        removal_conditions: String,
        remedies: String,
        severity: Severity,
        /// Term in months from the effective time; `None` means until removed.
        term_months: Option<u16>,
    },
    /// The term is extended by `months`.
    TermExtended { months: u16, reasons: String, basis: Option<BasisDocument> },
    /// The designation is withdrawn as if never rightly made.
    Revocation { reason: RevocationReason, statement: String },
    /// The subject is removed from the list.
    Restoration { reason: RestorationReason, statement: String },
    /// A responsible agency applies a catalogued measure under an MOU.
    MeasureApplied { measure: MeasureCode, mou: MouId },
    /// A responsible agency lifts a measure it applied.
    MeasureLifted { measure: MeasureCode, reason: LiftReason },
    /// The party applies for credit restoration (seed 004 (11): it "may always
    /// apply"); recorded by the designating agency or an intake agency. The
    /// processing deadline runs from `received_at`, when the application
    /// reached the agency, not from when it was recorded.
    RestorationApplication { received_at: Timestamp, grounds: String, evidence: Vec<Digest> },
    /// The designating agency accepts the application named by `application`
    /// for processing (the event's effective time is the day of acceptance).
    RestorationAccepted { application: EventId },
    /// The application named by `application` is decided. Granted, the case is
    /// restored (removed from the list) from the event's effective time, as a
    /// `Restoration` would; refused, it stays listed and `reasons` say why.
    /// `fees_collected_fen` declares what the party was charged, in fen: seed
    /// 004 (12) forbids fees "in any form", so anything but 0 is a breach.
    RestorationDecision { application: EventId, granted: bool, reasons: String, fees_collected_fen: u64 },
}

/// The kind of an event, one name per variant, for filters, schemas and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    AgencyRegistered,
    KeyAdded,
    KeyRevoked,
    ListDefined,
    MeasureCatalogued,
    MouSigned,
    MouAmended,
    RuleSetPublished,
    Notice,
    Objection,
    ObjectionDecision,
    DesignationDecision,
    TermExtended,
    Revocation,
    Restoration,
    MeasureApplied,
    MeasureLifted,
    RestorationApplication,
    RestorationAccepted,
    RestorationDecision,
}

impl EventKind {
    /// Every kind, in encoding order.
    pub const ALL: [EventKind; 20] = [
        Self::AgencyRegistered,
        Self::KeyAdded,
        Self::KeyRevoked,
        Self::ListDefined,
        Self::MeasureCatalogued,
        Self::MouSigned,
        Self::MouAmended,
        Self::RuleSetPublished,
        Self::Notice,
        Self::Objection,
        Self::ObjectionDecision,
        Self::DesignationDecision,
        Self::TermExtended,
        Self::Revocation,
        Self::Restoration,
        Self::MeasureApplied,
        Self::MeasureLifted,
        Self::RestorationApplication,
        Self::RestorationAccepted,
        Self::RestorationDecision,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::AgencyRegistered => "agency_registered",
            Self::KeyAdded => "key_added",
            Self::KeyRevoked => "key_revoked",
            Self::ListDefined => "list_defined",
            Self::MeasureCatalogued => "measure_catalogued",
            Self::MouSigned => "mou_signed",
            Self::MouAmended => "mou_amended",
            Self::RuleSetPublished => "rule_set_published",
            Self::Notice => "notice",
            Self::Objection => "objection",
            Self::ObjectionDecision => "objection_decision",
            Self::DesignationDecision => "designation_decision",
            Self::TermExtended => "term_extended",
            Self::Revocation => "revocation",
            Self::Restoration => "restoration",
            Self::MeasureApplied => "measure_applied",
            Self::MeasureLifted => "measure_lifted",
            Self::RestorationApplication => "restoration_application",
            Self::RestorationAccepted => "restoration_accepted",
            Self::RestorationDecision => "restoration_decision",
        }
    }

    /// Whether this kind is a registry event.
    pub fn is_registry(self) -> bool {
        (self as u8) < (Self::Notice as u8)
    }
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match &self.body {
            Body::Registry(event) => match event {
                RegistryEvent::AgencyRegistered { .. } => EventKind::AgencyRegistered,
                RegistryEvent::KeyAdded { .. } => EventKind::KeyAdded,
                RegistryEvent::KeyRevoked { .. } => EventKind::KeyRevoked,
                RegistryEvent::ListDefined { .. } => EventKind::ListDefined,
                RegistryEvent::MeasureCatalogued { .. } => EventKind::MeasureCatalogued,
                RegistryEvent::MouSigned { .. } => EventKind::MouSigned,
                RegistryEvent::MouAmended { .. } => EventKind::MouAmended,
                RegistryEvent::RuleSetPublished { .. } => EventKind::RuleSetPublished,
            },
            Body::Case(event) => match &event.action {
                CaseAction::Notice { .. } => EventKind::Notice,
                CaseAction::Objection { .. } => EventKind::Objection,
                CaseAction::ObjectionDecision { .. } => EventKind::ObjectionDecision,
                CaseAction::DesignationDecision { .. } => EventKind::DesignationDecision,
                CaseAction::TermExtended { .. } => EventKind::TermExtended,
                CaseAction::Revocation { .. } => EventKind::Revocation,
                CaseAction::Restoration { .. } => EventKind::Restoration,
                CaseAction::MeasureApplied { .. } => EventKind::MeasureApplied,
                CaseAction::MeasureLifted { .. } => EventKind::MeasureLifted,
                CaseAction::RestorationApplication { .. } => EventKind::RestorationApplication,
                CaseAction::RestorationAccepted { .. } => EventKind::RestorationAccepted,
                CaseAction::RestorationDecision { .. } => EventKind::RestorationDecision,
            },
        }
    }

    /// The case event, if this is one.
    pub fn case(&self) -> Option<&CaseEvent> {
        match &self.body {
            Body::Case(event) => Some(event),
            Body::Registry(_) => None,
        }
    }
}
