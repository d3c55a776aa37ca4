//! Generates the tonic service code of `proto/gongkai/v1/node.proto` with the
//! pure-Rust `protox` front end (no `protoc` needed). The event messages it
//! imports are core's own prost types (`gongkai_core::event::pb`), mapped
//! with `extern_path`, so there is one Rust type per protobuf message.

use std::path::PathBuf;

/// Messages and enums of `event.proto`, which live in gongkai-core.
const CORE_TYPES: &[&str] = &[
    "EventBody",
    "Genesis",
    "Matter",
    "MatterDefined",
    "MatterChanged",
    "MatterRetired",
    "ContentRef",
    "ItemRef",
    "Published",
    "Amended",
    "Withdrawn",
    "Redacted",
    "RequestReceived",
    "RequestClarification",
    "ThirdPartyConsultation",
    "RequestExtended",
    "RequestAnswered",
    "KeyRotated",
    "Audience",
    "DisclosureMode",
    "Periodicity",
    "Relation",
    "ClarificationStage",
    "ConsultationStage",
    "Decision",
    "ReportRow",
    "ApplicantCategory",
    "Outcome",
    "ChallengeFiled",
    "ChallengeConcluded",
    "ChallengeProcedure",
    "ChallengeResult",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("gongkai/v1/node.proto"),
        root.join("gongkai/v1/event.proto"),
        root.join("gongkai/v1/county.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let descriptors = protox::compile([&files[0], &files[2]], [&root])?;
    let mut config = tonic_prost_build::configure();
    for t in CORE_TYPES {
        config = config.extern_path(
            format!(".gongkai.v1.{t}"),
            format!("::gongkai_core::event::pb::{t}"),
        );
    }
    config.compile_fds(descriptors)?;
    Ok(())
}
