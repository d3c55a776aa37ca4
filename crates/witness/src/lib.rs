//! # gongkai-witness
//!
//! An independent witness for gongkai logs (FORMAT.md § 21): the
//! discipline inspection office, a higher-level government, a university or
//! a newspaper runs it on its own machine with its own key. It is
//! configured with the logs it witnesses and their keys (a trust file,
//! FORMAT.md § 16.4) and keeps, per log, only the newest checkpoint it
//! cosigned. It cosigns a checkpoint only when it is signed by the log and
//! a consistency proof shows it extends that one; the check and the new
//! state are persisted together (`fsync`) before the cosignature leaves.
//! It never cosigns two roots for one size nor a smaller size.
//!
//! * [`store`]: the persisted state, one file per log, and the start-up
//!   re-synchronisation that keeps a witness restored from an old backup
//!   from cosigning a fork;
//! * [`server`]: the HTTP service (`POST /add-checkpoint`,
//!   `GET /checkpoint/<slug>`, `GET /` status);
//! * [`client`]: what the county (and `monitor`) use to talk to witnesses.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod server;
pub mod store;

/// The witness's one error type.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// A bad configuration or trust file.
    #[error("configuration: {0}")]
    Config(String),
    /// The state directory cannot be read or written.
    #[error("state: {0}")]
    State(String),
    /// An exchange over the network failed.
    #[error("network: {0}")]
    Network(String),
    /// A peer answered something that does not verify.
    #[error("protocol: {0}")]
    Protocol(String),
}
