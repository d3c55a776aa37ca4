//! Talking to a node: connection options, credentials, idempotent retries,
//! and the mapping of gRPC statuses to one error line and an exit code.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use gongkai_core::types::Origin;
use gongkai_proto::DisclosureNodeClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

/// Default node address (the node's default gRPC port on this machine).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7401";

/// How many times a write is retried after UNAVAILABLE or DEADLINE_EXCEEDED.
pub const WRITE_RETRIES: u32 = 4;
/// First back-off delay; doubled after each retry (0.25 s, 0.5 s, 1 s, 2 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Exit code: the server refused the request (bad input, a rule of the
/// catalog, missing or wrong credentials, not found).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: usage error, bad local input, or a local I/O error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the server could not be reached (after retries for writes).
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: what the server sent does not verify (signature, proof,
/// content hash): do not trust this server's answer.
pub const EXIT_VERIFY: u8 = 4;
/// Exit code: a server stopped after a storage failure and must be
/// restarted (EX_TEMPFAIL; the systemd units restart on it, unlike 1 and
/// 2, which mean "fix the configuration or the data first").
pub const EXIT_RESTART: u8 = 75;

/// Options shared by every command that talks to a node.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Address of the department node (or the county aggregator, for reads).
    /// Use https://… for TLS.
    #[arg(long, global = true, env = "GONGKAI_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// Writer token given to you by the node's administrator; sent as
    /// `authorization: Bearer <token>` on writes only. Prefer the
    /// GONGKAI_TOKEN environment variable: command lines are visible to
    /// other users of the machine.
    #[arg(long, global = true, env = "GONGKAI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The log to read, e.g. gongkai.example/510122/finance. Required by
    /// every read (a node may serve, and the county aggregator does serve,
    /// several logs); writes go to the node's own log and ignore it.
    #[arg(long, global = true, env = "GONGKAI_ORIGIN", value_parser = parse_origin)]
    pub origin: Option<Origin>,

    /// PEM file with the CA certificate(s) that signed the server's TLS
    /// certificate (for https:// servers with a private CA).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// PEM client certificate, for nodes that authenticate writers by
    /// certificate (mutual TLS); needs --client-key.
    #[arg(long, global = true, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Parses an origin on the command line (a local check: typos never reach
/// the server).
pub fn parse_origin(s: &str) -> Result<Origin, String> {
    Origin::new(s).map_err(|e| e.to_string())
}

/// Errors that carry their own exit code. Anything else is a usage or
/// local I/O error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The server answered with a refusal.
    #[error("{0}")]
    Refused(String),
    /// The server could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// The server's answer does not verify.
    #[error("{0}")]
    Verify(String),
    /// A server stopped after a storage failure; restart it.
    #[error("{0}")]
    Restart(String),
}

impl Failure {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) => EXIT_REFUSED,
            Failure::Unreachable(_) => EXIT_UNREACHABLE,
            Failure::Verify(_) => EXIT_VERIFY,
            Failure::Restart(_) => EXIT_RESTART,
        }
    }
}

/// The exit code for a gRPC status code.
pub fn exit_code_for(code: Code) -> u8 {
    match code {
        Code::Unavailable | Code::DeadlineExceeded => EXIT_UNREACHABLE,
        _ => EXIT_REFUSED,
    }
}

/// Whether a write may be retried (with the same idempotency key).
pub fn retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded)
}

/// Turns a status from `server` into a one-line [`Failure`].
pub fn status_failure(server: &str, status: &Status) -> Failure {
    let msg = if status.message().is_empty() {
        status.code().description().to_owned()
    } else {
        status.message().to_owned()
    };
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => {
            Failure::Unreachable(format!("cannot reach the node at {server}: {msg}"))
        }
        Code::Unauthenticated => Failure::Refused(format!(
            "the node did not accept your credentials: {msg} (give a writer token with --token or GONGKAI_TOKEN)"
        )),
        Code::PermissionDenied => Failure::Refused(format!("not allowed: {msg}")),
        Code::Unimplemented => Failure::Refused(format!(
            "the server at {server} does not offer this call: {msg}"
        )),
        Code::Internal | Code::Unknown | Code::DataLoss => {
            Failure::Refused(format!("the node failed: {msg}"))
        }
        _ => Failure::Refused(msg),
    }
}

/// A connected client with the options it was made with.
#[derive(Debug, Clone)]
pub struct Node {
    client: DisclosureNodeClient<Channel>,
    /// The same connection, for servers that are a county aggregator.
    county: gongkai_proto::CountyClient<Channel>,
    server: String,
    token: Option<String>,
    origin: Option<Origin>,
}

/// Whether `server` is a plaintext address of another machine: a token
/// sent there crosses the network readable by anyone on the way.
pub fn plaintext_off_loopback(server: &str) -> bool {
    let Ok(uri) = server.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// Puts `token` in `req` as `authorization: Bearer <token>` for `server`,
/// warning once when that crosses the network in clear text.
///
/// # Errors
/// A token that is not a valid header value.
pub fn put_bearer<T>(req: &mut Request<T>, server: &str, token: &str) -> Result<()> {
    warn_plaintext_token(server);
    let value = format!("Bearer {token}")
        .parse()
        .context("the token contains characters not allowed in a header")?;
    req.metadata_mut().insert("authorization", value);
    Ok(())
}

/// Warns once per run when a token is about to go to `server` in clear
/// text off this machine.
pub fn warn_plaintext_token(server: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if plaintext_off_loopback(server) {
        ONCE.call_once(|| {
            eprintln!(
                "warning: sending a token in clear text to {server}: anyone on the network path can read it and write as you. Use the node's https:// address (and --ca), or a client certificate"
            );
        });
    }
}

impl Node {
    /// Prepares a connection (the TCP/TLS connection is made lazily on the
    /// first call, so an unreachable node shows up as UNAVAILABLE there).
    ///
    /// # Errors
    /// A malformed address or unreadable certificate files.
    pub fn connect(opts: &Connection) -> Result<Node> {
        let mut endpoint = Endpoint::from_shared(opts.server.clone())
            .with_context(|| format!("invalid --server address {:?}", opts.server))?
            .connect_timeout(Duration::from_secs(10));
        let https = opts.server.starts_with("https://");
        if https || opts.ca.is_some() || opts.client_cert.is_some() {
            if !https {
                anyhow::bail!(
                    "--ca and --client-cert need an https:// server address, not {}",
                    opts.server
                );
            }
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &opts.ca {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading CA certificate {}", ca.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            if let (Some(cert), Some(key)) = (&opts.client_cert, &opts.client_key) {
                let cert = std::fs::read(cert)
                    .with_context(|| format!("reading client certificate {}", cert.display()))?;
                let key = std::fs::read(key)
                    .with_context(|| format!("reading client key {}", key.display()))?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .context("setting up TLS for the node connection")?;
        }
        let channel = endpoint.connect_lazy();
        Ok(Node {
            county: gongkai_proto::CountyClient::new(channel.clone()),
            client: DisclosureNodeClient::new(channel),
            server: opts.server.clone(),
            token: opts.token.clone(),
            origin: opts.origin.clone(),
        })
    }

    /// The origin given with --origin, if any.
    pub fn origin_opt(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    /// The server address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The token given with --token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A client handle for one call.
    pub fn client(&self) -> DisclosureNodeClient<Channel> {
        self.client.clone()
    }

    /// A `County` client on the same connection (answers UNIMPLEMENTED
    /// when the server is a department node, not the county aggregator).
    pub fn county(&self) -> gongkai_proto::CountyClient<Channel> {
        self.county.clone()
    }

    /// The origin reads are about.
    ///
    /// # Errors
    /// When neither --origin nor GONGKAI_ORIGIN was given.
    pub fn origin(&self) -> Result<&Origin> {
        self.origin.as_ref().context(
            "which log? give the log's origin with --origin (or GONGKAI_ORIGIN), \
             e.g. --origin gongkai.example/510122/finance",
        )
    }

    /// A write request, carrying the writer token if there is one.
    ///
    /// # Errors
    /// A token that is not a valid header value.
    pub fn write_request<T>(&self, message: T) -> Result<Request<T>> {
        let mut req = Request::new(message);
        if let Some(token) = &self.token {
            put_bearer(&mut req, &self.server, token)?;
        }
        Ok(req)
    }

    /// Maps a status from this node to an error with the right exit code.
    pub fn fail(&self, status: &Status) -> anyhow::Error {
        status_failure(&self.server, status).into()
    }

    /// Runs `call` and retries it after UNAVAILABLE or DEADLINE_EXCEEDED
    /// with back-off, [`WRITE_RETRIES`] times. The caller builds the same
    /// request (same idempotency key) each time, so the node appends once.
    ///
    /// # Errors
    /// The last status, mapped by [`Node::fail`].
    pub async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(st) if retryable(st.code()) && attempt < WRITE_RETRIES => {
                    attempt += 1;
                    eprintln!(
                        "note: {what}: {} ({}); retry {attempt} of {WRITE_RETRIES} in {:.2}s",
                        st.message(),
                        st.code().description(),
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(st) => return Err(self.fail(&st)),
            }
        }
    }
}

/// A fresh idempotency key: 16 random bytes, hex.
pub fn new_idempotency_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_clear_text_off_this_machine_are_flagged() {
        assert!(plaintext_off_loopback("http://10.0.0.5:7401"));
        assert!(plaintext_off_loopback("http://finance.example:7401"));
        assert!(!plaintext_off_loopback("http://127.0.0.1:7401"));
        assert!(!plaintext_off_loopback("http://[::1]:7401"));
        assert!(!plaintext_off_loopback("http://localhost:7401"));
        assert!(!plaintext_off_loopback("https://finance.example:7401"));
    }

    #[test]
    fn status_codes_map_to_exit_codes() {
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::NotFound,
            Code::AlreadyExists,
            Code::ResourceExhausted,
            Code::Internal,
        ] {
            assert_eq!(exit_code_for(code), EXIT_REFUSED, "{code:?}");
            assert!(!retryable(code));
            let f = status_failure("http://x", &Status::new(code, "m"));
            assert_eq!(f.exit_code(), EXIT_REFUSED, "{code:?}");
        }
        for code in [Code::Unavailable, Code::DeadlineExceeded] {
            assert_eq!(exit_code_for(code), EXIT_UNREACHABLE);
            assert!(retryable(code));
            let f = status_failure("http://x", &Status::new(code, "m"));
            assert_eq!(f.exit_code(), EXIT_UNREACHABLE);
        }
    }

    #[test]
    fn refusal_is_the_servers_message_on_one_line() {
        let st =
            Status::failed_precondition("item budget-2026 is withdrawn (rule item-not-withdrawn)");
        assert_eq!(
            status_failure("http://x", &st).to_string(),
            "item budget-2026 is withdrawn (rule item-not-withdrawn)"
        );
        let st = Status::unavailable("");
        assert!(
            status_failure("http://n:1", &st)
                .to_string()
                .starts_with("cannot reach the node at http://n:1: ")
        );
    }

    #[test]
    fn idempotency_keys_are_32_hex_and_differ() {
        let (a, b) = (new_idempotency_key(), new_idempotency_key());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn retries_unavailable_with_the_same_request_then_gives_up() {
        let node = Node::connect(&Connection {
            server: DEFAULT_SERVER.into(),
            token: None,
            origin: None,
            ca: None,
            client_cert: None,
            client_key: None,
        })
        .unwrap();
        tokio::time::pause();
        let mut calls = 0;
        let r: Result<()> = node
            .retry("test", || {
                calls += 1;
                async { Err(Status::unavailable("down")) }
            })
            .await;
        assert_eq!(calls, 1 + WRITE_RETRIES);
        let err = r.unwrap_err();
        assert_eq!(
            err.downcast_ref::<Failure>().map(Failure::exit_code),
            Some(EXIT_UNREACHABLE)
        );
        // A refusal is not retried.
        let mut calls = 0;
        let r: Result<()> = node
            .retry("test", || {
                calls += 1;
                async { Err(Status::invalid_argument("bad")) }
            })
            .await;
        assert_eq!(calls, 1);
        assert_eq!(r.unwrap_err().to_string(), "bad");
    }
}
