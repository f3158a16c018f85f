//! `docket tour`: the model, the log and the projections end to end, in a temporary directory.

use std::path::Path;

use anyhow::{Context, Result};

use docket_fold::case::{AsOf, Known, Status};
use docket_fold::{views, Store, StoreLimits};

use crate::replay::{self, Query, View, ViewFormat};
use crate::{id, keys, sign, Format};

/// The examples of `schemas/examples/`, bundled so the tour needs no checkout.
const EXAMPLES: &[(&str, &str)] = &[
    ("agency_registered", include_str!("../../../schemas/examples/agency_registered.json")),
    ("list_defined", include_str!("../../../schemas/examples/list_defined.json")),
    ("notice", include_str!("../../../schemas/examples/notice.json")),
    ("objection", include_str!("../../../schemas/examples/objection.json")),
    ("designation_decision", include_str!("../../../schemas/examples/designation_decision.json")),
    ("measure_applied", include_str!("../../../schemas/examples/measure_applied.json")),
    ("restoration", include_str!("../../../schemas/examples/restoration.json")),
];

/// Runs the tour in a new temporary directory, printing each step and the
/// command it stands for.
pub fn run() -> Result<bool> {
    let dir = std::env::temp_dir().join(format!("docket-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = keygen(&dir)?;
    let signed_lines = sign_examples(&dir, &key)?;
    tamper(&dir, signed_lines)?;

    println!("\n== 5. Check identifiers (docket id check ...)");
    let codes = ["91110105MA01ABCD13", "91110105MA01ABCD14", "110105198001011238", "11010519800101123X"];
    id::check(&codes.map(String::from), Format::Text)?;

    let ledger_dir = dir.join("demo-ledger");
    demo_ledger(&ledger_dir)?;
    queries(&ledger_dir)?;
    audit(&ledger_dir)?;

    println!("\n== 12. When does a 7-working-day objection window served on Friday 27 September 2024 close? (docket deadline ...)");
    crate::audit::deadline("2024-09-27", docket_audit::Period::WorkingDays(7), None, ViewFormat::Text)?;

    println!("\nFiles are in {}. Next: docket --help", dir.display());
    Ok(true)
}

/// Step 1: a new signing key, written to `dir/tour.key`.
fn keygen(dir: &Path) -> Result<ed25519_dalek::SigningKey> {
    let key_path = dir.join("tour.key");
    println!("== 1. A signing key (docket keygen --out {})", key_path.display());
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    keys::write(&key_path, &key, true)?;
    println!("public key {}\n", hex::encode(key.verifying_key().to_bytes()));
    Ok(key)
}

/// Steps 2 and 3: signs the examples into `dir/signed.jsonl` and inspects
/// them. Returns the signed lines.
fn sign_examples(dir: &Path, key: &ed25519_dalek::SigningKey) -> Result<Vec<String>> {
    println!("== 2. Sign {} example events (docket sign --key tour.key events.jsonl)", EXAMPLES.len());
    let mut signed_lines = Vec::new();
    for (name, text) in EXAMPLES {
        let signed = sign::sign_line(text, key).map_err(|error| anyhow::anyhow!("example {name}: {error}"))?;
        println!("  {name:<22} id {}  {} canonical bytes", signed.id(), signed.bytes().len());
        signed_lines.push(serde_json::to_string(&signed.to_json())?);
    }
    let signed_path = dir.join("signed.jsonl");
    std::fs::write(&signed_path, signed_lines.join("\n") + "\n")?;

    println!("\n== 3. Inspect them (docket inspect {})", signed_path.display());
    sign::inspect(Some(&signed_path), Format::Text)?;
    Ok(signed_lines)
}

/// Step 4: changes one character of the third signed line and inspects
/// again (`dir/tampered.jsonl`).
fn tamper(dir: &Path, mut signed_lines: Vec<String>) -> Result<()> {
    println!("\n== 4. Change one character of line 3 (its optional id removed) and inspect again");
    // Without the id, only the signature can catch the change; with it, the id mismatch would.
    let mut line: serde_json::Value = serde_json::from_str(&signed_lines[2])?;
    if let Some(object) = line.as_object_mut() {
        object.remove("id");
    }
    signed_lines[2] = line.to_string().replacen("Failure", "Fai1ure", 1);
    let tampered_path = dir.join("tampered.jsonl");
    std::fs::write(&tampered_path, signed_lines.join("\n") + "\n")?;
    let clean = sign::inspect(Some(&tampered_path), Format::Text)?;
    println!("(inspect exit status would be {})", if clean { 0 } else { 1 });
    Ok(())
}

/// Steps 6 to 8: writes the demo ledger, verifies it and proves a record.
fn demo_ledger(ledger_dir: &Path) -> Result<()> {
    println!(
        "\n== 6. A demo ledger: registry, 40 subjects' cases, planted violations (docket demo --dir {})",
        ledger_dir.display()
    );
    crate::ledger::demo(ledger_dir, 40, 1, crate::Format::Text)?;

    println!("\n== 7. Verify it from scratch, as an outside party would (docket verify --dir ...)");
    crate::ledger::verify(ledger_dir, None, crate::Format::Text)?;

    println!("\n== 8. Prove that record 10 is in the log (docket proof inclusion --dir ... --seq 10)");
    crate::ledger::proof_inclusion(ledger_dir, 10, None)?;
    Ok(())
}

/// A `docket replay` query of the tour: one view, as a table, at the default
/// point (everything recorded, valid now).
fn query(view: View, agency: Option<&str>, subject: Option<String>, measure: Option<&str>) -> Query {
    Query {
        view,
        agency: agency.map(str::to_owned),
        list: None,
        subject,
        measure: measure.map(str::to_owned),
        as_of: None,
        valid_at: None,
        format: ViewFormat::Text,
    }
}

/// Steps 9 and 10: a worklist, and a point check on a subject designated on
/// a day of the demo.
fn queries(ledger_dir: &Path) -> Result<()> {
    println!(
        "\n== 9. A railway operator's worklist (docket replay --dir ... --view enforcement --agency china-railway)"
    );
    replay::replay(ledger_dir, &query(View::Enforcement, Some("china-railway"), None, None))?;

    let (store, _) = Store::open(ledger_dir, StoreLimits::default())?;
    // The demo's cases run in 2024-2026; ask about a day when many were in force.
    let day = "2025-01-01";
    let as_of = AsOf { known: Known::All, valid_at: replay::parse_time("valid-at", day)? };
    let lists = views::list_view(&store, as_of, None, None)?;
    drop(store);
    let designated = lists.lists.iter().flat_map(|l| &l.entries).find(|e| e.status == Status::Designated);
    if let Some(entry) = designated {
        println!(
            "\n== 10. Was {} barred from buying air tickets on {day}? (docket replay --dir ... --view check --subject {} --measure restrict-air-travel --valid-at {day})",
            entry.subject, entry.subject
        );
        let mut check = query(View::Check, None, Some(entry.subject.clone()), Some("restrict-air-travel"));
        check.valid_at = Some(day.to_owned());
        replay::replay(ledger_dir, &check)?;
    }
    Ok(())
}

/// Step 11: audits the demo ledger and compares the cases flagged with the
/// ones the demo planted violations in (counts only).
fn audit(ledger_dir: &Path) -> Result<()> {
    println!(
        "\n== 11. Audit every case against its list's due-process rules (docket audit --dir ...; counts only here)"
    );
    let report = {
        let (store, _) = Store::open(ledger_dir, StoreLimits::default())?;
        let as_of = AsOf { known: Known::All, valid_at: docket_model::Timestamp::now() };
        docket_audit::audit::audit(
            &store,
            as_of,
            &Default::default(),
            &docket_audit::RuleSet::bundled(),
            &docket_audit::Calendar::bundled(),
        )?
    };
    let text = crate::audit::text(&report);
    print!("{}", text.split("\n== ").next().unwrap_or_default());
    let planted: std::collections::BTreeSet<String> =
        docket_world::build(40, 1).planted.into_iter().map(|(number, _)| number).collect();
    let flagged: std::collections::BTreeSet<String> = report.findings.iter().map(|f| f.number.to_string()).collect();
    println!(
        "the demo planted violations in {} cases; the audit flags {} cases, {} of them planted (docket audit lists each finding with its evidence and deadline)",
        planted.len(),
        flagged.len(),
        planted.intersection(&flagged).count()
    );
    Ok(())
}
