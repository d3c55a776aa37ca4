//! `gongkai certs`: the county's TLS certificates, made with rcgen — a
//! county CA, server certificates for nodes and the aggregator, and client
//! certificates for a department node (pushing to the county) or a writer
//! system (writing to a node).
//!
//! A client certificate names who holds it in its Common Name, and what it
//! may do in URI SANs (`gongkai_node::identity`): when the name is a log
//! origin, `urn:gongkai:push:<origin>` (the aggregator accepts a push for
//! origin O only from a county-CA certificate naming O that way);
//! `--writes O` adds `urn:gongkai:write:O` (a writer system of O's node),
//! `--reads O` adds `urn:gongkai:read:O` (reads O's restricted content).
//! A certificate of the county CA without the name for an origin and role
//! may do nothing there. Private keys are written mode 0600, certificates 0644.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gongkai_node::identity::{PUSH_URI_PREFIX, READ_URI_PREFIX, WRITE_URI_PREFIX};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::keyfile::{KEY_MODE, write_file};

/// `gongkai certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create the county CA: DIR/ca.crt (give it to every node and client)
    /// and DIR/ca.key (mode 0600; keep it offline).
    Ca {
        /// Directory for ca.crt and ca.key.
        #[arg(long)]
        out: PathBuf,
        /// The CA's name.
        #[arg(long, default_value = "gongkai county CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// A server certificate (node or aggregator): PREFIX.crt and PREFIX.key.
    Server {
        /// The CA directory (ca.crt, ca.key).
        #[arg(long)]
        ca: PathBuf,
        /// Host names and IP addresses clients connect to (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Output prefix.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// A client certificate: for a department node pushing to the county
    /// (--name is its origin), a writer system (--writes ORIGIN) or a reader
    /// of restricted content (--reads ORIGIN).
    Client {
        /// The CA directory (ca.crt, ca.key).
        #[arg(long)]
        ca: PathBuf,
        /// The holder: a department origin (a push certificate), or a
        /// writer's or reader's name.
        #[arg(long)]
        name: String,
        /// May write to this origin's node (repeatable).
        #[arg(long, value_name = "ORIGIN", value_parser = parse_origin)]
        writes: Vec<String>,
        /// May read this origin's restricted content (repeatable).
        #[arg(long, value_name = "ORIGIN", value_parser = parse_origin)]
        reads: Vec<String>,
        /// Output prefix.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `gongkai certs`; returns the files written.
///
/// # Errors
/// Bad arguments, a missing or unreadable CA, I/O errors.
pub fn run(args: &CertsArgs) -> Result<Vec<PathBuf>> {
    match &args.command {
        CertsCommand::Ca {
            out,
            name,
            days,
            force,
        } => {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.distinguished_name = dn(name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            validity(&mut params, *days);
            let key = KeyPair::generate()?;
            let cert = params.self_signed(&key)?;
            let (crt, k) = (out.join("ca.crt"), out.join("ca.key"));
            write_file(&k, key.serialize_pem().as_bytes(), KEY_MODE, *force)?;
            write_file(&crt, cert.pem().as_bytes(), 0o644, *force)?;
            Ok(vec![crt, k])
        }
        CertsCommand::Server {
            ca,
            hosts,
            out,
            days,
            force,
        } => {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            for h in hosts {
                params.subject_alt_names.push(match h.parse() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) if is_host_name(h) => SanType::DnsName(
                        h.clone()
                            .try_into()
                            .with_context(|| format!("--host {h}: not a host name"))?,
                    ),
                    Err(_) => bail!("--host {h}: not a host name or IP address"),
                });
            }
            params.distinguished_name = dn(&hosts[0]);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            leaf(ca, params, *days, out, *force)
        }
        CertsCommand::Client {
            ca,
            name,
            writes,
            reads,
            out,
            days,
            force,
        } => {
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                bail!("--name: 1 to 128 printable characters");
            }
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = dn(name);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            // A department node's certificate names the one origin it may
            // push to the county (docs/OPERATIONS.md, push certificates).
            let mut uris = Vec::new();
            if gongkai_core::types::Origin::new(name).is_ok() {
                uris.push(format!("{PUSH_URI_PREFIX}{name}"));
            }
            uris.extend(writes.iter().map(|o| format!("{WRITE_URI_PREFIX}{o}")));
            uris.extend(reads.iter().map(|o| format!("{READ_URI_PREFIX}{o}")));
            for uri in uris {
                params.subject_alt_names.push(SanType::URI(
                    uri.clone()
                        .try_into()
                        .with_context(|| format!("{uri}: not usable in a certificate"))?,
                ));
            }
            leaf(ca, params, *days, out, *force)
        }
    }
}

fn parse_origin(s: &str) -> Result<String, String> {
    gongkai_core::types::Origin::new(s)
        .map(|o| o.to_string())
        .map_err(|e| e.to_string())
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

fn leaf(
    ca: &Path,
    mut params: CertificateParams,
    days: u32,
    out: &Path,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let read = |f: &str| {
        let p = ca.join(f);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let ca_key = KeyPair::from_pem(&read("ca.key")?).context("ca.key: not a PEM private key")?;
    let issuer = Issuer::from_ca_cert_pem(&read("ca.crt")?, ca_key)
        .context("ca.crt: not a PEM CA certificate")?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let crt = PathBuf::from(format!("{}.crt", out.display()));
    let k = PathBuf::from(format!("{}.key", out.display()));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_file(&k, key.serialize_pem().as_bytes(), KEY_MODE, force)?;
    write_file(&crt, cert.pem().as_bytes(), 0o644, force)?;
    Ok(vec![crt, k])
}
