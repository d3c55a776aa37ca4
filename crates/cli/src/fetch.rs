//! Reading a log from a server (a department node or the county
//! aggregator: the same `DisclosureNode` read API): checkpoints, entries in
//! pages, consistency proofs, content. Nothing here is trusted: callers
//! verify everything with core.

use anyhow::{Result, bail};
use gongkai_core::Hash;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::tile::{BundleId, TileId};
use gongkai_core::types::Origin;
use gongkai_proto::v1;
use gongkai_verify::content::ContentUse;
use gongkai_verify::source::{Fetched, LogSource, SourceError};
use tonic::Code;

use crate::client::{Failure, Node};

/// Largest content the verifier downloads into memory, bytes.
pub const MAX_CONTENT: u64 = 1 << 32;

/// The server's newest checkpoint for `origin`, parsed and checked to be
/// for that origin (signatures are the caller's business).
///
/// # Errors
/// Unreachable server; a checkpoint that does not parse or is for another
/// log ([`Failure::Verify`]).
pub async fn checkpoint(node: &Node, origin: &Origin) -> Result<(String, SignedCheckpoint)> {
    let text = node
        .client()
        .get_checkpoint(v1::GetCheckpointRequest {
            origin: origin.as_str().to_owned(),
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner()
        .checkpoint;
    let cp = SignedCheckpoint::parse(&text).map_err(|e| {
        Failure::Verify(format!(
            "{origin}: the server's checkpoint does not parse: {e}"
        ))
    })?;
    if &cp.checkpoint().origin != origin {
        return Err(Failure::Verify(format!(
            "asked for the checkpoint of {origin}, got one of {}",
            cp.checkpoint().origin
        ))
        .into());
    }
    Ok((text, cp))
}

/// Entries `[start, end)` of `origin`, in pages.
///
/// # Errors
/// Unreachable server; a page that starts elsewhere or is empty.
pub async fn entries(node: &Node, origin: &Origin, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0).min(1 << 16));
    let mut next = start;
    while next < end {
        let resp = node
            .client()
            .get_entries(v1::GetEntriesRequest {
                origin: origin.as_str().to_owned(),
                start: next,
                limit: u32::try_from(end - next).unwrap_or(u32::MAX).min(1000),
            })
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner();
        if resp.start != next || resp.entries.is_empty() {
            bail!(Failure::Verify(format!(
                "{origin}: asked for entries from {next}, the server sent {} from {}",
                resp.entries.len(),
                resp.start
            )));
        }
        for e in resp.entries {
            if next == end {
                break;
            }
            out.push(e);
            next += 1;
        }
    }
    Ok(out)
}

/// A consistency proof between two sizes.
///
/// # Errors
/// Unreachable server, a malformed hash.
pub async fn consistency(node: &Node, origin: &Origin, old: u64, new: u64) -> Result<Vec<Hash>> {
    let resp = node
        .client()
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            origin: origin.as_str().to_owned(),
            old_size: old,
            new_size: new,
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    resp.proof
        .iter()
        .map(|h| {
            Hash::from_slice(h)
                .map_err(|e| Failure::Verify(format!("{origin}: consistency proof: {e}")).into())
        })
        .collect()
}

/// What became of a content download.
#[derive(Debug)]
pub enum Content {
    /// The content, checked against its digest and length: salt and bytes.
    Verified {
        /// The salt.
        salt: [u8; 32],
        /// The content.
        data: Vec<u8>,
    },
    /// The server serves it only to authorized readers.
    Restricted,
    /// The server does not hold it.
    NotFound(String),
    /// It does not match its commitment (length or digest): what is wrong.
    Mismatch(String),
}

/// Downloads content `digest` (of `length` bytes) and checks it against
/// the commitment. With `token`, sends it (authorized readers get
/// restricted content).
///
/// # Errors
/// Unreachable server or a refusal other than not-found/permission.
pub async fn content(
    node: &Node,
    origin: &Origin,
    digest: &Hash,
    length: u64,
    token: Option<&str>,
) -> Result<Content> {
    let mut req = tonic::Request::new(v1::GetContentRequest {
        origin: origin.as_str().to_owned(),
        digest: digest.0.to_vec(),
    });
    if let Some(t) = token {
        crate::client::put_bearer(&mut req, node.server(), t)?;
    }
    let mut stream = match node.client().get_content(req).await {
        Ok(s) => s.into_inner(),
        Err(s) if s.code() == Code::PermissionDenied || s.code() == Code::Unauthenticated => {
            return Ok(Content::Restricted);
        }
        Err(s) if s.code() == Code::NotFound => {
            return Ok(Content::NotFound(s.message().to_owned()));
        }
        Err(s) => return Err(node.fail(&s)),
    };
    let mut header: Option<v1::ContentHeader> = None;
    let mut data = Vec::new();
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(s) if s.code() == Code::NotFound => {
                return Ok(Content::NotFound(s.message().to_owned()));
            }
            Err(s) => return Err(node.fail(&s)),
        };
        match (msg.part, &header) {
            (Some(v1::get_content_response::Part::Header(h)), None) => {
                if h.length != length || length > MAX_CONTENT {
                    return Ok(Content::Mismatch(format!(
                        "the server announces {} bytes, the commitment says {length}",
                        h.length
                    )));
                }
                data.reserve(usize::try_from(length.min(1 << 24)).unwrap_or(0));
                header = Some(h);
            }
            (Some(v1::get_content_response::Part::Chunk(c)), Some(_)) => {
                if data.len() as u64 + c.len() as u64 > length {
                    return Ok(Content::Mismatch(format!(
                        "the server sent more than {length} bytes"
                    )));
                }
                data.extend_from_slice(&c);
            }
            _ => return Ok(Content::Mismatch("content stream out of order".into())),
        }
    }
    let Some(h) = header else {
        return Ok(Content::Mismatch("no content header".into()));
    };
    if data.len() as u64 != length {
        return Ok(Content::Mismatch(format!(
            "got {} bytes, the commitment says {length}",
            data.len()
        )));
    }
    let Ok(salt) = <[u8; 32]>::try_from(h.salt.as_slice()) else {
        return Ok(Content::Mismatch(format!("salt of {} bytes", h.salt.len())));
    };
    if let Err(m) = gongkai_verify::content::check(digest, length, &salt, &data) {
        return Ok(Content::Mismatch(m.to_string()));
    }
    Ok(Content::Verified { salt, data })
}

/// A server as a [`LogSource`] for the one check of `gongkai-verify`:
/// checkpoints, entries by bundle, consistency proofs and content over
/// gRPC. Its methods block on the runtime: use it on a blocking thread
/// (`spawn_blocking`), never on a runtime worker.
pub struct ServerLog {
    node: Node,
    origin: Origin,
    token: Option<String>,
    runtime: tokio::runtime::Handle,
    progress: indicatif::ProgressBar,
}

impl ServerLog {
    /// `origin` on `node`, read with `token` when given (authorized
    /// readers get restricted content); `progress` advances per bundle.
    pub fn new(
        node: Node,
        origin: Origin,
        token: Option<String>,
        runtime: tokio::runtime::Handle,
        progress: indicatif::ProgressBar,
    ) -> ServerLog {
        ServerLog {
            node,
            origin,
            token,
            runtime,
            progress,
        }
    }
}

/// A failed read: an answer that does not verify is evidence against the
/// server, a refusal or an unreachable server proves nothing.
fn source_error(e: &anyhow::Error) -> SourceError {
    match e.chain().find_map(|c| c.downcast_ref::<Failure>()) {
        Some(Failure::Verify(m)) => SourceError::Malformed(m.clone()),
        _ => SourceError::Unavailable(format!("{e:#}")),
    }
}

impl LogSource for ServerLog {
    fn origin(&self) -> &Origin {
        &self.origin
    }

    fn checkpoint(&mut self) -> Result<Vec<u8>, SourceError> {
        let r =
            self.runtime
                .block_on(self.node.client().get_checkpoint(v1::GetCheckpointRequest {
                    origin: self.origin.as_str().to_owned(),
                }));
        match r {
            Ok(r) => Ok(r.into_inner().checkpoint.into_bytes()),
            Err(s) if s.code() == Code::NotFound => Err(SourceError::Missing(s.message().into())),
            Err(s) => Err(source_error(&self.node.fail(&s))),
        }
    }

    fn bundle(&mut self, id: &BundleId) -> Result<Vec<Vec<u8>>, SourceError> {
        let first = id.first_entry();
        let end = first + u64::from(id.width());
        let got = self
            .runtime
            .block_on(entries(&self.node, &self.origin, first, end))
            .map_err(|e| source_error(&e))?;
        self.progress.inc(got.len() as u64);
        Ok(got)
    }

    fn tile(&mut self, _id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }

    fn content(&mut self, u: &ContentUse) -> Result<Fetched, SourceError> {
        let got = self
            .runtime
            .block_on(content(
                &self.node,
                &self.origin,
                &u.digest,
                u.length,
                self.token.as_deref(),
            ))
            .map_err(|e| source_error(&e))?;
        match got {
            Content::Verified { salt, data } => {
                let mut blob = salt.to_vec();
                blob.extend_from_slice(&data);
                Ok(Fetched::Blob(blob))
            }
            Content::Restricted => Ok(Fetched::Restricted),
            Content::NotFound(m) => Ok(Fetched::NotFound(m)),
            Content::Mismatch(m) => Err(SourceError::Malformed(m)),
        }
    }

    fn consistency(&mut self, old: u64, new: u64) -> Result<Option<Vec<Hash>>, SourceError> {
        self.runtime
            .block_on(consistency(&self.node, &self.origin, old, new))
            .map(Some)
            .map_err(|e| source_error(&e))
    }
}
