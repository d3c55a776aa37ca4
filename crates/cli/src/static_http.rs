//! Reading a log as static files over HTTP(S) (FORMAT.md § 9.4): a county
//! portal, a CDN in front of it, or any web server or bucket holding the
//! same paths — no gRPC. `verify --url` and `monitor --url` read through
//! [`StaticLog`], the same one check as over gRPC.
//!
//! Nothing read is trusted: tiles, bundles and documents are checked
//! against the signed checkpoint by `gongkai-verify`. HTTPS uses the
//! machine's CA bundle (`SSL_CERT_FILE`, else Debian's
//! `/etc/ssl/certs/ca-certificates.crt`) or `--ca`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use gongkai_core::Hash;
use gongkai_core::note::MAX_NOTE_SIZE;
use gongkai_core::tile::{BundleId, TileId};
use gongkai_core::types::Origin;
use gongkai_verify::content::ContentUse;
use gongkai_verify::source::{Fetched, LogSource, SourceError};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// One request's time limit.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest entry (FORMAT.md § 5: a u16 length).
const MAX_ENTRY: usize = 65_535;

/// Entry bundles requested ahead of the one the check asks for: the check
/// walks them in order, and one request at a time would leave a reader of
/// a distant bucket or CDN waiting on round trips.
const READ_AHEAD: u64 = 16;

/// Where a log's static files are: `log` is the URL of its directory
/// (`…/logs/<slug>`), `content` the URL under which its documents are
/// (`…/content/<slug>`), if any.
#[derive(Clone, Debug)]
pub struct Site {
    http: Http,
    base: String,
    content_base: Option<String>,
}

impl Site {
    /// A site at `base` (the portal's address, or a bucket's), documents
    /// under `content_base` (the portal's download address); `ca` as
    /// `--ca`.
    ///
    /// # Errors
    /// A URL that is not http(s)://host[:port][/path]; an unreadable CA file.
    pub fn new(base: &str, content_base: Option<&str>, ca: Option<&Path>) -> Result<Site> {
        for u in std::iter::once(base).chain(content_base) {
            Target::parse(u)?;
        }
        Ok(Site {
            http: Http::new(ca)?,
            base: base.trim_end_matches('/').to_owned(),
            content_base: content_base.map(|c| c.trim_end_matches('/').to_owned()),
        })
    }

    /// `origin` read from this site; blocking methods: use it on a blocking
    /// thread.
    pub fn log(
        &self,
        origin: Origin,
        runtime: tokio::runtime::Handle,
        progress: indicatif::ProgressBar,
    ) -> StaticLog {
        let slug = origin.as_str().replace('/', "~");
        StaticLog {
            log: format!("{}/logs/{slug}", self.base),
            content: self
                .content_base
                .as_ref()
                .map(|c| format!("{c}/content/{slug}")),
            http: self.http.clone(),
            origin,
            runtime,
            progress,
            size: None,
            ahead: std::collections::BTreeMap::new(),
        }
    }
}

/// A log read from static files (see the module doc).
pub struct StaticLog {
    log: String,
    content: Option<String>,
    http: Http,
    origin: Origin,
    runtime: tokio::runtime::Handle,
    progress: indicatif::ProgressBar,
    /// The size of the checkpoint read (bounds the read-ahead).
    size: Option<u64>,
    /// Bundles requested ahead, by path.
    ahead: std::collections::BTreeMap<String, tokio::task::JoinHandle<Result<Answer>>>,
}

impl StaticLog {
    /// Starts requests for the `READ_AHEAD` files after index `index` of
    /// the tree of the checkpoint read: entry bundles, or level-0 hash
    /// tiles (one per bundle), the files the check asks for next.
    fn read_ahead(&mut self, index: u64, tiles: bool) {
        let Some(size) = self.size else { return };
        let full = size / 256;
        for next in index + 1..=index + READ_AHEAD {
            let width = if next < full {
                256
            } else if next == full && size % 256 != 0 {
                u16::try_from(size % 256).unwrap_or(256)
            } else {
                break;
            };
            let (path, max) = if tiles {
                let Ok(id) = TileId::new(0, next, width) else {
                    break;
                };
                (id.path(), usize::from(width) * 32)
            } else {
                let Ok(id) = BundleId::new(next, width) else {
                    break;
                };
                (id.path(), usize::from(width) * (2 + MAX_ENTRY))
            };
            if self.ahead.contains_key(&path) {
                continue;
            }
            let (http, url) = (self.http.clone(), format!("{}/{path}", self.log));
            let task = self.runtime.spawn(async move { http.get(&url, max).await });
            self.ahead.insert(path, task);
        }
    }

    /// A file requested ahead, or now.
    fn fetched(&mut self, path: &str, max: usize) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}/{path}", self.log);
        match self.ahead.remove(path) {
            Some(task) => {
                let a = self
                    .runtime
                    .block_on(task)
                    .map_err(|e| SourceError::Unavailable(format!("{url}: {e}")))?
                    .map_err(|e| SourceError::Unavailable(format!("{e:#}")))?;
                body(&url, a)
            }
            None => self.file(&url, max),
        }
    }

    fn get(&self, url: &str, max: usize) -> Result<Answer, SourceError> {
        self.runtime
            .block_on(self.http.get(url, max))
            .map_err(|e| SourceError::Unavailable(format!("{e:#}")))
    }

    /// A file of the log (see [`body`]).
    fn file(&self, url: &str, max: usize) -> Result<Vec<u8>, SourceError> {
        body(url, self.get(url, max)?)
    }
}

impl LogSource for StaticLog {
    fn origin(&self) -> &Origin {
        &self.origin
    }

    fn checkpoint(&mut self) -> Result<Vec<u8>, SourceError> {
        let note = self.file(&format!("{}/checkpoint", self.log), MAX_NOTE_SIZE)?;
        // Only to bound the read-ahead; the check parses and verifies it.
        self.size = std::str::from_utf8(&note)
            .ok()
            .and_then(|t| t.lines().nth(1))
            .and_then(|n| n.parse().ok());
        self.ahead.clear();
        Ok(note)
    }

    fn bundle(&mut self, id: &BundleId) -> Result<Vec<Vec<u8>>, SourceError> {
        let width = usize::from(id.width());
        let url = format!("{}/{}", self.log, id.path());
        self.read_ahead(id.index(), false);
        let bytes = self.fetched(&id.path(), width * (2 + MAX_ENTRY))?;
        let entries = gongkai_core::tile::decode_bundle(&bytes, width)
            .map_err(|e| SourceError::Malformed(format!("{url}: {e}")))?;
        self.progress.inc(entries.len() as u64);
        Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
    }

    fn tile(&mut self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        if id.level() == 0 {
            self.read_ahead(id.index(), true);
        }
        self.fetched(&id.path(), usize::from(id.width()) * 32)
            .map(Some)
    }

    fn content(&mut self, u: &ContentUse) -> Result<Fetched, SourceError> {
        let Some(base) = &self.content else {
            return Err(SourceError::Unavailable(
                "documents not checked: give --content-url (the portal's download address)".into(),
            ));
        };
        let url = format!("{base}/{}", u.digest.to_hex());
        let max = usize::try_from(u.length)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let a = self.get(&url, max)?;
        match a.status {
            200 if a.too_large => {
                return Err(SourceError::Malformed(format!(
                    "{url}: longer than the {} bytes committed",
                    u.length
                )));
            }
            200 => {}
            403 => return Ok(Fetched::Restricted),
            404 | 410 => return Ok(Fetched::NotFound(format!("{url}: HTTP {}", a.status))),
            s => return Err(SourceError::Unavailable(format!("{url}: HTTP {s}"))),
        }
        // The salt travels beside the document (FORMAT.md § 9.4); a wrong
        // one makes the digest check fail, as it must.
        let salt = a.salt.ok_or_else(|| {
            SourceError::Malformed(format!(
                "{url}: no X-Gongkai-Salt (or x-amz-meta-gongkai-salt)"
            ))
        })?;
        let mut blob = salt.to_vec();
        blob.extend_from_slice(&a.body);
        Ok(Fetched::Blob(blob))
    }

    fn consistency(&mut self, _old: u64, _new: u64) -> Result<Option<Vec<Hash>>, SourceError> {
        // Static files carry no proofs; the walk from the verified state
        // proves consistency entry by entry.
        Ok(None)
    }
}

/// The body of a 200, a 404 (or 410) as missing, anything else as
/// unavailable (an outage or a refusal proves nothing).
fn body(url: &str, a: Answer) -> Result<Vec<u8>, SourceError> {
    match a.status {
        200 if a.too_large => Err(SourceError::Malformed(format!(
            "{url}: larger than it can be"
        ))),
        200 => Ok(a.body),
        404 | 410 => Err(SourceError::Missing(format!("{url}: HTTP {}", a.status))),
        s => Err(SourceError::Unavailable(format!("{url}: HTTP {s}"))),
    }
}

/// One answer.
struct Answer {
    status: u16,
    salt: Option<[u8; 32]>,
    body: Vec<u8>,
    /// A 200 whose body was over the limit (not read).
    too_large: bool,
}

/// A minimal HTTP/1.1 GET client: one connection per request, a time
/// limit, a body limit, TLS by rustls.
#[derive(Clone)]
struct Http {
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

/// A parsed URL: TLS or not, host, port, path.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            bail!("{url:?}: not an http:// or https:// URL");
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        if authority.is_empty()
            || authority.contains('@')
            || !authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            bail!("{url:?}: not a host[:port]");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !authority.ends_with(']') => (
                h.to_owned(),
                p.parse().with_context(|| format!("{url:?}: port"))?,
            ),
            _ => (authority.to_owned(), if tls { 443 } else { 80 }),
        };
        Ok(Target {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

impl Http {
    fn new(ca: Option<&Path>) -> Result<Http> {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        let bundle = match ca {
            Some(p) => Some(p.to_path_buf()),
            None => std::env::var_os("SSL_CERT_FILE")
                .map(Into::into)
                .or_else(|| {
                    let debian = Path::new("/etc/ssl/certs/ca-certificates.crt");
                    debian.exists().then(|| debian.to_path_buf())
                }),
        };
        let Some(bundle) = bundle else {
            // No roots: plain HTTP still works; HTTPS says why it cannot.
            return Ok(Http { tls: None });
        };
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&bundle)
            .with_context(|| format!("read CA certificates {}", bundle.display()))?
        {
            let c = c.with_context(|| format!("CA certificates {}", bundle.display()))?;
            // One unusable root in a system bundle is skipped, not fatal.
            let _ = roots.add(c);
        }
        if roots.is_empty() {
            bail!("{}: no usable CA certificate", bundle.display());
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Http {
            tls: Some(Arc::new(config)),
        })
    }

    async fn get(&self, url: &str, max: usize) -> Result<Answer> {
        tokio::time::timeout(TIMEOUT, self.exchange(url, max))
            .await
            .map_err(|_| anyhow::anyhow!("{url}: no answer in {} s", TIMEOUT.as_secs()))?
    }

    async fn exchange(&self, url: &str, max: usize) -> Result<Answer> {
        let t = Target::parse(url)?;
        let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
            .await
            .with_context(|| format!("connect {}:{}", t.host, t.port))?;
        let _ = tcp.set_nodelay(true);
        if t.tls {
            let Some(config) = &self.tls else {
                bail!(
                    "{url}: no CA certificates to check the server with (give --ca, or set SSL_CERT_FILE)"
                );
            };
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(t.host.clone())
                .with_context(|| format!("{url}: server name"))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .with_context(|| format!("{url}: TLS"))?;
            request(TokioIo::new(stream), &t, url, max).await
        } else {
            request(TokioIo::new(tcp), &t, url, max).await
        }
    }
}

async fn request<S>(io: S, t: &Target, url: &str, max: usize) -> Result<Answer>
where
    S: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .with_context(|| url.to_owned())?;
    let driver = tokio::spawn(conn);
    // An IPv6 address keeps its brackets in the Host header.
    let name = if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    let host = if (t.tls && t.port == 443) || (!t.tls && t.port == 80) {
        name
    } else {
        format!("{name}:{}", t.port)
    };
    let req = hyper::Request::get(&t.path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "gongkai")
        .body(Empty::new())
        .with_context(|| url.to_owned())?;
    let res = sender
        .send_request(req)
        .await
        .with_context(|| url.to_owned())?;
    let status = res.status().as_u16();
    // The portal's header, or a bucket's user metadata (FORMAT.md § 9.4).
    let salt = ["x-gongkai-salt", "x-amz-meta-gongkai-salt"]
        .iter()
        .find_map(|h| res.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(v).ok()
        })
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
    // A body over the limit is an answer too: evidence against the source
    // (malformed), not an outage.
    let mut too_large = res
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64);
    let body = if status == 200 && !too_large {
        match Limited::new(res.into_body(), max).collect().await {
            Ok(b) => b.to_bytes().to_vec(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                too_large = true;
                Vec::new()
            }
            Err(e) => bail!("{url}: {e}"),
        }
    } else {
        Vec::new()
    };
    driver.abort();
    Ok(Answer {
        status,
        salt,
        body,
        too_large,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://cdn.example.gov.cn/county").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("cdn.example.gov.cn", 443, "/county")
        );
        let t = Target::parse("http://127.0.0.1:7480").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 7480, "/")
        );
        let t = Target::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        for bad in [
            "ftp://x",
            "http://",
            "http://user@host/",
            "http://a b/",
            "http://h:port/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
