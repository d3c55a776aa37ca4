//! The node's configuration file (TOML).
//!
//! ```toml
//! origin = "gongkai.example/510122/finance"
//! department = "某某县财政局"
//! division_code = "510122"
//! data_dir = "/var/lib/gongkai/finance"
//! key = "/etc/gongkai/finance.key"
//! listen = "0.0.0.0:7401"
//! plaintext = false          # TLS unless explicitly turned off
//!
//! [tls]
//! cert = "/etc/gongkai/tls/node.crt"
//! key = "/etc/gongkai/tls/node.key"
//! client_ca = "/etc/gongkai/tls/county-ca.crt"   # optional: writers by client certificate
//!
//! [[writers]]
//! name = "clerk"
//! token_sha256 = "…64 hex digits…"   # SHA-256 of the bearer token, never the token
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Everything a department node needs to run. Unknown keys are refused, so
/// a typo in the file is an error rather than a silently ignored setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The log's origin, e.g. `gongkai.example/510122/finance`.
    pub origin: String,
    /// The department's display name, written into the Genesis event when
    /// the log is created.
    pub department: String,
    /// Six-digit administrative division code of the county.
    pub division_code: String,
    /// Directory of the journal, the projections and the content store.
    pub data_dir: PathBuf,
    /// The department's private key file (0600; `gongkai keygen`). The file
    /// `<key>.state` beside it remembers the largest checkpoint signed, so a
    /// data dir restored from an old backup is refused.
    pub key: PathBuf,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve plaintext gRPC. Only for loopback demos and tests; the default
    /// is TLS, which needs `[tls]`.
    #[serde(default)]
    pub plaintext: bool,
    /// TLS settings (required unless `plaintext = true`).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Who may write.
    #[serde(default)]
    pub writers: Vec<WriterConfig>,
    /// Limits on what clients may send.
    #[serde(default)]
    pub limits: Limits,
    /// Milliseconds between checkpoint signings when the log grew.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// Bytes of free space the node keeps in reserve on the data disk; writes
    /// are refused (RESOURCE_EXHAUSTED) below it.
    #[serde(default = "default_free_space_reserve")]
    pub free_space_reserve: u64,
    /// Milliseconds an uploaded document no entry refers to is kept before
    /// it is removed (default 7 days: time to publish what was uploaded).
    #[serde(default = "default_upload_grace_ms")]
    pub upload_grace_ms: u64,
    /// Bytes of memory sled may use for its page cache. The default keeps a
    /// node with a million entries near 130 MiB resident; proofs read the
    /// rest through the operating system's page cache.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
    /// Replication to the county aggregator (optional).
    #[serde(default)]
    pub county: Option<CountyLinkConfig>,
}

/// Where and how the node replicates its log to the county aggregator.
///
/// ```toml
/// [county]
/// address = "https://county.example:7500"
/// ca = "/etc/gongkai/tls/county-ca.crt"         # the county's server CA
/// client_cert = "/etc/gongkai/tls/finance-push.crt"  # URI SAN urn:gongkai:push:<origin>
/// client_key = "/etc/gongkai/tls/finance-push.key"
/// # token_file = "/etc/gongkai/county-push.token"   # instead of a certificate (plaintext tests)
/// # witness_vkey = "county.example/witness+…"       # check the county's cosignatures
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountyLinkConfig {
    /// The aggregator's address, `https://host:port` (or `http://` for
    /// plaintext loopback tests).
    pub address: String,
    /// PEM CA of the aggregator's server certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate issued by the county CA.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Its private key.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// A file holding the push token (instead of a client certificate).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The county's cosigning vkey; when set, cosignatures are checked
    /// before the node serves them.
    #[serde(default)]
    pub witness_vkey: Option<String>,
    /// Or the file holding it (the county's `.vkey` file); read when the
    /// config is loaded.
    #[serde(default)]
    pub witness_vkey_file: Option<PathBuf>,
    /// Milliseconds between replication rounds when nothing happens (a
    /// heartbeat; new entries start a round at once).
    #[serde(default = "default_replicate_interval_ms")]
    pub interval_ms: u64,
    /// First retry delay after an error, milliseconds (doubles, with
    /// jitter, up to `max_backoff_ms`).
    #[serde(default = "default_min_backoff_ms")]
    pub min_backoff_ms: u64,
    /// Largest retry delay, milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

fn default_replicate_interval_ms() -> u64 {
    2_000
}
fn default_min_backoff_ms() -> u64 {
    200
}
fn default_max_backoff_ms() -> u64 {
    30_000
}

/// TLS for the node's gRPC server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA whose client certificates may write (mutual TLS). Optional.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// A writer credential.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// A name for logs.
    pub name: String,
    /// Lowercase hex SHA-256 of the bearer token (`gongkai token` makes one).
    pub token_sha256: String,
}

/// Limits on client input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest gRPC message the server decodes, bytes.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Largest document accepted by UploadContent, bytes.
    #[serde(default = "default_max_content")]
    pub max_content_bytes: u64,
    /// Most events in one AppendBatch.
    #[serde(default = "default_max_batch")]
    pub max_batch_events: usize,
    /// Most concurrent streams per connection.
    #[serde(default = "default_max_streams")]
    pub max_concurrent_streams: u32,
    /// Largest page of entries or items returned.
    #[serde(default = "default_page")]
    pub max_page: u32,
    /// Most connections open at once; more wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    gongkai_proto::guard::MAX_CONNECTIONS
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_bytes: default_max_message(),
            max_content_bytes: default_max_content(),
            max_batch_events: default_max_batch(),
            max_concurrent_streams: default_max_streams(),
            max_page: default_page(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7401))
}
fn default_checkpoint_interval_ms() -> u64 {
    500
}
fn default_upload_grace_ms() -> u64 {
    7 * 24 * 3_600_000
}
fn default_free_space_reserve() -> u64 {
    64 << 20
}
fn default_cache_bytes() -> u64 {
    48 << 20
}
fn default_max_message() -> usize {
    4 << 20
}
fn default_max_content() -> u64 {
    64 << 20
}
fn default_max_batch() -> usize {
    1000
}
fn default_max_streams() -> u32 {
    256
}
fn default_page() -> u32 {
    1000
}

impl NodeConfig {
    /// Parses a TOML config.
    ///
    /// # Errors
    /// A message naming the bad key or value.
    pub fn from_toml(text: &str) -> Result<NodeConfig, String> {
        let mut config: NodeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(county) = &mut config.county
            && let Some(f) = &county.witness_vkey_file
        {
            if county.witness_vkey.is_some() {
                return Err("county: give witness_vkey or witness_vkey_file, not both".into());
            }
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("county.witness_vkey_file {}: {e}", f.display()))?;
            county.witness_vkey = Some(text.trim().to_owned());
        }
        config.check()?;
        Ok(config)
    }

    /// Checks values serde cannot.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn check(&self) -> Result<(), String> {
        gongkai_core::types::Origin::new(&self.origin).map_err(|e| format!("origin: {e}"))?;
        if self.division_code.len() != 6 || !self.division_code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("division_code: must be six digits".into());
        }
        if self.department.trim().is_empty() {
            return Err("department: required".into());
        }
        if !self.plaintext && self.tls.is_none() {
            return Err(
                "no [tls] section: configure TLS, or set plaintext = true explicitly".into(),
            );
        }
        for w in &self.writers {
            let ok = w.token_sha256.len() == 64
                && w.token_sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !ok {
                return Err(format!(
                    "writers.{}: token_sha256 must be 64 lowercase hex digits",
                    w.name
                ));
            }
        }
        if let Some(c) = &self.county {
            if !(c.address.starts_with("https://") || c.address.starts_with("http://")) {
                return Err("county.address: must start with https:// or http://".into());
            }
            if c.client_cert.is_some() != c.client_key.is_some() {
                return Err("county: client_cert and client_key go together".into());
            }
            if c.interval_ms == 0 || c.min_backoff_ms == 0 || c.max_backoff_ms < c.min_backoff_ms {
                return Err(
                    "county: intervals must be positive and max_backoff_ms >= min_backoff_ms"
                        .into(),
                );
            }
        }
        if self.checkpoint_interval_ms == 0 {
            return Err("checkpoint_interval_ms: must be at least 1".into());
        }
        Ok(())
    }
}
