//! A minimal HTTP/1.1 client over hyper: one keep-alive connection per worker, streamed
//! request bodies built from one shared buffer (no copies), response bodies counted, not kept.

use std::convert::Infallible;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The request body type every request uses.
pub type ReqBody = BoxBody<Bytes, Infallible>;

/// `http://host:port/path?query` split into the address and the request target.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("http://").with_context(|| format!("only http:// URLs: {url}"))?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Ok(Self { addr: addr.to_owned(), path: path.to_owned() })
    }
}

/// What a response carried.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Body bytes received.
    pub bytes: u64,
    /// The first 64 KiB of the body, when asked for.
    pub head: Bytes,
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    sender: SendRequest<ReqBody>,
}

impl Conn {
    pub async fn open(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { addr: addr.to_owned(), sender })
    }

    /// Sends a request; `keep_body` keeps up to 64 KiB of the response body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: ReqBody,
        content_length: Option<u64>,
        keep_body: bool,
    ) -> anyhow::Result<Answer> {
        let mut builder = Request::builder().method(method).uri(path).header(header::HOST, &self.addr);
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(len) = content_length {
            builder = builder.header(header::CONTENT_LENGTH, len);
        }
        let request = builder.body(body)?;
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await.context("request failed")?;
        let (parts, mut body) = response.into_parts();
        let mut bytes = 0u64;
        let mut head = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.context("response body failed")?.into_data() {
                bytes += data.len() as u64;
                if keep_body && head.len() < 65536 {
                    head.extend_from_slice(&data[..data.len().min(65536 - head.len())]);
                }
            }
        }
        Ok(Answer { status: parts.status, bytes, head: head.into() })
    }
}

pub fn empty() -> ReqBody {
    Empty::new().boxed()
}

/// A body of `prefix`, then `size` bytes cycled from `pattern`, then `suffix`, streamed in
/// pattern-sized frames. Returns the body and its length.
pub fn patterned(pattern: &Bytes, size: u64, prefix: Bytes, suffix: Bytes) -> (ReqBody, u64) {
    let total = prefix.len() as u64 + size + suffix.len() as u64;
    let pattern = pattern.clone();
    let chunk = pattern.len() as u64;
    let count = size.div_ceil(chunk.max(1));
    let middle = (0..count).map(move |i| {
        let len = (size - i * chunk).min(chunk) as usize;
        pattern.slice(..len)
    });
    let frames = std::iter::once(prefix)
        .chain(middle)
        .chain(std::iter::once(suffix))
        .filter(|b| !b.is_empty())
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    (StreamBody::new(futures::stream::iter(frames)).boxed(), total)
}

/// Multipart framing around one `file` part.
pub const BOUNDARY: &str = "wsbench0b7c9d2e4f";

pub fn multipart_prefix(filename: &str) -> Bytes {
    Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    ))
}

pub fn multipart_suffix() -> Bytes {
    Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))
}

pub fn expect_status(answer: &Answer, ok: &[u16], what: &str) -> anyhow::Result<()> {
    if !ok.contains(&answer.status.as_u16()) {
        bail!("{what}: unexpected status {} ({})", answer.status, String::from_utf8_lossy(&answer.head));
    }
    Ok(())
}
