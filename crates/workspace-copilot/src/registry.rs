//! The tool contract and the registry: one list of tools with their JSON schemas that backs the
//! Rust API, the MCP server, and the OpenAI / Anthropic tool definitions alike. Input is checked
//! against the tool's schema before any handler runs.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value, json};
use workspace_core::{SessionId, WorkspaceManager};
use workspace_exec::ExecEnv;

use crate::error::ToolError;
use crate::text::MAX_RESULT_CHARS;

/// The JSON Schema dialect of every tool's parameters.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Most schema violations listed in one error message.
const MAX_REPORTED_VIOLATIONS: usize = 5;

/// One chat tool: a name, a description for the model, a JSON schema of its parameters, and a
/// handler returning JSON.
#[async_trait]
pub trait Tool: Send + Sync + fmt::Debug {
    /// The name the model calls it by (`[a-zA-Z0-9_-]`, at most 64 characters).
    fn name(&self) -> &str;
    /// What it does and its limits, written for the model.
    fn description(&self) -> &str;
    /// JSON Schema (draft 2020-12) of the arguments object.
    fn parameters(&self) -> Value;
    /// Optional parameters whose empty string is a value rather than an omission, in order of
    /// preference, e.g. the text of an empty file. They are alternatives to one another: one sent
    /// as `""` still counts as absent when another of them carries a non-empty value, and when
    /// every one sent is `""` only the first of those is kept. Every other optional parameter
    /// sent as `""` counts as absent (see [`normalize_args`]). Default: none.
    fn empty_string_values(&self) -> &'static [&'static str] {
        &[]
    }
    /// JSON Schema of a successful result (an object); a failure is [`ToolError`]'s shape. MCP
    /// clients get it as `outputSchema` and validate `structuredContent` against it.
    fn output_schema(&self) -> Value;
    /// Runs the tool. The registry has already normalized `args` ([`normalize_args`]) and
    /// validated them against [`parameters`](Self::parameters).
    async fn call(&self, args: Value, ctx: &ToolContext) -> Result<Value, ToolError>;
}

/// Who a tool call acts for: the user's workspace within one chat session, and the execution
/// environment `run_block` uses.
#[derive(Debug, Clone)]
pub struct ToolContext {
    manager: WorkspaceManager,
    session: SessionId,
    env: ExecEnv,
}

impl ToolContext {
    /// A context over `manager`, which must be bound to a session (tools always run in one).
    pub fn new(manager: WorkspaceManager, env: ExecEnv) -> Result<Self, ToolError> {
        let session = manager
            .session_id()
            .cloned()
            .ok_or_else(|| ToolError::invalid_input("copilot tools need a session: build the manager with one"))?;
        Ok(Self { manager, session, env })
    }
    /// The workspace, bound to the user and the session.
    pub fn manager(&self) -> &WorkspaceManager {
        &self.manager
    }
    /// The chat session.
    pub fn session(&self) -> &SessionId {
        &self.session
    }
    /// The execution environment for blocks.
    pub fn env(&self) -> &ExecEnv {
        &self.env
    }
}

/// A tool's definition in a neutral form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDefinition {
    /// Tool name.
    pub name: String,
    /// Description for the model.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments.
    pub parameters: Value,
    /// JSON Schema of the result: the tool's success schema or the error shape
    /// (`{"error", "message", "current_checksum"?}`).
    pub output_schema: Value,
}

/// The shape of every failed tool result ([`ToolError::to_json`]).
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "current_checksum": {"type": "string"}
        },
        "required": ["error", "message"]
    })
}

struct Entry {
    tool: Arc<dyn Tool>,
    schema: Value,
    validator: jsonschema::Validator,
    output_schema: Value,
    output_validator: jsonschema::Validator,
}

/// The tools, in registration order, each with its compiled schema.
#[derive(Default)]
pub struct ToolRegistry {
    entries: Vec<Entry>,
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| e.tool.name())).finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool. Refused: a duplicate or malformed name, or parameters that are not a valid
    /// draft 2020-12 schema of an object.
    pub fn register(&mut self, tool: impl Tool + 'static) -> Result<(), ToolError> {
        let name = tool.name().to_owned();
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ToolError::invalid_input(format!("tool name `{name}` must be 1 to 64 of [a-zA-Z0-9_-]")));
        }
        if self.get(&name).is_some() {
            return Err(ToolError::invalid_input(format!("a tool named `{name}` is already registered")));
        }
        let schema = tool.parameters();
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(ToolError::invalid_input(format!("the parameters of `{name}` must be an object schema")));
        }
        let validator = compile_schema(&schema).map_err(|e| ToolError::invalid_input(format!("tool `{name}`: {e}")))?;
        for value in tool.empty_string_values() {
            if schema["properties"].get(*value).is_none() || required(&schema).any(|r| r == *value) {
                return Err(ToolError::invalid_input(format!(
                    "tool `{name}`: `{value}` is listed in empty_string_values but is not an optional parameter"
                )));
            }
        }
        let success = tool.output_schema();
        if success.get("type").and_then(Value::as_str) != Some("object") {
            return Err(ToolError::invalid_input(format!("the output schema of `{name}` must be an object schema")));
        }
        let output_schema = json!({"$schema": SCHEMA_DIALECT, "type": "object", "anyOf": [success, error_schema()]});
        let output_validator = compile_schema(&output_schema)
            .map_err(|e| ToolError::invalid_input(format!("tool `{name}` output: {e}")))?;
        self.entries.push(Entry { tool: Arc::new(tool), schema, validator, output_schema, output_validator });
        Ok(())
    }

    /// The tool with this name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.entries.iter().find(|e| e.tool.name() == name).map(|e| e.tool.clone())
    }

    /// Every tool's definition, in registration order.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.entries
            .iter()
            .map(|e| ToolDefinition {
                name: e.tool.name().to_owned(),
                description: e.tool.description().to_owned(),
                parameters: e.schema.clone(),
                output_schema: e.output_schema.clone(),
            })
            .collect()
    }

    /// The tools as OpenAI (Chat Completions) function tools:
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    pub fn openai_functions(&self) -> Vec<Value> {
        self.definitions()
            .into_iter()
            .map(|d| {
                json!({
                    "type": "function",
                    "function": {"name": d.name, "description": d.description, "parameters": without_dialect(d.parameters)}
                })
            })
            .collect()
    }

    /// The tools as Anthropic (Messages API) tools: `{"name", "description", "input_schema"}`.
    pub fn anthropic_tools(&self) -> Vec<Value> {
        self.definitions()
            .into_iter()
            .map(|d| json!({"name": d.name, "description": d.description, "input_schema": without_dialect(d.parameters)}))
            .collect()
    }

    /// The arguments as tool `name` will see them: normalized ([`normalize_args`]), then checked
    /// against its schema.
    pub fn prepare(&self, name: &str, args: Value) -> Result<Value, ToolError> {
        let entry = self.entry(name)?;
        let args = normalize_args(&entry.schema, entry.tool.empty_string_values(), args);
        check(&entry.validator, &args, &format!("arguments of `{name}`"))?;
        Ok(args)
    }

    /// Checks `args` against the tool's schema, after the same normalization as
    /// [`call`](Self::call) (a missing argument object counts as `{}`, `""` of an optional
    /// parameter as absent).
    pub fn validate(&self, name: &str, args: &Value) -> Result<(), ToolError> {
        self.prepare(name, args.clone()).map(|_| ())
    }

    /// Normalizes, validates and runs a tool. Every failure is a [`ToolError`]; nothing panics.
    /// A result over [`MAX_RESULT_CHARS`] (a tool's own budget failed) is replaced by an error
    /// rather than flooding the model's context.
    pub async fn call(&self, name: &str, args: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let args = self.prepare(name, args)?;
        let entry = self.entry(name)?;
        let result = entry.tool.call(args, ctx).await?;
        let chars = result.to_string().chars().count();
        if chars > MAX_RESULT_CHARS {
            tracing::warn!(tool = name, chars, "tool result over the context budget");
            return Err(ToolError::new(
                "result_too_large",
                format!(
                    "the result would be {chars} characters, over the {MAX_RESULT_CHARS}-character limit; ask for \
                     less (a smaller limit, a narrower path_prefix, a line range)"
                ),
            ));
        }
        Ok(result)
    }

    /// Checks a tool's result (or error JSON) against its output schema.
    pub fn check_output(&self, name: &str, result: &Value) -> Result<(), ToolError> {
        let entry = self.entry(name)?;
        check(&entry.output_validator, result, &format!("results of `{name}`"))
    }

    /// [`call`](Self::call) with the error folded into the JSON the model sees.
    pub async fn call_json(&self, name: &str, args: Value, ctx: &ToolContext) -> Value {
        self.call(name, args, ctx).await.unwrap_or_else(|e| e.to_json())
    }

    fn entry(&self, name: &str) -> Result<&Entry, ToolError> {
        self.entries.iter().find(|e| e.tool.name() == name).ok_or_else(|| {
            let names: Vec<_> = self.entries.iter().map(|e| e.tool.name()).collect();
            ToolError::not_found(format!("no tool named `{name}`; available: {}", names.join(", ")))
        })
    }
}

/// Compiles a schema for validation: draft 2020-12 unless its `$schema` names another dialect,
/// meta-validated first, and with no way to fetch remote (or file) references.
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::meta::validate(schema).map_err(|e| format!("invalid JSON schema: {e}"))?;
    jsonschema::options().with_retriever(NoRemoteRefs).build(schema).map_err(|e| format!("invalid JSON schema: {e}"))
}

/// Validates `value` with `validator`, listing the first few violations.
pub fn check(validator: &jsonschema::Validator, value: &Value, what: &str) -> Result<(), ToolError> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(MAX_REPORTED_VIOLATIONS)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() { e.to_string() } else { format!("at `{at}`: {e}") }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ToolError::invalid_input(format!("{what} do not match the schema: {}", problems.join("; "))))
    }
}

/// Refuses every external `$ref`: schemas are self-contained, and validation never goes to the network.
#[derive(Debug)]
struct NoRemoteRefs;

impl jsonschema::Retrieve for NoRemoteRefs {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external schema references are not allowed ({uri})").into())
    }
}

/// Arguments as a tool with this `schema` sees them (SPEC §9):
/// - a missing (`null`) argument object is `{}`;
/// - models fill optional parameters they do not use with `""`, so a parameter the schema
///   declares but does not require, sent as `""`, counts as absent — whatever its type (an
///   optional `"limit": ""` is absent too), and before validation, so a `minLength: 1` schema
///   does not refuse it. Required parameters and undeclared ones are left for the schema to judge.
/// - `empty_string_values` ([`Tool::empty_string_values`]) are the exception: parameters whose
///   `""` is a value (an empty file's content). Of those, a `""` counts as absent when another
///   carries a non-empty value; when all that were sent are `""`, the first in the list is kept.
///
/// Anything that is not an object is returned unchanged (the schema refuses it).
pub fn normalize_args(schema: &Value, empty_string_values: &[&str], args: Value) -> Value {
    let mut map = match args {
        Value::Null => return Value::Object(Map::new()),
        Value::Object(map) => map,
        other => return other,
    };
    let is_empty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(str::is_empty);
    let any_value = empty_string_values.iter().any(|name| map.get(*name).is_some_and(|v| !is_empty(Some(v))));
    let mut kept_one = false;
    for name in empty_string_values {
        if is_empty(map.get(*name)) {
            if any_value || kept_one {
                map.remove(*name);
            } else {
                kept_one = true;
            }
        }
    }
    let declared = schema.get("properties").and_then(Value::as_object);
    map.retain(|name, value| {
        let optional = declared.is_some_and(|props| props.contains_key(name))
            && !required(schema).any(|r| r == name)
            && !empty_string_values.contains(&name.as_str());
        !(optional && is_empty(Some(value)))
    });
    Value::Object(map)
}

/// The names a schema lists as `required`.
fn required(schema: &Value) -> impl Iterator<Item = &str> {
    schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

fn without_dialect(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_references_are_never_fetched() {
        for target in ["https://example.com/schema.json", "http://169.254.169.254/latest", "file:///etc/passwd"] {
            let schema = json!({"type": "object", "properties": {"x": {"$ref": target}}});
            let err = compile_schema(&schema).expect_err(target);
            assert!(err.contains("invalid JSON schema"), "{err}");
        }
        let local =
            json!({"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"x": {"$ref": "#/$defs/n"}}});
        let validator = compile_schema(&local).unwrap();
        assert!(check(&validator, &json!({"x": 1}), "input").is_ok());
        let err = check(&validator, &json!({"x": "one"}), "input").unwrap_err();
        assert!(err.message.contains("/x"), "{}", err.message);
    }

    #[test]
    fn empty_strings_of_optional_parameters_are_absent() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "text": {"type": "string"},
                "bytes": {"type": "string"},
                "path": {"type": "string", "minLength": 1},
                "limit": {"type": "integer"}
            },
            "required": ["name"]
        });
        let values = ["text", "bytes"];
        let norm = |args: Value| normalize_args(&schema, &values, args);
        assert_eq!(norm(Value::Null), json!({}));
        // Optional, declared, `""`: absent, whatever the declared type.
        assert_eq!(norm(json!({"name": "n", "path": "", "limit": ""})), json!({"name": "n"}));
        // Required and undeclared parameters are left for the schema to refuse.
        assert_eq!(norm(json!({"name": "", "other": ""})), json!({"name": "", "other": ""}));
        // Values: `""` is content unless another value is given.
        assert_eq!(norm(json!({"text": ""})), json!({"text": ""}));
        assert_eq!(norm(json!({"bytes": ""})), json!({"bytes": ""}));
        assert_eq!(norm(json!({"text": "", "bytes": ""})), json!({"text": ""}));
        assert_eq!(norm(json!({"text": "hi", "bytes": ""})), json!({"text": "hi"}));
        assert_eq!(norm(json!({"text": "", "bytes": "aGk="})), json!({"bytes": "aGk="}));
        assert_eq!(norm(json!({"text": "a", "bytes": "b"})), json!({"text": "a", "bytes": "b"}));
        // Whitespace is a value; other JSON values are left alone.
        assert_eq!(norm(json!({"path": " ", "limit": null})), json!({"path": " ", "limit": null}));
        assert_eq!(norm(json!("text")), json!("text"));
        // Normalizing twice changes nothing more.
        let once = norm(json!({"text": "", "bytes": "", "path": ""}));
        assert_eq!(norm(once.clone()), once);
    }

    #[test]
    fn malformed_schemas_and_names_are_refused() {
        assert!(compile_schema(&json!({"type": "no-such-type"})).is_err());
        assert!(compile_schema(&json!({"minimum": "zero"})).is_err());
    }
}
