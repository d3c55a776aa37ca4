//! The status a server answers when it cannot read a request.
//!
//! tonic reports a request body that is not valid protobuf as `INTERNAL`
//! (tonic-prost maps every `prost::DecodeError` so) and a message over the
//! decoding limit as `OUT_OF_RANGE`. Both are the client's fault, and
//! clients act on codes: `INTERNAL` reads as "the server failed" (the CLI
//! says so, monitoring pages someone), `OUT_OF_RANGE` as a bad position
//! argument. gongkai's servers answer `INVALID_ARGUMENT` and
//! `RESOURCE_EXHAUSTED` instead, the codes gRPC clients expect for a
//! malformed request and for a message larger than the server accepts
//! (grpc's status-code table lists `RESOURCE_EXHAUSTED` for the latter; for
//! a request that does not parse it lists `INTERNAL`, which gongkai
//! deliberately does not follow, see above).
//!
//! [`ClientFaults`] wraps a generated server and rewrites exactly those
//! two statuses. A request that tonic fails to decode never reaches the
//! handler, so its status is always a trailers-only response (the status in
//! the response headers), which is where the wrapper looks; the handlers'
//! own statuses (`INTERNAL` for a storage failure, `OUT_OF_RANGE` for an
//! index beyond the tree) carry other messages and are left alone.

use std::convert::Infallible;

use tonic::body::Body;
use tonic::codegen::{Context, Future, Pin, Poll, Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// How prost's `DecodeError` displays (`failed to decode Protobuf message:
/// …`), the message of tonic-prost's `INTERNAL` for a malformed body.
const DECODE_ERROR: &str = "failed to decode Protobuf message";
/// How tonic starts its `OUT_OF_RANGE` for a message over the decoding
/// limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// A generated tonic server whose answers to unreadable requests carry
/// the client-fault codes (module docs). Add it where the server would be
/// added: `Server::builder().add_service(ClientFaults::new(svc))`.
#[derive(Clone, Debug)]
pub struct ClientFaults<S> {
    inner: S,
}

impl<S> ClientFaults<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> ClientFaults<S> {
        ClientFaults { inner }
    }
}

impl<S: NamedService> NamedService for ClientFaults<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for ClientFaults<S>
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
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut res = answer.await?;
            remap(res.headers_mut());
            Ok(res)
        })
    }
}

/// The client-fault code for a status in `headers`, if it is one of the
/// two tonic produces for an unreadable request.
fn client_fault(headers: &http::HeaderMap) -> Option<Status> {
    let code = headers.get("grpc-status")?;
    if code != "13" && code != "11" {
        return None;
    }
    let status = Status::from_header_map(headers)?;
    let code = match status.code() {
        Code::Internal if status.message().starts_with(DECODE_ERROR) => Code::InvalidArgument,
        Code::OutOfRange if status.message().starts_with(TOO_LARGE) => Code::ResourceExhausted,
        _ => return None,
    };
    let what = if code == Code::InvalidArgument {
        "the request is not a valid protobuf message of this call"
    } else {
        "the request is larger than this server accepts"
    };
    Some(Status::new(code, format!("{what}: {}", status.message())))
}

fn remap(headers: &mut http::HeaderMap) {
    if let Some(status) = client_fault(headers) {
        // Only fails for a message that cannot be a header value, which
        // ours (ASCII, percent-encoded by tonic) never is; the original
        // status stays then.
        let _ = status.add_header(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: &Status) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        status.add_header(&mut h).unwrap();
        h
    }

    #[test]
    fn only_the_decoding_statuses_are_remapped() {
        use prost::Message as _;
        let error = crate::v1::GetStatusRequest::decode(&[0xffu8, 0xff, 0xff][..]).unwrap_err();
        let decode = Status::internal(error.to_string());
        let mut h = headers_of(&decode);
        remap(&mut h);
        let s = Status::from_header_map(&h).unwrap();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains(&error.to_string()), "{}", s.message());

        let large = Status::out_of_range(
            "Error, decoded message length too large: found 70000 bytes, the limit is: 65536 bytes",
        );
        let mut h = headers_of(&large);
        remap(&mut h);
        let s = Status::from_header_map(&h).unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("the limit is: 65536 bytes"));

        for own in [
            Status::internal("internal storage error (see the aggregator's log)"),
            Status::out_of_range("start 9 is beyond the log size 3"),
            Status::invalid_argument("event is required"),
        ] {
            let mut h = headers_of(&own);
            let before = h.clone();
            remap(&mut h);
            assert_eq!(h, before, "{own:?}");
        }
        let mut none = http::HeaderMap::new();
        remap(&mut none);
        assert!(none.is_empty());
    }
}
