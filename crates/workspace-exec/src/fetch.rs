//! The SSRF-safe HTTP client: the only way this crate (and the blocks it serves) reaches a URL
//! that came from user or model input.
//!
//! Each hop of a request goes through the same steps:
//! 1. the URL must be `http` or `https` and carry no credentials;
//! 2. the host is resolved once, through the injectable [`Resolver`] (an IP literal is taken
//!    as is, after the WHATWG parser normalised forms such as `0x7f.1` or `2130706433`);
//! 3. **every** resolved address is checked against the address policy ([`crate::address`]):
//!    one refused address refuses the host, so a resolver answering a public and a private
//!    address cannot smuggle the private one in;
//! 4. the TCP connection goes to one of those checked addresses. There is no second lookup,
//!    no connection pool and no proxy, so what was checked is what is connected to;
//! 5. a redirect starts the next hop at step 1; at most [`FetchConfig::max_redirects`] are
//!    followed, and a redirect to another origin drops every caller header except
//!    `Accept` and `Content-Type` (so `Authorization`, cookies and API keys stay behind).
//!
//! Connect, per-read and whole-request timeouts apply, and the body is counted while it streams:
//! the connection is dropped as soon as it passes the cap. [`Fetcher::get_stream`] hands the body
//! over as a stream (what `store_media_file` writes into a workspace, never holding it whole);
//! [`Fetcher::get`] and [`Fetcher::send`] collect that same stream, so the cap and the timeouts
//! are enforced in one place.
//!
//! Two ways past step 3, both explicit operator decisions: [`FetchConfig::allowed_ranges`] (an
//! allow-list of addresses, for every URL this fetcher fetches), and
//! [`Fetcher::trusting_origin`], which trusts one origin (scheme, host and port) that came from
//! the operator's configuration, such as a block's API endpoint. A trusted origin is exact: a
//! redirect or a URL in a response that leads to any other origin is checked as usual.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::rustls;
use url::{Host, Origin, Url};

use crate::address::{AddressPolicy, IpRange};

/// Why a fetch failed. Every refusal names the rule that refused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not a URL at all.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Only `http` and `https` are fetched.
    #[error("URL scheme `{0}` is not allowed (only http and https)")]
    UnsupportedScheme(String),
    /// `user:password@` in a URL is refused; send credentials as headers.
    #[error("credentials in URLs are not accepted")]
    CredentialsInUrl,
    /// The host resolves to (or is) an address the policy refuses.
    #[error("refusing to connect to {host}: {addr} is {reason}")]
    BlockedAddress {
        /// The host as written in the URL.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Which range it falls in.
        reason: &'static str,
    },
    /// Name resolution failed or found nothing.
    #[error("cannot resolve {host}: {message}")]
    Resolve {
        /// The host.
        host: String,
        /// What the resolver said.
        message: String,
    },
    /// No checked address accepted a connection.
    #[error("cannot connect to {host}: {source}")]
    Connect {
        /// The host.
        host: String,
        /// The last connection error.
        source: io::Error,
    },
    /// A timeout fired.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// More redirects than allowed.
    #[error("too many redirects (the limit is {max})")]
    TooManyRedirects {
        /// The configured limit.
        max: usize,
    },
    /// A redirect status without a usable `Location`.
    #[error("redirect without a valid Location header")]
    BadRedirect,
    /// The body is larger than the cap; reading stopped there.
    #[error("response body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The server answered with a non-success status (only from [`Fetcher::get`]).
    #[error("server answered {status} for {url}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The URL that answered.
        url: String,
    },
    /// TLS setup or handshake failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The HTTP exchange failed.
    #[error("HTTP error: {0}")]
    Http(String),
}

/// Resolves a host name to addresses. The fetcher calls it exactly once per hop and connects
/// only to what it returned (after checking it). Inject your own for tests or a custom DNS.
#[async_trait]
pub trait Resolver: Send + Sync + fmt::Debug {
    /// All addresses of `host` (a domain name, never an IP literal).
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|addr| addr.ip()).collect())
    }
}

/// A fixed table of names to addresses; unknown names fail. Useful in tests.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    entries: Vec<(String, Vec<IpAddr>)>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `host` → `addrs` (host compared case-insensitively).
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.entries.push((host.to_ascii_lowercase(), addrs.into_iter().collect()));
        self
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let host = host.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, addrs)| addrs.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host in the static table"))
    }
}

/// How the fetcher behaves. `Default` is the safe production setting: public addresses only.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Time to establish TCP (and TLS) to one address.
    pub connect_timeout: Duration,
    /// Longest wait for the response head or for the next piece of the body.
    pub read_timeout: Duration,
    /// Longest time for the whole request, redirects and body included (defeats slow-loris).
    pub total_timeout: Duration,
    /// Redirects followed before giving up (default 5).
    pub max_redirects: usize,
    /// Largest body read, in bytes (default 100 MiB).
    pub max_body_bytes: u64,
    /// Non-public ranges that may be reached anyway. Empty by default; only explicit
    /// configuration (for example a test's own loopback server) adds to it.
    pub allowed_ranges: Vec<IpRange>,
    /// The name resolver.
    pub resolver: Arc<dyn Resolver>,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_redirects: 5,
            max_body_bytes: 100 * 1024 * 1024,
            allowed_ranges: Vec::new(),
            resolver: Arc::new(SystemResolver),
            user_agent: concat!("workspace-exec/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A request for [`Fetcher::send`]. Build it with [`FetchRequest::get`] or [`FetchRequest::post`].
#[derive(Debug, Clone)]
pub struct FetchRequest {
    method: Method,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl FetchRequest {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self { method: Method::GET, url: url.into(), headers: Vec::new(), body: Bytes::new() }
    }

    /// A POST of `body` with the given content type.
    pub fn post(url: impl Into<String>, content_type: &str, body: impl Into<Bytes>) -> Result<Self, FetchError> {
        Self { method: Method::POST, url: url.into(), headers: Vec::new(), body: body.into() }
            .header(header::CONTENT_TYPE.as_str(), content_type)
    }

    /// Adds a header. Headers other than `Accept` and `Content-Type` are dropped when a
    /// redirect leads to another origin.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, FetchError> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| FetchError::Http(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| FetchError::Http(e.to_string()))?;
        self.headers.push((name, value));
        Ok(self)
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// The final status.
    pub status: u16,
    /// The URL that answered (after redirects).
    pub url: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (at most the configured cap).
    pub body: Bytes,
}

/// A response body as it arrives, each chunk checked against the cap and the timeouts.
pub type FetchBody = BoxStream<'static, Result<Bytes, FetchError>>;

/// A response whose body is still on the wire ([`Fetcher::get_stream`]). Dropping it (or its
/// body) closes the connection.
pub struct FetchStream {
    /// The final status.
    pub status: u16,
    /// The URL that answered (after redirects).
    pub url: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Content-Length` the server declared, if any (never more than the cap: a larger one
    /// was refused before the body was read).
    pub content_length: Option<u64>,
    /// The body: each item is a piece as it arrived. It ends with [`FetchError::TooLarge`] as
    /// soon as the bytes so far pass the cap, and with [`FetchError::Timeout`] when the server
    /// goes silent for the read timeout or the whole request passes the total timeout.
    pub body: FetchBody,
}

impl fmt::Debug for FetchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchStream")
            .field("status", &self.status)
            .field("url", &self.url)
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl FetchStream {
    /// The whole body in memory (it is at most the cap).
    pub async fn collect(self) -> Result<FetchResponse, FetchError> {
        let Self { status, url, content_type, content_length, mut body } = self;
        let mut buf = BytesMut::with_capacity(content_length.unwrap_or(0).min(1 << 20) as usize);
        while let Some(piece) = body.next().await {
            buf.extend_from_slice(&piece?);
        }
        Ok(FetchResponse { status, url, content_type, body: buf.freeze() })
    }
}

/// The SSRF-safe client. Cheap to clone; one per executor is enough.
#[derive(Debug, Clone)]
pub struct Fetcher {
    config: Arc<FetchConfig>,
    policy: Arc<AddressPolicy>,
    /// Origins reached whatever their addresses: see [`Fetcher::trusting_origin`].
    trusted: Arc<[Origin]>,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new(FetchConfig::default())
    }
}

impl Fetcher {
    /// A fetcher with this configuration.
    pub fn new(config: FetchConfig) -> Self {
        let policy = AddressPolicy { allowed: config.allowed_ranges.clone() };
        Self { config: Arc::new(config), policy: Arc::new(policy), trusted: Arc::from([]) }
    }

    /// This fetcher, also trusting the origin of `url` (its scheme, host and port): requests to
    /// that origin are sent whatever addresses its host resolves to, loopback and private ones
    /// included. Everything else is checked as before, redirects and URLs from the trusted
    /// server's answers too (unless they point at that same origin).
    ///
    /// Only for a URL the operator configured (an OpenAI-compatible server on the same machine
    /// or network, say), never for a URL from a user, a model or a response: those are what the
    /// address checks exist for.
    pub fn trusting_origin(&self, url: &str) -> Result<Self, FetchError> {
        let origin = parse_url(url)?.origin();
        let trusted: Vec<Origin> = self.trusted.iter().cloned().chain(std::iter::once(origin)).collect();
        Ok(Self { trusted: trusted.into(), ..self.clone() })
    }

    /// The configuration in force.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// GETs `url`; a final status outside 2xx is [`FetchError::Status`].
    pub async fn get(&self, url: &str) -> Result<FetchResponse, FetchError> {
        self.get_stream(url).await?.collect().await
    }

    /// GETs `url` and hands the body over as it arrives (see [`FetchStream::body`] for the cap
    /// and the timeouts that still apply to it); a final status outside 2xx is
    /// [`FetchError::Status`].
    pub async fn get_stream(&self, url: &str) -> Result<FetchStream, FetchError> {
        let response = self.send_stream(FetchRequest::get(url)).await?;
        if !(200..300).contains(&response.status) {
            return Err(FetchError::Status { status: response.status, url: response.url });
        }
        Ok(response)
    }

    /// Sends a request, following redirects, and returns the final response whatever its status.
    pub async fn send(&self, request: FetchRequest) -> Result<FetchResponse, FetchError> {
        self.send_stream(request).await?.collect().await
    }

    /// [`send`](Self::send), with the body left on the wire.
    pub async fn send_stream(&self, request: FetchRequest) -> Result<FetchStream, FetchError> {
        let deadline = Instant::now() + self.config.total_timeout;
        tokio::time::timeout_at(deadline, self.send_inner(request, deadline)).await.map_err(|_| total_timeout())?
    }

    async fn send_inner(&self, request: FetchRequest, deadline: Instant) -> Result<FetchStream, FetchError> {
        let FetchRequest { mut method, url, mut headers, mut body } = request;
        let mut url = parse_url(&url)?;
        let mut redirects = 0;
        loop {
            let hop = self.one_hop(&url, &method, &headers, &body).await?;
            let status = hop.response.status();
            let location = hop.response.headers().get(header::LOCATION).cloned();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED || status == StatusCode::MULTIPLE_CHOICES
            {
                let content_type =
                    hop.response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (content_length, body) = self.body_stream(hop, deadline)?;
                return Ok(FetchStream {
                    status: status.as_u16(),
                    url: url.into(),
                    content_type,
                    content_length,
                    body,
                });
            }
            drop(hop);
            if redirects == self.config.max_redirects {
                return Err(FetchError::TooManyRedirects { max: self.config.max_redirects });
            }
            redirects += 1;
            let location = location.as_ref().and_then(|v| v.to_str().ok()).ok_or(FetchError::BadRedirect)?;
            let next = url.join(location).map_err(|_| FetchError::BadRedirect)?;
            check_url(&next)?;
            if next.origin() != url.origin() {
                headers.retain(|(name, _)| name == header::ACCEPT || name == header::CONTENT_TYPE);
            }
            let keeps_method = matches!(status, StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT);
            if !keeps_method && method != Method::HEAD {
                method = Method::GET;
                body = Bytes::new();
                headers.retain(|(name, _)| name != header::CONTENT_TYPE);
            }
            tracing::debug!(from = %url, to = %next, %status, "following redirect");
            url = next;
        }
    }

    /// Resolves, checks, connects to a checked address and exchanges one request.
    async fn one_hop(
        &self,
        url: &Url,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: &Bytes,
    ) -> Result<Hop, FetchError> {
        let host = url.host().ok_or_else(|| FetchError::InvalidUrl("the URL has no host".into()))?;
        let host_text = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().ok_or_else(|| FetchError::InvalidUrl("the URL has no port".into()))?;
        let trusted = self.trusted.contains(&url.origin());
        let addrs = self.checked_addrs(&host, &host_text, trusted).await?;
        let stream = self.connect(&addrs, port, &host_text).await?;

        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url[url::Position::BeforePath..url::Position::AfterQuery])
            .header(header::HOST, host_header(url))
            .header(header::USER_AGENT, self.config.user_agent.as_str())
            .header(header::ACCEPT_ENCODING, "identity");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(Full::new(body.clone())).map_err(|e| FetchError::Http(e.to_string()))?;

        if url.scheme() == "https" {
            let server_name = match host {
                Host::Domain(domain) => rustls::pki_types::ServerName::try_from(domain.to_owned())
                    .map_err(|e| FetchError::Tls(e.to_string()))?,
                Host::Ipv4(ip) => rustls::pki_types::ServerName::IpAddress(IpAddr::V4(ip).into()),
                Host::Ipv6(ip) => rustls::pki_types::ServerName::IpAddress(IpAddr::V6(ip).into()),
            };
            let connector = tokio_rustls::TlsConnector::from(tls_config()?);
            let tls = tokio::time::timeout(self.config.connect_timeout, connector.connect(server_name, stream))
                .await
                .map_err(|_| FetchError::Timeout("in the TLS handshake"))?
                .map_err(|e| FetchError::Tls(e.to_string()))?;
            self.exchange(TokioIo::new(tls), request).await
        } else {
            self.exchange(TokioIo::new(stream), request).await
        }
    }

    async fn exchange<T>(&self, io: T, request: Request<Full<Bytes>>) -> Result<Hop, FetchError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(io).await.map_err(|e| FetchError::Http(e.to_string()))?;
        let connection = AbortOnDrop(tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "fetch connection ended with an error");
            }
        }));
        let response = tokio::time::timeout(self.config.read_timeout, sender.send_request(request))
            .await
            .map_err(|_| FetchError::Timeout("waiting for the response head"))?
            .map_err(|e| FetchError::Http(e.to_string()))?;
        Ok(Hop { response, _connection: connection })
    }

    /// Every address of the host, each one checked (unless the origin is `trusted`); any refused
    /// address refuses the host.
    async fn checked_addrs(
        &self,
        host: &Host<&str>,
        host_text: &str,
        trusted: bool,
    ) -> Result<Vec<IpAddr>, FetchError> {
        let addrs = match host {
            Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
            Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
            Host::Domain(domain) => {
                let resolve = self.config.resolver.resolve(domain);
                tokio::time::timeout(self.config.connect_timeout, resolve)
                    .await
                    .map_err(|_| FetchError::Timeout("resolving the host name"))?
                    .map_err(|e| FetchError::Resolve { host: host_text.to_owned(), message: e.to_string() })?
            }
        };
        if addrs.is_empty() {
            return Err(FetchError::Resolve { host: host_text.to_owned(), message: "no addresses".into() });
        }
        if trusted {
            tracing::debug!(host = host_text, ?addrs, "fetching from a trusted origin: addresses not checked");
            return Ok(addrs);
        }
        for addr in &addrs {
            self.policy.check(*addr).map_err(|reason| FetchError::BlockedAddress {
                host: host_text.to_owned(),
                addr: *addr,
                reason,
            })?;
        }
        Ok(addrs)
    }

    /// Connects to the first checked address that answers.
    async fn connect(&self, addrs: &[IpAddr], port: u16, host: &str) -> Result<TcpStream, FetchError> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for ip in addrs {
            let addr = SocketAddr::new(*ip, port);
            match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(err)) => last = err,
                Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {addr} timed out")),
            }
        }
        if last.kind() == io::ErrorKind::TimedOut {
            return Err(FetchError::Timeout("connecting"));
        }
        Err(FetchError::Connect { host: host.to_owned(), source: last })
    }

    /// The body of the final hop as a stream that refuses it as soon as it passes the cap (a
    /// declared length over the cap is refused before any byte is read) and stops at the read
    /// and total timeouts. The stream owns the connection.
    fn body_stream(&self, hop: Hop, deadline: Instant) -> Result<(Option<u64>, FetchBody), FetchError> {
        let limit = self.config.max_body_bytes;
        let declared = hop
            .response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        struct Reading {
            body: Incoming,
            _connection: AbortOnDrop,
            received: u64,
        }
        let read_timeout = self.config.read_timeout;
        let Hop { response, _connection } = hop;
        let start = Reading { body: response.into_body(), _connection, received: 0 };
        let stream = futures::stream::unfold(Some(start), move |state| async move {
            let mut state = state?;
            loop {
                let by = (Instant::now() + read_timeout).min(deadline);
                let frame = match tokio::time::timeout_at(by, state.body.frame()).await {
                    Ok(frame) => frame,
                    Err(_) if by == deadline => return Some((Err(total_timeout()), None)),
                    Err(_) => return Some((Err(FetchError::Timeout("reading the response body")), None)),
                };
                let frame = match frame? {
                    Ok(frame) => frame,
                    Err(e) => return Some((Err(FetchError::Http(e.to_string())), None)),
                };
                // Trailers carry no body bytes: wait for the next frame.
                let Ok(data) = frame.into_data() else { continue };
                state.received += data.len() as u64;
                if state.received > limit {
                    // Dropping the state closes the connection: the rest is never read.
                    return Some((Err(FetchError::TooLarge { limit }), None));
                }
                return Some((Ok(data), Some(state)));
            }
        });
        Ok((declared, stream.fuse().boxed()))
    }
}

fn total_timeout() -> FetchError {
    FetchError::Timeout("waiting for the whole request (total timeout)")
}

/// One exchanged request; dropping it closes the connection.
struct Hop {
    response: http::Response<Incoming>,
    _connection: AbortOnDrop,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn parse_url(input: &str) -> Result<Url, FetchError> {
    let url = Url::parse(input).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
    check_url(&url)?;
    Ok(url)
}

fn check_url(url: &Url) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::UnsupportedScheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::CredentialsInUrl);
    }
    if url.host().is_none() {
        return Err(FetchError::InvalidUrl("the URL has no host".into()));
    }
    Ok(())
}

fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The TLS client configuration: ring, the platform's root certificates, built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, FetchError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no trusted root certificates found on this system".to_owned());
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(FetchError::Tls)
}
