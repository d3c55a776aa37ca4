//! # gongkai-node
//!
//! The department node: it sequences, signs and durably appends disclosure
//! events to its log, keeps the derived state (tree hashes, catalog,
//! checkpoints) and serves the `DisclosureNode` gRPC API of
//! `proto/gongkai/v1/node.proto`.
//!
//! * [`config`]: the TOML configuration;
//! * [`log`]: the append path (validate → sequence → sign → journal with
//!   group commit → project → acknowledge), recovery at start, checkpoints;
//! * [`view`]: the read side of a log ([`view::LogView`]) and the read RPCs
//!   over any [`view::LogSource`], shared with the county's mirrors;
//! * [`service`]: the gRPC service, writer authentication, limits;
//! * [`replicator`]: replication to the county aggregator;
//! * [`run`]: the server, with graceful shutdown.
//!
//! Formats and verification are `gongkai-core`'s; storage is
//! `gongkai-store`'s. See docs/FORMAT.md and DESIGN.md § Services.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod config;
pub mod identity;
mod keys;
pub mod log;
pub mod replicator;
mod server;
pub mod service;
pub mod view;
pub mod working;

pub use server::{CheckReport, check, init, open_options, run, run_when_ready, verify_read_only};

/// Errors of the node. One place ([`From<NodeError> for tonic::Status`])
/// turns them into gRPC statuses; internal details are logged, not echoed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// The request decodes but is invalid (INVALID_ARGUMENT).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A state-machine or precondition rule refused it (FAILED_PRECONDITION).
    #[error("rule {rule}: {detail}")]
    Precondition {
        /// Stable rule name (FORMAT.md § 7 or a node rule).
        rule: &'static str,
        /// What happened.
        detail: String,
    },
    /// Not found (NOT_FOUND).
    #[error("not found: {0}")]
    NotFound(String),
    /// A limit or the disk reserve was hit (RESOURCE_EXHAUSTED).
    #[error("resource exhausted: {0}")]
    Exhausted(String),
    /// The node cannot take writes now (UNAVAILABLE).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Storage failed (INTERNAL; details logged).
    #[error("storage: {0}")]
    Storage(String),
    /// The node cannot start or continue (refuses to start).
    #[error("{0}")]
    Fatal(String),
    /// The node stopped after a storage failure; a restart reloads from
    /// disk (the process exits with a code the supervisor restarts on).
    #[error("{0}")]
    Restart(String),
}

impl From<NodeError> for tonic::Status {
    fn from(e: NodeError) -> tonic::Status {
        match e {
            NodeError::Invalid(m) => tonic::Status::invalid_argument(m),
            NodeError::Precondition { rule, detail } => {
                tonic::Status::failed_precondition(format!("{detail} (rule {rule})"))
            }
            NodeError::NotFound(m) => tonic::Status::not_found(m),
            NodeError::Exhausted(m) => tonic::Status::resource_exhausted(m),
            NodeError::Unavailable(m) => tonic::Status::unavailable(m),
            NodeError::Storage(m) | NodeError::Fatal(m) | NodeError::Restart(m) => {
                tracing::error!(error = %m, "internal error");
                tonic::Status::internal("internal storage error (see the node's log)")
            }
        }
    }
}
