//! The multipart upload handler through the real router, in memory (SQLite in a temp file,
//! in-memory blobs). Fields come before the file part, after it, or both. Whatever the body: the
//! answer is a well-formed JSON 201/400/409/412/413/415, never a 5xx; a well-formed upload reads
//! back byte for byte; and after every request storage holds exactly the blobs of the content rows
//! kept outside the database (none left by a refused upload, whichever side its fields were on).
#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use workspace_core::entity::workspace_content as content;
use workspace_core::{
    BlobKey, ContentId, Db, InMemoryStorage, Limits, Settings, Storage, UserId, WorkspaceId, Workspaces,
};
use workspace_http::{ApiConfig, AppState, JwtConfig, LinkSigner, RequestLimits};

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret";
const BOUNDARY: &str = "fuzzboundary";

#[derive(Arbitrary, Debug)]
enum Field {
    Path(String),
    Session(String),
    Overwrite(String),
    Other(String, String),
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    None,
    Truncate(u16),
    Flip(u16, u8),
    Append(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Upload {
    fields: Vec<Field>,
    /// Parts after the file part (another `file` among them is refused).
    after: Vec<Field>,
    second_file: bool,
    filename: Option<String>,
    content_type: Option<String>,
    content: Vec<u8>,
    mutation: Mutation,
    same_user: bool,
}

struct World {
    rt: tokio::runtime::Runtime,
    state: AppState,
    storage: Storage,
    db: Db,
    jwt: JwtConfig,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("fuzz.db").display());
        let db = rt.block_on(async {
            let db = Db::connect(&url).await.unwrap();
            // Under the migration lock, on one connection (as the server migrates).
            workspace_migrations::migrate(db.conn()).await.unwrap();
            db
        });
        let storage = Storage::new(InMemoryStorage::new());
        // A low inline threshold, so both kinds of staged body (in memory, blob) are reached.
        let settings = Settings {
            limits: Limits { max_file_size: 64 * 1024, quota_bytes: 256 * 1024 },
            inline_max_bytes: 256,
            ..Settings::default()
        };
        let workspaces = Workspaces::new(db.clone(), storage.clone(), settings).unwrap();
        let config = ApiConfig {
            jwt: JwtConfig::new(SECRET, None).unwrap(),
            links: LinkSigner::new(b"fuzz-links-fuzz-links").unwrap(),
            max_link_ttl: Duration::from_secs(60),
            redirect_downloads: false,
            request_limits: RequestLimits::default(),
        };
        let state = AppState::new(workspaces, config, None);
        World { rt, state, storage, db, jwt: JwtConfig::new(SECRET, None).unwrap(), _dir: dir }
    })
}

fn quoted(s: &str) -> String {
    s.replace(['"', '\r', '\n'], "_")
}

fn field_part(body: &mut Vec<u8>, field: &Field) {
    let (name, value) = match field {
        Field::Path(v) => ("path", v.as_str()),
        Field::Session(v) => ("session_id", v.as_str()),
        Field::Overwrite(v) => ("overwrite", v.as_str()),
        Field::Other(n, v) => (n.as_str(), v.as_str()),
    };
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n", quoted(name))
            .as_bytes(),
    );
}

fn body_of(upload: &Upload) -> Vec<u8> {
    let mut body = Vec::new();
    for field in &upload.fields {
        field_part(&mut body, field);
    }
    body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"").as_bytes());
    if let Some(filename) = &upload.filename {
        body.extend_from_slice(format!("; filename=\"{}\"", quoted(filename)).as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    if let Some(ct) = &upload.content_type {
        body.extend_from_slice(format!("Content-Type: {}\r\n", quoted(ct)).as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(&upload.content);
    body.extend_from_slice(b"\r\n");
    for field in &upload.after {
        field_part(&mut body, field);
    }
    if upload.second_file {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\nb\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    match &upload.mutation {
        Mutation::None => {}
        Mutation::Truncate(at) => body.truncate(usize::from(*at) % (body.len() + 1)),
        Mutation::Flip(at, byte) => {
            let i = usize::from(*at) % body.len();
            body[i] ^= byte | 1;
        }
        Mutation::Append(tail) => body.extend_from_slice(tail),
    }
    body
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = workspace_http::router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, bytes)
}

fuzz_target!(|upload: Upload| {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let w = world();
    let user = if upload.same_user { "shared".to_owned() } else { format!("u{}", COUNTER.fetch_add(1, Ordering::Relaxed)) };
    let token = w.jwt.mint(&UserId::new(&user).unwrap(), 4_000_000_000).unwrap();
    let body = body_of(&upload);
    w.rt.block_on(async {
        let request = Request::post("/api/workspace/files")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = send(&w.state, request).await;
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("every answer is JSON");
        assert!(
            matches!(status.as_u16(), 201 | 400 | 409 | 412 | 413 | 415),
            "unexpected {status}: {json} for {upload:?}"
        );
        if status == StatusCode::CREATED {
            let id = json["id"].as_str().unwrap();
            let request = Request::get(format!("/api/workspace/files/{id}/download"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let (status, got) = send(&w.state, request).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(got.len() as u64, json["size_bytes"].as_u64().unwrap());
            if matches!(upload.mutation, Mutation::None) {
                assert_eq!(got, upload.content, "a well-formed upload reads back byte for byte");
                assert!(!upload.second_file, "a second file part is refused");
            }
        } else {
            assert!(json["error"].is_string() && json["message"].is_string(), "{json}");
        }
        use sea_orm::EntityTrait;
        let expected: std::collections::BTreeSet<String> = content::Entity::find()
            .all(w.db.conn())
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.inline_data.is_none())
            .map(|c| {
                let key = BlobKey::for_content(WorkspaceId::from_uuid(c.workspace_id), ContentId::from_uuid(c.id));
                key.to_string()
            })
            .collect();
        let blobs: std::collections::BTreeSet<String> =
            w.storage.list_all("workspaces/").await.unwrap().into_iter().map(|m| m.key.to_string()).collect();
        assert_eq!(blobs, expected, "storage holds exactly the blobs of stored content");
    });
});
