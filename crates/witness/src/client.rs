//! A small HTTP/1.1 client for the witness protocol and for reading
//! published checkpoints: one connection per request, a deadline on the
//! whole exchange, a bound on the answer's size.
//!
//! Plain `http://` only. Everything exchanged is public and signed (a
//! checkpoint, a consistency proof, a cosignature): an attacker on the path
//! can delay or drop an exchange, which TLS would not prevent either, but
//! cannot make a forged answer verify. A witness reachable only over HTTPS
//! sits behind a local proxy (docs/OPERATIONS.md).

use std::time::Duration;

use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::note::{NoteSignature, VerifierKey, Verifiers};
use gongkai_core::witness::{self, AddCheckpoint};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::WitnessError;

/// The largest answer read (a checkpoint note is at most 1 MiB).
pub const MAX_ANSWER_BYTES: usize = (1 << 20) + 4096;

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body (at most the limit asked for).
    pub body: Vec<u8>,
}

fn net(m: impl Into<String>) -> WitnessError {
    WitnessError::Network(m.into())
}

/// Splits `http://host[:port][/prefix]` into the authority and the prefix
/// (without a trailing `/`).
///
/// # Errors
/// [`WitnessError::Config`] for another scheme or a malformed URL.
pub fn parse_base(url: &str) -> Result<(String, String), WitnessError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        WitnessError::Config(format!(
            "{url:?}: only http:// URLs are supported (the exchange is signed; see docs/OPERATIONS.md for HTTPS)"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty()
        || authority.contains('@')
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return Err(WitnessError::Config(format!("{url:?}: not a host[:port]")));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.trim_end_matches('/').to_owned()))
}

/// One request to `base` + `path`, answered within `timeout`, body at most
/// `max_body` bytes.
///
/// # Errors
/// [`WitnessError::Network`] when the exchange fails or times out, or the
/// answer is larger than `max_body`.
pub async fn request(
    base: &str,
    path: &str,
    post: Option<String>,
    timeout: Duration,
    max_body: usize,
) -> Result<Answer, WitnessError> {
    let (authority, prefix) = parse_base(base)?;
    let uri = format!("{prefix}{path}");
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| net(format!("connect {authority}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| net(format!("{authority}: {e}")))?;
        let driver = tokio::spawn(conn);
        let builder = hyper::Request::builder()
            .uri(&uri)
            .header(hyper::header::HOST, &authority)
            .header(hyper::header::USER_AGENT, "gongkai");
        let req = match post {
            Some(body) => builder
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(body))),
            None => builder
                .method(hyper::Method::GET)
                .body(Full::new(Bytes::new())),
        }
        .map_err(|e| net(format!("{base}{path}: {e}")))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| net(format!("{base}{path}: {e}")))?;
        let status = res.status().as_u16();
        let body = Limited::new(res.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| net(format!("{base}{path}: answer: {e}")))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| net(format!("{base}{path}: no answer within {timeout:?}")))?
}

/// What a witness answered an add-checkpoint request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Its cosignature(s), verified under its key.
    Cosigned(Vec<NoteSignature>),
    /// 409: its latest checkpoint for the log (the log's signature not
    /// checked here; the witness's own cosignature verified when present),
    /// `None` when it holds none.
    Conflict(Option<SignedCheckpoint>),
    /// Another refusal: status and the witness's text.
    Refused(u16, String),
}

/// Sends `request` to the witness at `base`, whose key is `witness`.
///
/// # Errors
/// [`WitnessError::Network`]; [`WitnessError::Protocol`] when a 200 answer
/// carries no valid cosignature by `witness` over the checkpoint, or a 409
/// answer is not a checkpoint of the log it cosigned.
pub async fn add_checkpoint(
    base: &str,
    witness: &VerifierKey,
    request: &AddCheckpoint,
    timeout: Duration,
) -> Result<Outcome, WitnessError> {
    let answer = self::request(
        base,
        witness::ADD_CHECKPOINT_PATH,
        Some(request.encode()),
        timeout,
        MAX_ANSWER_BYTES,
    )
    .await?;
    let proto = |m: String| WitnessError::Protocol(format!("{base}: {m}"));
    match answer.status {
        200 => {
            let sigs =
                witness::parse_cosignatures(&answer.body).map_err(|e| proto(e.to_string()))?;
            let mut cp = request.checkpoint.clone();
            let mut mine = Vec::new();
            for s in sigs {
                if s.name() == witness.name() && s.id() == witness.id() {
                    mine.push(s.clone());
                }
                cp.add_signature(s).map_err(|e| proto(e.to_string()))?;
            }
            cp.note()
                .verify_quorum(&Verifiers::from(witness.clone()), 1)
                .map_err(|e| proto(format!("the cosignature does not verify: {e}")))?;
            Ok(Outcome::Cosigned(mine))
        }
        // No checkpoint held at all: resume from nothing.
        409 if answer.body.is_empty() => Ok(Outcome::Conflict(None)),
        409 => {
            let cp = SignedCheckpoint::from_bytes(&answer.body)
                .map_err(|e| proto(format!("conflict answer: {e}")))?;
            if cp.checkpoint().origin != request.checkpoint.checkpoint().origin {
                return Err(proto("conflict answer names another log".into()));
            }
            // Its own cosignature, if present, must verify; it may be
            // absent: after a start-up re-synchronisation the witness's
            // latest can be a checkpoint a peer cosigned (FORMAT.md § 21.3).
            // The answer is only a hint of the size to resume from, and
            // evidence only by the log's own signatures.
            cp.note()
                .verify_quorum(&Verifiers::from(witness.clone()), 0)
                .map_err(|e| proto(format!("conflict answer: {e}")))?;
            Ok(Outcome::Conflict(Some(cp)))
        }
        s => Ok(Outcome::Refused(
            s,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(512)])
                .trim()
                .to_owned(),
        )),
    }
}

/// The path of a witness's latest checkpoint of `origin`
/// (`/checkpoint/<slug>`, FORMAT.md § 21.2).
pub fn checkpoint_path(origin: &str) -> String {
    format!(
        "{}{}",
        witness::CHECKPOINT_PATH,
        gongkai_portal::model::slug(origin)
    )
}

/// The latest checkpoint the witness at `base` holds for `origin` (`None`:
/// it has none). Its signatures are not checked here: the caller checks
/// the ones it trusts (the log's, and the witness's if it knows the key).
///
/// # Errors
/// [`WitnessError::Network`]; [`WitnessError::Protocol`] when the answer is
/// not a checkpoint of `origin`.
pub async fn latest(
    base: &str,
    origin: &str,
    timeout: Duration,
) -> Result<Option<SignedCheckpoint>, WitnessError> {
    let path = checkpoint_path(origin);
    let answer = request(base, &path, None, timeout, MAX_ANSWER_BYTES).await?;
    let proto = |m: String| WitnessError::Protocol(format!("{base}{path}: {m}"));
    match answer.status {
        404 => Ok(None),
        200 => {
            let cp =
                SignedCheckpoint::from_bytes(&answer.body).map_err(|e| proto(e.to_string()))?;
            if cp.checkpoint().origin.as_str() != origin {
                return Err(proto("a checkpoint of another log".into()));
            }
            Ok(Some(cp))
        }
        s => Err(proto(format!("HTTP {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base("http://127.0.0.1:7380").unwrap(),
            ("127.0.0.1:7380".into(), String::new())
        );
        assert_eq!(
            parse_base("http://w.example/witness/").unwrap(),
            ("w.example:80".into(), "/witness".into())
        );
        assert_eq!(
            parse_base("http://[::1]:9/x").unwrap(),
            ("[::1]:9".into(), "/x".into())
        );
        assert!(parse_base("https://w.example").is_err());
        assert!(parse_base("http://user@w.example").is_err());
        assert!(parse_base("http://").is_err());
    }
}
