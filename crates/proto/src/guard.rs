//! What every gongkai gRPC server puts in front of its handlers: the
//! caller's credentials checked before a request body is read
//! ([`AuthFirst`]), a cap on open connections ([`limited`]), and the
//! transport's timeouts and limits ([`hardened`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::{Context, Future, Pin, Poll, Service, http};
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Status};

/// A check of the caller, given the request's metadata and connection
/// (peer certificates) but not its body.
pub type Check = Arc<dyn Fn(&Request<()>) -> Result<(), Status> + Send + Sync>;

/// A generated tonic server whose calls to `paths` are refused before their
/// body is read when `check` refuses the caller: an anonymous 4 MiB
/// `Append` or 32 MiB `Push` costs the server a header, not a decode. The
/// handlers check again, fully (the origin a push names, roles); this is
/// the cheap gate in front of them.
#[derive(Clone)]
pub struct AuthFirst<S> {
    inner: S,
    paths: &'static [&'static str],
    check: Check,
}

impl<S> AuthFirst<S> {
    /// Guards the calls to `paths` (full gRPC paths, e.g.
    /// `/gongkai.v1.DisclosureNode/Append`) of `inner` with `check`.
    pub fn new(inner: S, paths: &'static [&'static str], check: Check) -> AuthFirst<S> {
        AuthFirst {
            inner,
            paths,
            check,
        }
    }
}

impl<S: NamedService> NamedService for AuthFirst<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for AuthFirst<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if self.paths.contains(&req.uri().path()) {
            let probe = Request::from_parts(
                tonic::metadata::MetadataMap::from_headers(req.headers().clone()),
                req.extensions().clone(),
                (),
            );
            if let Err(status) = (self.check)(&probe) {
                // The body is dropped unread.
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        let answer = self.inner.call(req);
        Box::pin(answer)
    }
}

/// Open connections a server holds at most by default.
pub const MAX_CONNECTIONS: usize = 1024;

/// The connections of `listener`, at most `max` open at once: past that,
/// new ones wait in the kernel's backlog until one closes (a flood of idle
/// connections cannot take the server's memory or file descriptors).
/// TCP_NODELAY is set on each (small request/response pairs).
pub fn limited(listener: TcpListener, max: usize) -> Incoming {
    Incoming {
        listener,
        slots: Arc::new(Semaphore::new(max.max(1))),
        permit: None,
        acquiring: None,
    }
}

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// The stream of [`limited`]: a slot is taken before a connection is
/// accepted, and given back when the connection is dropped.
pub struct Incoming {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    acquiring: Option<Acquire>,
}

impl tokio_stream::Stream for Incoming {
    type Item = std::io::Result<Limited>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.permit.is_none() {
            let slots = Arc::clone(&this.slots);
            let fut = this
                .acquiring
                .get_or_insert_with(|| Box::pin(slots.acquire_owned()));
            match fut.as_mut().poll(cx) {
                Poll::Ready(Ok(p)) => {
                    this.permit = Some(p);
                    this.acquiring = None;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        match this.listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, _))) => {
                let Some(permit) = this.permit.take() else {
                    return Poll::Pending;
                };
                // Without it, Nagle's algorithm and delayed ACKs add ~40 ms
                // to every small answer; failing to set it is harmless.
                let _ = stream.set_nodelay(true);
                Poll::Ready(Some(Ok(Limited {
                    inner: stream,
                    _permit: permit,
                })))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A connection holding one of the server's connection slots until it is
/// dropped.
pub struct Limited {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// How long one call may take from its headers to its response (an upload
/// included: 64 MiB in five minutes is 220 KB/s). Server streams (Follow,
/// downloads) answer at once and are bounded by their own rules.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// A server builder with the transport limits every gongkai server uses:
/// `max_streams` concurrent streams per connection, HTTP/2 keepalive pings
/// (a peer that does not answer within 20 s is dropped), TCP keepalive, a
/// 16 KiB header list, and [`CALL_TIMEOUT`] per call.
pub fn hardened(max_streams: u32) -> Server {
    Server::builder()
        .max_concurrent_streams(Some(max_streams))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .http2_max_header_list_size(16 << 10)
        .timeout(CALL_TIMEOUT)
}
