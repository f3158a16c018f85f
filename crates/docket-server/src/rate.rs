//! Appends per agency per second: a token bucket per signer. A token is
//! taken before an append and given back if the append is refused, so only
//! accepted events count: events forged in another agency's name (refused
//! at the signature) cannot spend its budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second: f64::from(per_second.max(1)), burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes a token for `signer`, or says how many seconds until one is free.
    pub(crate) fn take(&self, signer: &str) -> Result<(), f64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = buckets.entry(signer.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.per_second)
        }
    }

    /// Gives back a token taken for an append that was refused.
    pub(crate) fn refund(&self, signer: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((tokens, _)) = buckets.get_mut(signer) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }
}
