//! Image thumbnail: reads any media input through the temp directory and writes a smaller
//! PNG or JPEG, showing the `ForLocalProcessing` → process → `ForBlockOutput` round trip.

use std::io::Cursor;

use async_trait::async_trait;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_exec::{Block, ExecError, ExecutionContext, MediaFile, MediaReturnFormat, parse_input, store_media_file};

/// Largest side accepted for a source image; bigger ones are refused before decoding.
const MAX_SOURCE_SIDE: u32 = 16_384;

/// Shrinks an image (PNG or JPEG) to fit a square box, keeping its aspect ratio.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThumbnailBlock;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    Png,
    Jpeg,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    image: MediaFile,
    #[serde(default = "default_max_size")]
    max_size: u32,
    #[serde(default = "default_format")]
    format: Format,
}

fn default_max_size() -> u32 {
    128
}

fn default_format() -> Format {
    Format::Png
}

fn make_thumbnail(bytes: &[u8], max_size: u32, format: Format) -> Result<(Vec<u8>, u32, u32), ExecError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ExecError::InvalidInput(format!("cannot read the image: {e}")))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| ExecError::InvalidInput(format!("not a PNG or JPEG image: {e}")))?;
    let fits = image.width() <= max_size && image.height() <= max_size;
    let thumb = if fits { image } else { image.thumbnail(max_size, max_size) };
    let (width, height) = (thumb.width(), thumb.height());
    let mut out = Cursor::new(Vec::new());
    let encoded = match format {
        Format::Png => thumb.write_to(&mut out, ImageFormat::Png),
        // JPEG has no alpha channel.
        Format::Jpeg => DynamicImage::ImageRgb8(thumb.to_rgb8()).write_to(&mut out, ImageFormat::Jpeg),
    };
    encoded.map_err(|e| ExecError::Block(format!("encoding the thumbnail failed: {e}")))?;
    Ok((out.into_inner(), width, height))
}

#[async_trait]
impl Block for ThumbnailBlock {
    fn id(&self) -> &str {
        "image_thumbnail"
    }
    fn name(&self) -> &str {
        "Image thumbnail"
    }
    fn description(&self) -> &str {
        "Scales a PNG or JPEG image down to fit within max_size × max_size pixels and returns it as PNG or JPEG."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "image": {"type": "string", "description": "A data URI, http(s) URL, workspace:// reference or temp-dir path."},
                "max_size": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 128},
                "format": {"type": "string", "enum": ["png", "jpeg"], "default": "png"}
            },
            "required": ["image"],
            "additionalProperties": false
        })
    }
    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "thumbnail": {"type": "string"},
                "width": {"type": "integer"},
                "height": {"type": "integer"}
            },
            "required": ["thumbnail", "width", "height"]
        })
    }
    async fn run(&self, input: Value, ctx: &ExecutionContext) -> Result<Value, ExecError> {
        let input: Input = parse_input(input)?;
        if !(1..=4096).contains(&input.max_size) {
            return Err(ExecError::InvalidInput("max_size must be between 1 and 4096".into()));
        }
        let local = store_media_file(&input.image, ctx, MediaReturnFormat::ForLocalProcessing).await?;
        let bytes = tokio::fs::read(ctx.local_path(local.as_str()).await?).await?;
        let (max_size, format) = (input.max_size, input.format);
        let (thumb, width, height) = tokio::task::spawn_blocking(move || make_thumbnail(&bytes, max_size, format))
            .await
            .map_err(|e| ExecError::Block(e.to_string()))??;
        let (mime, name) = match format {
            Format::Png => ("image/png", "thumbnail.png"),
            Format::Jpeg => ("image/jpeg", "thumbnail.jpg"),
        };
        let file = MediaFile::from_bytes(&thumb, mime, Some(name));
        let thumbnail = store_media_file(&file, ctx, MediaReturnFormat::ForBlockOutput).await?;
        Ok(json!({ "thumbnail": thumbnail, "width": width, "height": height }))
    }
}
