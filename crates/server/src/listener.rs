//! The listener's defences against slow and idle clients (slowloris): a cap on connections
//! served at once, TCP keepalive, a TLS handshake timeout, a deadline for a connection's first
//! request byte, and hyper's header-read timeout, which also closes keep-alive connections idle
//! between requests. Only HTTP/1.1 is served: every v5
//! client speaks it, and HTTP/2 has no header or idle timeouts in hyper.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use hyper_util::rt::TokioTimer;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Sleep;

use crate::config::ConnectionLimits;

/// Wraps an acceptor (plain or TLS): a TCP connection is taken only while fewer than the cap are
/// open (one over it is closed at once, before any TLS work), TCP keepalive is turned on so dead
/// peers free their slot, and the connection must send its first request byte within the
/// header-read timeout (hyper's own timeout starts only once a byte has arrived).
#[derive(Clone, Debug)]
pub struct GuardedAcceptor<A> {
    inner: A,
    slots: Arc<Semaphore>,
    keepalive: TcpKeepalive,
    first_byte: Duration,
}

impl<A> GuardedAcceptor<A> {
    pub fn new(inner: A, limits: &ConnectionLimits) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            keepalive: TcpKeepalive::new()
                .with_time(limits.tcp_keepalive)
                .with_interval(limits.tcp_keepalive),
            first_byte: limits.header_read_timeout,
        }
    }
}

type Accepted<T, S> = Pin<Box<dyn Future<Output = io::Result<(Guarded<T>, S)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for GuardedAcceptor<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!("connection limit reached; connection closed");
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        if let Err(e) = SockRef::from(&stream).set_tcp_keepalive(&self.keepalive) {
            tracing::debug!(error = %m365backup_core::Chain(&e), "could not turn TCP keepalive on");
        }
        let accepting = self.inner.accept(stream, service);
        let first_byte = self.first_byte;
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            let guarded = Guarded {
                inner: stream,
                _slot: slot,
                first_byte_deadline: Some(Box::pin(tokio::time::sleep(first_byte))),
            };
            Ok((guarded, service))
        })
    }
}

/// A served connection: holds one of the listener's slots until dropped, and fails its reads
/// if no byte arrives before the first-byte deadline.
pub struct Guarded<T> {
    inner: T,
    _slot: OwnedSemaphorePermit,
    first_byte_deadline: Option<Pin<Box<Sleep>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.first_byte_deadline = None,
            Poll::Pending => {
                if let Some(deadline) = self.first_byte_deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no request arrived in time",
                        )));
                    }
                }
            }
            _ => {}
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
}

/// HTTP/1.1 only, with hyper's timer so the header-read timeout applies (axum-server builds
/// hyper without one, which leaves that timeout off).
fn configure<A>(server: &mut axum_server::Server<A>, limits: &ConnectionLimits) {
    let builder = server.http_builder();
    *builder = builder.clone().http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
}

/// Serves `app` on `listener` (HTTPS with `tls`, else plain HTTP) under `limits`.
pub fn serve(
    listener: std::net::TcpListener,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<
        axum::Router,
        std::net::SocketAddr,
    >,
    tls: Option<RustlsConfig>,
    limits: &ConnectionLimits,
    handle: Handle,
) -> JoinHandle<io::Result<()>> {
    match tls {
        Some(tls) => {
            let tls = RustlsAcceptor::new(tls).handshake_timeout(limits.tls_handshake_timeout);
            let acceptor = GuardedAcceptor::new(tls, limits);
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            configure(&mut server, limits);
            tokio::spawn(server.handle(handle).serve(app))
        }
        None => {
            let acceptor = GuardedAcceptor::new(DefaultAcceptor::new(), limits);
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            configure(&mut server, limits);
            tokio::spawn(server.handle(handle).serve(app))
        }
    }
}
