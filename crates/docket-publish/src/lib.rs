//! docket's log published to S3-compatible object storage, and the replica
//! that follows it.
//!
//! * [`publish`]: the primary's publisher writes the C2SP tlog-tiles layout
//!   as the log grows: hash tiles (full and partial) and the checkpoint
//!   under the public prefix, entry bundles (which carry unmasked events)
//!   under a private one. Tiles and bundles are written once; the
//!   checkpoint is replaced only by a conditional write naming the version
//!   the publisher last saw, so a second primary on the same bucket is
//!   refused and told why.
//! * [`follow`]: what a replica checks before it takes anything from the
//!   bucket: the checkpoint's signature, consistency with every checkpoint
//!   it saw before, each entry against its tile and its leaf.
//!
//! Architecture invariant: this crate knows the log (`docket-log`) and the
//! object store, never HTTP routes or projections; the CLI wires it to the
//! server.

pub mod bucket;
pub mod follow;
pub mod publish;

pub use bucket::Bucket;

/// Why publishing or following failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A bucket URL that cannot be used.
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    /// The store failed (network, permissions, a server error); retried.
    #[error("{object}: {reason}")]
    Store { object: String, reason: String },
    /// An immutable object already holds other bytes.
    #[error(
        "{object} already exists with other bytes: published tiles and bundles never change, so another log \
         publishes to this prefix, or the bucket was altered"
    )]
    Differs { object: String },
    /// The checkpoint changed since this publisher last read or wrote it.
    #[error(
        "{object}: the checkpoint was replaced by another writer since this publisher last wrote it (it expected \
         version {expected:?}): a second primary publishes to this bucket; this one stops publishing"
    )]
    Contended { object: String, expected: Option<String> },
    /// The bucket's checkpoint is not of this log, or not a prefix of it.
    #[error("{0}")]
    Foreign(String),
    /// The local ledger could not be read.
    #[error("the ledger: {0}")]
    Source(String),
    /// What the bucket holds does not verify; nothing past `seq` is taken.
    #[error("seq {seq}: {reason}")]
    Tampered { seq: u64, reason: String },
}

impl PublishError {
    /// Whether trying again may help (a store failure), or publishing must
    /// stop (another writer, another log, altered objects).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Store { .. } | Self::Source(_))
    }
}

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Hashes per tile and entries per bundle (C2SP tlog-tiles).
pub const TILE_WIDTH: u64 = docket_log::TILE_WIDTH;

/// The object name of a hash tile.
pub fn tile_name(level: u8, index: u64, width: u64) -> String {
    docket_log::tile_path(level, index, width)
}

/// The object name of an entry bundle: `tile/entries/<N>[.p/<W>]`.
pub fn bundle_name(index: u64, width: u64) -> String {
    // tile_path writes `tile/0/<N>...`: the same index path under `entries`.
    let level_zero = docket_log::tile_path(0, index, width);
    format!("tile/entries/{}", &level_zero["tile/0/".len()..])
}

/// The checkpoint's object name.
pub const CHECKPOINT: &str = "checkpoint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_c2sp_paths() {
        assert_eq!(tile_name(0, 0, 256), "tile/0/000");
        assert_eq!(tile_name(1, 1234067, 7), "tile/1/x001/x234/067.p/7");
        assert_eq!(bundle_name(0, 3), "tile/entries/000.p/3");
        assert_eq!(bundle_name(1000, 256), "tile/entries/x001/000");
    }
}
