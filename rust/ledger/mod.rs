//! The audit ledger: an append-only, encrypted, Merkle-hashed log (RFC 9162 tree) with
//! signed checkpoints. merkle.rs holds the tree and proofs, format.rs the bytes on disk,
//! segments.rs the directory's files and the one segment reader, store.rs the writer,
//! recover.rs the scan on open, verify.rs the streaming auditor, anchor.rs the check against
//! a checkpoint kept outside the directory. Dependencies run one way: store -> recover ->
//! segments <- verify.

pub mod anchor;
pub mod format;
pub mod merkle;
pub mod py;
pub mod py_report;
pub mod recover;
pub mod segments;
pub mod store;
pub mod verify;

pub use store::{Fsync, Ledger, Options};
