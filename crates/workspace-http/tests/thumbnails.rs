//! Thumbnails over real HTTP (SPEC §17): every source format, the size rule, the cache in storage
//! (and gc of it), decompression bombs, signed links and another user's files. Test images are
//! made here with the `image` crate; the bombs are written byte by byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use common::Server;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::Value;
use workspace_core::gc::GcOptions;
use workspace_core::{BlobKey, Checksum, Limits, Settings, ThumbnailSize, WorkspaceId, Workspaces};
use workspace_http::AppState;
use workspace_testkit::{TestEnv, db_tests};

db_tests!(
    every_source_format_fits_the_size_and_keeps_its_aspect,
    the_size_is_checked_and_text_is_refused,
    decompression_bombs_and_corrupt_images_are_refused,
    the_pixel_cap_is_the_configured_one,
    thumbnails_are_cached_in_storage_and_collected_with_their_content,
    signed_links_open_the_thumbnail_of_their_file_only,
);

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A gradient, so scaling has something to average.
fn picture(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255]))
}

/// A two-frame GIF: red, then blue.
fn animated_gif(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        let red = image::Frame::new(RgbaImage::from_pixel(width, height, Rgba([255, 0, 0, 255])));
        let blue = image::Frame::new(RgbaImage::from_pixel(width, height, Rgba([0, 0, 255, 255])));
        encoder.encode_frames([red, blue]).unwrap();
    }
    out
}

async fn thumbnail(s: &Server, user: &str, id: &str, query: &str) -> reqwest::Response {
    s.get(user, &format!("/api/workspace/files/{id}/thumbnail{query}")).send().await.unwrap()
}

async fn decoded(response: reqwest::Response) -> DynamicImage {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let bytes = response.bytes().await.unwrap();
    image::load_from_memory_with_format(&bytes, ImageFormat::Png).unwrap()
}

async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

async fn every_source_format_fits_the_size_and_keeps_its_aspect(env: TestEnv) {
    let s = Server::start(env).await;
    let png = encode(&DynamicImage::ImageRgba8(picture(600, 300)), ImageFormat::Png);
    let jpeg =
        encode(&DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(picture(300, 600)).to_rgb8()), ImageFormat::Jpeg);
    let webp = encode(&DynamicImage::ImageRgba8(picture(500, 250)), ImageFormat::WebP);
    let gif = animated_gif(400, 200);
    // Names and claimed types do not matter: the bytes decide.
    for (name, bytes, expected) in [
        ("wide.png", png, (128, 64)),
        ("photo.txt", jpeg, (64, 128)),
        ("anim.gif", gif, (128, 64)),
        ("pic.bin", webp, (128, 64)),
    ] {
        let id = s.upload_file("alice", name, &bytes).await["id"].as_str().unwrap().to_owned();
        let response = thumbnail(&s, "alice", &id, "?size=128").await;
        let h = response.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-disposition"], "inline");
        assert_eq!(h["cache-control"], "private, no-store");
        let etag = h["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with("-128\""), "{etag}");
        let image = decoded(response).await;
        assert_eq!((image.width(), image.height()), expected, "{name}");
        if name == "anim.gif" {
            let pixel = image.to_rgba8().get_pixel(10, 10).0;
            assert_eq!(pixel, [255, 0, 0, 255], "the first frame (red), not the second");
        }
        // Conditional request: 304, nothing sent.
        let again = s
            .get("alice", &format!("/api/workspace/files/{id}/thumbnail?size=128"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        // Another size is another ETag.
        let other = s
            .get("alice", &format!("/api/workspace/files/{id}/thumbnail?size=64"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
    }

    // Never scaled up; the default size is 256.
    let small = encode(&DynamicImage::ImageRgba8(picture(50, 20)), ImageFormat::Png);
    let id = s.upload_file("alice", "small.png", &small).await["id"].as_str().unwrap().to_owned();
    let image = decoded(thumbnail(&s, "alice", &id, "?size=1024").await).await;
    assert_eq!((image.width(), image.height()), (50, 20));
    let big = encode(&DynamicImage::ImageRgba8(picture(1000, 10)), ImageFormat::Png);
    let id = s.upload_file("alice", "big.png", &big).await["id"].as_str().unwrap().to_owned();
    let image = decoded(thumbnail(&s, "alice", &id, "").await).await;
    assert_eq!((image.width(), image.height()), (256, 3));
}

async fn the_size_is_checked_and_text_is_refused(env: TestEnv) {
    let s = Server::start(env).await;
    let png = encode(&DynamicImage::ImageRgba8(picture(40, 40)), ImageFormat::Png);
    let id = s.upload_file("alice", "a.png", &png).await["id"].as_str().unwrap().to_owned();
    for bad in ["0", "1025", "-1", "abc", "1.5", "99999999999"] {
        let body = error_of(thumbnail(&s, "alice", &id, &format!("?size={bad}")).await, 400).await;
        assert_eq!(body["error"], "invalid_input", "size={bad}");
        assert!(body["message"].as_str().unwrap().contains("from 1 to 1024"), "size={bad}: {body}");
    }
    assert_eq!(thumbnail(&s, "alice", &id, "?size=1").await.status(), 200);

    // Text claiming to be a PNG, and an SVG: 415, naming what is taken.
    for (name, bytes) in [
        ("fake.png", &b"just some text, not an image"[..]),
        ("vector.svg", &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..]),
        ("empty.png", &b""[..]),
    ] {
        let id = s.upload_file("alice", name, bytes).await["id"].as_str().unwrap().to_owned();
        let body = error_of(thumbnail(&s, "alice", &id, "").await, 415).await;
        assert_eq!(body["error"], "unsupported_media_type");
        assert!(body["message"].as_str().unwrap().contains("PNG, JPEG, GIF and WebP"), "{body}");
    }
    // No token, no link.
    assert_eq!(
        s.client.get(s.url(&format!("/api/workspace/files/{id}/thumbnail"))).send().await.unwrap().status(),
        401
    );
    // Unknown and malformed ids.
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(thumbnail(&s, "alice", &unknown.to_string(), "").await.status(), 404);
    assert_eq!(thumbnail(&s, "alice", "not-an-id", "").await.status(), 404);
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A real PNG whose header is rewritten to claim `width`×`height` (the CRC fixed, so only the
/// size is a lie).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(&DynamicImage::ImageRgba8(picture(1, 1)), ImageFormat::Png);
    // Signature (8), IHDR length (4), "IHDR" (4), then width and height.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// Deflate bits, least significant first.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// A Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = (0..len).fold(0u64, |r, i| r | (u64::from((code >> i) & 1) << (len - 1 - i)));
        self.put(reversed, len);
    }
}

/// A genuine, valid 1-bit grayscale PNG of `width`×`height` black pixels: a zlib stream of one
/// fixed-Huffman block that repeats a zero byte, so a 64-megapixel image is a few tens of KiB.
fn compressed_bomb(width: u32, height: u32) -> Vec<u8> {
    let row = 1 + u64::from(width).div_ceil(8); // filter byte + packed pixels, all zero
    let total = row * u64::from(height);
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    let mut left = total - 1;
    while left > 0 {
        if left >= 258 {
            bits.code(0b1100_0101, 8); // length 258 (code 285)
            bits.code(0, 5); // distance 1
            left -= 258;
        } else if left >= 3 {
            // Length 3..=10 are codes 257..=264 (7 bits, 0000001..0001000); longer ones are cut
            // down to repeated 3s and single literals, which is fine for a test's tail.
            bits.code(0b000_0001, 7);
            bits.code(0, 5);
            left -= 3;
        } else {
            bits.code(0x30, 8);
            left -= 1;
        }
    }
    bits.code(0, 7); // end of block (256)
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    let mut zlib = bits.out;
    // Adler-32 of `total` zero bytes: a = 1, b = total mod 65521.
    let b = (total % 65521) as u32;
    zlib.extend_from_slice(&((b << 16) | 1).to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, grayscale, deflate, adaptive, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn the_compressed_bomb_is_a_valid_png() {
    // The same construction, small enough to decode here: every pixel black.
    let image = image::load_from_memory_with_format(&compressed_bomb(123, 45), ImageFormat::Png).unwrap();
    assert_eq!((image.width(), image.height()), (123, 45));
    assert!(image.to_luma8().pixels().all(|p| p.0 == [0]));
}

async fn decompression_bombs_and_corrupt_images_are_refused(env: TestEnv) {
    let s = Server::start(env).await;
    let bomb = compressed_bomb(8000, 8000);
    assert!(bomb.len() < 64 * 1024, "64 megapixels in {} bytes", bomb.len());
    let mut gif = animated_gif(4, 4);
    gif[6..10].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]); // logical screen 65535×65535
    for (name, bytes, pixels) in [
        ("claims.png", png_claiming(100_000, 100_000), "10000000000"),
        ("bomb.png", bomb, "64000000"),
        ("screen.gif", gif, "4294836225"),
    ] {
        let id = s.upload_file("alice", name, &bytes).await["id"].as_str().unwrap().to_owned();
        let body = error_of(thumbnail(&s, "alice", &id, "").await, 422).await;
        assert_eq!(body["error"], "image_too_large", "{name}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("50000000") && message.contains("WS_THUMBNAIL_MAX_PIXELS"), "{name}: {message}");
        assert!(message.contains(pixels), "{name}: {message}");
    }

    // Truncated and corrupt: a clear 422, never a 500 "storage error".
    let png = encode(&DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 300, Rgb([1, 2, 3]))), ImageFormat::Png);
    let jpeg = encode(
        &DynamicImage::ImageRgb8(RgbImage::from_fn(300, 300, |x, y| Rgb([x as u8, y as u8, 0]))),
        ImageFormat::Jpeg,
    );
    let mut flipped = png.clone();
    let idat = flipped.windows(4).position(|w| w == b"IDAT").unwrap();
    flipped[idat + 8] ^= 0xff; // inside the compressed data: the CRC no longer matches
    for (name, bytes) in [
        ("half.png", png[..png.len() / 2].to_vec()),
        ("header-only.png", png[..40].to_vec()),
        ("flipped.png", flipped),
        ("half.jpg", jpeg[..jpeg.len() / 3].to_vec()),
    ] {
        let id = s.upload_file("alice", name, &bytes).await["id"].as_str().unwrap().to_owned();
        let response = thumbnail(&s, "alice", &id, "").await;
        let status = response.status().as_u16();
        // A truncated JPEG may still decode (its missing rows are grey); anything refused is a 422.
        if name == "half.jpg" && status == 200 {
            continue;
        }
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or_default();
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["error"], "invalid_image", "{name}");
        assert!(body["message"].as_str().unwrap().contains("truncated or corrupt"), "{name}: {body}");
    }
}

/// A server whose settings differ from the defaults.
async fn server_with(env: TestEnv, settings: Settings) -> Server {
    common::install_crypto();
    let workspaces = Workspaces::new(env.db.clone(), env.storage.clone(), settings).unwrap();
    let state = AppState::new(workspaces, common::api_config(Default::default()), None);
    Server::on(common::serve(state).await, env)
}

async fn the_pixel_cap_is_the_configured_one(env: TestEnv) {
    let s = server_with(env, Settings { thumbnail_max_pixels: 10_000, ..Settings::default() }).await;
    let fits = encode(&DynamicImage::ImageRgba8(picture(100, 100)), ImageFormat::Png);
    let over = encode(&DynamicImage::ImageRgba8(picture(101, 100)), ImageFormat::Png);
    let id = s.upload_file("alice", "fits.png", &fits).await["id"].as_str().unwrap().to_owned();
    assert_eq!(decoded(thumbnail(&s, "alice", &id, "?size=10").await).await.width(), 10);
    let id = s.upload_file("alice", "over.png", &over).await["id"].as_str().unwrap().to_owned();
    let body = error_of(thumbnail(&s, "alice", &id, "?size=10").await, 422).await;
    assert!(body["message"].as_str().unwrap().contains("pixel cap of 10000"), "{body}");
}

/// The workspace id in a signed link's query.
async fn workspace_of(s: &Server, user: &str, id: &str) -> WorkspaceId {
    let url = link(s, user, id, 60).await;
    let w = url.split(['?', '&']).find_map(|p| p.strip_prefix("w=")).unwrap();
    w.parse().unwrap()
}

async fn link(s: &Server, user: &str, id: &str, ttl: u64) -> String {
    let r = s.post(user, &format!("/api/workspace/files/{id}/link?expires_in={ttl}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned()
}

async fn thumbnails_are_cached_in_storage_and_collected_with_their_content(env: TestEnv) {
    let s = Server::start(env).await;
    let storage = s.env.storage.clone();
    let png = encode(&DynamicImage::ImageRgba8(picture(300, 200)), ImageFormat::Png);
    let info = s.upload_file("alice", "cached.png", &png).await;
    let id = info["id"].as_str().unwrap().to_owned();
    let checksum = Checksum::parse(info["checksum"].as_str().unwrap()).unwrap();
    let ws = workspace_of(&s, "alice", &id).await;
    let key = BlobKey::for_thumbnail(ws, &checksum, ThumbnailSize::new(64).unwrap());
    assert!(storage.head(&key).await.unwrap().is_none(), "nothing cached before the first request");

    let first = thumbnail(&s, "alice", &id, "?size=64").await.bytes().await.unwrap();
    assert_eq!(storage.get_bytes(&key).await.unwrap(), first, "the made thumbnail is stored under its key");

    // Replace the cached object with a marker image: the next answer is the marker, so the second
    // request read the cache and made nothing.
    let marker = Bytes::from(encode(
        &DynamicImage::ImageRgba8(RgbaImage::from_pixel(3, 3, Rgba([0, 255, 0, 255]))),
        ImageFormat::Png,
    ));
    storage.put_bytes(&key, marker.clone()).await.unwrap();
    assert_eq!(thumbnail(&s, "alice", &id, "?size=64").await.bytes().await.unwrap(), marker);
    // The same content under another name (dedup: the same checksum) shares the cache entry.
    let twin = s.upload_file("alice", "twin.png", &png).await["id"].as_str().unwrap().to_owned();
    assert_eq!(thumbnail(&s, "alice", &twin, "?size=64").await.bytes().await.unwrap(), marker);
    // Another size is made and cached separately.
    let other_key = BlobKey::for_thumbnail(ws, &checksum, ThumbnailSize::new(32).unwrap());
    let other = thumbnail(&s, "alice", &id, "?size=32").await.bytes().await.unwrap();
    assert_eq!(storage.get_bytes(&other_key).await.unwrap(), other);

    // A file that stays keeps its thumbnail through gc.
    let keep = encode(&DynamicImage::ImageRgba8(picture(30, 20)), ImageFormat::Png);
    let keep_info = s.upload_file("alice", "keep.png", &keep).await;
    let keep_id = keep_info["id"].as_str().unwrap();
    assert_eq!(thumbnail(&s, "alice", keep_id, "?size=64").await.status(), 200);
    let keep_key = BlobKey::for_thumbnail(
        ws,
        &Checksum::parse(keep_info["checksum"].as_str().unwrap()).unwrap(),
        ThumbnailSize::new(64).unwrap(),
    );

    // Deleted (in the trash) the content still exists: gc leaves its thumbnails.
    for file in [&id, &twin] {
        assert_eq!(s.delete("alice", &format!("/api/workspace/files/{file}")).send().await.unwrap().status(), 204);
    }
    let workspaces = common::workspaces(&s.env, storage.clone(), Limits::default());
    let options = GcOptions { grace: Duration::ZERO, ..GcOptions::default() };
    let report = workspaces.gc(options).await.unwrap();
    assert_eq!(report.orphan_thumbnails_deleted, 0, "{report:?}");
    assert!(storage.head(&key).await.unwrap().is_some());

    // Purged from the trash, the content is gone: gc removes both of its thumbnails, and only them.
    let emptied = s.delete("alice", "/api/workspace/trash").send().await.unwrap();
    assert!(emptied.status().is_success(), "{}", emptied.status());
    let report = workspaces.gc(options).await.unwrap();
    assert_eq!((report.thumbnails_scanned, report.orphan_thumbnails_deleted), (3, 2), "{report:?}");
    assert!(storage.head(&key).await.unwrap().is_none());
    assert!(storage.head(&other_key).await.unwrap().is_none());
    assert!(storage.head(&keep_key).await.unwrap().is_some());
    // A stray object under thumbnails/ that names no content is removed too.
    let stray = BlobKey::parse("thumbnails/not-a-workspace/x.png").unwrap();
    storage.put_bytes(&stray, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(workspaces.gc(options).await.unwrap().orphan_thumbnails_deleted, 1);
    assert!(storage.head(&stray).await.unwrap().is_none());
}

async fn signed_links_open_the_thumbnail_of_their_file_only(env: TestEnv) {
    let s = Server::start(env).await;
    let png = encode(&DynamicImage::ImageRgba8(picture(200, 100)), ImageFormat::Png);
    let a = s.upload_file("alice", "a.png", &png).await["id"].as_str().unwrap().to_owned();
    let other = encode(&DynamicImage::ImageRgba8(picture(100, 200)), ImageFormat::Png);
    let b = s.upload_file("alice", "b.png", &other).await["id"].as_str().unwrap().to_owned();
    let bobs = s.upload_file("bob", "bob.png", &other).await["id"].as_str().unwrap().to_owned();

    // The contract the UI relies on: a download link with `/download` replaced by `/thumbnail`.
    let download = link(&s, "alice", &a, 60).await;
    assert!(download.contains("/download?"), "{download}");
    let url = format!("{}&size=50", download.replace("/download?", "/thumbnail?"));
    let response = s.client.get(s.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), 200, "no Authorization header needed");
    assert!(response.headers()["cache-control"].to_str().unwrap().starts_with("private, max-age="));
    let image = decoded(response).await;
    assert_eq!((image.width(), image.height()), (50, 25));

    // File A's signature does not open file B (same workspace), nor Bob's file.
    for target in [&b, &bobs] {
        let stolen = url.replace(&a, target);
        let r = s.client.get(s.url(&stolen)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{stolen}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_link");
    }
    // A forged signature, a changed expiry: 403.
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut forged = url.clone().into_bytes();
    forged[sig_at] = if forged[sig_at] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(s.client.get(s.url(&forged)).send().await.unwrap().status(), 403);
    let later = url.replace("exp=", "exp=1");
    assert_eq!(s.client.get(s.url(&later)).send().await.unwrap().status(), 403);
    // Expired: 403.
    let short = link(&s, "alice", &a, 1).await.replace("/download?", "/thumbnail?");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = s.client.get(s.url(&short)).send().await.unwrap();
    assert_eq!(r.status(), 403, "expired");

    // Another user's file id with a valid token is 404, as if it did not exist.
    let r = thumbnail(&s, "bob", &a, "").await;
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(!body.contains("a.png"), "{body}");
    // Alice's token with Bob's id: 404 too.
    assert_eq!(thumbnail(&s, "alice", &bobs, "").await.status(), 404);
}
