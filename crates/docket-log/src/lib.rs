//! docket's log of record.
//!
//! Built so far: the RFC 6962 / RFC 9162 Merkle tree with inclusion and
//! consistency proofs (`merkle`). To come (issue 3): segment files, the
//! group-commit sequencer, C2SP tiles and signed checkpoints.

pub mod merkle;
