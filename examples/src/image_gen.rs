//! Image generation through an OpenAI-compatible API (`POST {base_url}/v1/images/generations`):
//! a block that talks to the outside world, so it goes through the SSRF-safe fetcher for both
//! the API call and the image URL the API may answer with.
//!
//! The base URL is the operator's configuration, not input, so its origin is trusted
//! ([`ExecutionContext::trusting_origin`]): a self-hosted server on loopback or a private network
//! works without opening the fetcher to anything else. An image URL in the API's answer is
//! fetched only if it is on that same origin or passes the usual address checks (public, or in
//! the executor's allow-list); nothing from the prompt or the model is trusted.

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use workspace_exec::{
    Block, ExecError, ExecutionContext, FetchRequest, MediaFile, MediaReturnFormat, parse_input, store_media_file,
};

/// Where and how to call the images API.
#[derive(Clone)]
pub struct ImageGenConfig {
    /// The API's base URL without `/v1`, e.g. `https://api.openai.com` or a self-hosted
    /// `http://127.0.0.1:8000`. Its origin (scheme, host, port) is trusted by the block's fetcher,
    /// so a loopback or private address works; other origins are checked as usual.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// The model name, e.g. `gpt-image-1`.
    pub model: String,
}

impl std::fmt::Debug for ImageGenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageGenConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .finish()
    }
}

impl ImageGenConfig {
    /// Reads `OPENAI_BASE_URL` (default `https://api.openai.com`), `OPENAI_API_KEY` and
    /// `OPENAI_IMAGE_MODEL` (default `gpt-image-1`).
    pub fn from_env() -> Self {
        Self {
            base_url: std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com".into()),
            api_key: std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.is_empty()),
            model: std::env::var("OPENAI_IMAGE_MODEL").unwrap_or_else(|_| "gpt-image-1".into()),
        }
    }
}

/// Generates an image from a prompt.
#[derive(Debug, Clone)]
pub struct ImageGenerationBlock {
    config: ImageGenConfig,
}

impl ImageGenerationBlock {
    /// A block calling the API described by `config`.
    pub fn new(config: ImageGenConfig) -> Self {
        Self { config }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    prompt: String,
    #[serde(default = "default_size")]
    size: String,
}

fn default_size() -> String {
    "1024x1024".into()
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    data: Vec<ApiImage>,
}

#[derive(Debug, Deserialize)]
struct ApiImage {
    b64_json: Option<String>,
    url: Option<String>,
    revised_prompt: Option<String>,
}

#[async_trait]
impl Block for ImageGenerationBlock {
    fn id(&self) -> &str {
        "openai_image_generation"
    }
    fn name(&self) -> &str {
        "Image generation"
    }
    fn description(&self) -> &str {
        "Generates an image from a text prompt with an OpenAI-compatible images API."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "minLength": 1},
                "size": {"type": "string", "default": "1024x1024", "description": "WIDTHxHEIGHT, as the API accepts."}
            },
            "required": ["prompt"],
            "additionalProperties": false
        })
    }
    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"image": {"type": "string"}, "revised_prompt": {"type": ["string", "null"]}},
            "required": ["image"]
        })
    }
    async fn run(&self, input: Value, ctx: &ExecutionContext) -> Result<Value, ExecError> {
        let input: Input = parse_input(input)?;
        if input.prompt.trim().is_empty() {
            return Err(ExecError::InvalidInput("prompt may not be empty".into()));
        }
        // The configured endpoint is the operator's choice: trusted for this run, and only it.
        let ctx = &ctx.trusting_origin(&self.config.base_url)?;
        let url = format!("{}/v1/images/generations", self.config.base_url.trim_end_matches('/'));
        let body = json!({ "model": self.config.model, "prompt": input.prompt, "n": 1, "size": input.size });
        let mut request =
            FetchRequest::post(url, "application/json", body.to_string())?.header("Accept", "application/json")?;
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"))?;
        }
        let response = ctx.fetcher().send(request).await?;
        if !(200..300).contains(&response.status) {
            return Err(ExecError::Block(format!(
                "the images API answered {}: {}",
                response.status,
                api_error_message(&response.body)
            )));
        }
        let parsed: ApiResponse = serde_json::from_slice(&response.body)
            .map_err(|e| ExecError::Block(format!("the images API answered with unexpected JSON: {e}")))?;
        let first =
            parsed.data.into_iter().next().ok_or_else(|| ExecError::Block("the API returned no image".into()))?;
        let source = match (first.b64_json, first.url) {
            (Some(b64), _) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| ExecError::Block(format!("the API's b64_json is not base64: {e}")))?;
                let mime = workspace_core::mime::sniff(&bytes).unwrap_or("image/png");
                let ext = if mime == "image/jpeg" { "jpg" } else { mime.rsplit('/').next().unwrap_or("png") };
                MediaFile::from_bytes(&bytes, mime, Some(&format!("generated.{ext}")))
            }
            // A URL answer is fetched (SSRF-safe) and stored like any other media input.
            (None, Some(url)) => MediaFile::new(url),
            (None, None) => return Err(ExecError::Block("the API's image has neither b64_json nor url".into())),
        };
        let image = store_media_file(&source, ctx, MediaReturnFormat::ForBlockOutput).await?;
        Ok(json!({ "image": image, "revised_prompt": first.revised_prompt }))
    }
}

/// The API's `error.message`, or the start of the body.
fn api_error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}
