//! The violations a generated world plants on purpose, for the auditor to find.

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
    /// A designation decision recorded a month after it was taken.
    RecordedLate,
    /// A credit restoration application decided (refused) 40 days after its receipt.
    RestorationDecidedLate,
    /// A credit restoration application refused with a fee collected from the applicant.
    RestorationFeeCollected,
}

impl Violation {
    /// Every kind, in order.
    pub const ALL: [Violation; 24] = [
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
        Self::RecordedLate,
        Self::RestorationDecidedLate,
        Self::RestorationFeeCollected,
    ];
}
