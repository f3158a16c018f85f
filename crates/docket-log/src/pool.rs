//! A persistent pool of threads that batch-verify signatures: started once
//! with the sequencer, fed the parts of each batch, so no thread is started
//! per batch. With as many threads as cores, verification takes both cores
//! while the writer waits for its `fdatasync`, and yields one to it when it
//! works (the OS schedules the threads; nothing is pinned).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use docket_model::{verify_all, SignatureError, SignedEvent};

/// The smallest part of a batch given to one thread: below it, splitting
/// costs more than it saves.
pub const VERIFY_PART_EVENTS_MIN: usize = 32;

type Job = Box<dyn FnOnce() + Send>;

/// Threads that verify signatures until the pool is dropped.
pub struct VerifyPool {
    jobs: Mutex<Sender<Job>>,
    threads: usize,
}

impl std::fmt::Debug for VerifyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyPool").field("threads", &self.threads).finish()
    }
}

impl VerifyPool {
    /// Starts `threads` threads (at least 1), named `docket-verify-N`.
    pub fn start(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("docket-verify-{index}"))
                .spawn(move || work(&receiver))
                .unwrap_or_else(|error| panic!("cannot start a verification thread: {error}"));
        }
        Self { jobs: Mutex::new(jobs), threads }
    }

    /// Verifies the signatures of `events` on the pool's threads, in up to
    /// `threads` parts of at least [`VERIFY_PART_EVENTS_MIN`]; blocks until
    /// every part is done. Returns the events and one verdict per event.
    pub fn verify(&self, events: Vec<SignedEvent>) -> (Vec<SignedEvent>, Vec<Result<(), SignatureError>>) {
        let parts = self.threads.min(events.len().div_ceil(VERIFY_PART_EVENTS_MIN)).max(1);
        if parts == 1 {
            let verdicts = verify_all(&events);
            return (events, verdicts);
        }
        let chunk = events.len().div_ceil(parts);
        let events = Arc::new(events);
        let (done, results) = channel();
        for part in 0..parts {
            let range = part * chunk..((part + 1) * chunk).min(events.len());
            let (events, done) = (events.clone(), done.clone());
            let job: Job = Box::new(move || {
                let verdicts = verify_all(&events[range]);
                // Dropped before answering, so the caller gets the events back unshared.
                drop(events);
                let _ = done.send((part, verdicts));
            });
            if self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(job).is_err() {
                break;
            }
        }
        drop(done);
        let mut answered: Vec<(usize, Vec<_>)> = results.iter().collect();
        answered.sort_by_key(|(part, _)| *part);
        let events = Arc::try_unwrap(events).unwrap_or_else(|shared| (*shared).clone());
        if answered.len() != parts {
            // A thread is gone (it cannot panic in verify_all, but never answer wrong): verify here.
            let verdicts = verify_all(&events);
            return (events, verdicts);
        }
        (events, answered.into_iter().flat_map(|(_, verdicts)| verdicts).collect())
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_gives_the_verdicts_of_verify_all_in_order() {
        let demo = docket_world::build(40, 3).events;
        let mut events: Vec<SignedEvent> = demo.into_iter().take(200).collect();
        assert_eq!(events.len(), 200);
        let bytes = events[150].bytes().to_vec();
        events[150] = SignedEvent::from_parts(bytes, docket_model::Signature([7; 64])).expect("a forged signature");
        let pool = VerifyPool::start(2);
        let (back, verdicts) = pool.verify(events.clone());
        assert_eq!(back.len(), events.len());
        assert!(back.iter().zip(&events).all(|(a, b)| a.id() == b.id()), "the events come back in order");
        assert_eq!(verdicts, verify_all(&events));
        assert!(verdicts[150].is_err() && verdicts.iter().filter(|v| v.is_err()).count() == 1);
        let (_, few) = pool.verify(events[..3].to_vec());
        assert_eq!(few, verify_all(&events[..3]));
    }
}
