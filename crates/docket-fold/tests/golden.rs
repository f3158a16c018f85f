//! Golden vectors for what the store writes: a case key and a case holding
//! one fact of every step, in their stored bytes (`tests/golden/store.json`
//! at the workspace root; `DOCKET_BLESS=1` rewrites it). A change to these
//! bytes is a change of `STORE_FORMAT`.

use docket_fold::case::{BasisRef, CaseState, DecisionField, Fact, NoticeField, Outcome, Step};
use docket_fold::store::{case_key, STORE_FORMAT};
use docket_model::event::{LegalRef, LiftReason, RestorationReason, RevocationReason, Severity};
use docket_model::{Date, EventId, Name, SubjectId, Timestamp};
use serde_json::json;

fn name(text: &str) -> Name {
    Name::parse(text).expect("name")
}

fn case() -> CaseState {
    let time = |micros: i64| Timestamp::from_micros(1_710_000_000_000_000 + micros).expect("time");
    let steps = vec![
        Step::Notice { served_at: time(1), empty: vec![NoticeField::LegalBasis] },
        Step::Objection { received_at: time(2) },
        Step::ObjectionDecision { objection: EventId([2; 32]), outcome: Outcome::Corrected },
        Step::Designation {
            decided_at: time(3),
            term_months: Some(24),
            severity: Severity::Serious,
            basis: Some(BasisRef {
                number: "(2023)京0105民初1号".into(),
                date: Date::parse("2023-11-02").expect("date"),
            }),
            legal_basis: vec![LegalRef { instrument: "Civil Procedure Law".into(), article: "art. 262".into() }],
            empty: vec![DecisionField::Remedies],
        },
        Step::TermExtended { months: 12 },
        Step::MeasureApplied { measure: name("restrict-rail"), mou: name("mou-2016") },
        Step::MeasureLifted { measure: name("restrict-rail"), reason: LiftReason::CaseClosed },
        Step::Revocation { reason: RevocationReason::Error },
        Step::Restoration { reason: RestorationReason::CreditRepaired },
    ];
    CaseState {
        list: name("cn-spc-defaulters"),
        subject: SubjectId::Uscc("91110105000000001Y".parse().expect("uscc")),
        number: name("(2024)京0105执1号"),
        facts: steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| Fact {
                seq: 100 + i as u64,
                id: EventId([i as u8; 32]),
                recorded_at: time(1000 + i as i64),
                effective_at: time(i as i64),
                agency: name("court"),
                step,
            })
            .collect(),
    }
}

#[test]
fn stored_bytes_match_the_golden_vectors() {
    let case = case();
    let bytes = postcard::to_stdvec(&case).expect("encodes");
    assert_eq!(postcard::from_bytes::<CaseState>(&bytes).expect("decodes"), case);
    let vectors = json!({
        "store_format": STORE_FORMAT,
        "case_key": hex(&case_key(&case.subject, &case.list, &case.number)),
        "case": hex(&bytes),
    });
    let text = serde_json::to_string_pretty(&vectors).expect("json") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/store.json");
    if std::env::var_os("DOCKET_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write");
    }
    let golden = std::fs::read_to_string(&path).expect("tests/golden/store.json (DOCKET_BLESS=1 writes it)");
    assert_eq!(golden, text, "stored bytes changed: bump STORE_FORMAT and bless");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
