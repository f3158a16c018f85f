//! docket's log of record.
//!
//! Built so far: the RFC 6962 / RFC 9162 Merkle tree with inclusion and
//! consistency proofs (`merkle`), and C2SP signed notes and checkpoints
//! (`note`). To come (issue 3): segment files, the group-commit sequencer,
//! tiles, and the log itself.

pub mod merkle;
pub mod note;
