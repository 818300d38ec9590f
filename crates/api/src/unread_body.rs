//! `Connection: close` on an HTTP/1 answer given before the request's body was read.
//!
//! An answer can come before its request's body has been read: a 401 from the bearer check, a
//! 413 at the body limit, a 404 for an unknown route, a 405. hyper
//! then closes the connection rather than read an unread body of unknown size, and it does so
//! without a word: a client that sent its body a moment after the headers (one TLS record
//! later) reuses the keep-alive connection for its next request and fails with an EOF (found
//! by schemathesis: `SSL: EOF occurred in violation of protocol` on random POSTs). Saying
//! `Connection: close` in that answer tells the client the connection ends with it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// The middleware: tracks whether the request's body was read to its end by the time the
/// answer is ready, and closes an HTTP/1 connection when it was not.
pub async fn close_when_body_unread(req: Request, next: Next) -> Response {
    let http1 = matches!(req.version(), Version::HTTP_10 | Version::HTTP_11);
    let (parts, body) = req.into_parts();
    if !http1 || http_body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let body = Body::new(ReadToEnd {
        inner: body,
        read: read.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it has been read to its end.
struct ReadToEnd {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl ReadToEnd {
    fn note_end(&self) {
        self.read.store(true, Ordering::Release);
    }
}

impl http_body::Body for ReadToEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.note_end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.note_end();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/read",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route("/ignore", post(|| async { "not read" }))
            .layer(axum::middleware::from_fn(close_when_body_unread))
    }

    async fn answer(path: &str, body: &'static str) -> Response {
        let request = Request::post(path).body(Body::from(body)).unwrap();
        app().oneshot(request).await.unwrap()
    }

    fn closes(response: &Response) -> bool {
        response.headers().get(header::CONNECTION) == Some(&HeaderValue::from_static("close"))
    }

    #[tokio::test]
    async fn an_answer_before_the_body_was_read_closes_the_connection() {
        assert!(closes(&answer("/ignore", "{\"a\": 1}").await));
    }

    #[tokio::test]
    async fn an_answer_after_the_body_was_read_keeps_it() {
        assert!(!closes(&answer("/read", "{\"a\": 1}").await));
    }

    #[tokio::test]
    async fn a_request_without_a_body_keeps_it() {
        assert!(!closes(&answer("/ignore", "").await));
    }
}
