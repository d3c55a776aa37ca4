//! Who a client certificate speaks for: URI subject alternative names that
//! bind it to one log origin and one role (docs/OPERATIONS.md § Client
//! certificates). Every certificate of the county CA verifies in the TLS
//! handshake; these names decide what it may do:
//!
//! | URI SAN | role |
//! |---|---|
//! | `urn:gongkai:write:<origin>` | a writer system of that department's node (also reads its restricted content) |
//! | `urn:gongkai:read:<origin>` | may read that node's restricted content (e.g. the inspection office) |
//! | `urn:gongkai:push:<origin>` | that department's node pushing to the county |
//!
//! A certificate without the name for the origin and role at hand is
//! refused, whatever CA signed it: finance's push certificate cannot write
//! to education's node, nor to finance's own.

/// URI SAN prefix of a writer certificate.
pub const WRITE_URI_PREFIX: &str = "urn:gongkai:write:";
/// URI SAN prefix of a reader-of-restricted-content certificate.
pub const READ_URI_PREFIX: &str = "urn:gongkai:read:";
/// URI SAN prefix of a department node's push certificate.
pub const PUSH_URI_PREFIX: &str = "urn:gongkai:push:";

/// The origins a DER certificate names under `prefix` (its URI SANs that
/// start with it). Empty for a certificate that does not parse or names
/// none.
pub fn cert_origins(der: &[u8], prefix: &str) -> Vec<String> {
    use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => u.strip_prefix(prefix).map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// Whether the peer's leaf certificate (the first of `certs`) names
/// `origin` under `prefix`.
pub fn names(certs: &[impl AsRef<[u8]>], prefix: &str, origin: &str) -> bool {
    certs.first().is_some_and(|leaf| {
        cert_origins(leaf.as_ref(), prefix)
            .iter()
            .any(|o| o == origin)
    })
}
