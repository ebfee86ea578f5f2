//! The SSRF-safe fetcher against servers this test starts on loopback (and addresses it must
//! refuse without ever connecting).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Reply, TestServer};
use workspace_exec::{FetchConfig, FetchError, FetchRequest, Fetcher, Resolver, StaticResolver};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Loopback explicitly allowed: how a test reaches its own server.
fn loopback_config() -> FetchConfig {
    FetchConfig { allowed_ranges: vec!["127.0.0.1/32".parse().unwrap()], ..FetchConfig::default() }
}

fn assert_blocked(result: Result<impl std::fmt::Debug, FetchError>, expected: &str) {
    match result {
        Err(FetchError::BlockedAddress { addr, .. }) => assert_eq!(addr, ip(expected)),
        other => panic!("expected a refusal of {expected}, got {other:?}"),
    }
}

#[tokio::test]
async fn default_policy_refuses_private_targets_without_connecting() {
    let server = TestServer::start(|_| Reply::ok("text/plain", "secret")).await;
    let resolver = StaticResolver::new()
        .with("internal.example", [ip("10.0.0.7")])
        .with("mixed.example", [ip("93.184.216.34"), ip("192.168.1.10")])
        .with("mapped.example", [ip("::ffff:127.0.0.1")]);
    let fetcher = Fetcher::new(FetchConfig { resolver: Arc::new(resolver), ..FetchConfig::default() });
    let cases = [
        (server.url("/"), "127.0.0.1"),
        ("http://10.0.0.1/".into(), "10.0.0.1"),
        ("http://[::1]/".into(), "::1"),
        (format!("http://0x7f.1:{}/", server.port()), "127.0.0.1"),
        (format!("http://2130706433:{}/", server.port()), "127.0.0.1"),
        ("http://017700000001/".into(), "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/".into(), "169.254.169.254"),
        ("http://100.64.0.1/".into(), "100.64.0.1"),
        ("http://[::ffff:127.0.0.1]/".into(), "::ffff:127.0.0.1"),
        ("http://[::ffff:a9fe:a9fe]/".into(), "::ffff:169.254.169.254"),
        ("http://[::ffff:10.0.0.1]/".into(), "::ffff:10.0.0.1"),
        ("http://[fd00:ec2::254]/".into(), "fd00:ec2::254"),
        ("http://[fe80::1]/".into(), "fe80::1"),
        ("https://internal.example/".into(), "10.0.0.7"),
        ("http://mixed.example/".into(), "192.168.1.10"),
        ("http://mapped.example/".into(), "::ffff:127.0.0.1"),
    ];
    for (url, addr) in cases {
        assert_blocked(fetcher.get(&url).await, addr);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 0, "no refused address was ever connected to");

    // The system resolver resolves `localhost` to loopback, which is refused too.
    let system = Fetcher::default();
    let err = system.get(&format!("http://localhost:{}/", server.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::BlockedAddress { .. }), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn only_http_and_https_without_credentials() {
    let fetcher = Fetcher::default();
    for url in ["ftp://example.com/a", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)"] {
        let err = fetcher.get(url).await.unwrap_err();
        assert!(matches!(err, FetchError::UnsupportedScheme(_)), "{url}: {err}");
    }
    let err = fetcher.get("http://user:pw@example.com/").await.unwrap_err();
    assert!(matches!(err, FetchError::CredentialsInUrl), "{err}");
    assert!(matches!(fetcher.get("not a url").await, Err(FetchError::InvalidUrl(_))));
}

#[tokio::test]
async fn allowed_loopback_fetch_works_and_reports_status() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/cat.png" => Reply::ok("image/png", b"\x89PNG-data".to_vec()),
        _ => Reply::status(404),
    })
    .await;
    let fetcher = Fetcher::new(loopback_config());
    let response = fetcher.get(&server.url("/cat.png")).await.unwrap();
    assert_eq!((response.status, response.content_type.as_deref()), (200, Some("image/png")));
    assert_eq!(&response.body[..], b"\x89PNG-data");
    let err = fetcher.get(&server.url("/missing")).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }), "{err}");
    // `send` hands back any final status.
    assert_eq!(fetcher.send(FetchRequest::get(server.url("/missing"))).await.unwrap().status, 404);
}

#[tokio::test]
async fn redirects_are_rechecked_at_every_hop() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/metadata" => Reply::redirect(302, "http://169.254.169.254/latest/meta-data/iam"),
        "/mapped" => Reply::redirect(301, "http://[::ffff:a9fe:a9fe]/"),
        "/by-name" => Reply::redirect(307, "http://internal.example/"),
        "/scheme" => Reply::redirect(302, "file:///etc/passwd"),
        "/empty" => Reply::Full { status: 302, headers: vec![], body: vec![] },
        _ => Reply::ok("text/plain", "fine"),
    })
    .await;
    let resolver = StaticResolver::new().with("internal.example", [ip("10.1.2.3")]);
    let fetcher = Fetcher::new(FetchConfig { resolver: Arc::new(resolver), ..loopback_config() });
    assert_blocked(fetcher.get(&server.url("/metadata")).await, "169.254.169.254");
    assert_blocked(fetcher.get(&server.url("/mapped")).await, "::ffff:169.254.169.254");
    assert_blocked(fetcher.get(&server.url("/by-name")).await, "10.1.2.3");
    assert!(matches!(fetcher.get(&server.url("/scheme")).await, Err(FetchError::UnsupportedScheme(_))));
    assert!(matches!(fetcher.get(&server.url("/empty")).await, Err(FetchError::BadRedirect)));
}

/// An operator-configured endpoint on loopback is reachable through `trusting_origin`, and only
/// it: another port, another spelling of the host, a redirect away and the untrusted fetcher are
/// all still refused.
#[tokio::test]
async fn a_trusted_origin_is_reachable_and_nothing_else() {
    let other = TestServer::start(|_| Reply::ok("text/plain", "internal")).await;
    let other_url = other.url("/secret");
    let trusted_server = TestServer::start(move |req| match req.path.as_str() {
        "/to-self" => Reply::redirect(302, "/image"),
        "/to-other" => Reply::redirect(302, &other_url),
        "/to-metadata" => Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"),
        _ => Reply::ok("image/png", b"\x89PNG-data".to_vec()),
    })
    .await;
    let base = format!("http://127.0.0.1:{}", trusted_server.port());
    let untrusted = Fetcher::default();
    let fetcher = untrusted.trusting_origin(&format!("{base}/v1/ignored/path")).unwrap();

    let response = fetcher.get(&trusted_server.url("/image")).await.unwrap();
    assert_eq!(&response.body[..], b"\x89PNG-data");
    let post = FetchRequest::post(format!("{base}/v1/images/generations"), "application/json", "{}").unwrap();
    assert_eq!(fetcher.send(post).await.unwrap().status, 200);
    assert_eq!(&fetcher.get(&trusted_server.url("/to-self")).await.unwrap().body[..], b"\x89PNG-data");

    // Everything else is checked as before.
    assert_blocked(fetcher.get(&other.url("/secret")).await, "127.0.0.1");
    assert_blocked(fetcher.get(&trusted_server.url("/to-other")).await, "127.0.0.1");
    assert_blocked(fetcher.get(&trusted_server.url("/to-metadata")).await, "169.254.169.254");
    assert_blocked(fetcher.get(&format!("http://[::1]:{}/image", trusted_server.port())).await, "::1");
    let err = fetcher.get(&format!("http://localhost:{}/image", trusted_server.port())).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "another host name is another origin: {err}");
    let err = fetcher.get(&format!("https://127.0.0.1:{}/image", trusted_server.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::BlockedAddress { .. }), "another scheme is another origin: {err}");
    assert_eq!(other.connections.load(Ordering::SeqCst), 0, "the other server was never contacted");
    // The fetcher it was derived from still trusts nothing.
    assert_blocked(untrusted.get(&trusted_server.url("/image")).await, "127.0.0.1");

    // Only http(s) URLs without credentials can be trusted.
    assert!(matches!(untrusted.trusting_origin("file:///etc/passwd"), Err(FetchError::UnsupportedScheme(_))));
    assert!(matches!(untrusted.trusting_origin("not a url"), Err(FetchError::InvalidUrl(_))));
    assert!(matches!(untrusted.trusting_origin("http://u:p@127.0.0.1/"), Err(FetchError::CredentialsInUrl)));
}

#[tokio::test]
async fn at_most_five_redirects_are_followed() {
    let server = TestServer::start(|req| {
        let n: u32 = req.path.trim_start_matches("/r/").parse().unwrap_or(0);
        if n == 0 { Reply::ok("text/plain", "done") } else { Reply::redirect(302, &format!("/r/{}", n - 1)) }
    })
    .await;
    let fetcher = Fetcher::new(loopback_config());
    let ok = fetcher.get(&server.url("/r/5")).await.unwrap();
    assert_eq!((&ok.body[..], ok.url.as_str()), (&b"done"[..], server.url("/r/0").as_str()));
    assert_eq!(server.recorded().len(), 6);

    let err = fetcher.get(&server.url("/r/6")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects { max: 5 }), "{err}");
    // 6 more requests: the original and 5 redirects; the 6th redirect was not followed.
    assert_eq!(server.recorded().len(), 12);
    assert_eq!(server.recorded().iter().filter(|r| r.path == "/r/0").count(), 1);
}

#[tokio::test]
async fn credentials_are_dropped_on_cross_origin_redirects_only() {
    let port_holder = Arc::new(AtomicUsize::new(0));
    let port = port_holder.clone();
    let server = TestServer::start(move |req| match req.path.as_str() {
        "/cross" => Reply::redirect(302, &format!("http://b.test:{}/land", port.load(Ordering::SeqCst))),
        "/same" => Reply::redirect(302, "/land"),
        _ => Reply::ok("text/plain", "landed"),
    })
    .await;
    port_holder.store(usize::from(server.port()), Ordering::SeqCst);
    let resolver = StaticResolver::new().with("a.test", [ip("127.0.0.1")]).with("b.test", [ip("127.0.0.1")]);
    let fetcher = Fetcher::new(FetchConfig { resolver: Arc::new(resolver), ..loopback_config() });
    let request = |path: &str| {
        FetchRequest::get(format!("http://a.test:{}{path}", server.port()))
            .header("Authorization", "Bearer secret")
            .unwrap()
            .header("Cookie", "session=1")
            .unwrap()
            .header("X-Api-Key", "k")
            .unwrap()
            .header("Accept", "image/*")
            .unwrap()
    };
    fetcher.send(request("/cross")).await.unwrap();
    fetcher.send(request("/same")).await.unwrap();
    let seen = server.recorded();
    assert_eq!(seen.len(), 4);
    let (first, cross_land, same_land) = (&seen[0], &seen[1], &seen[3]);
    assert_eq!(first.header("authorization"), Some("Bearer secret"));
    assert_eq!(first.header("host"), Some(format!("a.test:{}", server.port()).as_str()));
    assert_eq!(cross_land.header("host"), Some(format!("b.test:{}", server.port()).as_str()));
    for header in ["authorization", "cookie", "x-api-key"] {
        assert_eq!(cross_land.header(header), None, "{header} must not cross origins");
    }
    assert_eq!(cross_land.header("accept"), Some("image/*"));
    assert_eq!(same_land.header("authorization"), Some("Bearer secret"));
    assert_eq!(same_land.header("cookie"), Some("session=1"));
}

#[tokio::test]
async fn post_redirects_follow_the_method_rules() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/see-other" => Reply::redirect(303, "/echo"),
        "/temporary" => Reply::redirect(307, "/echo"),
        _ => Reply::ok("text/plain", format!("{} {}", req.method, String::from_utf8_lossy(&req.body))),
    })
    .await;
    let fetcher = Fetcher::new(loopback_config());
    let post = |path: &str| FetchRequest::post(server.url(path), "text/plain", "payload").unwrap();
    assert_eq!(&fetcher.send(post("/see-other")).await.unwrap().body[..], b"GET ");
    assert_eq!(&fetcher.send(post("/temporary")).await.unwrap().body[..], b"POST payload");
}

/// Answers its first lookup with loopback and every later one with a private address, so a
/// second lookup (DNS rebinding) would be caught.
#[derive(Debug, Default)]
struct RebindingResolver {
    calls: AtomicUsize,
}

#[async_trait]
impl Resolver for RebindingResolver {
    async fn resolve(&self, _host: &str) -> io::Result<Vec<IpAddr>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(vec![if call == 0 { ip("127.0.0.1") } else { ip("10.9.9.9") }])
    }
}

#[tokio::test]
async fn the_connection_goes_to_the_checked_address_after_one_lookup() {
    let server = TestServer::start(|_| Reply::ok("text/plain", "pinned")).await;
    let resolver = Arc::new(RebindingResolver::default());
    let fetcher = Fetcher::new(FetchConfig { resolver: resolver.clone(), ..loopback_config() });
    let response = fetcher.get(&format!("http://pin.test:{}/", server.port())).await.unwrap();
    assert_eq!(&response.body[..], b"pinned");
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1, "exactly one lookup per hop");
    assert_eq!(server.recorded()[0].header("host"), Some(format!("pin.test:{}", server.port()).as_str()));
    // A second request resolves again and is refused at the rebound address.
    assert_blocked(fetcher.get(&format!("http://pin.test:{}/", server.port())).await, "10.9.9.9");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_loris_servers_time_out() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/body" => Reply::TrickleBody { interval: Duration::from_millis(50), for_at_most: Duration::from_secs(8) },
        _ => Reply::TrickleHead { interval: Duration::from_millis(50), for_at_most: Duration::from_secs(8) },
    })
    .await;
    let fetcher = Fetcher::new(FetchConfig {
        read_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_millis(800),
        ..loopback_config()
    });
    for path in ["/body", "/head"] {
        let start = Instant::now();
        let err = fetcher.get(&server.url(path)).await.unwrap_err();
        assert!(matches!(err, FetchError::Timeout(_)), "{path}: {err}");
        assert!(start.elapsed() < Duration::from_secs(3), "{path} took {:?}", start.elapsed());
    }
    // The per-read timeout alone also stops a server that goes silent.
    let silent = TestServer::start(|_| Reply::TrickleBody {
        interval: Duration::from_secs(3),
        for_at_most: Duration::from_secs(4),
    })
    .await;
    let fetcher = Fetcher::new(FetchConfig { read_timeout: Duration::from_millis(300), ..loopback_config() });
    let start = Instant::now();
    let err = fetcher.get(&silent.url("/")).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout("reading the response body")), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn oversized_bodies_are_cut_off_early() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    const CAP: u64 = 256 * 1024;
    let undeclared =
        TestServer::start(|_| Reply::Flood { total: TOTAL, chunk: 64 * 1024, declare_length: false }).await;
    let fetcher = Fetcher::new(FetchConfig { max_body_bytes: CAP, ..loopback_config() });
    let err = fetcher.get(&undeclared.url("/")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: CAP }), "{err}");
    undeclared.wait_stream_done().await;
    let sent = undeclared.bytes_sent.load(Ordering::SeqCst);
    // Socket buffers absorb a few MiB at most; the server was stopped long before 256 MiB.
    assert!(sent < 32 * 1024 * 1024, "the server sent {sent} bytes");

    let declared = TestServer::start(|_| Reply::Flood { total: TOTAL, chunk: 64 * 1024, declare_length: true }).await;
    let err = fetcher.get(&declared.url("/")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: CAP }), "{err}");
    declared.wait_stream_done().await;
    assert!(declared.bytes_sent.load(Ordering::SeqCst) < 32 * 1024 * 1024);

    // Exactly at the cap is fine.
    let exact = TestServer::start(|_| Reply::Flood { total: CAP, chunk: 1024, declare_length: false }).await;
    assert_eq!(fetcher.get(&exact.url("/")).await.unwrap().body.len() as u64, CAP);
}
