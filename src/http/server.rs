//! The listener loop: one HTTP/1.1 connection per task, with the request timeout on
//! headers, a close that never drops an answer, and a shutdown bounded by the grace.
//!
//! axum's `serve` has none of the three knobs, so connections are served with hyper's
//! own HTTP/1 builder (the same one `axum::serve` ends up in).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, header::CONNECTION};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::state::AppState;

/// How long a closing connection keeps reading (and dropping) what the client still
/// sends after our answer, and how much of it. Closing a socket with unread input makes
/// the kernel send a reset, which can destroy the answer on its way to the client; so
/// the server shuts its side down first, then waits for the client's close this long.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// The largest request head (request line and headers, with their line ends) the server
/// takes; a larger one is refused with 431 and the connection closed. Without it the only
/// bound is hyper's read buffer (`max_buf_size`, 8 KiB + 400 KiB), and that one is checked
/// only while a head is still incomplete: when a head over it arrives in a few large reads
/// (a loaded server finds it all in the socket), the adaptive read size lets the whole of it
/// into the buffer before the check, it parses, and the request is served. hyper checks
/// `max_header_size` on the parsed head as well, so a head over this limit is refused however
/// it arrives.
const MAX_HEAD_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    request: Duration,
    grace: Duration,
}

/// Serves `state`'s router on `listener` until `shutdown` resolves; then stops
/// accepting, lets open requests finish for at most `server.shutdown_grace_seconds`, and
/// returns (closing whatever is still open). Client addresses reach the handlers as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let s = &state.config.server;
    let timeouts = Timeouts { request: s.request_timeout(), grace: s.shutdown_grace() };
    let app = super::router(state);
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(stream, peer, app.clone(), timeouts, stop.clone()));
    }
    drop(listener);
    stop.cancel();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(timeouts.grace, drained).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_seconds = timeouts.grace.as_secs(),
            "shutdown grace over: closing the connections still open"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// `EMFILE` and the like: say so and breathe, rather than spin (as `axum::serve` does).
/// Errors of one half-open connection are not worth a line.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    stop: CancellationToken,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    let stopped = stop.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let (app, stopped) = (app.clone(), stopped.clone());
        Box::pin(async move {
            let mut response = app.oneshot(req).await?;
            // Shutting down: this connection closes after this answer, and says so
            // (hyper would close it without a word).
            if stopped.is_cancelled() {
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        }) as ResponseFuture
    });
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        // Also bounds how long an idle keep-alive connection is kept.
        .header_read_timeout(timeouts.request)
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let mut stopping = false;
    let served = loop {
        tokio::select! {
            served = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break served,
            () = stop.cancelled(), if !stopping => {
                // Finishes the request in flight (its answer says `Connection: close`), or
                // closes at once when idle.
                Pin::new(&mut conn).graceful_shutdown();
                stopping = true;
            }
        }
    };
    let head_timed_out = matches!(&served, Err(e) if e.is_timeout());
    if let Err(e) = served {
        // A client gone mid-request, headers not received within the timeout, a request
        // hyper could not parse (it has answered 400 or 431 itself).
        tracing::debug!(error = %e, %peer, "connection ended");
    }
    let parts = conn.into_parts();
    let mut stream = parts.io.into_inner();
    // hyper closes without a word when a head is late. If part of one had arrived, a
    // request was under way: it gets its 408 (an idle connection just closes).
    if head_timed_out && !parts.read_buf.is_empty() {
        tracing::info!(%peer, "request head not received in time");
        let answer = late_head_answer();
        let _ = tokio::time::timeout(LINGER, stream.write_all(&answer)).await;
    }
    linger(stream).await;
}

/// 408 `request_timeout` for a request whose head did not arrive in time, written
/// straight to the socket (hyper has no request to answer), with its own request id.
fn late_head_answer() -> Vec<u8> {
    let body = r#"{"detail":"request_timeout"}"#;
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n\
         x-request-id: {}\r\ncontent-length: {}\r\n\r\n{body}",
        uuid::Uuid::new_v4(),
        body.len()
    )
    .into_bytes()
}

/// Closes our side, then reads and drops what the client still sends until it closes its
/// own (or [`LINGER`] passes): the answer is delivered before the socket goes away.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut left = LINGER_BYTES;
    let drain = async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    // Over after LINGER whether or not the client has closed.
    let _ = tokio::time::timeout(LINGER, drain).await;
}
