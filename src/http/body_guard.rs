//! The request body, guarded for the connection's sake (contract §6), at one place for
//! every route and every refusal:
//!
//! - **Keep-alive after a refusal.** hyper keeps an HTTP/1.1 connection only when the
//!   request body was read to its end; a handler that refuses early (401, 403, 404, 405,
//!   415, …) drops the body unread, and hyper then closes the connection after the
//!   answer — with no `Connection: close`, so a client that reuses the connection sees it
//!   dropped. After the handler answers, this layer reads and discards what is left of a
//!   body of up to [`MAX_BODY_BYTES`], so the connection stays usable. A body it will not
//!   read (declared or found larger, or unreadable) gets `Connection: close` on the
//!   answer instead; `server.rs` then closes the socket only after the answer is out.
//! - **Body timeout.** The body must arrive within `server.request_timeout_seconds` of
//!   the request head. If the handler was reading it when the deadline passed, the
//!   answer is 408 `request_timeout` (whatever the handler made of the truncated body)
//!   with `Connection: close`. If the handler had answered without it and the rest is
//!   late while being discarded, that answer stands, with `Connection: close`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::state::AppState;

/// The middleware. Requests without a body pass untouched.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let deadline = Instant::now() + state.config.server.request_timeout();
    let declared = declared_length(&parts.headers);
    let shared = Shared::new(body, deadline);
    let handle = Body::new(Handle(shared.clone()));
    let response = next.run(Request::from_parts(parts, handle)).await;
    match shared.finish(declared).await {
        Outcome::Keep => response,
        Outcome::Close => close(response),
        Outcome::TimedOut => {
            tracing::info!("request body not received in time");
            close(ApiError::RequestTimeout.into_response())
        }
    }
}

fn close(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `Content-Length`, when present and a number (hyper has refused a request whose
/// lengths disagree before it reaches us).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// What becomes of the connection once the handler has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The body was read to its end: keep-alive as usual.
    Keep,
    /// The body was not (and will not be) read to its end: say so and close.
    Close,
    /// The body did not arrive in time: 408, and close.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Reading,
    Ended,
    Failed,
    TimedOut,
}

/// The request body, shared between the handler's [`Handle`] and this layer, so that
/// what the handler left unread can still be read after it returns.
#[derive(Clone)]
struct Shared(Arc<Mutex<Inner>>);

struct Inner {
    body: Body,
    deadline: Pin<Box<Sleep>>,
    read: u64,
    status: Status,
}

/// Raised to whoever reads the body when the deadline passes first.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the request timeout")]
struct BodyTimedOut;

impl Shared {
    fn new(body: Body, deadline: Instant) -> Self {
        Shared(Arc::new(Mutex::new(Inner {
            body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            read: 0,
            status: Status::Reading,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding it (in a handler reading the body) leaves nothing half-done.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After the handler: reads and discards the rest of a body of up to
    /// [`MAX_BODY_BYTES`] (within the deadline), or gives up on the connection. A 408
    /// only when the handler itself was still waiting for the body at the deadline.
    async fn finish(&self, declared: Option<u64>) -> Outcome {
        let limit = MAX_BODY_BYTES as u64;
        {
            let inner = self.lock();
            match inner.status {
                Status::Ended => return Outcome::Keep,
                Status::TimedOut => return Outcome::TimedOut,
                Status::Failed => return Outcome::Close,
                Status::Reading if declared.is_some_and(|n| n > limit) || inner.read > limit => {
                    return Outcome::Close;
                }
                Status::Reading => {}
            }
        }
        std::future::poll_fn(|cx| {
            let mut inner = self.lock();
            loop {
                match inner.poll_frame(cx) {
                    Poll::Ready(Some(Ok(_))) if inner.read > limit => {
                        return Poll::Ready(Outcome::Close);
                    }
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(None) => return Poll::Ready(Outcome::Keep),
                    // Late or broken while discarding: the handler's answer stands (it may
                    // have changed something; a 408 would say it had not), and the
                    // connection closes.
                    Poll::Ready(Some(Err(_))) => return Poll::Ready(Outcome::Close),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Inner {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.status {
            Status::Reading => {}
            Status::Ended => return Poll::Ready(None),
            Status::TimedOut => return Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Status::Failed => return Poll::Ready(Some(Err("request body failed before".into()))),
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.read = self.read.saturating_add(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.status = Status::Failed;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                self.status = Status::Ended;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.status = Status::TimedOut;
                    return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
                }
                Poll::Pending
            }
        }
    }
}

/// The body as the handler sees it.
struct Handle(Shared);

impl HttpBody for Handle {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.0.lock().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        let inner = self.0.lock();
        inner.status == Status::Ended || inner.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().body.size_hint()
    }
}
