//! The OpenAPI document, generated from the handlers' annotations, written so that generators
//! (orval, openapi-python-client) make first-class clients of it: every response described, binary
//! bodies typed as binary, closed sets as enums, ids as uuids, the public routes marked public,
//! and the signed-link download callable without a token. `scripts/client-test.sh` checks it with
//! openapi-spec-validator and Redocly, and runs generated clients against the real server.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{download, events, files, health, history, links, structure, thumbnail, upload, usage};

/// Routes that take no credentials: their operations declare `security: []`.
pub const PUBLIC_ROUTES: &[(&str, &str)] =
    &[("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/api/openapi.json")];

/// The API description served at `/api/openapi.json`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Agent Workspace Store",
        description = "Per-user persistent file workspace for AI agents. Authenticated routes take \
            `Authorization: Bearer <JWT>` (`sub` is the user); errors are JSON `{\"error\", \"message\"}` \
            with a stable `error` code; another user's file answers 404."
    ),
    servers((url = "/", description = "This server: every path is absolute")),
    tags(
        (name = "files", description = "List, upload, inspect, download and delete files"),
        (name = "links", description = "Signed download links that work without a token, e.g. for `<img src>`"),
        (name = "history", description = "Versions of a file, restore, and the trash"),
        (name = "structure", description = "Move and copy files; move and trash folders (SPEC §14)"),
        (name = "usage", description = "Bytes used against the quota"),
        (name = "events", description = "The change feed: every committed change, as JSON pages or a live \
            Server-Sent Events stream (SPEC §16)"),
        (name = "operations", description = "Liveness, readiness, metrics and this document; no credentials"),
    ),
    paths(
        files::list_files,
        upload::upload_file,
        files::get_file,
        files::delete_file,
        download::download_file,
        thumbnail::file_thumbnail,
        links::create_link,
        structure::move_file,
        structure::copy_file,
        structure::move_folder,
        structure::delete_folder,
        history::list_versions,
        history::restore_file,
        history::list_trash,
        history::purge_file,
        history::empty_trash,
        usage::usage,
        events::events,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
    ),
    components(schemas(
        crate::error::ErrorBody,
        files::ListSort,
        files::ListOrder,
        files::FileSourceName,
        download::DispositionName,
    )),
    modifiers(&BearerAuth, &PublicRoutes)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT whose `sub` is the user id (HS256, or ES256/RS256/EdDSA from the JWKS)"))
                    .build(),
            ),
        );
    }
}

/// Marks the operations of [`PUBLIC_ROUTES`] `security: []` (no credentials), which the path
/// macro cannot spell.
struct PublicRoutes;

impl Modify for PublicRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (method, path) in PUBLIC_ROUTES {
            let Some(item) = openapi.paths.paths.get_mut(*path) else { continue };
            let operation = match *method {
                "get" => item.get.as_mut(),
                "post" => item.post.as_mut(),
                "delete" => item.delete.as_mut(),
                _ => None,
            };
            if let Some(operation) = operation {
                operation.security = Some(Vec::new());
            }
        }
    }
}

/// The OpenAPI 3.1 document of this API (this document).
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", operation_id = "get_openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object,
        content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::Value;
    use utoipa::OpenApi;

    use super::{ApiDoc, PUBLIC_ROUTES};
    use crate::ROUTES;

    fn spec() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    fn operations(spec: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), operation.clone()));
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_every_operation_is_routed() {
        let spec = spec();
        let documented: Vec<(String, String)> = operations(&spec).into_iter().map(|(m, p, _)| (m, p)).collect();
        for (method, path) in ROUTES {
            assert!(
                documented.contains(&((*method).to_owned(), (*path).to_owned())),
                "{method} {path} has no operation"
            );
        }
        for (method, path) in &documented {
            assert!(
                ROUTES.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is documented but no route serves it (add it to ROUTES and the router)"
            );
        }
    }

    #[test]
    fn operations_are_generator_ready() {
        let spec = spec();
        let mut ids = std::collections::HashSet::new();
        for (method, path, op) in operations(&spec) {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{id}: snake_case method names");
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{method} {path}: one tag");
            for (status, response) in op["responses"].as_object().unwrap() {
                let description = response["description"].as_str().unwrap_or("");
                assert!(!description.is_empty(), "{method} {path} {status}: every response needs a description");
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" && param["name"] == "id" {
                    assert_eq!(param["schema"]["format"], "uuid", "{method} {path}: ids are uuids");
                }
            }
            let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
            let public = PUBLIC_ROUTES.iter().any(|(m, p)| *m == method && *p == path);
            if public {
                assert!(security.is_empty(), "{method} {path} is public: security []");
            } else {
                assert!(security.iter().any(|s| s.get("bearer").is_some()), "{method} {path} takes the bearer token");
            }
        }
        let tags: Vec<&str> = spec["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        for (method, path, op) in operations(&spec) {
            let tag = op["tags"][0].as_str().unwrap();
            assert!(tags.contains(&tag), "{method} {path}: tag {tag} is declared");
        }
        assert_eq!(spec["servers"][0]["url"], "/");
    }

    #[test]
    fn bodies_and_closed_sets_are_typed() {
        let spec = spec();
        let download = &spec["paths"]["/api/workspace/files/{id}/download"]["get"];
        for status in ["200", "206"] {
            let content = &download["responses"][status]["content"];
            assert_eq!(content["application/octet-stream"]["schema"]["format"], "binary", "{status}");
        }
        assert_eq!(download["security"], serde_json::json!([{"bearer": []}, {}]), "a signed link needs no token");
        let names: Vec<&str> =
            download["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        for name in ["w", "exp", "sig", "disposition", "Range"] {
            assert!(names.contains(&name), "download documents {name}");
        }
        let schemas = &spec["components"]["schemas"];
        assert_eq!(schemas["DispositionName"]["enum"], serde_json::json!(["inline", "attachment"]));
        assert_eq!(schemas["FileSourceName"]["enum"], serde_json::json!(["upload", "execution", "copilot", "import"]));
        assert_eq!(schemas["FileInfoResponse"]["properties"]["source"]["$ref"], "#/components/schemas/FileSourceName");
        let upload = &spec["paths"]["/api/workspace/files"]["post"];
        let overwrite = upload["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "overwrite").unwrap();
        assert!(overwrite["schema"]["type"].to_string().contains("boolean"), "{overwrite}");
        assert!(schemas["UploadForm"]["properties"]["overwrite"]["type"].to_string().contains("boolean"));
        assert_eq!(schemas["UploadForm"]["properties"]["file"]["format"], "binary");
        let doc = &spec["paths"]["/api/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"];
        assert_eq!(doc["schema"]["type"], "object");
    }
}
