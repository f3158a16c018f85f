//! Property tests: identifier validators against generated codes and every
//! single-character mutation; JSON -> canonical bytes -> JSON round trips for
//! every event kind; deterministic signing; decoders never panic.

mod common;

use docket_model::event::*;
use docket_model::ids::{classify, Classified};
use docket_model::{
    decode, encode, golden, Date, Digest, EventId, Hash32, Name, PublicKey, ResidentId, SignedEvent, SubjectId,
    Timestamp, Uscc,
};
use proptest::prelude::*;

const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

fn uscc() -> impl Strategy<Value = String> {
    // Positions 3-8 (the administrative division code) are digits.
    (proptest::collection::vec(0..31usize, 17), 0..1_000_000u32).prop_map(|(values, division)| {
        let mut first: String = values.iter().map(|&v| USCC_ALPHABET.as_bytes()[v] as char).collect();
        first.replace_range(2..8, &format!("{division:06}"));
        let check = Uscc::check_character(first.as_bytes());
        format!("{first}{check}")
    })
}

fn resident() -> impl Strategy<Value = String> {
    (100000..999999u32, 1900..2100i32, 1..=12u32, 1..=28u32, 0..1000u32).prop_map(|(area, y, m, d, seq)| {
        let first = format!("{area:06}{y:04}{m:02}{d:02}{seq:03}");
        let check = ResidentId::check_character(first.as_bytes());
        format!("{first}{check}")
    })
}

/// Every string that differs from `code` in exactly one character, drawn from
/// a pool that covers both alphabets and some characters outside them.
fn mutations(code: &str) -> Vec<String> {
    let pool: Vec<char> = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZa-中 ".chars().collect();
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    for index in 0..chars.len() {
        for &c in pool.iter().filter(|&&c| c != chars[index]) {
            let mut changed = chars.clone();
            changed[index] = c;
            out.push(changed.into_iter().collect());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn valid_uscc_is_accepted_and_every_mutation_refused(code in uscc()) {
        prop_assert!(Uscc::parse(&code).is_ok());
        for changed in mutations(&code) {
            prop_assert!(Uscc::parse(&changed).is_err(), "{changed} accepted (from {code})");
        }
        let shorter = &code[..17];
        prop_assert!(Uscc::parse(shorter).is_err());
        let longer = format!("{code}0");
        prop_assert!(Uscc::parse(&longer).is_err());
    }

    #[test]
    fn valid_resident_id_is_accepted_and_every_mutation_refused(code in resident()) {
        let id = ResidentId::parse(&code).map_err(|e| TestCaseError::fail(format!("{code}: {e}")))?;
        prop_assert_eq!(id.birth_date().map(|d| d.format("%Y%m%d").to_string()).ok(), Some(code[6..14].to_owned()));
        prop_assert!(matches!(classify(&code), Ok(Classified::Resident(_))));
        for changed in mutations(&code) {
            prop_assert!(ResidentId::parse(&changed).is_err(), "{changed} accepted (from {code})");
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_validators(text in "\\PC{0,24}") {
        let _ = Uscc::parse(&text);
        let _ = ResidentId::parse(&text);
        let _ = classify(&text);
        let _ = Name::parse(&text);
    }
}

#[test]
fn mutation_errors_name_the_position() {
    let code = "91110105MA01ABCD13";
    let err = Uscc::parse("91110105MA01ABCD14").expect_err("bad check");
    assert_eq!(err.to_string(), "unified social credit code: check character (position 18) is '4', expected '3'");
    let err = Uscc::parse("9111O105MA01ABCD13").expect_err("letter O");
    assert!(err.to_string().contains("character 5 ('O')"), "{err}");
    assert!(Uscc::parse(code).is_ok());
    let first = "11010519800230123";
    let feb30 = format!("{first}{}", ResidentId::check_character(first.as_bytes()));
    let err = ResidentId::parse(&feb30).expect_err("Feb 30");
    assert!(err.to_string().contains("19800230"), "{err}");
}

// ---- events ----

fn name() -> impl Strategy<Value = Name> {
    "[a-z][a-z0-9-]{0,20}".prop_map(|s| Name::parse(&s).expect("generated names are valid"))
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}".prop_filter("no NUL", |s| !s.contains('\0'))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 1990..2100, microsecond precision.
    (631_152_000_000_000i64..4_102_444_800_000_000).prop_map(|m| Timestamp::from_micros(m).expect("in range"))
}

fn date() -> impl Strategy<Value = Date> {
    (0i64..40_000).prop_map(|days| {
        Date::new(chrono::NaiveDate::from_ymd_opt(1990, 1, 1).expect("date") + chrono::Days::new(days as u64))
            .expect("in range")
    })
}

fn digest() -> impl Strategy<Value = Digest> {
    (any::<bool>(), any::<[u8; 32]>()).prop_map(|(sha, bytes)| {
        if sha {
            Digest::Sha256(Hash32(bytes))
        } else {
            Digest::Blake3(Hash32(bytes))
        }
    })
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>()
        .prop_map(|seed| PublicKey(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes()))
}

fn legal() -> impl Strategy<Value = LegalRef> {
    (text(), text()).prop_map(|(instrument, article)| LegalRef { instrument, article })
}

fn parties() -> impl Strategy<Value = Vec<MouParty>> {
    proptest::collection::btree_map(name(), proptest::collection::btree_set(name(), 1..4), 1..4).prop_map(|map| {
        map.into_iter()
            .map(|(agency, measures)| MouParty { agency, measures: measures.into_iter().collect() })
            .collect()
    })
}

fn subject() -> impl Strategy<Value = SubjectId> {
    prop_oneof![
        uscc().prop_map(|c| SubjectId::Uscc(Uscc::parse(&c).expect("valid"))),
        resident().prop_map(|c| SubjectId::Resident(ResidentId::parse(&c).expect("valid"))),
        (name(), "[A-Z0-9]{1,20}").prop_map(|(scheme, value)| SubjectId::Other { scheme, value }),
    ]
}

fn basis() -> impl Strategy<Value = BasisDocument> {
    (text(), text(), date(), digest()).prop_map(|(issuer, number, date, digest)| BasisDocument {
        issuer,
        number,
        date,
        digest,
    })
}

fn registry_event() -> impl Strategy<Value = RegistryEvent> {
    let role = prop_oneof![Just(Role::Designating), Just(Role::Responsible), Just(Role::Intake), Just(Role::Oversight)];
    prop_oneof![
        (
            name(),
            text(),
            proptest::collection::btree_set(role, 1..4),
            proptest::collection::btree_set(public_key(), 1..3)
        )
            .prop_map(|(agency, name, roles, keys)| RegistryEvent::AgencyRegistered {
                agency,
                name,
                roles: roles.into_iter().collect(),
                keys: keys.into_iter().collect()
            }),
        (name(), public_key()).prop_map(|(agency, key)| RegistryEvent::KeyAdded { agency, key }),
        (name(), public_key(), timestamp())
            .prop_map(|(agency, key, invalid_from)| { RegistryEvent::KeyRevoked { agency, key, invalid_from } }),
        (name(), text(), name(), name(), proptest::collection::vec(legal(), 0..3)).prop_map(
            |(list, name, designating_agency, rule_set, legal_basis)| {
                RegistryEvent::ListDefined { list, name, designating_agency, rule_set, legal_basis }
            }
        ),
        (name(), text(), legal(), level()).prop_map(|(code, description, authority, level)| {
            RegistryEvent::MeasureCatalogued { code, description, authority, level }
        }),
        (name(), name(), parties(), timestamp(), 1..1_000_000_000i64).prop_map(|(mou, list, parties, from, length)| {
            RegistryEvent::MouSigned {
                mou,
                list,
                parties,
                effective_from: from,
                effective_until: (length % 2 == 0)
                    .then(|| Timestamp::from_micros(from.micros() + length).expect("in range")),
            }
        }),
        (name(), parties(), timestamp()).prop_map(|(mou, parties, effective_from)| {
            RegistryEvent::MouAmended { mou, parties, effective_from, effective_until: None }
        }),
        (name(), any::<u32>(), digest(), text()).prop_map(|(rule_set, version, digest, source)| {
            RegistryEvent::RuleSetPublished { rule_set, version, digest, source }
        }),
    ]
}

fn level() -> impl Strategy<Value = AuthorityLevel> {
    prop_oneof![
        Just(AuthorityLevel::Law),
        Just(AuthorityLevel::AdministrativeRegulation),
        Just(AuthorityLevel::StateCouncilDecision),
        Just(AuthorityLevel::JudicialInterpretation),
        Just(AuthorityLevel::LocalRegulation),
        Just(AuthorityLevel::DepartmentalRule),
        Just(AuthorityLevel::LocalRule),
        Just(AuthorityLevel::NormativeDocument)
    ]
}

fn case_action() -> impl Strategy<Value = CaseAction> {
    let method = prop_oneof![
        Just(ServiceMethod::InPerson),
        Just(ServiceMethod::Post),
        Just(ServiceMethod::Electronic),
        Just(ServiceMethod::Publication)
    ];
    let severity = prop_oneof![Just(Severity::Minor), Just(Severity::General), Just(Severity::Serious)];
    let outcome = prop_oneof![
        Just(ObjectionOutcome::Upheld),
        Just(ObjectionOutcome::Rejected),
        text().prop_map(|correction| ObjectionOutcome::Corrected { correction })
    ];
    prop_oneof![
        (timestamp(), method, text(), proptest::collection::vec(legal(), 0..3), text()).prop_map(
            |(served_at, method, matter, legal_basis, rights)| {
                CaseAction::Notice { served_at, method, matter, legal_basis, rights }
            }
        ),
        (timestamp(), text(), proptest::collection::btree_set(digest(), 0..4)).prop_map(
            |(received_at, grounds, evidence)| CaseAction::Objection {
                received_at,
                grounds,
                evidence: evidence.into_iter().collect()
            }
        ),
        (any::<[u8; 32]>(), outcome, text()).prop_map(|(id, outcome, reasons)| {
            CaseAction::ObjectionDecision { objection: EventId(id), outcome, reasons }
        }),
        (
            timestamp(),
            proptest::option::of(basis()),
            text(),
            proptest::collection::vec(legal(), 0..3),
            text(),
            text(),
            text(),
            severity,
            proptest::option::of(1..=120u16)
        )
            .prop_map(
                |(
                    decided_at,
                    basis,
                    reasons,
                    legal_basis,
                    measures_warning,
                    removal_conditions,
                    remedies,
                    severity,
                    term_months,
                )| CaseAction::DesignationDecision {
                    decided_at,
                    basis,
                    reasons,
                    legal_basis,
                    measures_warning,
                    removal_conditions,
                    remedies,
                    severity,
                    term_months,
                }
            ),
        (1..=120u16, text(), proptest::option::of(basis()))
            .prop_map(|(months, reasons, basis)| { CaseAction::TermExtended { months, reasons, basis } }),
        (
            prop_oneof![
                Just(RevocationReason::ObjectionUpheld),
                Just(RevocationReason::Error),
                Just(RevocationReason::BasisSetAside)
            ],
            text()
        )
            .prop_map(|(reason, statement)| CaseAction::Revocation { reason, statement }),
        (
            prop_oneof![
                Just(RestorationReason::ObligationsPerformed),
                Just(RestorationReason::CreditRepaired),
                Just(RestorationReason::SubjectCeased)
            ],
            text()
        )
            .prop_map(|(reason, statement)| CaseAction::Restoration { reason, statement }),
        (name(), name()).prop_map(|(measure, mou)| CaseAction::MeasureApplied { measure, mou }),
        (name(), prop_oneof![Just(LiftReason::CaseClosed), Just(LiftReason::MouEnded), Just(LiftReason::Error)])
            .prop_map(|(measure, reason)| CaseAction::MeasureLifted { measure, reason }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let registry = (timestamp(), registry_event()).prop_map(|(effective_at, body)| {
        let key = golden::key_for(&Signer::Registry);
        Event {
            format: FORMAT_VERSION,
            signer: Signer::Registry,
            key: PublicKey(key.verifying_key().to_bytes()),
            effective_at,
            body: Body::Registry(body),
        }
    });
    let case = (name(), timestamp(), name(), subject(), name(), proptest::option::of(0..1000u64), case_action())
        .prop_map(|(agency, effective_at, list, subject, number, expected_version, action)| {
            let signer = Signer::Agency(agency);
            let key = golden::key_for(&signer);
            Event {
                format: FORMAT_VERSION,
                signer,
                key: PublicKey(key.verifying_key().to_bytes()),
                effective_at,
                body: Body::Case(CaseEvent { list, subject, number, expected_version, action }),
            }
        });
    prop_oneof![registry, case]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn json_bytes_json_round_trips(event in event()) {
        let json = serde_json::to_string(&event).expect("json");
        let parsed: Event = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&parsed, &event);
        let bytes = encode(&parsed);
        let decoded = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&decoded, &event);
        prop_assert_eq!(serde_json::to_string(&decoded).expect("json"), json);
    }

    #[test]
    fn signing_is_deterministic_and_verifies(event in event()) {
        let key = golden::key_for(&event.signer);
        let first = SignedEvent::sign(event.clone(), &key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let second = SignedEvent::sign(event, &key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(first.id(), second.id());
        prop_assert_eq!(first.signature(), second.signature());
        prop_assert_eq!(first.verify(), Ok(()));
        prop_assert_eq!(first.to_wire(), first.to_wire_postcard(), "the hand-written wire encoder is postcard's");
        let again = SignedEvent::from_wire(&first.to_wire()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &first);
        let via_json = SignedEvent::from_json(serde_json::from_str(&serde_json::to_string(&first.to_json()).expect("json")).expect("parse"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(via_json, first);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
        let _ = SignedEvent::from_wire(&bytes);
    }

    #[test]
    fn mutated_canonical_bytes_decode_only_to_canonical_events(event in event(), index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&event);
        let at = index.index(bytes.len());
        bytes[at] = byte;
        if let Ok(decoded) = decode(&bytes) {
            prop_assert_eq!(encode(&decoded), bytes);
        }
    }
}

// ---- signatures ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_equals_single_and_agrees_with_dalek_strict(
        items in proptest::collection::vec((0..4usize, proptest::collection::vec(any::<u8>(), 0..64), proptest::option::of((0..64usize, 1..=255u8))), 1..24)
    ) {
        use docket_model::crypto::{verify, verify_batch, BatchItem};
        use docket_model::Signature;
        let keys: Vec<ed25519_dalek::SigningKey> = (0..4).map(|i| golden::signing_key(&format!("prop-{i}"))).collect();
        let publics: Vec<PublicKey> = keys.iter().map(|k| PublicKey(k.verifying_key().to_bytes())).collect();
        let signatures: Vec<Signature> = items
            .iter()
            .map(|(key, message, corruption)| {
                let mut signature = Signature(ed25519_dalek::Signer::sign(&keys[*key], message).to_bytes());
                if let Some((index, flip)) = corruption {
                    signature.0[*index] ^= flip;
                }
                signature
            })
            .collect();
        let batch: Vec<BatchItem<'_>> = items.iter().zip(&signatures).map(|((key, message, _), s)| (&publics[*key], message.as_slice(), s)).collect();
        let batched = verify_batch(&batch);
        for (index, (key, message, signature)) in batch.iter().enumerate() {
            let single = verify(key, message, signature);
            prop_assert_eq!(batched[index], single, "item {}", index);
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                .expect("valid key")
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                .is_ok();
            prop_assert_eq!(single.is_ok(), dalek, "item {} disagrees with dalek verify_strict", index);
            prop_assert_eq!(single.is_ok(), items[index].2.is_none(), "item {}: only corrupted signatures fail", index);
        }
    }
}
