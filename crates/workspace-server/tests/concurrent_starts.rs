//! SPEC §7: replicas may start at the same moment on an empty database. Eight server processes
//! started at once all become ready, and the schema was migrated exactly once (migrations run
//! under the database's lock: a PostgreSQL advisory lock, SQLite's write lock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ServerProcess, clean_command, spawn};
use sea_orm::{ConnectionTrait, Statement};
use workspace_testkit::{DbKind, TestEnv};

async fn eight_servers_start_at_once(kind: DbKind) {
    let Some(env) = TestEnv::migrated(kind, Some(0)).await else { return };
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let mut cmd = clean_command();
            cmd.env("WS_DATABASE_URL", env.database_url())
                .env("WS_JWT_SECRET", "concurrent-start-secret-0123456789")
                .envs(env.storage_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            std::thread::spawn(move || spawn(cmd, false))
        })
        .collect();
    let servers: Vec<ServerProcess> = starts.into_iter().map(|t| t.join().expect("every server started")).collect();
    let client = common::client();
    let deadline = Instant::now() + Duration::from_secs(30);
    for server in &servers {
        loop {
            let ready = client.get(format!("{}/readyz", server.base)).send().await.map(|r| r.status().as_u16());
            if ready.as_ref().is_ok_and(|s| *s == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "{} never became ready: {ready:?}", server.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let rows = env
        .db
        .conn()
        .query_all_raw(Statement::from_string(env.db.backend(), "SELECT version FROM seaql_migrations"))
        .await
        .unwrap();
    let mut names: Vec<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    names.sort();
    let expected = names.clone().into_iter().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names.len(), expected.len(), "each migration recorded once: {names:?}");
    let defined = <workspace_migrations::Migrator as workspace_migrations::MigratorTrait>::migrations().len();
    assert_eq!(names.len(), defined, "every migration ran: {names:?}");
    // And the schema works for all of them: a write through one is read through another.
    let token = workspace_http::JwtConfig::new(b"concurrent-start-secret-0123456789", None)
        .unwrap()
        .mint(&workspace_core::UserId::new("u").unwrap(), common::now() + 600)
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"hi".to_vec()).file_name("a.txt"));
    let r = client.post(format!("{}/api/workspace/files", servers[0].base)).bearer_auth(&token).multipart(form);
    assert_eq!(r.send().await.unwrap().status(), 201);
    let r = client.get(format!("{}/api/workspace/usage", servers[7].base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["file_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_servers_start_at_once_on_postgres() {
    eight_servers_start_at_once(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_servers_start_at_once_on_sqlite() {
    eight_servers_start_at_once(DbKind::Sqlite).await;
}
