//! The `Block` trait and a registry: the contract between an executor (or the chat assistant's
//! `run_block`) and the units of work it runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::ExecutionContext;
use crate::error::ExecError;

/// One unit of work. Inputs and outputs are JSON objects described by JSON schemas; media in
/// them are [`MediaFile`](crate::MediaFile) strings, and outputs that carry media are persisted
/// with [`MediaReturnFormat::ForBlockOutput`](crate::MediaReturnFormat::ForBlockOutput).
#[async_trait]
pub trait Block: Send + Sync + std::fmt::Debug {
    /// A stable identifier, unique in a registry (e.g. `qr_code`).
    fn id(&self) -> &str;
    /// A human-readable name.
    fn name(&self) -> &str;
    /// What the block does, for people and for models choosing a tool.
    fn description(&self) -> &str;
    /// JSON schema of the input object.
    fn input_schema(&self) -> Value;
    /// JSON schema of the output object.
    fn output_schema(&self) -> Value;
    /// Runs the block. Use [`parse_input`] to turn `input` into a typed struct.
    async fn run(&self, input: Value, ctx: &ExecutionContext) -> Result<Value, ExecError>;
}

/// Deserialises a block input, turning a mismatch into [`ExecError::InvalidInput`].
pub fn parse_input<T: DeserializeOwned>(input: Value) -> Result<T, ExecError> {
    serde_json::from_value(input).map_err(|e| ExecError::InvalidInput(e.to_string()))
}

/// Blocks by id.
#[derive(Debug, Clone, Default)]
pub struct BlockRegistry {
    blocks: BTreeMap<String, Arc<dyn Block>>,
}

impl BlockRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block; a second block with the same id is refused.
    pub fn register(&mut self, block: impl Block + 'static) -> Result<(), ExecError> {
        let id = block.id().to_owned();
        if self.blocks.contains_key(&id) {
            return Err(ExecError::InvalidInput(format!("a block with id `{id}` is already registered")));
        }
        self.blocks.insert(id, Arc::new(block));
        Ok(())
    }

    /// The block with this id.
    pub fn get(&self, id: &str) -> Option<Arc<dyn Block>> {
        self.blocks.get(id).cloned()
    }

    /// All blocks, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Block>> {
        self.blocks.values()
    }

    /// Runs the block `id`; an unknown id is [`ExecError::NotFound`].
    pub async fn run(&self, id: &str, input: Value, ctx: &ExecutionContext) -> Result<Value, ExecError> {
        let block = self.get(id).ok_or_else(|| ExecError::NotFound(format!("block `{id}`")))?;
        block.run(input, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Echo(&'static str);

    #[async_trait]
    impl Block for Echo {
        fn id(&self) -> &str {
            self.0
        }
        fn name(&self) -> &str {
            "Echo"
        }
        fn description(&self) -> &str {
            "Returns its input."
        }
        fn input_schema(&self) -> Value {
            serde_json::json!({"type": "object"})
        }
        fn output_schema(&self) -> Value {
            serde_json::json!({"type": "object"})
        }
        async fn run(&self, input: Value, _ctx: &ExecutionContext) -> Result<Value, ExecError> {
            Ok(input)
        }
    }

    #[test]
    fn registry_refuses_duplicates_and_orders_by_id() {
        let mut registry = BlockRegistry::new();
        registry.register(Echo("b")).unwrap();
        registry.register(Echo("a")).unwrap();
        let err = registry.register(Echo("a")).unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
        let ids: Vec<_> = registry.iter().map(|b| b.id().to_owned()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(registry.get("c").is_none());
    }

    #[test]
    fn parse_input_names_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct In {
            size: u32,
        }
        let err = parse_input::<In>(serde_json::json!({"size": "big"})).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
