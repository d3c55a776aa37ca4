//! The one error enum of gongkai-core.
//!
//! Variants carry identity (which index, which key, what was expected and
//! found), so a verifier can report exactly what broke and where.

use crate::Hash;

/// Everything that can go wrong when parsing, verifying or folding gongkai
/// data. Every variant that concerns a log position names its index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- basic values -------------------------------------------------
    /// A fixed-size value had the wrong length.
    #[error("{what}: expected {expected} bytes, found {found}")]
    InvalidLength {
        /// What was being parsed.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// Malformed hexadecimal.
    #[error("{what}: invalid hex")]
    InvalidHex {
        /// What was being parsed.
        what: &'static str,
    },
    /// Malformed standard base64.
    #[error("{what}: invalid base64")]
    InvalidBase64 {
        /// What was being parsed.
        what: &'static str,
    },
    /// An origin that breaks the origin rules of FORMAT.md.
    #[error("invalid origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The offending text (possibly shortened).
        origin: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A signed-note key name that breaks the C2SP rules.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The offending text (possibly shortened).
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An identifier (item, matter, request) that breaks FORMAT.md's rules.
    #[error("invalid {what} {id:?}: {reason}")]
    InvalidId {
        /// Item, matter or request id.
        what: &'static str,
        /// The offending text (possibly shortened).
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A calendar date that is not a valid `YYYY-MM-DD`.
    #[error("invalid date {text:?}: {reason}")]
    InvalidDate {
        /// The offending text (possibly shortened).
        text: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An Ed25519 public key that is not 32 bytes, or (at ingestion) not a
    /// canonical point encoding.
    #[error("invalid public key: {reason}")]
    InvalidPublicKey {
        /// Which rule it breaks.
        reason: &'static str,
    },

    // ---- the working-day calendar --------------------------------------
    /// The holiday table does not cover a year: the judgement cannot be
    /// made yet (never guessed); it appears once a table for the year is
    /// published.
    #[error("cannot judge yet: no holiday table for {year}")]
    CalendarYearNotCovered {
        /// The year that is missing.
        year: i32,
    },
    /// A published calendar table (a county log leaf, FORMAT.md § 14.4)
    /// is malformed.
    #[error("malformed calendar table: {0}")]
    MalformedCalendarTable(String),
    /// A published calendar table does not carry the next version of its
    /// year.
    #[error(
        "county leaf {county_index}: calendar table for {year} is version {found}, expected version {expected}"
    )]
    CalendarVersion {
        /// Index of the county leaf.
        county_index: u64,
        /// The year.
        year: i32,
        /// The version that must come next.
        expected: u32,
        /// The version the leaf carries.
        found: u32,
    },
    /// The shipped holiday table itself is malformed.
    #[error("holiday table line {line}: {reason}")]
    HolidayTable {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A period label of a periodic matter that is not `YYYY`, `YYYY-Hn`,
    /// `YYYY-Qn` or `YYYY-MM`.
    #[error("invalid period {label:?}: {reason}")]
    InvalidPeriod {
        /// The offending text (possibly shortened).
        label: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A request-lifecycle event the request clock's state does not allow
    /// (e.g. a second extension, an extension after the deadline in force,
    /// a correction that nobody asked for, an event dated before the
    /// previous one).
    #[error("request clock: {event} on {date}: {reason}")]
    RequestClock {
        /// The event, e.g. `extended`, `consultation_ended`.
        event: &'static str,
        /// The date the event carries.
        date: crate::date::Date,
        /// Why it is refused.
        reason: &'static str,
    },

    // ---- Merkle tree and proofs ----------------------------------------
    /// A leaf index outside the tree.
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Requested index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("consistency from size {old} to smaller size {new}")]
    SizeDecreased {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
    /// A proof with the wrong number of hashes for its sizes.
    #[error("{what} proof has {found} hashes, expected {expected}")]
    ProofLength {
        /// Inclusion or consistency.
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Count found.
        found: usize,
    },
    /// A proof that does not lead to the expected root.
    #[error("{what} proof does not match: computed {computed}, expected {expected}")]
    ProofMismatch {
        /// Inclusion or consistency.
        what: &'static str,
        /// The root the proof computes.
        computed: Hash,
        /// The root it should have led to.
        expected: Hash,
    },
    /// A non-empty consistency proof between equal sizes, or a bad empty one.
    #[error("malformed {what} proof: {reason}")]
    ProofMalformed {
        /// Inclusion or consistency.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The hash store could not produce a hash the proof needs.
    #[error("hash store: {0}")]
    HashStore(String),
    /// Malformed tile path or tile contents.
    #[error("tile: {0}")]
    Tile(String),
    /// A compact tree state whose peak count is not `popcount(size)`.
    #[error("tree state of size {size} needs {expected} peak hashes, found {found}")]
    TreeStatePeaks {
        /// Tree size.
        size: u64,
        /// Peaks a tree of that size has.
        expected: usize,
        /// Peaks found.
        found: usize,
    },
    /// An entry too long for the u16 length prefix of an entry bundle.
    #[error("entry {position} of a bundle is {len} bytes, over the 65535-byte limit")]
    BundleEntryTooLong {
        /// Position of the entry in the bundle.
        position: usize,
        /// Its length in bytes.
        len: usize,
    },

    // ---- evidence and the county log ----------------------------------
    /// An evidence file that is malformed or does not prove what it claims.
    #[error("evidence: {0}")]
    InvalidEvidence(String),
    /// A witness request or answer that is not well-formed (FORMAT.md § 21).
    #[error("witness protocol: {0}")]
    MalformedWitnessRequest(String),
    /// A county leaf that is malformed.
    #[error("county leaf: {0}")]
    MalformedCountyLeaf(String),

    // ---- signed notes, checkpoints, cosignatures -------------------------
    /// Text that is not a well-formed signed note.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A malformed verifier-key string.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A note text that is not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A known key's signature on a note does not verify.
    #[error("invalid signature by {name} ({id:08x}) on note")]
    NoteSignatureInvalid {
        /// Key name.
        name: String,
        /// Key id.
        id: u32,
    },
    /// No signature by any of the required keys (or not enough of them).
    #[error("note is signed by {found} of the required {required} trusted keys")]
    NoteQuorum {
        /// Trusted, valid signatures found.
        found: usize,
        /// Required.
        required: usize,
    },
    /// Fewer trusted witnesses cosigned a checkpoint than required.
    #[error("{required} of {of} witness cosignatures required, {present} present")]
    CosignatureQuorum {
        /// Required (k).
        required: usize,
        /// Trusted witnesses (n).
        of: usize,
        /// Valid cosignatures by distinct trusted witnesses.
        present: usize,
    },
    /// Signatures from two sources over different note texts cannot be
    /// merged.
    #[error("cannot merge signatures over different note texts")]
    NoteTextMismatch,
    /// A checkpoint for a different origin than expected.
    #[error("checkpoint origin {found:?}, expected {expected:?}")]
    CheckpointOrigin {
        /// Expected origin.
        expected: String,
        /// Origin found.
        found: String,
    },

    // ---- entries and event bodies --------------------------------------
    /// An entry that does not parse (framing, size, version).
    #[error("entry {index}: malformed: {reason}")]
    MalformedEntry {
        /// Leaf index (or the position in the input when unknown).
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A body whose bytes are not the canonical encoding of what it decodes to.
    #[error("entry {index}: body is not canonical protobuf")]
    NonCanonicalBody {
        /// Leaf index.
        index: u64,
    },
    /// A field that decodes but breaks a rule of FORMAT.md.
    #[error("entry {index}: field {field}: {reason}")]
    InvalidField {
        /// Leaf index.
        index: u64,
        /// Field path, e.g. `published.title`.
        field: &'static str,
        /// Which rule it breaks.
        reason: String,
    },
    /// The event signature does not verify under the key in force.
    #[error("entry {index}: signature does not verify under key {key}")]
    BadSignature {
        /// Leaf index.
        index: u64,
        /// Hex of the public key.
        key: String,
    },
    /// The body names a signer other than the key the chain authorizes.
    #[error("entry {index}: signed by {found}, but the key in force is {expected}")]
    WrongSigner {
        /// Leaf index.
        index: u64,
        /// Key in force (hex).
        expected: String,
        /// Key named by the body (hex).
        found: String,
    },
    /// A key rotation whose proof of possession does not verify.
    #[error("entry {index}: key rotation proof of possession is invalid")]
    BadRotationProof {
        /// Leaf index.
        index: u64,
    },
    /// The genesis key is not one of the keys the verifier trusts.
    #[error("entry 0: genesis key {key} is not a trusted key for {origin}")]
    UntrustedGenesisKey {
        /// Origin.
        origin: String,
        /// Hex of the key.
        key: String,
    },

    // ---- the hash chain -------------------------------------------------
    /// The chain is broken: a link does not match.
    #[error("entry {index}: chain broken: {field} expected {expected}, found {found}")]
    ChainBroken {
        /// Leaf index.
        index: u64,
        /// Which link: `index`, `origin`, `prev_hash`, `time_ms`, `kind`.
        field: &'static str,
        /// Expected value.
        expected: String,
        /// Value found.
        found: String,
    },
    /// A checkpoint for a different tree size than the entries verified.
    #[error("checkpoint is for size {checkpoint}, but {verified} entries were verified")]
    SizeMismatch {
        /// Entries verified.
        verified: u64,
        /// Size in the checkpoint.
        checkpoint: u64,
    },
    /// The computed Merkle root differs from the checkpoint's.
    #[error("tree of size {size}: computed root {computed}, checkpoint says {expected}")]
    RootMismatch {
        /// Tree size.
        size: u64,
        /// Root computed from the entries.
        computed: Hash,
        /// Root in the checkpoint.
        expected: Hash,
    },

    /// A proof bundle that is malformed or does not prove what it claims.
    #[error("proof bundle: {0}")]
    ProofBundle(String),

    // ---- catalog rules ---------------------------------------------------
    /// An event that breaks a rule of the catalog state machine.
    #[error("entry {index}: rule {rule}: {detail}")]
    RuleViolation {
        /// Leaf index.
        index: u64,
        /// Short stable name of the rule, e.g. `item-id-unique`.
        rule: &'static str,
        /// What happened.
        detail: String,
    },
}

impl Error {
    /// The log index this error concerns, if any.
    pub fn index(&self) -> Option<u64> {
        match self {
            Error::MalformedEntry { index, .. }
            | Error::NonCanonicalBody { index }
            | Error::InvalidField { index, .. }
            | Error::BadSignature { index, .. }
            | Error::WrongSigner { index, .. }
            | Error::BadRotationProof { index }
            | Error::ChainBroken { index, .. }
            | Error::RuleViolation { index, .. } => Some(*index),
            Error::UntrustedGenesisKey { .. } => Some(0),
            _ => None,
        }
    }
}
