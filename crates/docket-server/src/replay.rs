//! Replays cost little and spend nothing, and reads see the registry as the
//! log has acknowledged it.
//!
//! * [`RecentReceipts`]: the receipts of recently acknowledged events by id.
//!   An append whose id and signature are here is answered with the original
//!   receipt before any signature check, and spends no agency's budget (the
//!   log's own duplicate index lives on the writer thread, behind the
//!   verifier stage). Bounded: the oldest entry goes first.
//! * [`AckedRegistry`]: the registry after every registry event the server
//!   has acknowledged, applied in log order. Key and session checks read it,
//!   so a revocation holds from the next request, while the projected
//!   registry may be a moment behind.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use docket_log::Receipt;
use docket_model::{EventId, Registry, Signature, SignedEvent};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Receipts of recently acknowledged events, by id.
#[derive(Debug)]
pub(crate) struct RecentReceipts {
    capacity: usize,
    inner: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    receipts: HashMap<EventId, (Signature, Receipt)>,
    order: VecDeque<EventId>,
}

impl RecentReceipts {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::default() }
    }

    /// The receipt of `event` if it was acknowledged recently with the same
    /// signature. (The id covers the event, not the signature: a copy with
    /// another signature goes to the sequencer, which verifies it.)
    pub(crate) fn get(&self, id: EventId, signature: &Signature) -> Option<Receipt> {
        let recent = lock(&self.inner);
        let (kept, receipt) = recent.receipts.get(&id)?;
        (kept == signature).then_some(*receipt)
    }

    /// Remembers an acknowledged event's receipt.
    pub(crate) fn insert(&self, id: EventId, signature: Signature, receipt: Receipt) {
        if self.capacity == 0 {
            return;
        }
        let mut recent = lock(&self.inner);
        if recent.receipts.insert(id, (signature, receipt)).is_some() {
            return;
        }
        recent.order.push_back(id);
        while recent.order.len() > self.capacity {
            if let Some(oldest) = recent.order.pop_front() {
                recent.receipts.remove(&oldest);
            }
        }
    }
}

/// The registry as of the last acknowledged registry event.
#[derive(Debug)]
pub(crate) struct AckedRegistry {
    state: RwLock<(Arc<Registry>, u64)>,
    /// Held across a registry event's append and its application, so that
    /// registry events are applied in the order the log recorded them.
    pub(crate) appending: tokio::sync::Mutex<()>,
}

impl AckedRegistry {
    /// Starts from `registry`, which holds every record before `next_seq`.
    pub(crate) fn new(registry: Arc<Registry>, next_seq: u64) -> Self {
        Self { state: RwLock::new((registry, next_seq)), appending: tokio::sync::Mutex::new(()) }
    }

    pub(crate) fn current(&self) -> Arc<Registry> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).0.clone()
    }

    /// Applies an acknowledged registry event (once: a duplicate's receipt
    /// names a seq already applied). The caller holds `appending`.
    pub(crate) fn apply(&self, event: &SignedEvent, receipt: &Receipt) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if receipt.seq < state.1 {
            return;
        }
        let mut next = Registry::clone(&state.0);
        match next.apply(event.event(), receipt.system_time) {
            Ok(()) => *state = (Arc::new(next), receipt.seq + 1),
            // The log accepted it under the same rules; a difference is a bug to see, not to hide.
            Err(error) => tracing::error!(seq = receipt.seq, %error, "an acknowledged registry event does not apply"),
        }
    }
}

impl AckedRegistry {
    /// Takes the projected registry when the projections hold more records
    /// than this one has seen: a registry append whose handler was dropped
    /// (its client went away) before it applied its receipt is caught here.
    pub(crate) fn follow(&self, projected: Arc<Registry>, records: u64) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if records > state.1 {
            *state = (projected, records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_model::Timestamp;

    fn receipt(seq: u64) -> Receipt {
        Receipt {
            seq,
            id: EventId([seq as u8; 32]),
            leaf_index: seq,
            system_time: Timestamp::from_micros(1).unwrap_or_else(|_| unreachable!()),
        }
    }

    #[test]
    fn a_receipt_is_found_by_id_and_signature_and_the_oldest_goes_first() {
        let recent = RecentReceipts::new(2);
        let (signature, other) = (Signature([1; 64]), Signature([2; 64]));
        for seq in 0..3 {
            recent.insert(receipt(seq).id, signature, receipt(seq));
        }
        assert_eq!(recent.get(receipt(2).id, &signature), Some(receipt(2)));
        assert_eq!(recent.get(receipt(2).id, &other), None, "another signature goes to the sequencer");
        assert_eq!(recent.get(receipt(0).id, &signature), None, "evicted");
        assert_eq!(recent.get(receipt(1).id, &signature), Some(receipt(1)));
    }
}
