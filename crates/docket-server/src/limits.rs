//! How the server's limits relate. A limit is only a promise if the limits
//! around it let it be reached: a batch of `batch_events_max` events at
//! their largest must fit `body_bytes_max`, a body at `body_bytes_max` must
//! fit `body_bytes_in_flight_max`, and so on.
//!
//! Limits fixed in the code are checked at compile time (`const _`); the
//! configurable ones ([`ServerLimits`]) by [`check`] when the server opens,
//! which refuses to start naming both limits of a relation that fails.
//! Every limit keeps its one name: a default is the field's name in capitals.

use docket_model::signed::WIRE_SIZE_BYTES_MAX;
use tokio::sync::Semaphore;

use crate::feed::FEED_SCAN_FRAMES_MAX;
use crate::net::READ_BUFFER_BYTES_MAX;
use crate::routes::{AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, WIRE_PREFIX_BYTES};
use crate::{ServerError, ServerLimits};

/// The default of [`ServerLimits::body_bytes_max`]: a full batch of the
/// largest events in the wire form (see the checks below).
pub(crate) const BODY_BYTES_MAX: usize = 17 << 20;
/// The default of [`ServerLimits::batch_events_max`].
pub(crate) const BATCH_EVENTS_MAX: usize = 256;
/// The default of [`ServerLimits::body_bytes_in_flight_max`].
pub(crate) const BODY_BYTES_IN_FLIGHT_MAX: usize = 64 << 20;
/// The default of [`ServerLimits::feed_page_max`].
pub(crate) const FEED_PAGE_MAX: usize = 1000;

/// The most bytes one event takes in a batch body: its wire form after its
/// length prefix. (Its JSON form is larger; a client batching events near
/// the size limit sends the wire form.)
pub(crate) const BATCH_EVENT_BYTES_MAX: usize = WIRE_PREFIX_BYTES + WIRE_SIZE_BYTES_MAX;

/// hyper's smallest `max_buf_size` (it panics below it).
const HYPER_BUFFER_BYTES_MIN: usize = 8192;

const _: () = assert!(BATCH_EVENTS_MAX * BATCH_EVENT_BYTES_MAX <= BODY_BYTES_MAX, "a full batch fits body_bytes_max");
const _: () = assert!(BODY_BYTES_MAX <= BODY_BYTES_IN_FLIGHT_MAX, "a whole body fits body_bytes_in_flight_max");
const _: () = assert!(BODY_BYTES_IN_FLIGHT_MAX <= Semaphore::MAX_PERMITS, "the body budget is a semaphore");
const _: () = assert!(BODY_BYTES_MAX <= u32::MAX as usize, "a body's reservation is a u32 of permits");
const _: () = assert!(WIRE_SIZE_BYTES_MAX <= u32::MAX as usize, "a wire batch's length prefix is a u32");
const _: () = assert!(FEED_PAGE_MAX as u64 <= FEED_SCAN_FRAMES_MAX, "a full feed page is reachable in one scan");
const _: () = assert!(READ_BUFFER_BYTES_MAX >= HYPER_BUFFER_BYTES_MIN, "hyper's buffer minimum");
const _: () = assert!(AUDIT_PAGE_DEFAULT <= AUDIT_PAGE_MAX, "the default audit page is a page");

/// Refuses limits that contradict each other, naming both limits of the
/// first relation that fails and their values.
pub(crate) fn check(limits: &ServerLimits) -> Result<(), ServerError> {
    let refuse = |why: String| Err(ServerError::Config(format!("server limits: {why}")));
    let batch_bytes = limits.batch_events_max.checked_mul(BATCH_EVENT_BYTES_MAX);
    if batch_bytes.is_none_or(|bytes| bytes > limits.body_bytes_max) {
        return refuse(format!(
            "body_bytes_max = {} bytes cannot hold a full batch: batch_events_max = {} events of up to \
             {BATCH_EVENT_BYTES_MAX} bytes each (the wire form and its length prefix)",
            limits.body_bytes_max, limits.batch_events_max
        ));
    }
    if limits.body_bytes_max > limits.body_bytes_in_flight_max {
        return refuse(format!(
            "body_bytes_max = {} is more than body_bytes_in_flight_max = {}: a body at the limit could never be read",
            limits.body_bytes_max, limits.body_bytes_in_flight_max
        ));
    }
    if limits.body_bytes_in_flight_max > Semaphore::MAX_PERMITS {
        return refuse(format!(
            "body_bytes_in_flight_max = {} is more than the {} bytes the body budget can count",
            limits.body_bytes_in_flight_max,
            Semaphore::MAX_PERMITS
        ));
    }
    if limits.body_bytes_max > u32::MAX as usize {
        return refuse(format!(
            "body_bytes_max = {} is more than {} bytes, the most one body can reserve of body_bytes_in_flight_max",
            limits.body_bytes_max,
            u32::MAX
        ));
    }
    if limits.feed_page_max == 0 || limits.feed_page_max as u64 > FEED_SCAN_FRAMES_MAX {
        return refuse(format!(
            "feed_page_max = {} is not between 1 and FEED_SCAN_FRAMES_MAX = {FEED_SCAN_FRAMES_MAX}, \
             the records one feed request scans",
            limits.feed_page_max
        ));
    }
    if limits.ready_checkpoint_lag_ms_max <= limits.checkpoint_interval_ms {
        return refuse(format!(
            "ready_checkpoint_lag_ms_max = {} is not more than checkpoint_interval_ms = {}: /readyz would fail \
             while checkpoints keep their schedule",
            limits.ready_checkpoint_lag_ms_max, limits.checkpoint_interval_ms
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_relate() {
        assert!(check(&ServerLimits::default()).is_ok());
    }

    #[test]
    fn a_contradiction_is_refused_naming_both_limits() {
        let message = |limits: ServerLimits| check(&limits).err().map(|e| e.to_string()).unwrap_or_default();
        let small = message(ServerLimits { body_bytes_max: 1 << 20, ..ServerLimits::default() });
        assert!(small.contains("body_bytes_max = 1048576") && small.contains("batch_events_max = 256"), "{small}");
        let budget = message(ServerLimits { body_bytes_in_flight_max: 1 << 20, ..ServerLimits::default() });
        assert!(budget.contains("body_bytes_max") && budget.contains("body_bytes_in_flight_max = 1048576"), "{budget}");
        let page = message(ServerLimits { feed_page_max: 0, ..ServerLimits::default() });
        assert!(page.contains("feed_page_max = 0") && page.contains("FEED_SCAN_FRAMES_MAX"), "{page}");
        let ready = message(ServerLimits { ready_checkpoint_lag_ms_max: 1000, ..ServerLimits::default() });
        assert!(
            ready.contains("ready_checkpoint_lag_ms_max = 1000") && ready.contains("checkpoint_interval_ms"),
            "{ready}"
        );
        let overflow = message(ServerLimits { batch_events_max: usize::MAX, ..ServerLimits::default() });
        assert!(overflow.contains("batch_events_max"), "{overflow}");
    }
}
