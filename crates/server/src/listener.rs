//! The listener's defences against slow and idle clients (slowloris): a cap on connections
//! served at once, TCP keepalive, a TLS handshake timeout, and hyper's header-read timeout, which
//! also closes keep-alive connections idle between requests. Only HTTP/1.1 is served: every v5
//! client speaks it, and HTTP/2 has no header or idle timeouts in hyper.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use hyper_util::rt::TokioTimer;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::config::ConnectionLimits;

/// Accepts a TCP connection only while fewer than the cap are open (a connection over it is
/// closed at once), and turns TCP keepalive on so dead peers free their slot.
#[derive(Clone, Debug)]
pub struct LimitedAcceptor {
    slots: Arc<Semaphore>,
    keepalive: TcpKeepalive,
}

impl LimitedAcceptor {
    pub fn new(limits: &ConnectionLimits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            keepalive: TcpKeepalive::new()
                .with_time(limits.tcp_keepalive)
                .with_interval(limits.tcp_keepalive),
        }
    }
}

impl<S> Accept<TcpStream, S> for LimitedAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!("connection limit reached; connection closed");
            return std::future::ready(Err(io::Error::other("connection limit reached")));
        };
        if let Err(e) = SockRef::from(&stream).set_tcp_keepalive(&self.keepalive) {
            tracing::debug!(error = %e, "could not turn TCP keepalive on");
        }
        std::future::ready(Ok((
            Counted {
                inner: stream,
                _slot: permit,
            },
            service,
        )))
    }
}

/// A connection holding one of the listener's slots until it is dropped.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    _slot: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
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
    let limited = LimitedAcceptor::new(limits);
    match tls {
        Some(tls) => {
            let acceptor = RustlsAcceptor::new(tls)
                .handshake_timeout(limits.tls_handshake_timeout)
                .acceptor(limited);
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            configure(&mut server, limits);
            tokio::spawn(server.handle(handle).serve(app))
        }
        None => {
            let mut server = axum_server::from_tcp(listener).acceptor(limited);
            configure(&mut server, limits);
            tokio::spawn(server.handle(handle).serve(app))
        }
    }
}
