//! Seeds a workspace with many small files for the listing benchmark.
//!
//! The files lie in 1 000 folders (`/list/d000/` … `/list/d999/`), so the same data serves the
//! flat listing and the folder listing (`delimiter=/`). The first `via_manager` files go through
//! `WorkspaceManager::write_bytes` (the real write path; small files are kept inline, so storage
//! is not touched). The rest are copies of the row the manager produced (sharing its content, as
//! dedup would), each with one older version beside it, so the listings run with as many history
//! rows as current ones in the table; they are inserted 500 files per statement, and the
//! workspace's counters are set to match: writing 100 000 files one by one would measure the
//! write path, not the listing.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectOptions, Database, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use workspace_core::entity::{user_workspace, user_workspace_file as file};
use workspace_core::{Db, InMemoryStorage, Limits, NewFile, Settings, Storage, UserId, WorkspacePath, Workspaces};

/// Folders the files are spread over.
pub const FOLDERS: u64 = 1000;

pub fn path_of(i: u64) -> String {
    format!("/list/d{:03}/f{i:07}.txt", i % FOLDERS)
}

pub async fn seed(database_url: &str, user: &str, count: u64, via_manager: u64) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let mut options = ConnectOptions::new(database_url.to_owned());
    // Seed data needs no durability: the benchmark reads it back from the page cache.
    options.sqlx_logging(false).max_connections(1).map_sqlx_sqlite_opts(|o| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        o.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Off).foreign_keys(true)
    });
    let db = Db::from_connection(Database::connect(options).await.context("opening the database")?);
    let settings = Settings { limits: Limits { max_file_size: 1 << 20, quota_bytes: 1 << 50 }, ..Settings::default() };
    let workspaces = Workspaces::new(db.clone(), Storage::new(InMemoryStorage::new()), settings)?;
    let manager = workspaces.manager(&UserId::new(user)?, None).await?;
    let via_manager = via_manager.clamp(1, count.max(1));
    for i in 0..via_manager.min(count) {
        let path = WorkspacePath::parse(&path_of(i))?;
        manager.write_bytes(NewFile::new(path), Bytes::from(format!("file {i}\n"))).await?;
    }
    let manager_secs = started.elapsed().as_secs_f64();
    let template = file::Entity::find()
        .filter(file::Column::WorkspaceId.eq(manager.workspace_id().as_uuid()))
        .one(db.conn())
        .await?
        .context("the manager wrote no row")?;
    let mut i = via_manager;
    while i < count {
        let end = (i + 500).min(count);
        let rows = (i..end).flat_map(|n| {
            let mut current = template.clone();
            current.id = uuid::Uuid::now_v7();
            current.chain_id = current.id;
            current.path = path_of(n);
            current.name = format!("f{n:07}.txt");
            current.version = 2;
            let mut older = current.clone();
            older.id = uuid::Uuid::now_v7();
            older.version = 1;
            older.is_current = false;
            older.history_since = Some(current.updated_at);
            [file::ActiveModel::from(older), file::ActiveModel::from(current)]
        });
        let txn = db.conn().begin().await?;
        file::Entity::insert_many(rows).exec_without_returning(&txn).await?;
        txn.commit().await?;
        i = end;
    }
    let copies = i64::try_from(count.saturating_sub(via_manager)).unwrap_or(0);
    user_workspace::Entity::update_many()
        .col_expr(
            user_workspace::Column::LiveBytes,
            sea_orm::sea_query::ExprTrait::add(
                Expr::col(user_workspace::Column::LiveBytes),
                copies * template.size_bytes,
            ),
        )
        .col_expr(
            user_workspace::Column::HistoryBytes,
            sea_orm::sea_query::ExprTrait::add(
                Expr::col(user_workspace::Column::HistoryBytes),
                copies * template.size_bytes,
            ),
        )
        .col_expr(
            user_workspace::Column::FileCount,
            sea_orm::sea_query::ExprTrait::add(Expr::col(user_workspace::Column::FileCount), copies),
        )
        .filter(user_workspace::Column::Id.eq(manager.workspace_id().as_uuid()))
        .exec(db.conn())
        .await?;
    Ok(json!({
        "count": count,
        "via_manager": via_manager,
        "history_rows": copies,
        "folders": FOLDERS.min(count),
        "manager_secs": manager_secs,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}
