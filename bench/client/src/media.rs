//! The remote-media scenario: a stand-in for an OpenAI-compatible images API on loopback whose
//! answer is the URL of a large image it serves itself (generated as it is sent, never held in
//! memory), and the call that makes our server store that URL through `run_block` →
//! `store_media_file`, while the server's peak RSS is watched.

use std::convert::Infallible;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::http::{Conn, Target, expect_status};

/// A PNG signature, so the stored file is sniffed and named as an image.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Serves, until killed: `POST /v1/images/generations` → `{"data": [{"url": ".../big.png"}]}`, and
/// `GET /big.png` → `size` bytes (a PNG signature, then the pattern), with a `Content-Length`.
pub async fn serve(port: u16, size: u64, pattern: Bytes) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.with_context(|| format!("binding port {port}"))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let pattern = pattern.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let pattern = pattern.clone();
                async move { Ok::<_, Infallible>(answer(&req, port, size, &pattern)) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn answer(req: &Request<Incoming>, port: u16, size: u64, pattern: &Bytes) -> Response<BoxBody<Bytes, Infallible>> {
    let full = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)).boxed())
            .expect("a valid response")
    };
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/images/generations") => {
            let url = format!("http://127.0.0.1:{port}/big.png");
            full(StatusCode::OK, json!({"created": 0, "data": [{"url": url}]}).to_string())
        }
        (&Method::GET, "/big.png") => {
            let magic = Bytes::from_static(PNG_MAGIC);
            let rest = size.saturating_sub(magic.len() as u64);
            let (pattern, chunk) = (pattern.clone(), pattern.len() as u64);
            let body = std::iter::once(magic)
                .chain((0..rest.div_ceil(chunk)).map(move |i| pattern.slice(..(rest - i * chunk).min(chunk) as usize)))
                .map(|b| Ok::<_, Infallible>(Frame::data(b)));
            Response::builder()
                .header(header::CONTENT_TYPE, "image/png")
                .header(header::CONTENT_LENGTH, size)
                .body(StreamBody::new(futures::stream::iter(body)).boxed())
                .expect("a valid response")
        }
        _ => full(StatusCode::NOT_FOUND, "{}".into()),
    }
}

/// Calls `run_block` (the image block) over `/mcp` and checks that the image was stored whole.
/// Returns the seconds it took and the stored size.
pub async fn store(base: &str, headers: &[(String, String)], session: &str, expect: u64) -> anyhow::Result<Value> {
    let mcp = Target::parse(&format!("{base}/mcp?session={session}"))?;
    let mut conn = Conn::open(&mcp.addr).await?;
    let mut hdrs = headers.to_vec();
    hdrs.push(("accept".into(), "application/json, text/event-stream".into()));
    hdrs.push(("content-type".into(), "application/json".into()));
    hdrs.push(("mcp-protocol-version".into(), "2025-06-18".into()));
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_block",
        "arguments": {"block_id": "openai_image_generation", "input": {"prompt": "a large image"}}}});
    let body = Bytes::from(call.to_string());
    let len = body.len() as u64;
    let started = Instant::now();
    let answer = conn.send(Method::POST, &mcp.path, &hdrs, Full::new(body).boxed(), Some(len), true).await?;
    let seconds = started.elapsed().as_secs_f64();
    expect_status(&answer, &[200], "run_block")?;
    let message: Value = serde_json::from_slice(&answer.head).context("the MCP answer is not JSON")?;
    let result = &message["result"];
    if result["isError"] != json!(false) {
        bail!("run_block failed: {result}");
    }
    let image = result["structuredContent"]["output"]["image"].as_str().context("no image in the output")?;
    let id =
        image.strip_prefix("workspace://").and_then(|r| r.split('#').next()).context("not a workspace reference")?;
    let info_target = Target::parse(&format!("{base}/api/workspace/files/{id}"))?;
    let info = conn.send(Method::GET, &info_target.path, headers, crate::http::empty(), None, true).await?;
    expect_status(&info, &[200], "file info")?;
    let info: Value = serde_json::from_slice(&info.head).context("file info is not JSON")?;
    let size = info["size_bytes"].as_u64().context("file info without size")?;
    Ok(json!({"seconds": seconds, "bytes": size, "mbps": size as f64 / 1e6 / seconds.max(1e-9),
        "stored": size == expect, "mime_type": info["mime_type"]}))
}
