//! `run_block`: runs a registered block for the chat, with the synthetic, session-scoped execution
//! context of SPEC §9, after checking the input against the block's own schema.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use workspace_exec::{
    BlockRegistry, ExecEnv, ExecutionContext, GraphExecId, GraphRun, MediaFile, MediaReturnFormat, store_media_file,
};

use super::parse_args;
use crate::error::ToolError;
use crate::registry::{SCHEMA_DIALECT, Tool, ToolContext, check, compile_schema, normalize_args};

/// Longest string a block output may hand back inline; longer `data:` URIs are stored in the
/// workspace and replaced by their `workspace://` reference.
const MAX_INLINE_DATA_URI: usize = 1024;

/// Runs blocks from a registry.
#[derive(Debug)]
pub struct RunBlockTool {
    blocks: Arc<BlockRegistry>,
    description: String,
    /// Runs in flight per execution id: the last one to finish removes the temp directory.
    running: Mutex<HashMap<String, usize>>,
}

impl RunBlockTool {
    /// The tool over `blocks`; its description lists them with their input schemas.
    pub fn new(blocks: Arc<BlockRegistry>) -> Self {
        let mut description = String::from(
            "Run one of the platform's blocks in this chat session with `input`, an object matching the \
             block's input schema. Media the block produces are saved to the user's workspace and come back \
             as workspace:// references (read them with read_workspace_file, or pass them to other blocks); \
             media inputs may be workspace:// references, data: URIs or https URLs. Leave out optional \
             input fields you do not use (an empty string for one counts as not given). Available blocks:",
        );
        let mut any = false;
        for block in blocks.iter() {
            any = true;
            description.push_str(&format!(
                "\n- `{}` ({}): {} Input schema: {}",
                block.id(),
                block.name(),
                block.description(),
                block.input_schema()
            ));
        }
        if !any {
            description.push_str(" none.");
        }
        Self { blocks, description, running: Mutex::default() }
    }

    fn enter(&self, exec: &str) {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner).entry(exec.to_owned()).or_default() += 1;
    }

    /// Whether this was the last run of `exec` in flight.
    fn leave(&self, exec: &str) -> bool {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        match running.get_mut(exec) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                running.remove(exec);
                true
            }
        }
    }
}

#[derive(Deserialize)]
struct Args {
    block_id: String,
    #[serde(default)]
    input: Map<String, Value>,
}

#[async_trait]
impl Tool for RunBlockTool {
    fn name(&self) -> &str {
        "run_block"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        let ids: Vec<String> = self.blocks.iter().map(|b| b.id().to_owned()).collect();
        let mut block_id = json!({"type": "string", "minLength": 1, "description": "Which block to run."});
        if !ids.is_empty() {
            block_id["enum"] = json!(ids);
        }
        json!({
            "$schema": SCHEMA_DIALECT,
            "type": "object",
            "properties": {
                "block_id": block_id,
                "input": {"type": "object", "description": "The block's input, matching its input schema.", "default": {}}
            },
            "required": ["block_id"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "block_id": {"type": "string"},
                "graph_exec_id": {"type": "string"},
                "node_id": {"type": "string"},
                "node_exec_id": {"type": "string"},
                "output": {"description": "The block's output; media it produced are workspace:// references."}
            },
            "required": ["block_id", "graph_exec_id", "node_id", "node_exec_id", "output"]
        })
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args: Args = parse_args(args)?;
        let block = self.blocks.get(&args.block_id).ok_or_else(|| {
            let ids: Vec<_> = self.blocks.iter().map(|b| b.id().to_owned()).collect();
            ToolError::not_found(format!("no block `{}`; available: {}", args.block_id, ids.join(", ")))
        })?;
        // The same rule as for tool arguments: `""` for an optional input field is an omission.
        let input = normalize_args(&block.input_schema(), &[], Value::Object(args.input));
        let validator = compile_schema(&block.input_schema()).map_err(|e| {
            ToolError::new("block_failed", format!("block `{}` has an unusable input schema: {e}", block.id()))
        })?;
        check(&validator, &input, &format!("the input of block `{}`", block.id()))?;

        let session = ctx.session().as_str();
        let graph_id = format!("copilot-session-{session}");
        let exec_id = GraphExecId::new(graph_id.clone())?;
        let node_id = format!("copilot-node-{}", block.id());
        let node_exec_id = format!("copilot-{session}-{:08x}", rand::random::<u32>());
        let run = GraphRun {
            user_id: ctx.manager().user_id().clone(),
            graph_id,
            graph_version: 1,
            graph_exec_id: exec_id.clone(),
        };
        let node = ExecutionContext::new(ctx.env(), run)
            .with_workspace(ctx.manager().clone())?
            .for_node(node_id.clone(), node_exec_id.clone());

        self.enter(exec_id.as_str());
        // A separate task, so a block that panics fails this call instead of the server.
        let task = {
            let (block, node) = (block.clone(), node.clone());
            tokio::spawn(async move {
                let output = block.run(input, &node).await?;
                inline_media_to_refs(output, &node).await
            })
        };
        let outcome = task.await;
        if self.leave(exec_id.as_str()) {
            cleanup(ctx.env(), &exec_id).await;
        }
        let output = match outcome {
            Ok(result) => result?,
            Err(join) => {
                tracing::error!(block = block.id(), error = %join, "block crashed");
                return Err(ToolError::new("block_failed", format!("block `{}` crashed", block.id())));
            }
        };
        Ok(json!({
            "block_id": block.id(),
            "graph_exec_id": exec_id.as_str(),
            "node_id": node_id,
            "node_exec_id": node_exec_id,
            "output": output,
        }))
    }
}

async fn cleanup(env: &ExecEnv, exec_id: &GraphExecId) {
    if let Err(err) = env.cleanup(exec_id).await {
        tracing::warn!(%exec_id, error = %err, "could not remove the execution's temp directory");
    }
}

/// Replaces long `data:` URIs anywhere in a block's output by `workspace://` references, so media
/// never reach the model as inline bytes.
async fn inline_media_to_refs(mut value: Value, ctx: &ExecutionContext) -> Result<Value, workspace_exec::ExecError> {
    let mut pointers = Vec::new();
    find_data_uris(&value, &mut String::new(), &mut pointers);
    for pointer in pointers {
        if let Some(slot) = value.pointer_mut(&pointer)
            && let Value::String(uri) = slot
        {
            let stored =
                store_media_file(&MediaFile::new(std::mem::take(uri)), ctx, MediaReturnFormat::ForBlockOutput).await?;
            *slot = Value::String(stored.as_str().to_owned());
        }
    }
    Ok(value)
}

/// JSON pointers of the long `data:` URI strings in `value`.
fn find_data_uris(value: &Value, at: &mut String, found: &mut Vec<String>) {
    let len = at.len();
    match value {
        Value::String(s) if s.len() > MAX_INLINE_DATA_URI && s.starts_with("data:") => found.push(at.clone()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push_str(&format!("/{i}"));
                find_data_uris(item, at, found);
                at.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                find_data_uris(item, at, found);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_long_data_uris_at_any_depth() {
        let long = format!("data:image/png;base64,{}", "A".repeat(2000));
        let value = json!({"a": [1, long.clone(), "data:,short"], "b/c": {"d": long}, "e": "x"});
        let mut found = Vec::new();
        find_data_uris(&value, &mut String::new(), &mut found);
        found.sort();
        assert_eq!(found, ["/a/1", "/b~1c/d"]);
        for pointer in &found {
            assert!(value.pointer(pointer).is_some());
        }
    }
}
