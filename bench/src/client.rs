//! One HTTP/1.1 keep-alive connection to the server, as one simulated client holds it.
//!
//! hyper's connection-level API rather than a pooled client: each simulated client owns
//! exactly one connection, and a request costs the protocol and nothing else, so the load
//! generator takes as little as possible of the two cores it shares with the server.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request, as a scenario's client describes it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: &'static str,
    pub bearer: Option<String>,
    /// A JSON body; sent with `Content-Type: application/json`.
    pub json: Option<Vec<u8>>,
}

impl Call {
    pub fn get(path: &'static str, bearer: Option<&str>) -> Call {
        Call { method: Method::GET, path, bearer: bearer.map(str::to_owned), json: None }
    }

    pub fn post(path: &'static str, bearer: Option<&str>, json: Vec<u8>) -> Call {
        Call { method: Method::POST, path, bearer: bearer.map(str::to_owned), json: Some(json) }
    }

    pub fn patch(path: &'static str, bearer: &str, json: Vec<u8>) -> Call {
        Call { method: Method::PATCH, path, bearer: Some(bearer.to_owned()), json: Some(json) }
    }
}

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream =
            TcpStream::connect(addr).await.with_context(|| format!("connecting {addr}"))?;
        // Small request/response pairs: Nagle would add delayed-ACK waits to each one.
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // Drives the socket; ends when the sender is dropped or the server closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender, host: addr.to_string() })
    }

    /// Sends `call` and reads the whole answer.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let mut req = Request::builder().method(call.method.clone()).uri(call.path);
        req = req.header(HOST, &self.host);
        if let Some(token) = &call.bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match &call.json {
            Some(json) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Bytes::from(json.clone())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).context("building the request")?;
        let resp = self.sender.send_request(req).await.context("sending the request")?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("reading the answer")?.to_bytes();
        Ok((status, body))
    }
}
