//! The inquiry register: group-committed, read back, checkpointed, and
//! refusing a register that was tampered with or lost records.

use std::path::Path;

use docket_log::inquiry::{self, Inquiry, Register, QUESTION_BYTES_MAX};
use docket_log::ledger;
use docket_model::PublicKey;

fn ledger_dir(dir: &Path) -> ed25519_dalek::SigningKey {
    let log_key = docket_model::golden::signing_key("log");
    let root = PublicKey(docket_model::golden::signing_key("registry-root").verifying_key().to_bytes());
    ledger::init(dir, "docket.invalid/inquiry-test", &log_key, root, None).expect("init");
    log_key
}

fn note_key(dir: &Path) -> docket_log::note::NoteKey {
    ledger::read_config(dir).expect("config").2
}

fn ask(agency: &str, n: u64) -> Inquiry {
    Inquiry::new(agency, PublicKey([7; 32]), &format!("GET /v1/check?subject=uscc:{n}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn concurrent_inquiries_are_recorded_once_each_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signing = ledger_dir(dir.path());
    let register = std::sync::Arc::new(Register::open(dir.path(), &note_key(dir.path())).expect("open"));
    let seqs: Vec<u64> = runtime().block_on(async {
        let tasks: Vec<_> = (0..500)
            .map(|n| {
                let register = register.clone();
                tokio::spawn(async move { register.record(ask(if n % 2 == 0 { "spc" } else { "sat" }, n)).await })
            })
            .collect();
        let mut seqs = vec![];
        for task in tasks {
            seqs.push(task.await.expect("task").expect("recorded"));
        }
        seqs
    });
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..500).collect::<Vec<u64>>(), "each inquiry has its own seq");
    assert_eq!(register.size(), 500);
    let read = inquiry::read(dir.path(), 0, 10_000).expect("read");
    assert_eq!(read.len(), 500);
    assert!(read.windows(2).all(|pair| pair[0].at < pair[1].at), "record times increase");
    let by_seq = &read[seqs[7] as usize];
    assert_eq!(by_seq.inquiry, ask("sat", 7));
    assert_eq!(
        inquiry::read(dir.path(), 490, 5).expect("read").iter().map(|r| r.seq).collect::<Vec<_>>(),
        [490, 491, 492, 493, 494]
    );
    let note = register.checkpoint(&signing).expect("checkpoint");
    assert!(note.starts_with("docket.invalid/inquiry-test/inquiries\n500\n"), "{note}");
    let (leaf, proof) = register.prove(3, 500).expect("proof");
    let verified = inquiry::verify(dir.path()).expect("verify");
    assert_eq!((verified.size, verified.checkpoint), (500, Some(500)));
    docket_log::merkle::verify_inclusion(3, 500, &leaf, &proof, &verified.root).expect("inclusion");
    drop(register);
    // Reopened: the same records, and new ones follow them.
    let register = Register::open(dir.path(), &note_key(dir.path())).expect("reopen");
    assert_eq!(register.size(), 500);
    assert_eq!(runtime().block_on(register.record(ask("spc", 9))).expect("record"), 500);
    drop(register);
    // The new record follows the old ones on disk (a reopened segment is
    // appended to at its end, never written over from its start).
    assert_eq!(inquiry::verify(dir.path()).expect("verify after reopening").size, 501);
    let tail = inquiry::read(dir.path(), 499, 10).expect("read");
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [499, 500]);
    let register = Register::open(dir.path(), &note_key(dir.path())).expect("reopen again");
    assert_eq!(register.size(), 501);
}

#[test]
fn a_long_question_is_cut_at_its_limit() {
    let long = "é".repeat(QUESTION_BYTES_MAX);
    let inquiry = Inquiry::new("spc", PublicKey([1; 32]), &long);
    assert!(inquiry.question.len() <= QUESTION_BYTES_MAX);
    assert!(inquiry.question.ends_with('…'));
}

fn segment(dir: &Path) -> std::path::PathBuf {
    ledger::Paths::new(dir).inquiry_segments().join("seg-00000000000000000000.log")
}

fn filled(dir: &Path, count: u64) -> ed25519_dalek::SigningKey {
    let signing = ledger_dir(dir);
    let register = Register::open(dir, &note_key(dir)).expect("open");
    let rt = runtime();
    for n in 0..count {
        rt.block_on(register.record(ask("spc", n))).expect("record");
    }
    register.checkpoint(&signing).expect("checkpoint");
    signing
}

#[test]
fn a_flipped_byte_is_refused_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path(), 20);
    let path = segment(dir.path());
    assert!(
        path.exists(),
        "{} (names: {:?})",
        path.display(),
        std::fs::read_dir(path.parent().unwrap()).unwrap().count()
    );
    let mut bytes = std::fs::read(&path).expect("segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    let error = Register::open(dir.path(), &note_key(dir.path())).expect_err("refused");
    assert!(error.to_string().contains("damaged"), "{error}");
    assert!(inquiry::verify(dir.path()).is_err());
}

#[test]
fn records_a_checkpoint_covers_cannot_be_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path(), 20);
    let path = segment(dir.path());
    let bytes = std::fs::read(&path).expect("segment");
    let spans = docket_log::inspect::frame_spans(&bytes).expect("spans");
    // Cut the last 5 records at a commit point: each was its own write here.
    std::fs::write(&path, &bytes[..spans[14].end]).expect("cut");
    let error = Register::open(dir.path(), &note_key(dir.path())).expect_err("refused");
    assert!(error.to_string().contains("does not match its signed checkpoint of 20"), "{error}");
}

#[test]
fn an_unfinished_write_is_cut_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path(), 3);
    let path = segment(dir.path());
    let mut bytes = std::fs::read(&path).expect("segment");
    let clean = bytes.len();
    bytes.extend_from_slice(&[0xab; 40]);
    std::fs::write(&path, &bytes).expect("torn");
    let register = Register::open(dir.path(), &note_key(dir.path())).expect("open");
    assert_eq!(register.size(), 3);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), clean as u64);
}
