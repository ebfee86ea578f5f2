//! Writes of one workspace that arrive together commit together.
//!
//! Every write of a file ([`crate::WorkspaceManager::commit`]) joins its workspace's *lane*: a
//! queue in this process, drained by one task at a time. The task takes up to [`MAX_BATCH`]
//! waiting writes and makes them one transaction ([`WriteTxn`]), as if they ran one after another
//! in arrival order: each is checked against the files as the writes before it left them (path
//! conflict, preconditions, quota on live bytes, dedup), then the batch costs a few round trips
//! to the database however many writes it holds (the current rows at its paths and the content
//! with its checksums read in one query, [`plan_query`]; the superseded rows marked in one
//! statement, then the new content, the new rows, the events and the counters written together:
//! one statement on PostgreSQL, on SQLite sent together, 16 statements per call, see
//! [`db::execute_all`]), one lock of the workspace and one commit. On a SQLite file the batch
//! runs on the lane's own thread where it can ([`commit_direct`]), with no trip to the pool's
//! writer thread at all, and as single-row statements each built once ([`DirectSql`]): there a
//! statement costs SQLite microseconds and no round trip, so one per path, checksum or row is
//! cheaper than building the combined ones for each batch.
//! The flush that makes the commit durable, after which its writes are answered, runs beside the
//! lane's next batch (one flush covers every commit made before it began): +20 % small writes in
//! the bench over waiting for it. A lone write is a batch of one, with the statements a single
//! write always needed.
//!
//! A write refused by its own checks gets its error and the others go on. A batch whose
//! statements fail before its commit is tried again one write at a time, so each write gets its
//! own outcome (a unique-index conflict, say), unless the failure is a fault (the database
//! unreachable or too slow: [`WorkspaceError::is_transient`]), which reaches every write of the
//! batch at once rather than once per write; a failure of the commit itself is ambiguous and
//! reaches every write of the batch, as it would a lone write. A write whose caller went away
//! before its batch began is not made.
//!
//! The lane exists while its task runs: a write that finds none starts one, and the task removes
//! the lane, under the same lock, when it finds it empty. Concurrent writers of other processes
//! (replicas) are ordered by the workspace lock, as before.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};

use sea_orm::sea_query::{Alias, Asterisk, Expr, JoinType, Query, SelectStatement, UnionType};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    Iterable, QueryFilter, QuerySelect, QueryTrait, SqlErr, Value,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::content::{self, StagedData};
use crate::db;
use crate::direct::{self, Direct, DirectWriter, WriteConn};
use crate::entity::{user_workspace_file as file, workspace_content, workspace_event};
use crate::error::{Result, WorkspaceError};
use crate::events::{EventKind, PendingEvent};
use crate::history;
use crate::ids::{ContentId, FileId, SessionId, WorkspaceId};
use crate::mime;
use crate::model::{ContentLocation, FileInfo, INLINE_STORAGE_PATH, NewFile, Precondition};
use crate::rows;
use crate::storage::BlobKey;
use crate::txn::{self, Change, Committed, Counters, Finished, Plans, Recorded, WriteTxn};
use crate::workspaces::Workspaces;

/// Most writes one transaction takes.
pub(crate) const MAX_BATCH: usize = 64;

/// A write ready to commit: its target, its file name (validated) and its staged body.
#[derive(Debug)]
pub(crate) struct Write {
    pub new: NewFile,
    pub name: String,
    pub session: Option<SessionId>,
    pub staged: content::Staged,
}

#[derive(Debug)]
struct Queued {
    write: Write,
    reply: oneshot::Sender<Result<FileInfo>>,
}

/// The lanes of this process: writes waiting, by workspace. A lane is present while its task runs.
#[derive(Debug, Default)]
pub(crate) struct WriteLanes(Mutex<HashMap<WorkspaceId, Vec<Queued>>>);

impl WriteLanes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, Vec<Queued>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Commits `write` to `workspace` in a batch with the writes waiting beside it; returns once it
/// is durable (or refused). Dropped before its batch begins, the write is not made.
pub(crate) async fn submit(workspaces: &Workspaces, workspace: WorkspaceId, write: Write) -> Result<FileInfo> {
    let (reply, answer) = oneshot::channel();
    let start = match workspaces.write_lanes().lock().entry(workspace) {
        Entry::Occupied(mut lane) => {
            lane.get_mut().push(Queued { write, reply });
            false
        }
        Entry::Vacant(slot) => {
            slot.insert(vec![Queued { write, reply }]);
            true
        }
    };
    if start {
        tokio::spawn(drain(workspaces.clone(), workspace));
    }
    answer.await.unwrap_or_else(|_| Err(WorkspaceError::Unavailable("the write stopped before it committed".into())))
}

/// Removes the lane if its task ends without doing so itself (a panic, or the runtime shutting
/// down): the writes still queued are dropped, so their callers get an error instead of waiting
/// forever, and the next write starts a new task.
struct LaneGuard {
    workspaces: Workspaces,
    workspace: WorkspaceId,
    closed: bool,
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        if !self.closed {
            self.workspaces.write_lanes().lock().remove(&self.workspace);
        }
    }
}

/// The task of a lane: batches until the lane is empty, then removes it.
async fn drain(workspaces: Workspaces, workspace: WorkspaceId) {
    let mut guard = LaneGuard { workspaces: workspaces.clone(), workspace, closed: false };
    loop {
        // Requests this thread already has in hand reach the lane before the batch is taken: on a
        // SQLite file a batch commits on this thread in a fraction of the time the pool's writer
        // took, and batches taken at once held ~2.3 writes of 16 writers, after one yield ~5,
        // which share the pages and the commit (`bench/NOTES.md`).
        tokio::task::yield_now().await;
        let batch: Vec<Queued> = {
            let mut lanes = workspaces.write_lanes().lock();
            let Some(lane) = lanes.get_mut(&workspace) else { break };
            if lane.is_empty() {
                lanes.remove(&workspace);
                break;
            }
            let n = lane.len().min(MAX_BATCH);
            lane.drain(..n).collect()
        };
        run(&workspaces, workspace, batch).await;
    }
    guard.closed = true;
}

/// Why a batch did not commit.
enum Failed {
    /// A statement before the commit failed: nothing was written, each write may be tried alone.
    Before(WorkspaceError),
    /// The commit failed: it may or may not have happened.
    AtCommit(WorkspaceError),
}

/// What the batch made of one write: the new file, and whether its content already existed.
type Outcome = Result<(FileInfo, bool)>;

/// Commits `batch` and answers each write.
async fn run(workspaces: &Workspaces, workspace: WorkspaceId, batch: Vec<Queued>) {
    // A write whose caller is gone is not made; its staged blob, if any, goes with it.
    let batch: Vec<Queued> = batch.into_iter().filter(|queued| !queued.reply.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let writes: Vec<&Write> = batch.iter().map(|queued| &queued.write).collect();
    match commit(workspaces, workspace, &writes).await {
        Ok((outcomes, committed)) => {
            let mut answers = Vec::with_capacity(batch.len());
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                match (outcome, queued.write.staged.data) {
                    (Ok((info, deduplicated)), StagedData::Blob(guard)) => {
                        if deduplicated {
                            guard.discard().await;
                        } else {
                            guard.keep();
                        }
                        answers.push((queued.reply, Ok(info)));
                    }
                    (Ok((info, _)), StagedData::Inline(_)) => answers.push((queued.reply, Ok(info))),
                    (Err(err), StagedData::Blob(guard)) => {
                        // Its content row was never written: the guard finds none and removes it.
                        guard.release().await;
                        answers.push((queued.reply, Err(err)));
                    }
                    (Err(err), StagedData::Inline(_)) => answers.push((queued.reply, Err(err))),
                }
            }
            // Answered once durable; meanwhile the lane's next batch commits.
            let workspaces = workspaces.clone();
            tokio::spawn(async move {
                let finished = workspaces.finish(workspace, committed).await;
                for (reply, answer) in answers {
                    let answer = match (&finished, answer) {
                        (Err(err), Ok(_)) => Err(copy_of(err)),
                        (_, answer) => answer,
                    };
                    let _ = reply.send(answer);
                }
            });
        }
        // A fault (the database unreachable or too slow) would only repeat for each write alone.
        Err(Failed::Before(err)) if batch.len() > 1 && !err.is_transient() => {
            for queued in batch {
                Box::pin(run(workspaces, workspace, vec![queued])).await;
            }
        }
        Err(Failed::Before(err) | Failed::AtCommit(err)) => {
            // The last write gets the error itself (a batch of one keeps its kind, a conflict
            // say), the others a copy.
            let mut batch = batch;
            let last = batch.pop();
            for queued in batch {
                refuse(queued, copy_of(&err)).await;
            }
            if let Some(queued) = last {
                refuse(queued, err).await;
            }
        }
    }
}

/// Answers a write its batch could not make with `err`; its staged blob goes unless a content row
/// refers to it (the outcome may be ambiguous: the guard asks the database).
async fn refuse(queued: Queued, err: WorkspaceError) {
    if let StagedData::Blob(guard) = queued.write.staged.data {
        guard.release().await;
    }
    let _ = queued.reply.send(Err(err));
}

/// The same failure, for each write it reaches.
fn copy_of(err: &WorkspaceError) -> WorkspaceError {
    match err {
        WorkspaceError::Unavailable(message) => WorkspaceError::Unavailable(message.clone()),
        other => WorkspaceError::Database(DbErr::Custom(other.to_string())),
    }
}

/// The file a path holds while the batch is planned: a stored row, or one the batch writes.
#[derive(Debug, Clone, Copy)]
enum Current {
    Stored(usize),
    Planned(usize),
}

/// What one transaction writes for a batch, built write by write.
struct Plan {
    /// Current rows read at the batch's paths.
    stored: Vec<file::Model>,
    /// Rows the batch inserts (a later write of the batch may supersede one in place).
    rows: Vec<file::Model>,
    /// The file each path holds as the writes so far leave it.
    current: HashMap<String, Current>,
    /// Content by (checksum, size): stored, or recorded by the batch.
    content: HashMap<(String, u64), ContentLocation>,
    new_content: Vec<workspace_content::ActiveModel>,
    superseded: Vec<Uuid>,
    /// Chains whose newest version passes the version limit, with that version.
    trims: HashMap<FileId, u32>,
}

/// One transaction for `writes`, in order. Returns each write's outcome and what the commit
/// leaves to do. On a SQLite file it runs on this thread when it can ([`commit_direct`]).
async fn commit(
    workspaces: &Workspaces,
    workspace: WorkspaceId,
    writes: &[&Write],
) -> std::result::Result<(Vec<Outcome>, Committed), Failed> {
    if let Some(direct) = workspaces.db().direct_writer() {
        match commit_direct(direct, workspaces, workspace, writes) {
            Direct::Committed(done) => return Ok(done),
            Direct::CommitFailed(err) => {
                return Err(Failed::AtCommit(WorkspaceError::Database(DbErr::Custom(format!(
                    "the commit of a write batch failed: {err}"
                )))));
            }
            Direct::NotRun => {}
        }
    }
    let settings = *workspaces.settings();
    let mut tx = WriteTxn::begin_planned(workspaces.db(), workspace, Plans::Kept).await.map_err(Failed::Before)?;
    let mut plan = read_plan(&tx, workspace, writes).await.map_err(Failed::Before)?;
    let outcomes: Vec<Outcome> = writes.iter().map(|write| plan_write(&mut tx, &mut plan, workspaces, write)).collect();
    let recorded = write_plan(tx, plan, settings.limits.quota_bytes, settings.history.max_versions)
        .await
        .map_err(Failed::Before)?;
    let committed = recorded.commit().await.map_err(Failed::AtCommit)?;
    Ok((outcomes, committed))
}

/// [`commit`] on the SQLite writer connection of [`DirectWriter`], on this thread: the same
/// statements, each built once ([`DirectSql`]), without a trip to the pool's writer thread for
/// each. A batch that needs more than a write batch's statements (a chain past the version
/// limit, history to purge for room under the quota) and any statement that fails leave the
/// batch to the pool, which runs it from the start.
fn commit_direct(
    direct: &DirectWriter,
    workspaces: &Workspaces,
    workspace: WorkspaceId,
    writes: &[&Write],
) -> Direct<(Vec<Outcome>, Committed)> {
    let quota = workspaces.settings().limits.quota_bytes;
    let sql = DirectSql::get();
    direct.transaction(|conn: &WriteConn<'_>| {
        let Some(counters) = conn.counters(workspace)? else { return Ok(None) };
        let mut change = Change::new(workspace, counters);
        let mut stored = Vec::new();
        for path in batch_paths(writes) {
            stored.extend(conn.files(&sql.file_at, DirectSql::file_at_values(workspace, path))?);
        }
        let mut found = Vec::new();
        for checksum in batch_checksums(writes) {
            found.extend(conn.rows(&sql.content_with, DirectSql::content_with_values(workspace, checksum), |row| {
                Ok((direct::uuid_at(row, 0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?);
        }
        let mut plan = Plan::new(stored, found);
        let outcomes: Vec<Outcome> =
            writes.iter().map(|write| plan_write(&mut change, &mut plan, workspaces, write)).collect();
        if !plan.trims.is_empty() || history::room_needed(&change.counters, quota) || change.released_any() {
            return Ok(None);
        }
        // In the order of `write_plan`: the superseded rows leave the unique index of current
        // paths before the new rows take their places.
        let Plan { rows, new_content, superseded, .. } = plan;
        let now = change.now;
        for id in superseded {
            conn.execute(&sql.mark_history, DirectSql::mark_history_values(id, now))?;
        }
        for content in new_content {
            conn.execute(&sql.insert_content, insert_values(content)?)?;
        }
        for row in rows {
            conn.execute(&sql.insert_file, insert_values(file::ActiveModel::from(row).reset_all())?)?;
        }
        let Finished { events, rows: event_rows, counters } = change.finish_rows();
        for row in event_rows {
            conn.execute(&sql.insert_event, insert_values(row)?)?;
        }
        if let Some(counters) = counters {
            conn.execute(&sql.store_counters, DirectSql::store_counters_values(workspace, counters, now))?;
        }
        Ok(Some((outcomes, Committed { unreferenced_blobs: Vec::new(), events })))
    })
}

/// The statements of [`commit_direct`] on SQLite, each built once by sea-query from the same
/// functions that build the pool's (so the text is the same), then run with each batch's values
/// in the order the statement binds them: building a statement per row (sea-orm's select of 21
/// columns, the query builder writing its text) took more instructions than SQLite took to run
/// it (`bench/NOTES.md`, stop 40). Each `*_values` function is tested against the statement
/// built with the same values.
struct DirectSql {
    /// [`file_at_query`]: the current row at a path.
    file_at: String,
    /// [`content_query`]: the content with a checksum.
    content_with: String,
    /// [`txn::mark_history`] of one row.
    mark_history: String,
    /// [`txn::store_counters`].
    store_counters: String,
    /// A row of each table, every column given.
    insert_content: String,
    insert_file: String,
    insert_event: String,
}

impl DirectSql {
    fn get() -> &'static Self {
        static SQL: OnceLock<DirectSql> = OnceLock::new();
        SQL.get_or_init(|| {
            let backend = sea_orm::DbBackend::Sqlite;
            let nil = WorkspaceId::from_uuid(Uuid::nil());
            Self {
                file_at: backend.build(&file_at_query(nil, "")).sql,
                content_with: backend.build(&content_query(nil, "")).sql,
                mark_history: backend.build(&txn::mark_history([Uuid::nil()], chrono::DateTime::UNIX_EPOCH)).sql,
                store_counters: backend
                    .build(&txn::store_counters(nil, Counters::default(), chrono::DateTime::UNIX_EPOCH))
                    .sql,
                insert_content: insert_sql::<workspace_content::Entity>(),
                insert_file: insert_sql::<file::Entity>(),
                insert_event: insert_sql::<workspace_event::Entity>(),
            }
        })
    }

    fn file_at_values(workspace: WorkspaceId, path: &str) -> Vec<Value> {
        vec![workspace.as_uuid().into(), path.into()]
    }

    fn content_with_values(workspace: WorkspaceId, checksum: &str) -> Vec<Value> {
        vec![workspace.as_uuid().into(), checksum.into()]
    }

    fn mark_history_values(id: Uuid, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
        vec![false.into(), now.into(), now.into(), id.into()]
    }

    fn store_counters_values(
        workspace: WorkspaceId,
        counters: Counters,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Value> {
        let i = |v: u64| Value::from(i64::try_from(v).unwrap_or(i64::MAX));
        vec![
            i(counters.live_bytes),
            i(counters.history_bytes),
            i(counters.file_count),
            i(counters.event_seq),
            now.into(),
            workspace.as_uuid().into(),
        ]
    }
}

/// The single-row `INSERT` of every column of `E`, as `E::insert` builds it for a model that
/// gives them all (see [`insert_values`]).
fn insert_sql<E: EntityTrait>() -> String {
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let mut insert = sea_orm::sea_query::Query::insert();
    insert
        .into_table(E::default().table_ref())
        .or_default_values()
        .columns(columns.iter().copied())
        .values_panic(columns.iter().map(|column| column.save_as(Expr::val(Value::Bool(None)))));
    sea_orm::DbBackend::Sqlite.build(&insert).sql
}

/// The values of `model` for [`insert_sql`], in its columns' order; an error (the batch goes to
/// the pool) if a column is not given.
fn insert_values<A: ActiveModelTrait>(mut model: A) -> rusqlite::Result<Vec<Value>> {
    <A::Entity as EntityTrait>::Column::iter()
        .map(|column| match model.take(column) {
            ActiveValue::Set(value) | ActiveValue::Unchanged(value) => Ok(value),
            ActiveValue::NotSet => Err(rusqlite::Error::InvalidQuery),
        })
        .collect()
}

/// The batch's paths, each once.
fn batch_paths<'w>(writes: &[&'w Write]) -> BTreeSet<&'w str> {
    writes.iter().map(|w| w.new.path.as_str()).collect()
}

/// The batch's checksums, each once.
fn batch_checksums<'w>(writes: &[&'w Write]) -> BTreeSet<&'w str> {
    writes.iter().map(|w| w.staged.checksum.as_str()).collect()
}

/// The current row at `path`: one part of the batch's lookup of its paths.
fn file_at_query(workspace: WorkspaceId, path: &str) -> SelectStatement {
    file::Entity::find().filter(rows::current(workspace)).filter(file::Column::Path.eq(path)).into_query()
}

/// The content of `workspace` with `checksum` (id, checksum, size, whether inline): one part of
/// the batch's lookup of its content.
fn content_query(workspace: WorkspaceId, checksum: &str) -> SelectStatement {
    workspace_content::Entity::find()
        .select_only()
        .column(workspace_content::Column::Id)
        .column(workspace_content::Column::Checksum)
        .column(workspace_content::Column::SizeBytes)
        .column_as(workspace_content::Column::InlineData.is_not_null(), "inline")
        .filter(workspace_content::Column::WorkspaceId.eq(workspace.as_uuid()))
        .filter(workspace_content::Column::Checksum.eq(checksum))
        .into_query()
}

/// The one query of a batch's checks through the pool, one round trip for both: the current rows
/// at `paths` (a file row's columns, in its entity's order and names) and the content of
/// `workspace` with `checksums` (`c_id`, `c_checksum`, `c_size`, `c_inline`: whether inline).
/// Each is a `UNION ALL` of equalities (see [`union_all`]), and the two are joined `FULL JOIN …
/// ON false`: every row holds one side's columns and NULL for the other's, each side typed by its
/// own table (a `UNION` of the two would have to type each NULL by hand). `None` without both.
pub(crate) fn plan_query<'w>(
    workspace: WorkspaceId,
    paths: impl IntoIterator<Item = &'w str>,
    checksums: impl IntoIterator<Item = &'w str>,
) -> Option<SelectStatement> {
    let files = union_all(paths, |path| file_at_query(workspace, path))?;
    let content = union_all(checksums, |checksum| content_query(workspace, checksum))?;
    let (f, c) = (Alias::new("f"), Alias::new("c"));
    let content_column = |column: &str| Expr::col((c.clone(), Alias::new(column)));
    let mut select = Query::select();
    select
        .column((f.clone(), Asterisk))
        .expr_as(content_column("id"), Alias::new("c_id"))
        .expr_as(content_column("checksum"), Alias::new("c_checksum"))
        .expr_as(content_column("size_bytes"), Alias::new("c_size"))
        .expr_as(content_column("inline"), Alias::new("c_inline"))
        .from_subquery(files, f)
        .join_subquery(JoinType::FullOuterJoin, content, c, Expr::cust("false"));
    Some(select)
}

/// Reads what the batch's checks need through the transaction (see [`plan_query`]).
async fn read_plan(tx: &WriteTxn, workspace: WorkspaceId, writes: &[&Write]) -> Result<Plan> {
    let conn = tx.conn();
    let (mut stored, mut found) = (Vec::new(), Vec::new());
    if let Some(select) = plan_query(workspace, batch_paths(writes), batch_checksums(writes)) {
        for row in conn.query_all_raw(conn.get_database_backend().build(&select)).await? {
            match row.try_get::<Option<Uuid>>("", "c_id")? {
                Some(id) => {
                    let size: i64 = row.try_get("", "c_size")?;
                    found.push((id, row.try_get("", "c_checksum")?, size, row.try_get("", "c_inline")?));
                }
                None => stored.push(file::Model::from_query_result(&row, "")?),
            }
        }
    }
    Ok(Plan::new(stored, found))
}

impl Plan {
    /// A plan over the current rows `stored` and the content `found` (id, checksum, size,
    /// whether inline) that [`plan_query`] read.
    fn new(stored: Vec<file::Model>, found: Vec<(Uuid, String, i64, bool)>) -> Self {
        let current = stored.iter().enumerate().map(|(i, row)| (row.path.clone(), Current::Stored(i))).collect();
        let content = found
            .into_iter()
            .map(|(id, checksum, size, inline)| {
                let id = ContentId::from_uuid(id);
                let location = if inline { ContentLocation::Inline(id) } else { ContentLocation::Blob(id) };
                ((checksum, u64::try_from(size).unwrap_or(0)), location)
            })
            .collect();
        Self {
            stored,
            rows: Vec::new(),
            current,
            content,
            new_content: Vec::new(),
            superseded: Vec::new(),
            trims: HashMap::new(),
        }
    }
}

/// `part(key)` for each key, as one `SELECT … UNION ALL SELECT …`; `None` without keys. Each part
/// is an equality its index answers whatever the planner believes of the table: an `IN` list
/// instead was planned on PostgreSQL, while the table's statistics were still those of an empty
/// one, as a scan of the whole workspace with the list as a filter (writes slowed as it grew).
fn union_all<K>(keys: impl IntoIterator<Item = K>, part: impl Fn(K) -> SelectStatement) -> Option<SelectStatement> {
    let mut parts = keys.into_iter().map(part);
    let mut union = parts.next()?;
    for next in parts {
        union.union(UnionType::All, next);
    }
    Some(union)
}

/// Checks one write against the files as the batch's earlier writes leave them and, if it
/// passes, adds it to the plan: its content (unless it exists), the file it replaces becoming a
/// version, its row, the counters, its event. A refused write changes nothing.
fn plan_write(tx: &mut Change, plan: &mut Plan, workspaces: &Workspaces, write: &Write) -> Outcome {
    let settings = workspaces.settings();
    let Write { new, name, session, staged } = write;
    let path = new.path.as_str();
    let current = plan.current.get(path).copied();
    let current_row = current.map(|c| match c {
        Current::Stored(i) => &plan.stored[i],
        Current::Planned(i) => &plan.rows[i],
    });
    let current_info = current_row.cloned().map(rows::to_info).transpose()?;
    check_target(new, current_info.as_ref())?;
    let replaced = current_row.map_or(0, rows::size);
    let live_after = tx.counters.live_bytes.saturating_sub(replaced) + staged.size;
    if live_after > settings.limits.quota_bytes {
        return Err(WorkspaceError::QuotaExceeded {
            used: tx.counters.live_bytes,
            limit: settings.limits.quota_bytes,
            needed: staged.size.saturating_sub(replaced),
        });
    }

    let mime_type = mime::choose(new.mime_type.as_deref(), name);
    let mut metadata = new.metadata.clone();
    if let Some(sniffed) = mime::sniff(&staged.head)
        && sniffed != mime_type.essence_str()
    {
        metadata.insert("sniffed_mime_type".into(), sniffed.into());
    }
    let content_key = (staged.checksum.to_string(), staged.size);
    let existing = plan.content.get(&content_key).copied();
    let location = existing.unwrap_or(match staged.data {
        StagedData::Inline(_) => ContentLocation::Inline(staged.id),
        StagedData::Blob(_) => ContentLocation::Blob(staged.id),
    });
    let id = FileId::new();
    let (chain_id, version) = match current_row {
        Some(old) => (FileId::from_uuid(old.chain_id), old.version + 1),
        None => (id, 1),
    };
    let storage_path = match location {
        ContentLocation::Inline(_) => INLINE_STORAGE_PATH.to_owned(),
        ContentLocation::Blob(content) => {
            workspaces.storage().storage_path(&BlobKey::for_content(tx.workspace(), content))
        }
    };
    let row = file::Model {
        id: id.as_uuid(),
        workspace_id: tx.workspace().as_uuid(),
        name: name.clone(),
        path: path.to_owned(),
        storage_path,
        mime_type: mime_type.to_string(),
        size_bytes: i64::try_from(staged.size).unwrap_or(i64::MAX),
        checksum: staged.checksum.to_string(),
        is_deleted: false,
        deleted_at: None,
        metadata: serde_json::Value::Object(metadata),
        source: new.source.as_str().to_owned(),
        source_session_id: session.as_ref().map(|s| s.as_str().to_owned()),
        source_exec_id: new.source_exec_id.clone(),
        created_at: tx.now,
        updated_at: tx.now,
        content_id: location.id().as_uuid(),
        chain_id: chain_id.as_uuid(),
        version,
        is_current: true,
        history_since: None,
    };
    let info = rows::to_info(row.clone())?;

    // Checked: from here on the write is part of the batch.
    if existing.is_none() {
        let inline_data = match &staged.data {
            StagedData::Inline(bytes) => Some(bytes.to_vec()),
            StagedData::Blob(_) => None,
        };
        plan.new_content.push(workspace_content::ActiveModel {
            id: Set(staged.id.as_uuid()),
            workspace_id: Set(tx.workspace().as_uuid()),
            checksum: Set(staged.checksum.to_string()),
            size_bytes: Set(i64::try_from(staged.size).unwrap_or(i64::MAX)),
            inline_data: Set(inline_data),
            created_at: Set(tx.now),
        });
        plan.content.insert(content_key, location);
    }
    match current {
        Some(Current::Stored(i)) => plan.superseded.push(plan.stored[i].id),
        Some(Current::Planned(i)) => {
            let earlier = &mut plan.rows[i];
            earlier.is_current = false;
            earlier.history_since = Some(tx.now);
            earlier.updated_at = tx.now;
        }
        None => {}
    }
    if current.is_some() {
        tx.counters.became_history(replaced);
    }
    plan.current.insert(path.to_owned(), Current::Planned(plan.rows.len()));
    plan.rows.push(row);
    tx.counters.live_bytes += staged.size;
    tx.counters.file_count += 1;
    let kind = if current.is_some() { EventKind::Overwritten } else { EventKind::Created };
    tx.event(PendingEvent::about(kind, &info));
    if info.version > settings.history.max_versions {
        plan.trims.insert(chain_id, info.version);
    }
    Ok((info, existing.is_some()))
}

/// The statements that write a [`Plan`].
struct Statements {
    /// The superseded rows stop being current: before the new rows, which take their paths
    /// in the unique index of current paths.
    supersede: Option<db::Pending>,
    /// The new content, then the new rows.
    rows: Vec<db::Pending>,
    /// The path of the first new row.
    first_path: Option<String>,
    /// The chains to trim.
    trims: HashMap<FileId, u32>,
}

/// The statements that write the plan (see [`Statements`]).
fn plan_statements(backend: sea_orm::DbBackend, change: &Change, plan: Plan) -> Statements {
    let Plan { rows: new_rows, new_content, superseded, trims, .. } = plan;
    let supersede = (!superseded.is_empty()).then(|| change.mark_history_statement(superseded));
    let mut rows = db::insert_statements(backend, new_content);
    // The rows are all ours (no column takes a database default), so they are not read back.
    let first_path = new_rows.first().map(|row| row.path.clone());
    rows.extend(db::insert_statements(
        backend,
        new_rows.into_iter().map(|row| file::ActiveModel::from(row).reset_all()).collect(),
    ));
    Statements { supersede, rows, first_path, trims }
}

/// Writes the plan and records the change, everything but the commit: the superseded rows,
/// then the new content and rows with the events and counters (one statement on PostgreSQL,
/// see [`WriteTxn::record`]); when the batch passes the version limit or the quota needs room,
/// the rows first, then the trimming and the room, then the record.
async fn write_plan(tx: WriteTxn, plan: Plan, quota: u64, max_versions: u32) -> Result<Recorded> {
    let Statements { supersede, rows, first_path, trims } =
        plan_statements(tx.conn().get_database_backend(), &tx, plan);
    // A path's current row is unique: with the workspace locked, the checks above keep that, so
    // a violation is reported as the conflict it is (a batch of one names its path). Only the
    // new rows can break a unique index: content and superseded rows have none but their fresh
    // ids, and the events' numbers come from the counter the lock guards.
    let conflict = |err: DbErr| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => WorkspaceError::Conflict(first_path.clone().unwrap_or_default()),
        _ => err.into(),
    };
    db::execute_all(tx.conn(), supersede.into_iter().collect()).await?;
    if trims.is_empty() && !history::room_needed(&tx.counters, quota) {
        return tx.record(rows).await.map_err(|err| match err {
            WorkspaceError::Database(err) => conflict(err),
            other => other,
        });
    }
    let mut tx = tx;
    db::execute_all(tx.conn(), rows).await.map_err(conflict)?;
    for (chain, newest) in trims {
        history::trim_versions(&mut tx, chain, newest, max_versions).await?;
    }
    history::make_room(&mut tx, quota).await?;
    tx.record(Vec::new()).await
}

/// Conflict and preconditions of a write against the current file at its path.
pub(crate) fn check_target(new: &NewFile, current: Option<&FileInfo>) -> Result<()> {
    new.precondition.check(current)?;
    let overwrite = new.overwrite || matches!(new.precondition, Precondition::IfMatch(_) | Precondition::IfExists);
    match current {
        Some(_) if !overwrite => Err(WorkspaceError::Conflict(new.path.to_string())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sea_orm::DbBackend;
    use sea_orm::sea_query::Values;

    use super::*;

    /// `sql` with `values` is exactly `built`: the text sea-query writes and the values in the
    /// order it binds them.
    fn same(built: sea_orm::Statement, sql: &str, values: Vec<Value>) {
        assert_eq!(built.sql, sql);
        assert_eq!(built.values, Some(Values(values)));
    }

    #[test]
    fn each_direct_statement_is_the_statement_sea_query_builds_with_its_values() {
        let backend = DbBackend::Sqlite;
        let sql = DirectSql::get();
        let workspace = WorkspaceId::new();
        let now = chrono::Utc::now();
        same(
            backend.build(&file_at_query(workspace, "/docs/a b.txt")),
            &sql.file_at,
            DirectSql::file_at_values(workspace, "/docs/a b.txt"),
        );
        same(
            backend.build(&content_query(workspace, "ab12")),
            &sql.content_with,
            DirectSql::content_with_values(workspace, "ab12"),
        );
        let id = Uuid::new_v4();
        same(backend.build(&txn::mark_history([id], now)), &sql.mark_history, DirectSql::mark_history_values(id, now));
        let counters = Counters { live_bytes: 1, history_bytes: 2, file_count: 3, event_seq: u64::MAX };
        same(
            backend.build(&txn::store_counters(workspace, counters, now)),
            &sql.store_counters,
            DirectSql::store_counters_values(workspace, counters, now),
        );

        let content = workspace_content::ActiveModel {
            id: Set(Uuid::new_v4()),
            workspace_id: Set(workspace.as_uuid()),
            checksum: Set("ab12".into()),
            size_bytes: Set(4),
            inline_data: Set(Some(b"data".to_vec())),
            created_at: Set(now),
        };
        let built = backend.build(&workspace_content::Entity::insert(content.clone()).into_query());
        same(built, &sql.insert_content, insert_values(content).unwrap());

        let row = file::Model {
            id: Uuid::new_v4(),
            workspace_id: workspace.as_uuid(),
            name: "a b.txt".into(),
            path: "/docs/a b.txt".into(),
            storage_path: INLINE_STORAGE_PATH.into(),
            mime_type: "text/plain".into(),
            size_bytes: 4,
            checksum: "ab12".into(),
            is_deleted: false,
            deleted_at: None,
            metadata: serde_json::json!({"k": "v"}),
            source: "upload".into(),
            source_session_id: Some("s1".into()),
            source_exec_id: None,
            created_at: now,
            updated_at: now,
            content_id: Uuid::new_v4(),
            chain_id: Uuid::new_v4(),
            version: 2,
            is_current: true,
            history_since: Some(now),
        };
        let model = file::ActiveModel::from(row).reset_all();
        let built = backend.build(&file::Entity::insert(model.clone()).into_query());
        same(built, &sql.insert_file, insert_values(model).unwrap());

        let event = workspace_event::ActiveModel {
            workspace_id: Set(workspace.as_uuid()),
            id: Set(7),
            kind: Set("created".into()),
            file_id: Set(Uuid::new_v4()),
            path: Set("/docs/a b.txt".into()),
            old_path: Set(None),
            size_bytes: Set(4),
            checksum: Set("ab12".into()),
            at: Set(now),
        };
        let built = backend.build(&workspace_event::Entity::insert(event.clone()).into_query());
        same(built, &sql.insert_event, insert_values(event).unwrap());
    }

    #[test]
    fn a_row_missing_a_column_is_not_inserted_by_the_direct_writer() {
        let content = workspace_content::ActiveModel { id: Set(Uuid::new_v4()), ..Default::default() };
        assert!(insert_values(content).is_err());
    }
}
