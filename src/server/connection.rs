//! A connection's timeouts, as upstream's `http.Server` sets them: `ReadHeaderTimeout` (32 s
//! for a request's head: the first one's from the connection's start, a kept-alive one's from
//! its first byte; HTTP/1.1) and `IdleTimeout` (90 s with no request in flight, HTTP/1.1 and
//! HTTP/2). hyper's own header timeout also runs while
//! a kept-alive connection waits for its next request, which would cut idle connections at
//! 32 s, so both are kept here: the stream notes when a request's bytes start arriving, the
//! service when a request is in flight.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Upstream's `ReadHeaderTimeout` ("just shy of requestTimeoutUpperBound").
pub const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(32);
/// Upstream's `IdleTimeout` ("matches http.DefaultTransport keep-alive timeout").
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What a connection is doing: its requests in flight, since when it has had none, and since
/// when a request's head has been arriving.
pub struct Activity {
    in_flight: AtomicUsize,
    http2: AtomicBool,
    times: Mutex<Times>,
}

struct Times {
    idle_since: Instant,
    head_since: Option<Instant>,
}

/// What a connection's timeouts call for now.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet; look again at this instant.
    Wait(Instant),
    /// No request for the idle timeout: close gracefully.
    Idle,
    /// A request's head took longer than the header timeout: drop the connection.
    SlowHead,
}

/// A request in flight on its connection, until dropped.
pub struct Busy(Arc<Activity>);

impl Activity {
    /// A new connection's activity: as Go's server, it reads its first request's head from
    /// the start (unless it turns out to speak HTTP/2).
    pub fn new() -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            http2: AtomicBool::new(false),
            times: Mutex::new(Times {
                idle_since: now,
                head_since: Some(now),
            }),
        })
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        self.times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request has arrived (its head is read); it is in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> Busy {
        let mut times = self.times();
        times.head_since = None;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Bytes arrived: on an HTTP/1.1 connection with nothing in flight, a request's head has
    /// begun.
    fn received(&self, first: Option<&[u8]>) {
        if let Some(first) = first
            && first.starts_with(b"PRI * HTTP/2.0")
        {
            self.http2.store(true, Ordering::SeqCst);
            self.times().head_since = None;
        }
        if self.http2.load(Ordering::SeqCst) || self.in_flight.load(Ordering::SeqCst) > 0 {
            return;
        }
        self.times().head_since.get_or_insert_with(Instant::now);
    }

    /// What the timeouts call for at `now`.
    pub fn due(&self, now: Instant) -> Due {
        let times = self.times();
        if let Some(head) = times.head_since {
            let deadline = head + READ_HEADER_TIMEOUT;
            return if now >= deadline {
                Due::SlowHead
            } else {
                Due::Wait(deadline)
            };
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Due::Wait(now + IDLE_TIMEOUT);
        }
        let deadline = times.idle_since + IDLE_TIMEOUT;
        if now >= deadline {
            Due::Idle
        } else {
            Due::Wait(deadline)
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut times = self.0.times();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            times.idle_since = Instant::now();
        }
    }
}

/// A connection's stream, telling its [`Activity`] when bytes arrive.
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    sniffed: bool,
}

impl<S> Watched<S> {
    /// Watches `inner` for `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            sniffed: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got = &buf.filled()[before..];
        if matches!(polled, Poll::Ready(Ok(()))) && !got.is_empty() {
            let first = (!self.sniffed).then_some(got);
            self.activity.received(first);
            self.sniffed = true;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(seconds: u64) -> Instant {
        Instant::now() + Duration::from_secs(seconds)
    }

    #[test]
    fn a_kept_alive_connection_is_idle_after_ninety_seconds_not_thirty_two() {
        let a = Activity::new();
        let busy = a.start();
        assert!(
            matches!(a.due(after(200)), Due::Wait(_)),
            "busy is never idle"
        );
        drop(busy);
        assert!(matches!(a.due(after(60)), Due::Wait(_)));
        assert_eq!(a.due(after(91)), Due::Idle);
    }

    #[test]
    fn a_request_head_must_arrive_within_thirty_two_seconds() {
        let a = Activity::new();
        // The first request's head is awaited from the start.
        assert_eq!(a.due(after(33)), Due::SlowHead);
        let busy = a.start();
        assert!(matches!(a.due(after(33)), Due::Wait(_)), "in flight");
        drop(busy);
        // A kept-alive connection waits for the next request's first byte...
        assert!(matches!(a.due(after(60)), Due::Wait(_)));
        a.received(Some(b"GET /version HTTP/1.1\r\n"));
        // ...and from then on, 32 s for its head.
        assert!(matches!(a.due(after(31)), Due::Wait(_)));
        assert_eq!(a.due(after(33)), Due::SlowHead);
    }

    #[test]
    fn http2_frames_between_requests_are_not_a_slow_head() {
        let a = Activity::new();
        a.received(Some(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        a.received(None);
        assert!(matches!(a.due(after(60)), Due::Wait(_)));
        assert_eq!(a.due(after(91)), Due::Idle);
    }
}
