//! Key files: a signing key in Go's `sumdb/note` private-key format
//! (`PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>`, see
//! [`gongkai_core::note::format_private_key`]), one line, mode 0600; beside
//! it `<path>.vkey` with the public verifier key, mode 0644.
//!
//! Like ssh, [`read_key`] refuses a key file that group or others can read.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{KeyType, VerifierKey, format_private_key, parse_private_key};
use gongkai_core::types::KeyName;

/// Mode of a private key file: owner read/write only.
pub const KEY_MODE: u32 = 0o600;
/// Mode of the public `.vkey` file.
pub const VKEY_MODE: u32 = 0o644;

/// Where the public key of the key file at `path` goes: `<path>.vkey`.
pub fn vkey_path(path: &Path) -> PathBuf {
    let mut p = OsString::from(path.as_os_str());
    p.push(".vkey");
    PathBuf::from(p)
}

/// Writes `key` to `path` (mode 0600) and its verifier key to `<path>.vkey`
/// (mode 0644), each fsynced, then fsyncs the directory. Without `force`,
/// an existing file is never overwritten. Returns the verifier key.
///
/// # Errors
/// I/O errors, with the path; an existing file without `force`.
pub fn write_key(
    path: &Path,
    name: &KeyName,
    key_type: KeyType,
    key: &SigningKey,
    force: bool,
) -> Result<VerifierKey> {
    let vkey = VerifierKey::new(name.clone(), key_type, key.public_key());
    let secret = format!("{}\n", format_private_key(name, key_type, key));
    write_file(path, secret.as_bytes(), KEY_MODE, force)?;
    write_file(
        &vkey_path(path),
        format!("{vkey}\n").as_bytes(),
        VKEY_MODE,
        force,
    )?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Make the new directory entries durable too.
    gongkai_store::sync_dir(dir)?;
    Ok(vkey)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; refusing to overwrite a key (use --force to replace it)",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("creating {}", path.display()))
        }
    })?;
    // `mode` only applies to new files; an overwritten one gets it here.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    // The new directory entry too.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    gongkai_store::sync_dir(dir)?;
    Ok(())
}

/// Reads and parses a key file written by [`write_key`] (or Go's note
/// tooling). Refuses a file readable or writable by group or others.
///
/// # Errors
/// I/O errors, a too-open mode, a malformed key.
pub fn read_key(path: &Path) -> Result<(KeyName, KeyType, SigningKey)> {
    let f = File::open(path).with_context(|| format!("opening key file {}", path.display()))?;
    let mode = f
        .metadata()
        .with_context(|| format!("reading key file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "key file {} is accessible by group or others (mode {:04o}); \
             a private key must be readable only by its owner: chmod 600 {}",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    let text = std::io::read_to_string(f)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    parse_private_key(line).with_context(|| format!("key file {}", path.display()))
}

/// Reads a verifier key (vkey) file: one vkey line.
///
/// # Errors
/// I/O errors and malformed keys.
pub fn read_vkey(path: &Path) -> Result<VerifierKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading verifier key {}", path.display()))?;
    VerifierKey::parse(text.trim()).with_context(|| format!("verifier key {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> KeyName {
        KeyName::new("gongkai.example/510122/finance").unwrap()
    }

    /// A vkey file holding a weak key (FORMAT.md § 5.1) is refused with a
    /// clear error: it can never become a trusted key.
    #[test]
    fn a_weak_verifier_key_file_is_refused() {
        use gongkai_core::keys::PublicKey;
        let dir = tempfile::tempdir().unwrap();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let path = dir.path().join("weak.vkey");
        let vkey = VerifierKey::new(name(), KeyType::Ed25519, PublicKey::from_bytes(identity));
        std::fs::write(&path, format!("{vkey}\n")).unwrap();
        let e = format!("{:#}", read_vkey(&path).unwrap_err());
        assert!(e.contains("not a strong Ed25519 key"), "{e}");
    }

    #[test]
    fn round_trip_with_0600_and_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("finance.key");
        let key = SigningKey::from_seed([9; 32]);
        let vkey = write_key(&path, &name(), KeyType::Ed25519, &key, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&vkey_path(&path)), 0o644);
        let (n, t, k) = read_key(&path).unwrap();
        assert_eq!((n, t, k.seed()), (name(), KeyType::Ed25519, key.seed()));
        assert_eq!(read_vkey(&vkey_path(&path)).unwrap(), vkey);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("PRIVATE+KEY+gongkai.example/510122/finance+")
        );
    }

    #[test]
    fn no_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.key");
        let k1 = SigningKey::from_seed([1; 32]);
        let k2 = SigningKey::from_seed([2; 32]);
        write_key(&path, &name(), KeyType::CosignatureV1, &k1, false).unwrap();
        let err = write_key(&path, &name(), KeyType::CosignatureV1, &k2, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(read_key(&path).unwrap().2.seed(), k1.seed());
        // With --force, even a too-open old file ends up 0600.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_key(&path, &name(), KeyType::CosignatureV1, &k2, true).unwrap();
        let (_, t, k) = read_key(&path).unwrap();
        assert_eq!((t, k.seed()), (KeyType::CosignatureV1, k2.seed()));
    }

    #[test]
    fn refuses_a_key_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("finance.key");
        write_key(
            &path,
            &name(),
            KeyType::Ed25519,
            &SigningKey::from_seed([3; 32]),
            false,
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", read_key(&path).unwrap_err());
        assert!(err.contains("mode 0644"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn go_private_key_file_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peter.skey");
        let vector = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../core/tests/vectors/go-note/peter.skey"
        );
        std::fs::copy(vector, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (n, t, k) = read_key(&path).unwrap();
        let vkey = VerifierKey::new(n, t, k.public_key());
        assert_eq!(
            vkey.to_string(),
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        );
    }
}
