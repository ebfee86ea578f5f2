//! Image previews (SPEC §17): a thumbnail of a PNG, JPEG, GIF (first frame) or WebP file, scaled
//! to fit a square of the asked size (never up), encoded as PNG, made once per (content checksum,
//! size) and kept in storage under `thumbnails/{workspace}/{checksum}/{size}.png`.
//!
//! The source type is sniffed from the bytes, never taken from the stored MIME type. Decoding is
//! guarded against decompression bombs twice: the dimensions are read from the header first and
//! an image over the pixel cap (`WS_THUMBNAIL_MAX_PIXELS`) is refused before any pixel is
//! decoded, and the decoder runs under an allocation bound (`image::Limits::max_alloc`, four bytes
//! per pixel of the cap), which also catches formats that claim fewer pixels than they allocate.
//! Decoding runs on the blocking pool, a bounded number at a time.
//!
//! The cached object is immutable (its key names the content's checksum), so two replicas that
//! both make it write the same bytes: the put is idempotent. gc removes thumbnails whose content
//! no longer exists in their workspace (see [`crate::gc`]).

use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use tokio::sync::Semaphore;

use crate::error::{Result, StorageError, WorkspaceError};
use crate::ids::WorkspaceId;
use crate::manager::WorkspaceManager;
use crate::model::{Checksum, FileInfo, FileRef};
use crate::storage::BlobKey;

/// Largest thumbnail edge, in pixels.
pub const MAX_THUMBNAIL_SIZE: u32 = 1024;
/// Thumbnail edge when none is asked for.
pub const DEFAULT_THUMBNAIL_SIZE: u32 = 256;
/// Default pixel cap of a source image (`WS_THUMBNAIL_MAX_PIXELS`): 50 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;
/// Largest pixel cap that may be configured (its memory bound is four bytes a pixel).
pub const MAX_MAX_PIXELS: u64 = 1_000_000_000;
/// Decodes that may run at once in one process; more wait for a slot.
pub const MAX_CONCURRENT_DECODES: usize = 2;
/// Media type of every thumbnail.
pub const THUMBNAIL_MIME: &str = "image/png";

/// The edge of the square a thumbnail fits in: 1 to [`MAX_THUMBNAIL_SIZE`] pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThumbnailSize(u32);

impl ThumbnailSize {
    /// A size, or InvalidInput naming the rule.
    pub fn new(pixels: u32) -> Result<Self> {
        if (1..=MAX_THUMBNAIL_SIZE).contains(&pixels) { Ok(Self(pixels)) } else { Err(Self::rule()) }
    }

    /// Parses a query value such as `256`.
    pub fn parse(input: &str) -> Result<Self> {
        input.trim().parse::<u32>().map_err(|_| Self::rule()).and_then(Self::new)
    }

    fn rule() -> WorkspaceError {
        WorkspaceError::InvalidInput(format!(
            "`size` must be a whole number of pixels from 1 to {MAX_THUMBNAIL_SIZE} (default {DEFAULT_THUMBNAIL_SIZE})"
        ))
    }

    /// The edge in pixels.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ThumbnailSize {
    fn default() -> Self {
        Self(DEFAULT_THUMBNAIL_SIZE)
    }
}

impl fmt::Display for ThumbnailSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A thumbnail, PNG-encoded ([`THUMBNAIL_MIME`]).
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// The file it shows.
    pub info: FileInfo,
    /// The square it fits in.
    pub size: ThumbnailSize,
    /// The PNG.
    pub bytes: Bytes,
    /// Whether it came from the cache in storage rather than being made now.
    pub cached: bool,
}

/// The cache of one process: the decode slots.
#[derive(Debug, Clone)]
pub(crate) struct Previews {
    decodes: Arc<Semaphore>,
}

impl Previews {
    pub(crate) fn new() -> Self {
        Self { decodes: Arc::new(Semaphore::new(MAX_CONCURRENT_DECODES)) }
    }
}

impl BlobKey {
    /// The key of a cached thumbnail: `thumbnails/{workspace}/{checksum}/{size}.png`.
    pub fn for_thumbnail(workspace: WorkspaceId, checksum: &Checksum, size: ThumbnailSize) -> Self {
        Self::parse(&format!("thumbnails/{workspace}/{checksum}/{size}.png"))
            .unwrap_or_else(|_| unreachable!("ids, hex and digits always make a valid key"))
    }

    /// The workspace and content checksum of a thumbnail key, if it is one.
    pub fn thumbnail_ids(&self) -> Option<(WorkspaceId, Checksum)> {
        let mut parts = self.as_str().split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("thumbnails"), Some(ws), Some(checksum), Some(_size), None) => {
                Some((ws.parse().ok()?, Checksum::parse(checksum).ok()?))
            }
            _ => None,
        }
    }
}

impl WorkspaceManager {
    /// A thumbnail of an image file (a current file or a version): from the cache in storage, or
    /// made now and cached.
    ///
    /// Errors: NotFound (no such file here); UnsupportedMediaType (the bytes are not PNG, JPEG,
    /// GIF or WebP); ImageTooLarge (over the pixel cap or the memory bound); InvalidImage (the
    /// image is truncated or corrupt).
    pub async fn thumbnail(&self, target: impl Into<FileRef>, size: ThumbnailSize) -> Result<Thumbnail> {
        let info = self.lookup(target).await?;
        let storage = self.workspaces().storage().clone();
        let key = BlobKey::for_thumbnail(self.workspace_id(), &info.checksum, size);
        match storage.get_bytes(&key).await {
            Ok(bytes) => return Ok(Thumbnail { info, size, bytes, cached: true }),
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let opened = self.open_info(info.clone()).await?;
        let source = opened.bytes().await?;
        let max_pixels = self.settings().thumbnail_max_pixels;
        let slots = Arc::clone(&self.workspaces().previews().decodes);
        let _slot = slots.acquire_owned().await.map_err(|_| WorkspaceError::Unavailable("decoder closed".into()))?;
        let bytes = tokio::task::spawn_blocking(move || render(&source, size, max_pixels))
            .await
            .map_err(|e| WorkspaceError::InvalidImage(format!("the decoder failed: {e}")))??;
        let bytes = Bytes::from(bytes);
        // Same checksum and size, same bytes: a replica writing the same key concurrently is harmless.
        storage.put_bytes(&key, bytes.clone()).await?;
        Ok(Thumbnail { info, size, bytes, cached: false })
    }
}

/// The formats a thumbnail is made from.
fn sniff(source: &[u8]) -> Result<ImageFormat> {
    match image::guess_format(source) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)) => Ok(format),
        _ => Err(WorkspaceError::UnsupportedMediaType(
            "thumbnails are made of PNG, JPEG, GIF and WebP images only, and this file's bytes are none of them".into(),
        )),
    }
}

/// Decodes `source` (under the pixel cap and memory bound) and encodes the scaled PNG.
pub(crate) fn render(source: &[u8], size: ThumbnailSize, max_pixels: u64) -> Result<Vec<u8>> {
    let format = sniff(source)?;
    let bound = max_pixels.saturating_mul(4);
    // The header alone first, with no limits set (some decoders would refuse a huge header with
    // a message that does not say how large): nothing but the header is read or allocated here.
    let mut reader = ImageReader::with_format(Cursor::new(source), format);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(image_error(max_pixels))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(WorkspaceError::ImageTooLarge(format!(
            "the image is {width}×{height} ({pixels} pixels), over the thumbnail pixel cap of {max_pixels} \
             (WS_THUMBNAIL_MAX_PIXELS)"
        )));
    }
    if decoder.total_bytes() > bound {
        return Err(WorkspaceError::ImageTooLarge(format!(
            "decoding this {width}×{height} image needs {} bytes, over the thumbnail memory bound of {bound} bytes \
             (four per pixel of WS_THUMBNAIL_MAX_PIXELS={max_pixels})",
            decoder.total_bytes(),
        )));
    }
    // Then the memory bound for everything the decoder allocates while decoding.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(bound);
    decoder.set_limits(limits).map_err(image_error(max_pixels))?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(image_error(max_pixels))?;
    image.apply_orientation(orientation);
    let (nw, nh) = fit(image.width(), image.height(), size.get());
    if (nw, nh) != (image.width(), image.height()) {
        image = image.thumbnail_exact(nw, nh);
    }
    let image = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) | DynamicImage::ImageRgb8(_) => image,
        DynamicImage::ImageRgba8(_) => image,
        other => DynamicImage::ImageRgba8(other.into_rgba8()),
    };
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| WorkspaceError::InvalidImage(format!("the thumbnail could not be encoded: {e}")))?;
    Ok(out)
}

/// The largest size within `edge`×`edge` with the aspect ratio of `width`×`height`, never larger
/// than the image itself; each side at least one pixel.
pub(crate) fn fit(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= edge || longest == 0 {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(edge) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(edge).clamp(1, edge)
    };
    (scale(width), scale(height))
}

fn image_error(max_pixels: u64) -> impl Fn(image::ImageError) -> WorkspaceError {
    move |err| match err {
        image::ImageError::Limits(e) => WorkspaceError::ImageTooLarge(format!(
            "the image needs more memory than the thumbnail bound of {} bytes (four per pixel of \
             WS_THUMBNAIL_MAX_PIXELS={max_pixels}): {e}",
            max_pixels.saturating_mul(4)
        )),
        image::ImageError::Unsupported(e) => {
            WorkspaceError::UnsupportedMediaType(format!("this image cannot be previewed: {e}"))
        }
        other => WorkspaceError::InvalidImage(format!("the image is truncated or corrupt: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fit_without_upscaling() {
        assert_eq!(fit(1000, 500, 256), (256, 128));
        assert_eq!(fit(500, 1000, 256), (128, 256));
        assert_eq!(fit(100, 50, 256), (100, 50));
        assert_eq!(fit(10_000, 1, 256), (256, 1));
        assert_eq!(fit(1, 10_000, 16), (1, 16));
        assert_eq!(fit(257, 257, 256), (256, 256));
    }

    #[test]
    fn sizes_are_checked() {
        assert!(ThumbnailSize::parse("0").is_err());
        assert!(ThumbnailSize::parse("1025").is_err());
        assert!(ThumbnailSize::parse("-3").is_err());
        assert!(ThumbnailSize::parse("abc").is_err());
        assert_eq!(ThumbnailSize::parse("1024").unwrap().get(), 1024);
        assert_eq!(ThumbnailSize::default().get(), 256);
    }

    #[test]
    fn thumbnail_keys_parse_back() {
        let ws = WorkspaceId::new();
        let checksum = Checksum::of(b"x");
        let key = BlobKey::for_thumbnail(ws, &checksum, ThumbnailSize::default());
        assert_eq!(key.as_str(), format!("thumbnails/{ws}/{checksum}/256.png"));
        assert_eq!(key.thumbnail_ids(), Some((ws, checksum)));
        assert_eq!(key.content_ids(), None);
        assert_eq!(BlobKey::for_content(ws, crate::ids::ContentId::new()).thumbnail_ids(), None);
    }

    fn png(image: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn a_wide_16_bit_image_within_the_pixel_cap_is_refused_by_the_memory_bound() {
        // 8 bytes a pixel (16-bit RGBA) against a bound of 4 bytes a pixel of the cap.
        let image = DynamicImage::new_rgba16(300, 300);
        let err = render(&png(&image), ThumbnailSize::default(), 100_000).unwrap_err();
        assert!(matches!(err, WorkspaceError::ImageTooLarge(_)), "{err}");
        assert!(err.to_string().contains("WS_THUMBNAIL_MAX_PIXELS"), "{err}");
        // The same image under a cap that leaves room decodes.
        assert!(render(&png(&image), ThumbnailSize::default(), 200_000).is_ok());
    }

    #[test]
    fn text_and_unsupported_formats_are_refused_by_their_bytes() {
        assert!(matches!(
            render(b"hello", ThumbnailSize::default(), 1000),
            Err(WorkspaceError::UnsupportedMediaType(_))
        ));
        // A BMP header: a format `image` knows, but not one thumbnails are made of.
        assert!(matches!(
            render(b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0", ThumbnailSize::default(), 1000),
            Err(WorkspaceError::UnsupportedMediaType(_))
        ));
    }
}
