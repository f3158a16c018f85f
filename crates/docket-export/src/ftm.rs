//! The public list as FollowTheMoney entities (JSON Lines, one entity per
//! line: `{"id", "schema", "properties"}` with every value a string in a
//! list), for screening tools that read OpenSanctions' format.
//!
//! * A subject is a `Company` (a USCC: `uscCode`, `registrationNumber`), a
//!   `Person` (a resident identity number) or a `LegalEntity` (another
//!   scheme). The public list masks persons' and other schemes'
//!   identifiers, and a masked identifier is not an identifier: it is the
//!   entity's `name` only, never an identifier property.
//! * A `Sanction` per listing: `entity`, `authority` (the designating
//!   agency's name) and `authorityId`, `program` (the list's name) and
//!   `programId`, `reason` and `provisions` (the legal basis cited),
//!   `listingDate` (the decision's date), `startDate`, `endDate`, `status`,
//!   `recordId` (the case number) and, as provenance, `summary` naming the
//!   signed designation decision's event id.
//!
//! **Stable ids.** A company's id is `docket-uscc-CODE`, the same on every
//! list and at every point. A masked subject cannot be told apart from
//! another with the same mask, so its id is derived from the listing (list,
//! masked subject, case number): `docket-subject-` + 32 hex digits of
//! BLAKE3. A sanction's id is `docket-sanction-` + 32 hex digits of BLAKE3
//! over list, subject and case number. Every id is the same for the same
//! listing in every export.

use std::collections::HashSet;
use std::io::Write;

use serde_json::{json, Map, Value as Json};

use docket_fold::views::{PublicEntry, PublicView};
use docket_model::Registry;

use crate::{ExportError, Summary};

/// BLAKE3 key-derivation context of entity ids.
pub const ID_CONTEXT: &str = "docket/v1/ftm-entity-id";

/// 32 hex digits of BLAKE3 (derive-key [`ID_CONTEXT`]) over `parts`, each
/// followed by a NUL byte.
fn digest(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new_derive_key(ID_CONTEXT);
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hex::encode(&hasher.finalize().as_bytes()[..16])
}

/// The subject entity of a listing: its id and the entity.
pub fn subject_entity(entry: &PublicEntry) -> (String, Json) {
    let (schema, id, mut properties) = match entry.subject.strip_prefix("uscc:") {
        Some(code) => {
            let mut properties = props(&[("name", code), ("uscCode", code), ("registrationNumber", code)]);
            properties.insert("jurisdiction".into(), json!(["cn"]));
            ("Company", format!("docket-uscc-{code}"), properties)
        }
        None => {
            let schema = if entry.subject.starts_with("resident:") { "Person" } else { "LegalEntity" };
            let id =
                format!("docket-subject-{}", digest(&[entry.list.as_str(), &entry.subject, entry.number.as_str()]));
            (schema, id, props(&[("name", &entry.subject)]))
        }
    };
    properties.insert("country".into(), json!(["cn"]));
    properties.insert("topics".into(), json!(["sanction"]));
    let entity = json!({"id": id, "schema": schema, "properties": properties});
    (id, entity)
}

/// The sanction entity of a listing whose subject entity is `entity_id`.
pub fn sanction_entity(entry: &PublicEntry, entity_id: &str, registry: &Registry) -> Json {
    let id = format!("docket-sanction-{}", digest(&[entry.list.as_str(), &entry.subject, entry.number.as_str()]));
    let authority = registry.agency(&entry.authority).map_or(entry.authority.as_str(), |a| a.name.as_str());
    let program = registry.list(&entry.list).map_or(entry.list.as_str(), |l| l.name.as_str());
    let status = if entry.contested { "active, contested" } else { "active" };
    let summary = format!("designation decision, signed event {}", entry.decision.to_hex());
    let mut properties = props(&[
        ("entity", entity_id),
        ("authority", authority),
        ("authorityId", entry.authority.as_str()),
        ("program", program),
        ("programId", entry.list.as_str()),
        ("recordId", entry.number.as_str()),
        ("status", status),
        ("summary", &summary),
        ("country", "cn"),
        ("listingDate", &entry.listing_date.to_string()),
        ("startDate", &entry.start_date.to_string()),
    ]);
    if let Some(end) = entry.end_date {
        properties.insert("endDate".into(), json!([end.to_string()]));
    }
    let provisions: Vec<String> = entry.legal_basis.iter().map(|r| format!("{} {}", r.instrument, r.article)).collect();
    if !provisions.is_empty() {
        properties.insert("reason".into(), json!([provisions.join("; ")]));
        properties.insert("provisions".into(), json!(provisions));
    }
    json!({"id": id, "schema": "Sanction", "properties": properties})
}

fn props(pairs: &[(&str, &str)]) -> Map<String, Json> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), json!([value]))).collect()
}

/// Writes the public list `view` as FollowTheMoney entities: each subject
/// once (before its first sanction), then a sanction per listing. Names of
/// agencies and lists are read from `registry` (the registry at the view's
/// point). Returns the entities written.
pub fn write(
    view: &PublicView,
    registry: &Registry,
    mut out: Box<dyn Write + Send + '_>,
) -> Result<Summary, ExportError> {
    let mut seen = HashSet::new();
    let mut rows = 0;
    for entry in &view.entries {
        let (id, entity) = subject_entity(entry);
        if seen.insert(id.clone()) {
            line(&mut out, &entity)?;
            rows += 1;
        }
        line(&mut out, &sanction_entity(entry, &id, registry))?;
        rows += 1;
    }
    out.flush()?;
    Ok(Summary { rows })
}

fn line(out: &mut dyn Write, entity: &Json) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *out, entity).map_err(|e| ExportError::Row(format!("ftm entity: {e}")))?;
    out.write_all(b"\n")?;
    Ok(())
}
