//! Token buckets by key. Appends per agency: a token is taken before an
//! append and given back if the append is refused or was a duplicate, so
//! only new accepted events count: events forged in another agency's name
//! (refused at the signature) and replays of its events cannot spend its
//! budget. Appends without effect per client address: checked before the
//! body is parsed, spent after the outcome is known.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most keys a limiter tracks. Past it, full buckets (which say nothing a
/// new bucket would not) are dropped first; if all are in use, all are.
pub(crate) const BUCKETS_MAX: usize = 65_536;

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

    fn with_bucket<T>(&self, key: &str, then: impl FnOnce(&mut f64) -> T) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(key) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, last)| *tokens + now.duration_since(*last).as_secs_f64() * per_second < burst);
            if buckets.len() >= BUCKETS_MAX {
                buckets.clear();
            }
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        then(tokens)
    }

    /// Seconds until a token is free for `key` (at least one).
    fn wait(&self, tokens: f64) -> f64 {
        (1.0 - tokens) / self.per_second
    }

    /// Takes a token for `key`, or says how many seconds until one is free.
    pub(crate) fn take(&self, key: &str) -> Result<(), f64> {
        self.with_bucket(key, |tokens| {
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                Ok(())
            } else {
                Err((1.0 - *tokens) / self.per_second)
            }
        })
    }

    /// Whether `key` has a token, without taking it; if not, the seconds until it will.
    pub(crate) fn check(&self, key: &str) -> Result<(), f64> {
        let tokens = self.with_bucket(key, |tokens| *tokens);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait(tokens))
        }
    }

    /// Spends a token of `key` if it has one (an outcome already happened).
    pub(crate) fn spend(&self, key: &str) {
        self.with_bucket(key, |tokens| *tokens = (*tokens - 1.0).max(0.0));
    }

    /// Gives back a token taken for an append that was refused.
    pub(crate) fn refund(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((tokens, _)) = buckets.get_mut(key) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_refills_and_refunds() {
        let limiter = RateLimiter::new(1, 2);
        assert_eq!(limiter.take("a"), Ok(()));
        assert_eq!(limiter.take("a"), Ok(()));
        assert!(limiter.take("a").is_err());
        limiter.refund("a");
        assert_eq!(limiter.check("a"), Ok(()));
        limiter.spend("a");
        assert!(limiter.check("a").is_err(), "spent");
        assert_eq!(limiter.take("b"), Ok(()), "another key has its own bucket");
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = RateLimiter::new(1, 1);
        for key in 0..BUCKETS_MAX + 10 {
            limiter.spend(&key.to_string());
        }
        assert!(limiter.buckets.lock().map(|b| b.len()).unwrap_or(0) <= BUCKETS_MAX);
    }
}
