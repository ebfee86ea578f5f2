#![doc = include_str!("../README.md")]

pub mod image_gen;
pub mod qr;
pub mod thumbnail;

pub use image_gen::{ImageGenConfig, ImageGenerationBlock};
pub use qr::QrCodeBlock;
pub use thumbnail::ThumbnailBlock;

use workspace_exec::{BlockRegistry, ExecError};

/// A registry with the offline blocks, plus image generation when a configuration is given.
pub fn registry(image_gen: Option<ImageGenConfig>) -> Result<BlockRegistry, ExecError> {
    let mut registry = BlockRegistry::new();
    registry.register(QrCodeBlock)?;
    registry.register(ThumbnailBlock)?;
    if let Some(config) = image_gen {
        registry.register(ImageGenerationBlock::new(config))?;
    }
    Ok(registry)
}
