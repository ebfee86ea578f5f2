//! The accept loop: serves the router over HTTP/1.1 and HTTP/2 with the transport limits that
//! keep slow or hostile clients from holding the server's resources (header size, header read
//! timeout, request-body idle timeout, response write idle timeout), and graceful shutdown.
//!
//! `axum::serve` has none of these knobs, so connections are driven by hyper-util directly.
//!
//! Early answers reach the client. When a handler answers before it has read the request body
//! (a 409 after the upload's fields, a 413, a 429), the response says `Connection: close` so a
//! client never reuses a connection the server is about to close, and the socket closes with a
//! lingering close (as nginx does): our side is half-closed first, then what the client is still
//! sending is read and discarded for a bounded time and amount. Closing at once with unread data
//! would make the kernel send a reset, which destroys the response in the client's receive buffer
//! before it is read (reqwest reports `IncompleteMessage`, Node's fetch `EPIPE`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// Smallest header buffer hyper accepts (it panics below this).
const MIN_HEADER_BYTES: usize = 8192;

/// Lingering close: the longest a closing connection keeps reading what its client still sends.
const LINGER_TOTAL: Duration = Duration::from_secs(10);
/// Lingering close: the longest pause between two reads before the socket is closed anyway.
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// Lingering close: the most bytes read and discarded. A client that keeps sending past this
/// (an upload far over the size limit) gets a reset, so refusing a body never means receiving it.
const LINGER_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// Transport limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Longest time a client may take to send a request head (slow-loris defence).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger heads are answered
    /// 431 and the connection is closed. At least 8 KiB.
    pub max_header_bytes: usize,
    /// Longest pause between two pieces of a request body; after it the body fails (an upload
    /// is abandoned and nothing is stored).
    pub body_idle_timeout: Duration,
    /// Longest time a response write may stay blocked because the client stops reading; after
    /// it the connection is closed.
    pub write_idle_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            body_idle_timeout: Duration::from_secs(60),
            write_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the open connections to finish their in-flight requests.
pub async fn serve<F>(listener: TcpListener, router: Router, limits: ServeLimits, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Per-connection failures (reset before accept) and resource exhaustion
                    // (EMFILE) must not end the loop; back off briefly on the latter.
                    tracing::debug!(error = %err, "accept failed");
                    if !is_connection_error(&err) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(IdleWriteTimeout::new(stream, limits.write_idle_timeout));
        let router = router.clone();
        let body_idle = limits.body_idle_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let http1 = request.version() < hyper::Version::HTTP_2;
            let read_to_end = Arc::new(AtomicBool::new(request.body().is_end_stream()));
            let request = request
                .map(|body| Body::new(TimeoutBody::new(body_idle, TrackEnd::new(body, Arc::clone(&read_to_end)))));
            let response = router.clone().oneshot(request);
            async move {
                let mut response = response.await?;
                // hyper closes a connection whose request body was left unread; say so, or the
                // client may send its next request on a connection that is going away.
                if http1 && !read_to_end.load(Ordering::Acquire) {
                    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = graceful.watch(builder.serve_connection(io, service).into_owned());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A request body that records whether it was read to its end.
#[derive(Debug)]
struct TrackEnd<B> {
    inner: B,
    read_to_end: Arc<AtomicBool>,
}

impl<B> TrackEnd<B> {
    fn new(inner: B, read_to_end: Arc<AtomicBool>) -> Self {
        Self { inner, read_to_end }
    }
}

impl<B> hyper::body::Body for TrackEnd<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None)) {
            self.read_to_end.store(true, Ordering::Release);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The lingering close (see the module docs): half-close, then read and discard what the client
/// still sends until it closes too, pauses, or the time or byte bound is reached.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return; // already reset or closed by the peer
    }
    let deadline = Instant::now() + LINGER_TOTAL;
    let mut discarded = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    while discarded < LINGER_MAX_BYTES {
        let wait = LINGER_IDLE.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n as u64,
            _ => break, // end of stream, an error, or the client went quiet
        }
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream whose writes fail with `TimedOut` once they have been blocked (the client not
/// reading) for longer than the timeout. Any write progress resets the clock.
/// When the connection is done with it, the stream is closed with a lingering close.
#[derive(Debug)]
struct IdleWriteTimeout {
    /// `None` only once dropped.
    inner: Option<TcpStream>,
    timeout: Duration,
    blocked_since: Option<Pin<Box<Sleep>>>,
}

impl Drop for IdleWriteTimeout {
    fn drop(&mut self) {
        if let Some(stream) = self.inner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(linger(stream));
        }
    }
}

impl IdleWriteTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self { inner: Some(inner), timeout, blocked_since: None }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match self.inner.as_mut() {
            Some(stream) => Ok(Pin::new(stream)),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    /// Maps a write poll: progress clears the clock, a pending write starts (or checks) it.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.blocked_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.blocked_since.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading the response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncRead for IdleWriteTimeout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for IdleWriteTimeout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = match self.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        };
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = match self.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        };
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = match self.stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        };
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = match self.stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        };
        self.check(cx, poll)
    }
}
