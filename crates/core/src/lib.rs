//! # gongkai-core
//!
//! The one library that knows how gongkai hashes, signs and verifies. It
//! implements the normative formats of `docs/FORMAT.md`:
//!
//! * [`hash`]: BLAKE3 leaf, node and body hashes;
//! * [`merkle`]: the RFC 9162 tree shape over BLAKE3, a compact streaming
//!   state, inclusion and consistency proofs (generation from stored subtree
//!   hashes through a narrow read trait, and verification);
//! * [`tile`]: tlog-tiles-style tile and entry-bundle math;
//! * [`note`] and [`checkpoint`]: C2SP signed notes, verifier keys,
//!   `tlog-checkpoint` and `tlog-cosignature/v1`;
//! * [`event`] and [`entry`]: the protobuf event body, its canonical-encoding
//!   rule and the signed, framed entry;
//! * [`evidence`]: self-contained proofs of a department's misbehaviour;
//! * [`county`]: the county log's leaves;
//! * [`chain`]: the chain verifier (index, `prev_hash`, time, keys,
//!   signatures, catalog rules, Merkle root);
//! * [`writer`]: sequencing and signing new entries;
//! * [`catalog`]: the catalog projection as a pure fold;
//! * [`audit`]: the findings of an audit (lateness, missing periods,
//!   back-dating) as a pure fold;
//! * [`proof`]: proof bundles of one item's history;
//! * [`calendar`] and [`date`]: China Standard Time dates and the working-day
//!   calendar with its shipped holiday table.
//!
//! Out of scope, by design: I/O of any kind, async, threads, ambient
//! randomness (callers pass an RNG), storage and transport. Core keeps
//! building for `wasm32-unknown-unknown`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod chain;
pub mod checkpoint;
pub mod county;
pub mod date;
pub mod entry;
mod error;
pub mod event;
pub mod evidence;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod report;
pub mod tile;
pub mod types;
pub mod witness;
pub mod writer;

pub use error::Error;
pub use hash::Hash;

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
