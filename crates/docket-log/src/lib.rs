//! docket's log of record: segment files of framed records, a single-writer
//! core with batched `fdatasync` (group commit), the RFC 6962 Merkle tree,
//! C2SP signed notes and checkpoints.

pub mod chain;
pub mod frame;
pub mod keyfile;
pub mod ledger;
pub mod log;
pub mod merkle;
pub mod note;
pub mod read;
pub mod segment;
pub mod sequencer;
pub mod storage;
pub mod tree;
pub mod verify;

pub use log::{Config, Cut, Log, LogError, Opening, Receipt, Record, Recovery, Refusal, SharedTree};
pub use sequencer::{AppendError, Limits, Sequencer};
pub use storage::{FsStorage, SegmentFile, Storage};
