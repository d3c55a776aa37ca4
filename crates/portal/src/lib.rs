//! # gongkai-portal
//!
//! The public disclosure portal that the county aggregator serves over HTTP:
//! server-rendered pages (Chinese first, English with `?lang=en`), a JSON
//! read API, the logs as tlog-tiles-style static files, and the in-browser
//! verifier (`assets/verify.mjs`), a second implementation of
//! `docs/FORMAT.md` in JavaScript on the noble libraries.
//!
//! What the browser check proves, and what it does not: it verifies the
//! entries, their links and their inclusion in a checkpoint signed by the
//! department and cosigned by the county, against keys whose fingerprints
//! the page shows so a reader can compare them with keys published
//! elsewhere. It protects against tampered caches, mirrors and tiles — not
//! against a malicious portal that serves both the script and the keys.
//!
//! The portal reads through the [`Source`] trait (the aggregator's mirrors
//! and county state); it never writes.

#![forbid(unsafe_code)]

pub mod annual;
pub mod assets;
mod feed;
mod i18n;
mod limit;
mod metrics;
pub mod model;
pub mod publish;
mod slow;
mod web;

pub use i18n::Lang;
pub use model::{
    CountyInfo, CountyLogRead, DepartmentInfo, EvidenceInfo, LogRead, ModelError, Source,
    WitnessInfo, WitnessLog,
};
pub use web::{
    BucketRedirect, Office, PAGE_CSP, PortalConfig, ServeLimits, client_ip, content_router, router,
    serve, serve_with,
};
