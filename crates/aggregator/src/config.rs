//! The aggregator's configuration file (TOML; unknown keys are refused).
//!
//! ```toml
//! origin = "gongkai.example/510122/county"     # the county log's origin
//! log_key = "/etc/gongkai/county-log.key"      # signs county checkpoints (name = origin)
//! witness_key = "/etc/gongkai/county-witness.key"  # cosigns department checkpoints
//! data_dir = "/var/lib/gongkai/county"
//! listen = "0.0.0.0:7500"
//! admin_token_sha256 = "…"                     # `gongkai county evidence clear`
//!
//! [tls]
//! cert = "/etc/gongkai/tls/county.crt"
//! key = "/etc/gongkai/tls/county.key"
//! client_ca = "/etc/gongkai/tls/county-ca.crt" # issues the nodes' client certificates
//!
//! [portal]                                    # the public portal (HTTP)
//! listen = "0.0.0.0:7580"
//! content_listen = "0.0.0.0:7581"              # downloads, a separate origin
//! content_base = "https://files.county.example"
//!
//! [publish]                                   # the logs as static files on S3 (optional)
//! endpoint = "https://oss.example.gov.cn"
//! bucket = "gongkai"
//! access_key_id = "…"
//! secret_access_key_file = "/etc/gongkai/county/s3.secret"
//! public_url = "https://cdn.example.gov.cn"   # the portal redirects what the bucket holds
//!
//! [portal.office]                             # footer and /guide; all optional
//! host = "某某县人民政府办公室"
//! phone = "0000-0000000"
//!
//! [[departments]]
//! origin = "gongkai.example/510122/finance"
//! vkey = "gongkai.example/510122/finance+1a2b3c4d+AU…"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use gongkai_core::note::{KeyType, VerifierKey};
use gongkai_core::types::Origin;
use serde::Deserialize;

/// Everything the county aggregator needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountyConfig {
    /// Origin of the county log (also the county log key's name).
    pub origin: String,
    /// Private key of the county log (0600).
    pub log_key: PathBuf,
    /// Private key that cosigns department checkpoints (0600). Its key name
    /// is the witness name in the `tlog-cosignature/v1` lines. A separate
    /// key from `log_key`.
    pub witness_key: PathBuf,
    /// Directory of the mirrors, the county state and the evidence files.
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve plaintext gRPC (loopback tests only; pushes then need tokens).
    #[serde(default)]
    pub plaintext: bool,
    /// TLS (required unless `plaintext = true`). With `client_ca`, nodes
    /// push with client certificates issued by that CA.
    #[serde(default)]
    pub tls: Option<gongkai_node::config::TlsConfig>,
    /// SHA-256 (hex) of the operator token for ClearEvidence.
    #[serde(default)]
    pub admin_token_sha256: Option<String>,
    /// Readers allowed to read restricted content from the mirrors.
    #[serde(default)]
    pub readers: Vec<gongkai_node::config::WriterConfig>,
    /// Bytes of free space the county keeps on its data disk: a document
    /// push that would leave less is refused (RESOURCE_EXHAUSTED), so the
    /// county state and the mirrors' journals always have room.
    #[serde(default = "default_free_space_reserve")]
    pub free_space_reserve: u64,
    /// gRPC connections open at once at most; more wait in the kernel's
    /// backlog until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The departments whose logs the county mirrors. Any other origin is
    /// refused.
    #[serde(default)]
    pub departments: Vec<DepartmentConfig>,
    /// Milliseconds between county-log rounds (a round's leaf holds every
    /// department that advanced since the last round; several leaves when
    /// they do not fit one).
    #[serde(default = "default_county_interval_ms")]
    pub county_interval_ms: u64,
    /// Re-cosign an unchanged checkpoint when the last cosignature is older
    /// than this (freshness), milliseconds.
    #[serde(default = "default_recosign_interval_ms")]
    pub recosign_interval_ms: u64,
    /// Alert (error log, status flag) when a department has not pushed for
    /// this long, milliseconds.
    #[serde(default = "default_alert_no_push_ms")]
    pub alert_no_push_ms: u64,
    /// Alert when a department's log has not advanced for this long.
    #[serde(default = "default_alert_no_advance_ms")]
    pub alert_no_advance_ms: u64,
    /// Bytes of staged (verified, not yet checkpointed) entries per origin;
    /// a push beyond gets RESOURCE_EXHAUSTED.
    #[serde(default = "default_max_staged_bytes")]
    pub max_staged_bytes: u64,
    /// Largest gRPC message decoded.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Largest document accepted by PushContent.
    #[serde(default = "default_max_content")]
    pub max_content_bytes: u64,
    /// Largest page of entries or items.
    #[serde(default = "default_page")]
    pub max_page: u32,
    /// sled cache of the county database, bytes; the database of the
    /// mirrors' projections (one for all of them) has as much again.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
    /// Entries timed more than this far ahead of the county's clock are
    /// refused, milliseconds.
    #[serde(default = "default_max_future_ms")]
    pub max_future_ms: u64,
    /// The county's display name on the portal (default: the origin).
    #[serde(default)]
    pub name: Option<String>,
    /// Publish the logs to an S3-compatible bucket (absent: no bucket).
    #[serde(default)]
    pub publish: Option<gongkai_portal::publish::BucketConfig>,
    /// The public portal over HTTP (absent: no portal).
    #[serde(default)]
    pub portal: Option<PortalSettings>,
    /// Independent witnesses (FORMAT.md § 21) the county asks to cosign
    /// each department checkpoint it cosigns and each county checkpoint.
    #[serde(default)]
    pub witness: Vec<WitnessSettings>,
    /// How many of those witnesses' cosignatures the portal's in-browser
    /// verifier requires (default: all of them). Readers' trust files
    /// should require the same.
    #[serde(default)]
    pub witness_quorum: Option<usize>,
    /// How long a witness has to answer, milliseconds: a checkpoint is
    /// published with the cosignatures collected by then.
    #[serde(default = "default_witness_timeout_ms")]
    pub witness_timeout_ms: u64,
}

/// One independent witness.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSettings {
    /// Its display name (default: its key name), e.g. 纪委监委.
    #[serde(default)]
    pub name: Option<String>,
    /// Its base URL (`http://host:port`).
    pub url: String,
    /// Its verifier key (cosignature/v1, type 0x04).
    pub vkey: String,
}

impl WitnessSettings {
    /// The witness's verifier key, checked.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn verifier_key(&self) -> Result<VerifierKey, String> {
        let k = VerifierKey::parse(&self.vkey)
            .map_err(|e| format!("witness {}: vkey: {e}", self.url))?;
        if k.key_type() != KeyType::CosignatureV1 {
            return Err(format!(
                "witness {}: vkey is not a cosignature/v1 (0x04) witness key",
                self.url
            ));
        }
        Ok(k)
    }

    /// The name shown for it.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            VerifierKey::parse(&self.vkey)
                .map_or_else(|_| self.url.clone(), |k| k.name().to_string())
        })
    }
}

/// The public portal: pages, JSON API and tiles on one address, uploaded
/// documents on another (a separate browser origin).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// Pages, JSON API, tiles and the verifier script.
    pub listen: SocketAddr,
    /// Document downloads.
    pub content_listen: SocketAddr,
    /// The URL of `content_listen` as browsers reach it (default:
    /// `http://<content_listen>`).
    #[serde(default)]
    pub content_base: Option<String>,
    /// Public reads per second per client address (0: unlimited).
    #[serde(default = "default_rate")]
    pub rate_per_sec: u32,
    /// Burst allowance per client address.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Downloads served at once (more get 503 with Retry-After).
    #[serde(default = "default_max_downloads")]
    pub max_downloads: usize,
    /// Reverse proxies in front of the portal whose `X-Forwarded-For` is
    /// believed, by address. Empty (the default): the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The county's open-government office (`[portal.office]`): the
    /// footer of every page and the guide (政府信息公开指南).
    #[serde(default)]
    pub office: gongkai_portal::Office,
}

fn default_max_downloads() -> usize {
    64
}

fn default_rate() -> u32 {
    50
}
fn default_burst() -> u32 {
    200
}

/// A department the county mirrors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentConfig {
    /// The log's origin.
    pub origin: String,
    /// The department's verifier key (its genesis key), a vkey string.
    #[serde(default)]
    pub vkey: String,
    /// Or the file holding it (the `.vkey` file `gongkai keygen` wrote);
    /// read when the config is loaded.
    #[serde(default)]
    pub vkey_file: Option<PathBuf>,
    /// The node's address, for operators (informational).
    #[serde(default)]
    pub address: Option<String>,
    /// SHA-256 (hex) of a push token, for deployments without client
    /// certificates (plaintext loopback tests).
    #[serde(default)]
    pub push_token_sha256: Option<String>,
    /// Pushes per second this origin may make (a quota; 0 = unlimited).
    #[serde(default = "default_pushes_per_sec")]
    pub max_pushes_per_sec: u32,
    /// Total content bytes mirrored for this origin (0 = unlimited; the
    /// default, 64 GiB, keeps one department from filling the county's
    /// disk).
    #[serde(default = "default_content_quota")]
    pub max_content_total_bytes: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7500))
}
fn default_content_quota() -> u64 {
    64 << 30
}
fn default_max_connections() -> usize {
    gongkai_proto::guard::MAX_CONNECTIONS
}
fn default_free_space_reserve() -> u64 {
    256 << 20
}
fn default_witness_timeout_ms() -> u64 {
    5_000
}
fn default_county_interval_ms() -> u64 {
    60_000
}
fn default_recosign_interval_ms() -> u64 {
    300_000
}
fn default_alert_no_push_ms() -> u64 {
    3_600_000
}
fn default_alert_no_advance_ms() -> u64 {
    7 * 24 * 3_600_000
}
fn default_max_staged_bytes() -> u64 {
    64 << 20
}
fn default_max_message() -> usize {
    // One push at its largest: 256 entries of at most 65,535 bytes (each
    // with its protobuf framing) and a signed note of at most 1 MiB.
    256 * (gongkai_core::entry::MAX_ENTRY_LEN + 8) + gongkai_core::note::MAX_NOTE_SIZE + (64 << 10)
}
fn default_max_content() -> u64 {
    64 << 20
}
fn default_page() -> u32 {
    1000
}
fn default_cache_bytes() -> u64 {
    16 << 20
}
fn default_max_future_ms() -> u64 {
    5 * 60_000
}
fn default_pushes_per_sec() -> u32 {
    1000
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl CountyConfig {
    /// Parses a TOML config.
    ///
    /// # Errors
    /// A message naming the bad key or value.
    pub fn from_toml(text: &str) -> Result<CountyConfig, String> {
        let mut config = Self::parse_only(text)?;
        for d in &mut config.departments {
            match (&d.vkey_file, d.vkey.is_empty()) {
                (Some(f), true) => {
                    d.vkey = std::fs::read_to_string(f)
                        .map_err(|e| {
                            format!("departments.{}: vkey_file {}: {e}", d.origin, f.display())
                        })?
                        .trim()
                        .to_owned();
                }
                (Some(_), false) => {
                    return Err(format!(
                        "departments.{}: give vkey or vkey_file, not both",
                        d.origin
                    ));
                }
                (None, true) => return Err(format!("departments.{}: vkey is required", d.origin)),
                (None, false) => {}
            }
        }
        config.check()?;
        Ok(config)
    }

    fn parse_only(text: &str) -> Result<CountyConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn check(&self) -> Result<(), String> {
        Origin::new(&self.origin).map_err(|e| format!("origin: {e}"))?;
        if !self.plaintext && self.tls.is_none() {
            return Err(
                "no [tls] section: configure TLS, or set plaintext = true explicitly".into(),
            );
        }
        if let Some(t) = &self.admin_token_sha256
            && !is_hex64(t)
        {
            return Err("admin_token_sha256: must be 64 lowercase hex digits".into());
        }
        for r in &self.readers {
            if !is_hex64(&r.token_sha256) {
                return Err(format!(
                    "readers.{}: token_sha256 must be 64 lowercase hex digits",
                    r.name
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for d in &self.departments {
            d.verifier_key()?;
            if !seen.insert(d.origin.clone()) {
                return Err(format!("departments: {} is listed twice", d.origin));
            }
            if d.origin == self.origin {
                return Err(format!(
                    "departments: {} is the county's own origin",
                    d.origin
                ));
            }
            if let Some(t) = &d.push_token_sha256
                && !is_hex64(t)
            {
                return Err(format!(
                    "departments.{}: push_token_sha256 must be 64 lowercase hex digits",
                    d.origin
                ));
            }
        }
        let mut keys = std::collections::HashSet::new();
        for w in &self.witness {
            let k = w.verifier_key()?;
            if !w.url.starts_with("http://") {
                return Err(format!("witness {}: url must be http://host:port", w.url));
            }
            if !keys.insert(k.to_string()) {
                return Err(format!("witness {}: the same key is listed twice", w.url));
            }
        }
        if let Some(q) = self.witness_quorum
            && (q == 0 || q > self.witness.len())
        {
            return Err(format!(
                "witness_quorum: {q}, but {} witnesses are listed (1 to {} allowed)",
                self.witness.len(),
                self.witness.len()
            ));
        }
        for (name, v) in [
            ("witness_timeout_ms", self.witness_timeout_ms),
            ("county_interval_ms", self.county_interval_ms),
            ("recosign_interval_ms", self.recosign_interval_ms),
            ("max_staged_bytes", self.max_staged_bytes),
        ] {
            if v == 0 {
                return Err(format!("{name}: must be at least 1"));
            }
        }
        Ok(())
    }
}

impl DepartmentConfig {
    /// The department's origin and verifier key, checked: the vkey must be
    /// an Ed25519 (0x01) key named for the origin.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn verifier_key(&self) -> Result<(Origin, VerifierKey), String> {
        let origin = Origin::new(&self.origin).map_err(|e| format!("departments.origin: {e}"))?;
        let vkey = VerifierKey::parse(&self.vkey)
            .map_err(|e| format!("departments.{}: vkey: {e}", self.origin))?;
        if vkey.key_type() != KeyType::Ed25519 || vkey.name().as_str() != origin.as_str() {
            return Err(format!(
                "departments.{}: vkey must be an Ed25519 key named {}",
                self.origin, self.origin
            ));
        }
        Ok((origin, vkey))
    }
}
