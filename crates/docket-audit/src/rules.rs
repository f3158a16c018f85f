//! Rule sets as data: one per kind of list, in `data/*.rules.json`, with the
//! parameters of the procedural rules and their sources. Parameters that
//! no source confirms are named in `unconfirmed`, so a report can
//! say which findings rest on them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use docket_fold::case::{DecisionField, NoticeField};
use docket_fold::views::{Publication, PublicityMax};
use docket_model::event::{AuthorityLevel, Severity};

use crate::calendar::Period;

/// Largest value, in months, a rule set's term parameters may take:
/// `term.max_months`, each bound of `term.extension_months` and
/// `term.extensions_total_max_months`. Checked by [`RuleSet::parse`].
///
/// Not to be confused with docket-model's
/// [`EVENT_TERM_MONTHS_MAX`](docket_model::limits::EVENT_TERM_MONTHS_MAX)
/// (120), the longest term or single extension one event may state: a rule
/// set's total of extensions spans several events, so this bound is at least
/// that one (checked at compile time below).
pub const RULE_SET_TERM_MONTHS_MAX: u32 = 240;

const _: () = assert!(
    RULE_SET_TERM_MONTHS_MAX >= docket_model::limits::EVENT_TERM_MONTHS_MAX as u32,
    "a rule set's term bound must admit every term an event may state"
);

/// A rule set document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// The id lists name in `ListDefined.rule_set`.
    pub id: String,
    /// The version published in the registry (`RuleSetPublished.version`).
    pub version: u32,
    pub name: String,
    /// The instruments the parameters come from.
    pub sources: Vec<String>,
    /// A notice must be served before the designation is decided.
    pub notice_required: bool,
    /// Parts of the notice that must not be empty (matter, legal basis, rights).
    pub required_notice_fields: Vec<NoticeField>,
    /// Objections may be lodged within this period after the notice is
    /// served; the designation may not be decided before it has run.
    pub objection_window: Option<Period>,
    /// A timely objection is decided within this period of its receipt.
    pub objection_review: Option<Period>,
    /// An upheld objection: the designation is revoked or corrected within this period.
    pub correction_after_upheld: Option<Period>,
    /// After restoration, revocation or expiry: delisted and every measure lifted within this period.
    pub removal: Period,
    /// A designation, restoration or revocation is recorded (published)
    /// within this period of its date (none: not checked).
    pub recording: Option<Period>,
    /// An application for credit restoration is decided within this period
    /// of its receipt (none: not checked). Seed 004 (12): "within the time
    /// limit promised in advance".
    pub restoration_processing: Option<Period>,
    pub term: Term,
    /// Decision document fields that must not be empty.
    pub required_decision_fields: Vec<DecisionField>,
    /// The decision must cite a legally effective basis document.
    pub basis_required: bool,
    /// Natural persons under 18 at the designation may not be listed.
    pub minors_excluded: bool,
    /// The levels of authority a measure applied must rest on (none: not checked).
    pub measure_authority_levels: Option<Vec<AuthorityLevel>>,
    /// Credit restoration (`credit_repaired`) not before this many months of
    /// publicity, by severity. Other restoration reasons are not bound by it.
    pub publicity_min_months: PublicityMin,
    /// The longest a designation may stay published (its term with every
    /// extension), by severity; none: only the term's bounds apply.
    pub publicity_max_months: Option<PublicityMin>,
    /// Names of the parameters above whose values are not confirmed by a source.
    pub unconfirmed: Vec<String>,
    /// SHA-256 of the document's bytes, set by [`RuleSet::parse`]: what the
    /// registry's `RuleSetPublished.digest` must carry for this document.
    #[serde(skip)]
    pub digest: [u8; 32],
}

/// Term of a designation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// Longest term a decision may set without an extension.
    pub max_months: u32,
    /// Bounds of one extension, if extensions are allowed.
    pub extension_months: Option<(u32, u32)>,
    /// Most months all extensions of one designation may add together (none: no cap).
    pub extensions_total_max_months: Option<u32>,
}

/// Months by severity: the minimum publicity before credit restoration, or
/// the maximum publicity of a designation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicityMin {
    pub minor: u32,
    pub general: u32,
    pub serious: u32,
}

impl PublicityMin {
    pub fn of(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Minor => self.minor,
            Severity::General => self.general,
            Severity::Serious => self.serious,
        }
    }
}

/// The parameters a rule set's `unconfirmed` may name.
pub const PARAMETERS: [&str; 13] = [
    "required_notice_fields",
    "objection_window",
    "objection_review",
    "correction_after_upheld",
    "removal",
    "recording",
    "restoration_processing",
    "term",
    "term.extensions_total_max_months",
    "publicity_min_months",
    "publicity_max_months",
    "required_decision_fields",
    "measure_authority_levels",
];

/// Why a rule set document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    #[error("rule set document: {0}")]
    Syntax(String),
    #[error("rule set {id}: {reason}")]
    Invalid { id: String, reason: String },
}

/// The bundled rule sets: (file name, text).
pub const BUNDLED: [(&str, &str); 3] = [
    ("cn-spc-defaulters.rules.json", include_str!("../data/cn-spc-defaulters.rules.json")),
    ("cn-civil-aviation-2018.rules.json", include_str!("../data/cn-civil-aviation-2018.rules.json")),
    ("cn-serious-untrustworthy.rules.json", include_str!("../data/cn-serious-untrustworthy.rules.json")),
];

impl RuleSet {
    /// Parses and checks a rule set document.
    pub fn parse(text: &str) -> Result<Self, RuleSetError> {
        let mut rules: Self = serde_json::from_str(text).map_err(|e| RuleSetError::Syntax(e.to_string()))?;
        rules.digest = Self::digest(text);
        let invalid = |reason: String| RuleSetError::Invalid { id: rules.id.clone(), reason };
        if rules.term.max_months == 0 || rules.term.max_months > RULE_SET_TERM_MONTHS_MAX {
            return Err(invalid(format!("term.max_months must be 1..={RULE_SET_TERM_MONTHS_MAX}")));
        }
        if let Some((low, high)) = rules.term.extension_months {
            if low == 0 || low > high || high > RULE_SET_TERM_MONTHS_MAX {
                return Err(invalid("term.extension_months must be (low, high) with 1 <= low <= high".into()));
            }
        }
        if rules.term.extensions_total_max_months.is_some_and(|cap| cap == 0 || cap > RULE_SET_TERM_MONTHS_MAX) {
            return Err(invalid(format!("term.extensions_total_max_months must be 1..={RULE_SET_TERM_MONTHS_MAX}")));
        }
        if let Some(name) = rules.unconfirmed.iter().find(|n| !PARAMETERS.contains(&n.as_str())) {
            return Err(invalid(format!("unconfirmed names an unknown parameter {name:?}")));
        }
        Ok(rules)
    }

    /// The bundled rule sets.
    pub fn bundled() -> Vec<Self> {
        BUNDLED
            .iter()
            .map(|(name, text)| Self::parse(text).unwrap_or_else(|e| unreachable!("{name} is checked by tests: {e}")))
            .collect()
    }

    /// The publicity maxima of `sets`, for the public list and its delta
    /// (`docket_fold::views::Publication`), by id and version.
    pub fn publication(sets: &[RuleSet]) -> Publication {
        let mut publication = Publication::none();
        for set in sets {
            let max = set.publicity_max_months.as_ref();
            let max = max.map(|m| PublicityMax { minor: m.minor, general: m.general, serious: m.serious });
            publication.insert(&set.id, set.version, max);
        }
        publication
    }

    /// SHA-256 of a rule set document's bytes: what `RuleSetPublished.digest` should carry.
    pub fn digest(text: &str) -> [u8; 32] {
        Sha256::digest(text.as_bytes()).into()
    }
}
