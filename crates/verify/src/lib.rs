//! gongkai's one verification engine, shared by every verifier: the node
//! at start, `node check` and restore, the county mirror, `verify`,
//! `audit`, `monitor` and the portal.
//!
//! - [`engine`]: entries on all cores — framing, canonical bodies, field
//!   rules, ZIP-215 batch signatures — with links, keys and catalog rules
//!   in log order (core's `ChainVerifier`).
//! - [`source`]: the narrow [`source::LogSource`] trait a log is read
//!   through, and its implementation for an export directory, which is
//!   untrusted input: no links, no special files, every read bounded.
//! - [`check`]: the check of one log over any source, in named steps —
//!   checkpoint, chain and tiles, the tree's edge, signatures and k-of-n
//!   cosignatures, other checkpoints, evidence, content — with one
//!   findings model (core's `audit::Finding`). `verify` and `audit` are
//!   this check over a server and over an export.
//! - [`content`]: the one content-against-commitment check.
//! - [`trust`]: the trust file (FORMAT.md § 16.4).
//! - [`layout`]: the export directory layout (FORMAT.md § 16.1).
//!
//! Depends on `gongkai-core` only among this project's crates, and on no
//! async runtime, transport or database.

#![forbid(unsafe_code)]

pub mod audit;
pub mod check;
pub mod content;
pub mod county;
pub mod engine;
pub mod layout;
pub mod report;
pub mod source;
pub mod trust;

/// Errors of this crate: what stops a check before it starts. Everything
/// wrong with what a source holds is a finding, not an error.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A trust file that cannot be used.
    #[error("{0}")]
    Trust(String),
    /// An export layout that cannot be used (a manifest, an origin that
    /// cannot be a directory).
    #[error("{0}")]
    Layout(String),
}
