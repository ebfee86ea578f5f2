//! A tiny HTTP/1.1 server on loopback for the tests: it records every request and answers
//! through a closure, including misbehaving answers (slow-loris, floods) that count what they
//! actually sent. Every loop is bounded in time or bytes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How to answer.
pub enum Reply {
    /// A complete response with a `Content-Length`.
    Full { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Headers, then one body byte per `interval`, for at most `for_at_most`.
    TrickleBody { interval: Duration, for_at_most: Duration },
    /// The status line and headers one byte per `interval` (never finishing in time).
    TrickleHead { interval: Duration, for_at_most: Duration },
    /// `total` bytes in `chunk`-sized writes, with or without a `Content-Length`.
    Flood { total: u64, chunk: usize, declare_length: bool },
    /// `body` with a `Content-Length`, sent in two parts: the first `first` bytes, then (once
    /// `open` says so, checked every 10 ms for at most 10 s) the rest. If `open` never says so,
    /// the connection is closed with the body unfinished.
    Gated { content_type: String, body: Arc<Vec<u8>>, first: usize, open: Arc<dyn Fn() -> bool + Send + Sync> },
}

impl Reply {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::Full { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }
    pub fn status(status: u16) -> Self {
        Self::Full { status, headers: vec![], body: b"no".to_vec() }
    }
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::Full { status, headers: vec![("Location".into(), location.into())], body: vec![] }
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A running server; it stops with the test's runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub connections: Arc<AtomicUsize>,
    /// Body bytes the server managed to write (for floods and trickles).
    pub bytes_sent: Arc<AtomicU64>,
    /// Set when a flood or trickle stopped (peer closed or time up).
    pub stream_done: Arc<AtomicBool>,
}

impl TestServer {
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            connections: Arc::default(),
            bytes_sent: Arc::default(),
            stream_done: Arc::default(),
        };
        let handler: Arc<Handler> = Arc::new(handler);
        let (requests, connections, sent, done) = (
            server.requests.clone(),
            server.connections.clone(),
            server.bytes_sent.clone(),
            server.stream_done.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (handler, requests, sent, done) = (handler.clone(), requests.clone(), sent.clone(), done.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &*handler, &requests, &sent, &done).await;
                });
            }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (bounded) until a flood or trickle has stopped.
    pub async fn wait_stream_done(&self) {
        let start = Instant::now();
        while !self.stream_done.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(10), "the server kept streaming");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Recorded>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(Some(Recorded { method, path, headers, body }))
}

async fn serve(
    mut stream: TcpStream,
    handler: &Handler,
    requests: &Mutex<Vec<Recorded>>,
    sent: &AtomicU64,
    done: &AtomicBool,
) -> std::io::Result<()> {
    // One request per connection: the client under test never reuses connections.
    let Some(request) = read_request(&mut stream).await? else { return Ok(()) };
    requests.lock().unwrap().push(request.clone());
    match handler(&request) {
        Reply::Full { status, headers, body } => {
            let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
            for (n, v) in headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
            stream.shutdown().await?;
        }
        Reply::TrickleBody { interval, for_at_most } => {
            let result = async {
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n").await?;
                let start = Instant::now();
                while start.elapsed() < for_at_most {
                    stream.write_all(b"x").await?;
                    sent.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(interval).await;
                }
                std::io::Result::Ok(())
            }
            .await;
            done.store(true, Ordering::SeqCst);
            result?;
        }
        Reply::TrickleHead { interval, for_at_most } => {
            let start = Instant::now();
            let head = b"HTTP/1.1 200 OK\r\nX-Padding: ".iter().chain(std::iter::repeat(&b'a'));
            for byte in head {
                if start.elapsed() >= for_at_most || stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(interval).await;
            }
            done.store(true, Ordering::SeqCst);
        }
        Reply::Gated { content_type, body, first, open } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let result = async {
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&body[..first]).await?;
                sent.fetch_add(first as u64, Ordering::SeqCst);
                let start = Instant::now();
                while !open() {
                    if start.elapsed() > Duration::from_secs(10) {
                        return Err(std::io::Error::other("the gate never opened"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                stream.write_all(&body[first..]).await?;
                sent.fetch_add((body.len() - first) as u64, Ordering::SeqCst);
                stream.shutdown().await
            }
            .await;
            done.store(true, Ordering::SeqCst);
            result?;
        }
        Reply::Flood { total, chunk, declare_length } => {
            let head = if declare_length {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned()
            };
            let block = vec![b'z'; chunk];
            let result = async {
                stream.write_all(head.as_bytes()).await?;
                let mut written = 0u64;
                while written < total {
                    stream.write_all(&block).await?;
                    written += chunk as u64;
                    sent.fetch_add(chunk as u64, Ordering::SeqCst);
                }
                stream.shutdown().await
            }
            .await;
            done.store(true, Ordering::SeqCst);
            result?;
        }
    }
    Ok(())
}
