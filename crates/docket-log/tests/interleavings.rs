//! Property: any interleaving of appends from many tasks, duplicates
//! included, gives a gapless, duplicate-free log whose replay equals the
//! acknowledged events (the in-memory model: a map seq -> id).

use std::collections::BTreeMap;

use docket_log::{Config, FsStorage, Limits, Log, Sequencer};
use docket_model::{EventKind, PublicKey, SignedEvent, Timestamp};
use docket_world as world;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn concurrent_appends_make_a_gapless_log_equal_to_the_acknowledgements(
        tasks in 1..24usize,
        shuffle in any::<u64>(),
        duplicates in 0..20usize,
        batch_events_max in 1..64usize,
    ) {
        let built = world::build(30, 21);
        let root = PublicKey(built.registry_root.verifying_key().to_bytes());
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config { segment_bytes_max: 32 * 1024 };
        let (mut log, _) = Log::open(FsStorage::new(dir.path()), config.clone(), root, |_| {}).expect("opens");
        let registry: Vec<SignedEvent> = built.events.iter().filter(|e| e.event().kind().is_registry()).cloned().collect();
        log.append_batch(registry.clone(), Timestamp::now()).expect("registry");
        // Notices open independent cases, so any order is valid; some are offered twice.
        let mut offered: Vec<SignedEvent> = built.events.iter().filter(|e| e.event().kind() == EventKind::Notice).cloned().collect();
        let copies: Vec<SignedEvent> = offered.iter().take(duplicates).cloned().collect();
        offered.extend(copies);
        let mut state = shuffle;
        for index in (1..offered.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            offered.swap(index, (state >> 33) as usize % (index + 1));
        }
        let limits = Limits { batch_events_max, ..Limits::default() };
        let (sequencer, writer) = Sequencer::start(log, limits);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
        let acknowledged = runtime.block_on(async {
            let mut handles = Vec::new();
            for task in 0..tasks {
                let mine: Vec<SignedEvent> = offered.iter().skip(task).step_by(tasks).cloned().collect();
                let sequencer = sequencer.clone();
                handles.push(tokio::spawn(async move {
                    let mut out = Vec::new();
                    for event in mine {
                        let receipt = sequencer.append(event.clone()).await.expect("accepted");
                        out.push((receipt.seq, event.id()));
                    }
                    out
                }));
            }
            let mut all = Vec::new();
            for handle in handles {
                all.extend(handle.await.expect("task"));
            }
            all
        });
        drop(sequencer);
        let (log, _) = writer.join().expect("writer");
        let size = log.size();
        drop(log);
        // The model: each seq maps to one id; a duplicate gets its original's seq.
        let mut model: BTreeMap<u64, docket_model::EventId> = BTreeMap::new();
        for (seq, id) in &acknowledged {
            let previous = model.insert(*seq, *id);
            prop_assert!(previous.is_none_or(|p| p == *id), "seq {} acknowledged for two events", seq);
        }
        let first = registry.len() as u64;
        prop_assert_eq!(model.keys().copied().collect::<Vec<_>>(), (first..size).collect::<Vec<_>>(), "gapless");
        let mut replayed = BTreeMap::new();
        Log::open(FsStorage::new(dir.path()), config, root, |record| {
            replayed.insert(record.seq, record.event.id());
        })
        .expect("reopens");
        let tail: BTreeMap<u64, _> = replayed.into_iter().filter(|(seq, _)| *seq >= first).collect();
        prop_assert_eq!(tail, model);
    }
}
