//! QR code → PNG: the smallest real block that produces media, and the first step of the
//! executor example.

use async_trait::async_trait;
use image::{GrayImage, ImageFormat, Luma};
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_exec::{Block, ExecError, ExecutionContext, MediaFile, MediaReturnFormat, parse_input, store_media_file};

/// Modules of white border around the code (the QR standard asks for 4).
const QUIET_ZONE: u32 = 4;

/// Renders text as a QR code PNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct QrCodeBlock;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    text: String,
    #[serde(default = "default_module_size")]
    module_size: u32,
}

fn default_module_size() -> u32 {
    8
}

/// Renders `text` as a PNG with `module_size` pixels per module. Public for reuse in tests.
pub fn render_png(text: &str, module_size: u32) -> Result<Vec<u8>, ExecError> {
    if !(1..=32).contains(&module_size) {
        return Err(ExecError::InvalidInput("module_size must be between 1 and 32".into()));
    }
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| ExecError::InvalidInput(format!("cannot encode this text as a QR code: {e}")))?;
    let width = u32::try_from(code.width()).map_err(|_| ExecError::InvalidInput("QR code too large".into()))?;
    let colors = code.to_colors();
    let side = (width + 2 * QUIET_ZONE) * module_size;
    let image = GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / module_size, y / module_size);
        let inside = (QUIET_ZONE..QUIET_ZONE + width).contains(&mx) && (QUIET_ZONE..QUIET_ZONE + width).contains(&my);
        let dark = inside
            && colors.get(((my - QUIET_ZONE) * width + (mx - QUIET_ZONE)) as usize) == Some(&qrcode::Color::Dark);
        Luma([if dark { 0 } else { 255 }])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, ImageFormat::Png).map_err(|e| ExecError::Block(format!("PNG encoding failed: {e}")))?;
    Ok(png.into_inner())
}

#[async_trait]
impl Block for QrCodeBlock {
    fn id(&self) -> &str {
        "qr_code"
    }
    fn name(&self) -> &str {
        "QR code"
    }
    fn description(&self) -> &str {
        "Encodes text (a URL, a Wi-Fi string, anything up to about 2 KB) as a QR code PNG image."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The text to encode."},
                "module_size": {"type": "integer", "minimum": 1, "maximum": 32, "default": 8,
                                "description": "Pixels per QR module."}
            },
            "required": ["text"],
            "additionalProperties": false
        })
    }
    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"image": {"type": "string", "description": "The PNG: a workspace:// reference or a data URI."}},
            "required": ["image"]
        })
    }
    async fn run(&self, input: Value, ctx: &ExecutionContext) -> Result<Value, ExecError> {
        let input: Input = parse_input(input)?;
        let png = tokio::task::spawn_blocking(move || render_png(&input.text, input.module_size))
            .await
            .map_err(|e| ExecError::Block(e.to_string()))??;
        let file = MediaFile::from_bytes(&png, "image/png", Some("qr.png"));
        let image = store_media_file(&file, ctx, MediaReturnFormat::ForBlockOutput).await?;
        Ok(json!({ "image": image }))
    }
}
