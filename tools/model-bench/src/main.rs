//! model-bench: docket-model's per-event costs next to their limit probes,
//! measured in the same run on the same machine.
//!
//! * docket sign (validate + encode + domain-separated ed25519 + BLAKE3 id)
//!   vs raw ed25519-dalek `sign` of the same message.
//! * docket verify (cofactored acceptance rule) vs raw `verify_strict`.
//! * docket batch verify (64 per batch) vs raw dalek `verify_batch`.
//! * docket encode vs raw postcard `to_allocvec` of the same value (the same call).
//! * docket decode (postcard + canonical re-encode check + form validation)
//!   vs raw postcard `from_bytes`.
//!
//! Single-threaded; each figure is the best of three timed rounds of at least
//! `--millis` milliseconds. Prints a markdown table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use docket_model::signed::signing_message;
use docket_model::{decode, encode, golden, verify_all, Event, PublicKey, SignedEvent};
use ed25519_dalek::{Signer as _, SigningKey};

const BATCH: usize = 64;

fn rate(min: Duration, mut op: impl FnMut() -> usize) -> f64 {
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let start = Instant::now();
        let mut done = 0usize;
        while start.elapsed() < min {
            done += op();
        }
        best = best.max(done as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn example(name: &str) -> Event {
    let path = format!("{}/../../schemas/examples/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let signer: docket_model::Signer = serde_json::from_value(value["signer"].clone()).expect("signer");
    let key = golden::key_for(&signer);
    value["key"] = serde_json::to_value(PublicKey(key.verifying_key().to_bytes())).expect("key");
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Row {
    what: &'static str,
    docket: f64,
    probe: &'static str,
    limit: f64,
}

/// A batch of signed events with what raw ed25519-dalek needs to verify it.
struct Batch {
    events: Vec<SignedEvent>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
}

impl Batch {
    fn new(events: Vec<SignedEvent>, keys: Vec<ed25519_dalek::VerifyingKey>) -> Self {
        let messages = events.iter().map(|s| signing_message(s.bytes())).collect();
        let signatures = events.iter().map(|s| ed25519_dalek::Signature::from_bytes(&s.signature().0)).collect();
        Self { events, messages, signatures, keys }
    }

    /// `BATCH` copies of `event` signed by `key`, each a microsecond later.
    fn one_key(event: &Event, key: &SigningKey) -> Self {
        let events = (0..BATCH)
            .map(|i| {
                let mut e = event.clone();
                e.effective_at =
                    docket_model::Timestamp::from_micros(e.effective_at.micros() + i as i64).expect("time");
                SignedEvent::sign(e, key).expect("signs")
            })
            .collect();
        Self::new(events, vec![key.verifying_key(); BATCH])
    }

    /// The same batch signed by `BATCH` different keys: no terms to merge.
    fn distinct_keys(event: &Event) -> Self {
        let signers: Vec<SigningKey> = (0..BATCH).map(|i| golden::signing_key(&format!("bench-{i}"))).collect();
        let events = (0..BATCH)
            .map(|i| {
                let mut e = event.clone();
                e.key = PublicKey(signers[i].verifying_key().to_bytes());
                SignedEvent::sign(e, &signers[i]).expect("signs")
            })
            .collect();
        Self::new(events, signers.iter().map(SigningKey::verifying_key).collect())
    }

    /// `verify_all` on the batch next to dalek's `verify_batch`.
    fn row(&self, what: &'static str, min: Duration) -> Row {
        let refs: Vec<&[u8]> = self.messages.iter().map(Vec::as_slice).collect();
        Row {
            what,
            docket: rate(min, || {
                black_box(verify_all(black_box(&self.events)));
                BATCH
            }),
            probe: "dalek verify_batch",
            limit: rate(min, || {
                black_box(ed25519_dalek::verify_batch(&refs, &self.signatures, &self.keys).is_ok());
                BATCH
            }),
        }
    }
}

/// Every row for one event: batch verification, signing, single
/// verification, encoding and decoding, each next to its raw probe.
fn measure(event: &Event, min: Duration) -> Vec<Row> {
    let key: SigningKey = golden::key_for(&event.signer);
    let signed = SignedEvent::sign(event.clone(), &key).expect("example signs");
    let bytes = signed.bytes().to_vec();
    let message = signing_message(&bytes);
    let dalek_key = key.verifying_key();
    let dalek_signature = key.sign(&message);
    let batch = Batch::one_key(event, &key);
    let distinct = Batch::distinct_keys(event);

    vec![
        distinct.row("verify (batch of 64, 64 keys)", min),
        Row {
            what: "sign",
            docket: rate(min, || {
                black_box(SignedEvent::sign(black_box(event.clone()), &key).is_ok());
                1
            }),
            probe: "dalek sign",
            limit: rate(min, || {
                black_box(key.sign(black_box(&message)));
                1
            }),
        },
        Row {
            what: "verify (single)",
            docket: rate(min, || {
                black_box(signed.verify().is_ok());
                1
            }),
            probe: "dalek verify_strict",
            limit: rate(min, || {
                black_box(dalek_key.verify_strict(black_box(&message), &dalek_signature).is_ok());
                1
            }),
        },
        batch.row("verify (batch of 64, 1 key)", min),
        Row {
            what: "encode",
            docket: rate(min, || {
                black_box(encode(black_box(event)));
                1
            }),
            probe: "postcard to_allocvec",
            limit: rate(min, || {
                black_box(postcard::to_allocvec(black_box(event)).expect("encodes"));
                1
            }),
        },
        Row {
            what: "decode (checked)",
            docket: rate(min, || {
                black_box(decode(black_box(&bytes)).is_ok());
                1
            }),
            probe: "postcard from_bytes",
            limit: rate(min, || {
                black_box(postcard::from_bytes::<Event>(black_box(&bytes)).is_ok());
                1
            }),
        },
    ]
}

const USAGE: &str = "model-bench: per-event sign, verify, encode and decode next to raw ed25519-dalek and postcard, in the same run.\n\nusage: model-bench [--millis 300]\n\nEach figure is the best of three timed rounds of at least --millis milliseconds; prints a markdown table.\n\nexamples:\n  cargo run --release -p model-bench\n  cargo run --release -p model-bench -- --millis 1000";

fn main() {
    benchkit::args_or_exit(USAGE, &["--millis"]);
    let millis: u64 = std::env::args()
        .skip_while(|a| a != "--millis")
        .nth(1)
        .map(|m| m.parse().expect("--millis takes a number"))
        .unwrap_or(300);
    let min = Duration::from_millis(millis);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("model-bench: single thread, best of 3 rounds of {millis} ms; machine has {cores} core(s)\n");
    println!("| event | bytes | operation | docket /s | limit probe | probe /s | docket / probe |");
    println!("|---|---:|---|---:|---|---:|---:|");
    for name in ["notice", "measure_applied", "designation_decision"] {
        let event = example(name);
        let size = encode(&event).len();
        for row in measure(&event, min) {
            println!(
                "| {name} | {size} | {} | {:.0} | {} | {:.0} | {:.2} |",
                row.what,
                row.docket,
                row.probe,
                row.limit,
                row.docket / row.limit
            );
        }
    }
}
