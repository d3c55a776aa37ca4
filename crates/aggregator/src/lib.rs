//! # gongkai-aggregator
//!
//! The county aggregator (DESIGN.md § Services, docs/OPERATIONS.md):
//!
//! * [`mirror`]: one verified mirror per department, a data directory in
//!   the node's format (journal, projection, content) served through the
//!   node's [`gongkai_node::view::LogView`]; pushes are verified (framing,
//!   canonical bodies, chain links, catalog rules, signatures under the key
//!   the chain authorizes, the Merkle root against the department's signed
//!   checkpoint, consistency with the checkpoint the county last cosigned),
//!   staged (bounded) and committed atomically with the cosignature;
//! * [`state`]: the county's own sled database (per-origin cosigned state,
//!   evidence index, missing content, the county log);
//! * [`county_log`]: the county log, one round per interval holding the
//!   newest cosigned checkpoint of every department that advanced (one
//!   leaf, or several when they do not fit one);
//! * [`service`]: the `County` gRPC service and the read-only mirror of
//!   `DisclosureNode` for every department;
//! * [`witnessing`]: collecting independent witnesses' cosignatures for
//!   every department checkpoint the county cosigns and every county
//!   checkpoint, before they are served;
//! * [`run`]: the server.
//!
//! Formats and verification are `gongkai-core`'s (evidence, county leaves,
//! cosignatures); storage is `gongkai-store`'s.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod county_log;
pub mod mirror;
pub mod portal;
mod projector;
mod server;
pub mod service;
pub mod state;
pub mod witnessing;

pub use portal::PortalListeners;
pub use server::{Keys, run, run_with_portal};

/// Errors of the aggregator. One place ([`From<AggregatorError> for
/// tonic::Status`]) turns them into gRPC statuses.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AggregatorError {
    /// The request decodes but is invalid (INVALID_ARGUMENT): a tampered,
    /// malformed or misaligned push.
    #[error("invalid push: {0}")]
    Invalid(String),
    /// A precondition failed (FAILED_PRECONDITION): a stale checkpoint, a
    /// gap, a suspended department.
    #[error("{0}")]
    Precondition(String),
    /// Misbehaviour was proven and recorded (FAILED_PRECONDITION).
    #[error("evidence {id} recorded against {origin} ({kind}): cosigning is suspended")]
    Misbehaviour {
        /// Evidence id.
        id: String,
        /// Department.
        origin: String,
        /// Evidence kind.
        kind: &'static str,
    },
    /// A quota or bound was hit (RESOURCE_EXHAUSTED).
    #[error("resource exhausted: {0}")]
    Exhausted(String),
    /// Not allowed (PERMISSION_DENIED).
    #[error("{0}")]
    Denied(String),
    /// Not found (NOT_FOUND).
    #[error("not found: {0}")]
    NotFound(String),
    /// Storage failed (INTERNAL; details logged).
    #[error("storage: {0}")]
    Storage(String),
    /// The aggregator cannot start.
    #[error("{0}")]
    Fatal(String),
    /// The county stopped after a storage failure; a restart reloads from
    /// disk (the process exits with a code the supervisor restarts on).
    #[error("{0}")]
    Restart(String),
}

impl From<AggregatorError> for tonic::Status {
    fn from(e: AggregatorError) -> tonic::Status {
        match e {
            AggregatorError::Invalid(_) => tonic::Status::invalid_argument(e.to_string()),
            AggregatorError::Precondition(m) => tonic::Status::failed_precondition(m),
            AggregatorError::Misbehaviour { .. } => {
                tonic::Status::failed_precondition(e.to_string())
            }
            AggregatorError::Exhausted(_) => tonic::Status::resource_exhausted(e.to_string()),
            AggregatorError::Denied(m) => tonic::Status::permission_denied(m),
            AggregatorError::NotFound(m) => tonic::Status::not_found(m),
            AggregatorError::Storage(m)
            | AggregatorError::Fatal(m)
            | AggregatorError::Restart(m) => {
                tracing::error!(error = %m, "internal error");
                tonic::Status::internal("internal storage error (see the aggregator's log)")
            }
        }
    }
}

impl From<gongkai_store::StoreError> for AggregatorError {
    fn from(e: gongkai_store::StoreError) -> AggregatorError {
        match e {
            // The disk reserve: the sender may retry later; nothing changed.
            gongkai_store::StoreError::DiskFull { .. } => AggregatorError::Exhausted(e.to_string()),
            e => AggregatorError::Storage(e.to_string()),
        }
    }
}

impl From<sled::Error> for AggregatorError {
    fn from(e: sled::Error) -> AggregatorError {
        AggregatorError::Storage(format!("sled: {e}"))
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    gongkai_node::log::now_ms()
}
