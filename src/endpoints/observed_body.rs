//! A response body that tells, once it has been sent or dropped, how many bytes went out and
//! (up to a limit) what they were: metrics observe a read's size and latency by it, audit a
//! response's status and object, and the server a connection's requests in flight.

use crate::endpoints::{Body, BoxError};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// What a sent body was.
pub struct Sent {
    /// Bytes sent.
    pub bytes: u64,
    /// The bytes themselves, when asked for and within the limit.
    pub content: Option<Bytes>,
}

/// Called once with what was sent.
pub type OnSent = Box<dyn FnOnce(Sent) + Send>;

/// `inner`, observed.
pub struct ObservedBody {
    inner: Body,
    bytes: u64,
    /// Kept up to this many bytes; beyond it the content is given up.
    keep: usize,
    kept: Option<BytesMut>,
    on_sent: Option<OnSent>,
}

impl ObservedBody {
    /// Observes `inner`, keeping its first `keep` bytes (0: none) for `on_sent`.
    pub fn wrap(inner: Body, keep: usize, on_sent: OnSent) -> Body {
        ObservedBody {
            inner,
            bytes: 0,
            keep,
            kept: (keep > 0).then(BytesMut::new),
            on_sent: Some(on_sent),
        }
        .boxed_unsync()
    }

    fn finish(&mut self) {
        if let Some(on_sent) = self.on_sent.take() {
            on_sent(Sent {
                bytes: self.bytes,
                content: self.kept.take().map(BytesMut::freeze),
            });
        }
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl hyper::body::Body for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len();
                    self.bytes += len as u64;
                    let keep = self.keep;
                    if let Some(kept) = &mut self.kept {
                        if kept.len() + len <= keep {
                            kept.extend_from_slice(data);
                        } else {
                            self.kept = None;
                        }
                    }
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
