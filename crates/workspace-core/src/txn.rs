//! `WriteTxn`: the one shape every change of a workspace takes. It begins a write transaction,
//! locks the workspace (its row `FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` write
//! lock), and reads its durable counters. The change then adjusts the counters, stages its
//! events and releases the content its purged rows referred to; `commit` writes all of that in
//! the same transaction and only then hands back the blobs that became unreferenced, for
//! deletion after the commit. Side effects are tied to the transaction, not driven by hand.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, Func, UpdateStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use crate::db::{Db, Pending};
use crate::entity::{user_workspace, user_workspace_file as file, workspace_content as content, workspace_event};
use crate::error::{Result, WorkspaceError};
use crate::events::{Event, PendingEvent};
use crate::feed;
use crate::ids::{ContentId, WorkspaceId};
use crate::model::Usage;
use crate::storage::BlobKey;

/// A workspace's durable counters (SPEC §13), as stored on its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counters {
    pub live_bytes: u64,
    pub history_bytes: u64,
    pub file_count: u64,
    pub event_seq: u64,
}

impl Counters {
    fn of(row: &user_workspace::Model) -> Self {
        Self::stored(row.live_bytes, row.history_bytes, row.file_count, row.event_seq)
    }

    /// The counters from their stored columns, in the row's order (a negative value reads as 0).
    pub(crate) fn stored(live_bytes: i64, history_bytes: i64, file_count: i64, event_seq: i64) -> Self {
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            live_bytes: u(live_bytes),
            history_bytes: u(history_bytes),
            file_count: u(file_count),
            event_seq: u(event_seq),
        }
    }

    /// Reads the counters without locking (for sizing an upload before its transaction).
    pub async fn read<C: ConnectionTrait>(conn: &C, workspace: WorkspaceId) -> Result<Self> {
        let row = user_workspace::Entity::find_by_id(workspace.as_uuid())
            .one(conn)
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("workspace {workspace}")))?;
        Ok(Self::of(&row))
    }

    /// The usage these counters describe under `quota`.
    pub fn usage(&self, quota: u64) -> Usage {
        Usage {
            used_bytes: self.live_bytes + self.history_bytes,
            live_bytes: self.live_bytes,
            history_bytes: self.history_bytes,
            limit_bytes: quota,
            file_count: self.file_count,
        }
    }

    /// A current file of `size` bytes became history.
    pub fn became_history(&mut self, size: u64) {
        self.live_bytes = self.live_bytes.saturating_sub(size);
        self.history_bytes += size;
        self.file_count = self.file_count.saturating_sub(1);
    }

    /// A history row of `size` bytes became a current file.
    pub fn became_live(&mut self, size: u64) {
        self.history_bytes = self.history_bytes.saturating_sub(size);
        self.live_bytes += size;
        self.file_count += 1;
    }
}

/// What a commit leaves to do.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    /// Blobs no row refers to any more: delete them.
    pub unreferenced_blobs: Vec<BlobKey>,
    /// The events the change appended.
    pub events: Vec<Event>,
}

/// What a change of one workspace does besides its own statements: the counters as it leaves
/// them, its events, the content its purged rows released, its time. Held by a [`WriteTxn`]; a
/// write batch on a SQLite file builds one on its own connection (`writes.rs`).
#[derive(Debug)]
pub(crate) struct Change {
    workspace: WorkspaceId,
    start: Counters,
    /// The counters as the change leaves them; adjust them with every row it touches.
    pub counters: Counters,
    events: Vec<PendingEvent>,
    /// Content the change's purged rows referred to, and whether each is a blob.
    released: BTreeMap<Uuid, bool>,
    /// The time of the change.
    pub now: DateTime<Utc>,
}

impl Change {
    /// A change of `workspace`, whose counters are `counters` when it begins.
    pub(crate) fn new(workspace: WorkspaceId, counters: Counters) -> Self {
        Self {
            workspace,
            start: counters,
            counters,
            events: Vec::new(),
            released: BTreeMap::new(),
            // Microseconds, as PostgreSQL keeps them: a row written with this time reads back the
            // same, so a write can answer with the row it sent.
            now: Utc::now().trunc_subsecs(6),
        }
    }

    /// The workspace being changed.
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// Appends an event, committed with the change.
    pub fn event(&mut self, event: PendingEvent) {
        self.events.push(event);
    }

    /// A purged row referred to `content`: if no row refers to it at commit, it goes too.
    pub fn release(&mut self, content: ContentId, is_blob: bool) {
        self.released.insert(content.as_uuid(), is_blob);
    }

    /// Whether the change released content (see [`Change::release`]).
    pub(crate) fn released_any(&self) -> bool {
        !self.released.is_empty()
    }

    /// The statement that makes the rows `ids` history as of this change: they stop being
    /// current and their history time starts now.
    pub(crate) fn mark_history_statement(&self, ids: Vec<Uuid>) -> Pending {
        mark_history(ids, self.now).into()
    }

    /// The statements that record the change's events and its counters (none when neither
    /// changed), in that order, and the events as committed. Content it released is the
    /// caller's to settle first ([`WriteTxn::record`]).
    pub(crate) fn finish(self, backend: DbBackend) -> (Vec<Event>, Vec<Pending>) {
        let (workspace, now) = (self.workspace, self.now);
        let Finished { events, rows, counters } = self.finish_rows();
        let mut statements = crate::db::insert_statements(backend, rows);
        if let Some(counters) = counters {
            statements.push(store_counters(workspace, counters, now).into());
        }
        (events, statements)
    }

    /// What [`Change::finish`] writes, as rows and values rather than statements.
    pub(crate) fn finish_rows(self) -> Finished {
        let Self { workspace, start, counters, events, now, .. } = self;
        let mut committed = Vec::with_capacity(events.len());
        let mut seq = counters.event_seq;
        let rows: Vec<workspace_event::ActiveModel> = events
            .into_iter()
            .map(|e| {
                seq += 1;
                committed.push(Event {
                    id: seq,
                    kind: e.kind,
                    file_id: e.file_id,
                    path: e.path.clone(),
                    old_path: e.old_path.clone(),
                    size_bytes: e.size_bytes,
                    checksum: e.checksum.to_string(),
                    at: now,
                });
                workspace_event::ActiveModel {
                    workspace_id: Set(workspace.as_uuid()),
                    id: Set(i64::try_from(seq).unwrap_or(i64::MAX)),
                    kind: Set(e.kind.as_str().to_owned()),
                    file_id: Set(e.file_id.as_uuid()),
                    path: Set(e.path),
                    old_path: Set(e.old_path),
                    size_bytes: Set(i64::try_from(e.size_bytes).unwrap_or(i64::MAX)),
                    checksum: Set(e.checksum.to_string()),
                    at: Set(now),
                }
            })
            .collect();
        let end = Counters { event_seq: seq, ..counters };
        Finished { events: committed, rows, counters: (end != start).then_some(end) }
    }
}

/// What a [`Change`] records at its end ([`Change::finish_rows`]).
#[derive(Debug)]
pub(crate) struct Finished {
    /// The events as committed.
    pub events: Vec<Event>,
    /// Their rows, to insert.
    pub rows: Vec<workspace_event::ActiveModel>,
    /// The counters to store, when the change changed them.
    pub counters: Option<Counters>,
}

/// The statement that makes the rows `ids` history at `now`: they stop being current and their
/// history time starts then.
pub(crate) fn mark_history(ids: impl IntoIterator<Item = Uuid>, now: DateTime<Utc>) -> UpdateStatement {
    file::Entity::update_many()
        .col_expr(file::Column::IsCurrent, Expr::value(false))
        .col_expr(file::Column::HistorySince, Expr::value(now))
        .col_expr(file::Column::UpdatedAt, Expr::value(now))
        .filter(file::Column::Id.is_in(ids))
        .into_query()
}

/// The statement that stores `counters` on the row of `workspace`, changed at `now`.
pub(crate) fn store_counters(workspace: WorkspaceId, counters: Counters, now: DateTime<Utc>) -> UpdateStatement {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    user_workspace::Entity::update_many()
        .col_expr(user_workspace::Column::LiveBytes, Expr::value(i(counters.live_bytes)))
        .col_expr(user_workspace::Column::HistoryBytes, Expr::value(i(counters.history_bytes)))
        .col_expr(user_workspace::Column::FileCount, Expr::value(i(counters.file_count)))
        .col_expr(user_workspace::Column::EventSeq, Expr::value(i(counters.event_seq)))
        .col_expr(user_workspace::Column::UpdatedAt, Expr::value(now))
        .filter(user_workspace::Column::Id.eq(workspace.as_uuid()))
        .into_query()
}

/// An open change of one workspace: its transaction and its [`Change`]. See the module docs.
#[derive(Debug)]
pub(crate) struct WriteTxn {
    txn: DatabaseTransaction,
    change: Change,
}

impl std::ops::Deref for WriteTxn {
    type Target = Change;

    fn deref(&self) -> &Change {
        &self.change
    }
}

impl std::ops::DerefMut for WriteTxn {
    fn deref_mut(&mut self) -> &mut Change {
        &mut self.change
    }
}

/// How the statements of a change are planned on PostgreSQL (SQLite keeps every plan, see
/// `db.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plans {
    /// For the values of each execution, as every connection of ours does (see
    /// `db::postgres_settings`): for changes whose statements may reach many rows.
    PerExecution,
    /// Once per statement and connection, whatever the values ([`KEPT_PLANS`]): for a write
    /// batch, whose statements each reach rows by a key or a path through an index that is the
    /// right one whatever the values. Planning was half of PostgreSQL's own CPU in a batch
    /// (`perf`: `GetCachedPlan` 17.7 % of all samples against 14 % executing).
    Kept,
}

/// The transaction's settings of [`Plans::Kept`]: a prepared statement's plan is made once for
/// any values and kept by its connection, and it never scans a table whole. A plan kept from
/// when a table was small (and analyzed so) would otherwise stay a scan of it while it grows,
/// since nothing replans a kept plan until the table's statistics change; an index is right for
/// these statements at any size.
pub(crate) const KEPT_PLANS: [(&str, &str); 2] = [("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")];

impl WriteTxn {
    /// Makes the current row `current` history (a newer version replaces it, or it is restored
    /// over): it stops being current, its history time starts now, and the counters move its
    /// bytes from live to history.
    pub(crate) async fn supersede(&mut self, current: &file::Model) -> Result<()> {
        self.mark_history(vec![current.id]).await?;
        self.counters.became_history(crate::rows::size(current));
        Ok(())
    }

    /// The rows `ids` stop being current and their history time starts now, in one statement;
    /// the caller moves their bytes in the counters (see [`WriteTxn::supersede`]).
    pub(crate) async fn mark_history(&self, ids: Vec<Uuid>) -> Result<()> {
        crate::db::execute_all(&self.txn, vec![self.change.mark_history_statement(ids)]).await?;
        Ok(())
    }

    /// Begins a change of `workspace`, holding its lock until commit or drop.
    pub async fn begin(db: &Db, workspace: WorkspaceId) -> Result<Self> {
        Self::begin_planned(db, workspace, Plans::PerExecution).await
    }

    /// [`WriteTxn::begin`] for a change whose statements are planned as `plans` says.
    pub(crate) async fn begin_planned(db: &Db, workspace: WorkspaceId, plans: Plans) -> Result<Self> {
        let txn = db.begin_write_unset().await?;
        let mut query = user_workspace::Entity::find_by_id(workspace.as_uuid());
        if db.backend() == DbBackend::Postgres {
            // Serialise changes per workspace: two writers cannot both pass a check only one fits.
            query = query.lock_exclusive();
            // The transaction's settings, made by this first statement rather than by statements
            // of their own: the commit does not wait for the WAL (the group flush does), and the
            // plans of `plans`.
            let commit = db.commits_later().then_some(("synchronous_commit", "off"));
            let kept = if plans == Plans::Kept { &KEPT_PLANS[..] } else { &[] };
            for (i, (name, value)) in commit.iter().chain(kept).enumerate() {
                let setting = Func::cust("set_config").arg(*name).arg(*value).arg(true);
                query = query.expr_as(setting, format!("setting_{i}"));
            }
        }
        let row = query.one(&txn).await?.ok_or_else(|| WorkspaceError::NotFound(format!("workspace {workspace}")))?;
        Ok(Self { txn, change: Change::new(workspace, Counters::of(&row)) })
    }

    /// The transaction, for the change's own statements.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Writes the counters, the events and the release of unreferenced content, then commits.
    /// The returned blobs are no longer referred to by anything: delete them after the commit.
    pub async fn commit(self) -> Result<Committed> {
        self.record(Vec::new()).await?.commit().await
    }

    /// Everything [`WriteTxn::commit`] does but the commit itself, after the change's own
    /// statements `first` that have not run yet. On PostgreSQL `first`, the events, the counters
    /// and the feed's notice are one statement (see [`crate::db::execute_all`] for what its
    /// parts may not do; `first` runs before the release of content is settled, when there is
    /// any). An error here is one before the commit: nothing of the change was written.
    pub(crate) async fn record(self, first: Vec<Pending>) -> Result<Recorded> {
        let Self { txn, mut change } = self;
        let workspace = change.workspace;
        let mut committed = Committed::default();
        let mut statements = first;

        let released = std::mem::take(&mut change.released);
        if !released.is_empty() {
            // The check below reads the rows as the change leaves them.
            crate::db::execute_all(&txn, std::mem::take(&mut statements)).await?;
            let candidates: Vec<Uuid> = released.keys().copied().collect();
            let still_used: HashSet<Uuid> = file::Entity::find()
                .select_only()
                .column(file::Column::ContentId)
                .distinct()
                .filter(file::Column::ContentId.is_in(candidates.iter().copied()))
                .into_tuple::<Uuid>()
                .all(&txn)
                .await?
                .into_iter()
                .collect();
            let unused: Vec<Uuid> = candidates.into_iter().filter(|id| !still_used.contains(id)).collect();
            if !unused.is_empty() {
                content::Entity::delete_many()
                    .filter(content::Column::WorkspaceId.eq(workspace.as_uuid()))
                    .filter(content::Column::Id.is_in(unused.iter().copied()))
                    .exec(&txn)
                    .await?;
                committed.unreferenced_blobs = unused
                    .into_iter()
                    .filter(|id| released.get(id).copied().unwrap_or(false))
                    .map(|id| BlobKey::for_content(workspace, ContentId::from_uuid(id)))
                    .collect();
            }
        }

        let backend = txn.get_database_backend();
        let (events, recorded) = change.finish(backend);
        statements.extend(recorded);
        if let Some(last) = events.last()
            && backend == DbBackend::Postgres
        {
            // Delivered to every replica's listener when, and only if, this commits.
            statements.push(feed::notify_statement(workspace, last.id));
        }
        crate::db::execute_all(&txn, statements).await?;
        committed.events = events;
        Ok(Recorded { txn, committed })
    }
}

/// A change whose statements all ran ([`WriteTxn::record`]), waiting for its commit.
#[derive(Debug)]
pub(crate) struct Recorded {
    txn: DatabaseTransaction,
    committed: Committed,
}

impl Recorded {
    /// Commits; see [`WriteTxn::commit`].
    pub async fn commit(self) -> Result<Committed> {
        self.txn.commit().await?;
        Ok(self.committed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use sea_orm::{ConnectionTrait, Statement};
    use workspace_testkit::{DbKind, TestEnv};

    use super::*;
    use crate::ids::UserId;
    use crate::memory::InMemoryStorage;
    use crate::model::Settings;
    use crate::storage::Storage;
    use crate::{Db, Workspaces};

    async fn show(tx: &WriteTxn, name: &str) -> String {
        let statement = Statement::from_string(DbBackend::Postgres, format!("SHOW {name}"));
        tx.conn().query_one_raw(statement).await.unwrap().unwrap().try_get_by_index::<String>(0).unwrap()
    }

    /// On PostgreSQL a write batch's transaction keeps its plans and never scans a table whole
    /// (`KEPT_PLANS`), every other change plans each execution for its values, and the settings
    /// end with the transaction that made them.
    async fn write_batches_keep_their_plans_and_other_changes_do_not(env: TestEnv) {
        if env.kind != DbKind::Postgres {
            return;
        }
        let db = Db::from_connection(env.db.conn().clone());
        let workspaces =
            Workspaces::new(db.clone(), Storage::new(InMemoryStorage::new()), Settings::default()).unwrap();
        let manager = workspaces.manager(&UserId::new("plans").unwrap(), None).await.unwrap();
        for (plans, mode, seqscan) in
            [(Plans::Kept, "force_generic_plan", "off"), (Plans::PerExecution, "force_custom_plan", "on")]
        {
            let tx = WriteTxn::begin_planned(&db, manager.workspace_id(), plans).await.unwrap();
            assert_eq!(show(&tx, "plan_cache_mode").await, mode, "{plans:?}");
            assert_eq!(show(&tx, "enable_seqscan").await, seqscan, "{plans:?}");
            tx.commit().await.unwrap();
        }
    }

    workspace_testkit::db_tests!(write_batches_keep_their_plans_and_other_changes_do_not);
}
