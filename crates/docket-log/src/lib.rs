//! docket's log of record: segment files of framed records, a single-writer
//! core with batched `fdatasync` (group commit), the RFC 6962 Merkle tree,
//! C2SP signed notes and checkpoints.
//!
//! # API boundary
//!
//! The front door is what this file exports. [`Log`] and [`Sequencer`]
//! append; [`ledger::Ledger`] opens a ledger directory (its lock, its
//! checkpoints, its layout in [`ledger::Paths`]); [`Reader`] streams committed
//! records ([`Frame`]) for the folds and the feed; [`Tree`] answers proofs and
//! tiles; [`verify`], [`merkle`] and [`note`] are what an outside verifier
//! needs. The record format (`frame`), segment files (`segment`), the chain
//! walk (`chain`), the tree's storage and the file system (`storage`) are
//! private: nothing outside the crate depends on how bytes lie on disk,
//! except through [`inspect`] (read-only, for forensic tools and damage
//! tests).
//!
//! Architecture invariant: this crate never knows about projections, HTTP,
//! or generated worlds.

mod chain;
mod frame;
pub mod index;
pub mod inquiry;
pub mod inspect;
pub mod keyfile;
pub mod ledger;
mod log;
pub mod merkle;
pub mod note;
pub mod pool;
mod read;
pub mod runs;
mod segment;
mod sequencer;
mod storage;
pub mod tiles;
mod tree;
pub mod verify;

pub use frame::{entry, leaf, Frame};
pub use log::{BatchStats, Config, Cut, Log, LogError, Opening, Receipt, Record, Recovery, Refusal, SharedTree};
pub use read::{Position, Reader};
pub use sequencer::{verify_parallel, AppendError, DurableHook, Limits, Sequencer, Stats, WriterHealth};
pub use storage::{sync_dir, FsStorage, SegmentFile, Storage};
pub use tree::{tile_path, Tree, STORED_TILE_LEVELS, TILE_WIDTH};
