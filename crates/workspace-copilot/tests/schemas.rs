//! The tool schemas themselves: valid draft 2020-12 documents, exported faithfully for OpenAI and
//! Anthropic, and enforced — every handler refuses input its schema refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use serde_json::{Map, Value, json};
use workspace_copilot::SCHEMA_DIALECT;
use workspace_testkit::{DbKind, TestEnv};

async fn harness() -> Harness {
    Harness::new(TestEnv::new(DbKind::Sqlite).await.unwrap())
}

const TOOLS: [&str; 13] = [
    "list_workspace_files",
    "read_workspace_file",
    "write_workspace_file",
    "delete_workspace_file",
    "run_block",
    "list_workspace_versions",
    "restore_workspace_file",
    "workspace_usage",
    "move_workspace_file",
    "copy_workspace_file",
    "grep_workspace_files",
    "glob_workspace_files",
    "edit_workspace_file",
];

#[tokio::test]
async fn every_tool_schema_is_a_valid_draft_2020_12_schema() {
    let h = harness().await;
    let defs = h.copilot.tools().definitions();
    assert_eq!(defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), TOOLS);
    for def in &defs {
        let schema = &def.parameters;
        assert_eq!(schema["$schema"], SCHEMA_DIALECT, "{}", def.name);
        if let Err(err) = jsonschema::draft202012::meta::validate(schema) {
            panic!("{}: not a valid draft 2020-12 schema: {err}", def.name);
        }
        jsonschema::draft202012::new(schema).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false, "{}: unknown arguments are refused", def.name);
        for (prop, spec) in schema["properties"].as_object().unwrap() {
            assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()), "{}.{prop} is described", def.name);
        }
        assert!(def.description.len() > 80, "{} has a real description", def.name);
    }
    // The descriptions tell the model the limits.
    let description = |name: &str| defs.iter().find(|d| d.name == name).unwrap().description.clone();
    let read = description("read_workspace_file");
    for needle in ["32 KiB", "500-character", "offset", "workspace://", "base64"] {
        assert!(read.contains(needle), "read description mentions {needle}");
    }
    assert!(description("list_workspace_files").contains("max 100"));
    assert!(description("write_workspace_file").contains("100 MiB per file"));
    assert!(description("write_workspace_file").contains("250 MiB per user"));
    assert!(description("run_block").contains("`qr_code`"), "run_block lists the blocks");
}

#[tokio::test]
async fn exports_for_openai_and_anthropic() {
    let h = harness().await;
    let defs = h.copilot.tools().definitions();
    let openai = h.copilot.tools().openai_functions();
    let anthropic = h.copilot.tools().anthropic_tools();
    assert_eq!(openai.len(), defs.len());
    assert_eq!(anthropic.len(), defs.len());
    for ((def, o), a) in defs.iter().zip(&openai).zip(&anthropic) {
        assert_eq!(o["type"], "function");
        assert_eq!(o["function"]["name"], def.name.as_str());
        assert_eq!(o["function"]["description"], def.description.as_str());
        assert_eq!(a["name"], def.name.as_str());
        assert_eq!(a["description"], def.description.as_str());
        for exported in [&o["function"]["parameters"], &a["input_schema"]] {
            assert_eq!(exported["type"], "object");
            assert!(exported.get("$schema").is_none(), "vendor formats get the schema without `$schema`");
            assert_eq!(exported["properties"], def.parameters["properties"]);
            // No combinators at the top level: OpenAI refuses them there.
            for keyword in ["oneOf", "anyOf", "allOf", "not", "enum"] {
                assert!(exported.get(keyword).is_none(), "{}: top-level {keyword}", def.name);
            }
            assert!(jsonschema::draft202012::meta::is_valid(exported));
        }
        assert_eq!(a.as_object().unwrap().len(), 3, "Anthropic tools have exactly name, description, input_schema");
    }
}

/// Inputs each schema must refuse, derived from the schema: wrong top-level types, unknown
/// properties, missing required properties, wrong property types, and values outside bounds.
fn invalid_inputs(schema: &Value) -> Vec<Value> {
    let props = schema["properties"].as_object().unwrap();
    let required: Vec<&str> =
        schema["required"].as_array().map_or(vec![], |r| r.iter().filter_map(Value::as_str).collect());
    // A minimal valid object to perturb.
    let mut base = Map::new();
    for name in &required {
        base.insert((*name).to_owned(), valid_value(&props[*name]));
    }
    let mut out = vec![json!("just a string"), json!(42), json!([]), json!(true)];
    let mut with = |name: &str, value: Value| {
        let mut object = base.clone();
        object.insert(name.to_owned(), value);
        out.push(Value::Object(object));
    };
    with("unexpected_argument", json!(1));
    for (name, spec) in props {
        let wrong = match spec["type"].as_str().unwrap() {
            "string" => vec![json!(5), json!(null), json!(["x"])],
            "integer" => vec![json!("5"), json!(1.5), json!(null)],
            "boolean" => vec![json!("yes"), json!(1)],
            "object" => vec![json!("x"), json!([1])],
            other => panic!("no generator for {other}"),
        };
        for value in wrong {
            with(name, value);
        }
        if let Some(min) = spec["minimum"].as_i64() {
            with(name, json!(min - 1));
        }
        if let Some(max) = spec["maximum"].as_i64() {
            with(name, json!(max + 1));
        }
        // `""` of an optional parameter counts as absent (SPEC §9); only a required one is refused.
        if spec["minLength"].as_u64().is_some_and(|n| n > 0) && required.contains(&name.as_str()) {
            with(name, json!(""));
        }
        if let Some(max) = spec["maxLength"].as_u64() {
            with(name, json!("x".repeat(max as usize + 1)));
        }
        if spec["pattern"].is_string() {
            with(name, json!("a/b"));
        }
        if let Some(allowed) = spec["enum"].as_array() {
            assert!(!allowed.contains(&json!("not-a-block")));
            with(name, json!("not-a-block"));
        }
    }
    for name in &required {
        let mut object = base.clone();
        object.remove(*name);
        out.push(Value::Object(object));
    }
    out
}

fn valid_value(spec: &Value) -> Value {
    if let Some(first) = spec["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match spec["type"].as_str().unwrap() {
        "string" => json!("ok.txt"),
        "integer" => json!(spec["minimum"].as_i64().unwrap_or(1)),
        "boolean" => json!(false),
        _ => json!({}),
    }
}

#[tokio::test]
async fn every_handler_rejects_what_its_schema_rejects() {
    let h = harness().await;
    let mut checked = 0;
    for def in h.copilot.tools().definitions() {
        let validator = jsonschema::draft202012::new(&def.parameters).unwrap();
        let inputs = invalid_inputs(&def.parameters);
        let has_parameters = def.parameters["properties"].as_object().is_some_and(|p| !p.is_empty());
        let least = if has_parameters { 8 } else { 2 };
        assert!(inputs.len() >= least, "{}: several invalid inputs ({})", def.name, inputs.len());
        for input in inputs {
            assert!(!validator.is_valid(&input), "{}: the schema itself should refuse {input}", def.name);
            let err =
                h.call("s1", &def.name, input.clone()).await.expect_err(&format!("{} accepted {input}", def.name));
            assert_eq!(err.code, "invalid_input", "{}: {input} → {err:?}", def.name);
            assert!(err.message.contains("schema"), "the message says what broke: {}", err.message);
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} invalid inputs checked");
    // Nothing was written by any refused call.
    assert_eq!(h.manager().await.usage().await.unwrap().file_count, 0);
}

/// Arguments that make `tool` succeed without using the parameter `avoid`; a fresh file for the
/// tools that consume one. `n` keeps names apart.
async fn valid_arguments(h: &Harness, tool: &str, avoid: &str, n: usize) -> Value {
    let manager = h.manager().await;
    let file = |path: String| {
        let manager = manager.clone();
        async move {
            let path = workspace_core::WorkspacePath::parse(&path).unwrap();
            manager.write_bytes(workspace_core::NewFile::new(path).with_overwrite(true), "seed").await.unwrap().id
        }
    };
    let candidates = match tool {
        "list_workspace_files" => vec![json!({})],
        "read_workspace_file" => {
            let id = file("/seed.txt".into()).await;
            vec![json!({"path": "/seed.txt"}), json!({"file_id": id.to_string()})]
        }
        "write_workspace_file" => vec![
            json!({"filename": format!("w{n}.txt"), "content": "hello"}),
            json!({"filename": format!("w{n}.txt"), "content_base64": "aGk="}),
        ],
        "delete_workspace_file" => {
            let id = file(format!("/d{n}.txt")).await;
            vec![json!({"path": format!("/d{n}.txt")}), json!({"file_id": id.to_string()})]
        }
        "list_workspace_versions" => {
            let id = file("/v.txt".into()).await;
            vec![json!({"path": "/v.txt"}), json!({"file_id": id.to_string()})]
        }
        "restore_workspace_file" => {
            let id = file(format!("/r{n}.txt")).await;
            manager.delete(id, workspace_core::Precondition::None).await.unwrap();
            vec![json!({"file_id": id.to_string()})]
        }
        "workspace_usage" => vec![json!({})],
        "move_workspace_file" => {
            let id = file(format!("/mv{n}.txt")).await;
            vec![
                json!({"path": format!("/mv{n}.txt"), "new_path": format!("/moved{n}.txt")}),
                json!({"file_id": id.to_string(), "new_path": format!("/moved{n}.txt")}),
            ]
        }
        "copy_workspace_file" => {
            let id = file(format!("/cp{n}.txt")).await;
            vec![
                json!({"path": format!("/cp{n}.txt"), "new_path": format!("/copied{n}.txt")}),
                json!({"file_id": id.to_string(), "new_path": format!("/copied{n}.txt")}),
            ]
        }
        "grep_workspace_files" => {
            file("/g.txt".into()).await;
            vec![json!({"pattern": "seed", "path_prefix": "/"}), json!({"pattern": "seed"})]
        }
        "glob_workspace_files" => vec![json!({"pattern": "*.txt", "path_prefix": "/"}), json!({"pattern": "*.txt"})],
        "edit_workspace_file" => {
            let id = file(format!("/e{n}.txt")).await;
            vec![
                json!({"path": format!("/e{n}.txt"), "old_text": "seed", "new_text": "grown"}),
                json!({"file_id": id.to_string(), "old_text": "seed", "new_text": "grown"}),
            ]
        }
        // Without `input` the block lacks its required `text`: both calls must fail alike.
        "run_block" => vec![json!({"block_id": "qr_code", "input": {"text": "x"}}), json!({"block_id": "qr_code"})],
        other => panic!("no valid arguments for {other}: add them here"),
    };
    candidates
        .into_iter()
        .find(|c| c.get(avoid).is_none())
        .unwrap_or_else(|| panic!("{tool}: every candidate uses {avoid}"))
}

/// SPEC §9, over every tool and every optional parameter its schema declares: `""` for it gives
/// the same outcome as leaving it out, and is never refused as a schema violation (whatever the
/// parameter's type or `minLength`).
#[tokio::test]
async fn every_optional_parameter_accepts_an_empty_string_as_absent() {
    let h = harness().await;
    let mut n = 0;
    let mut checked = Vec::new();
    for def in h.copilot.tools().definitions() {
        let required: Vec<&str> =
            def.parameters["required"].as_array().map_or(vec![], |r| r.iter().filter_map(Value::as_str).collect());
        for name in def.parameters["properties"].as_object().unwrap().keys() {
            if required.contains(&name.as_str()) {
                continue;
            }
            n += 1;
            let mut with_empty = valid_arguments(&h, &def.name, name, n).await;
            with_empty[name.as_str()] = json!("");
            let got = h.call("s1", &def.name, with_empty.clone()).await;
            n += 1;
            let without = valid_arguments(&h, &def.name, name, n).await;
            let expected = h.call("s1", &def.name, without.clone()).await;
            match (&got, &expected) {
                (Ok(_), Ok(_)) => {}
                (Err(a), Err(b)) if a == b && !a.message.contains(&format!("`{name}`")) => {}
                _ => panic!("{}: {with_empty} → {got:?}, but {without} → {expected:?}", def.name),
            }
            checked.push(format!("{}.{name}", def.name));
        }
    }
    assert!(checked.len() >= 20, "every optional parameter of every tool was tried: {checked:?}");
}

#[tokio::test]
async fn a_missing_argument_object_counts_as_empty() {
    let h = harness().await;
    let listed = h.call("s1", "list_workspace_files", Value::Null).await.unwrap();
    assert_eq!(listed["count"], 0);
    let err = h.call("s1", "write_workspace_file", Value::Null).await.unwrap_err();
    assert_eq!(err.code, "invalid_input");
}
