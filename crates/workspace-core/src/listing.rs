//! Listing current files (SPEC §5, §18): a folder (segment-aligned, so `/sessions/abc` never
//! matches `/sessions/abc123/…`), sorted by path, creation time or size in either order, searched
//! by name, paged with keyset cursors that work with every sort.
//!
//! Every order is total: ties are broken by path (unique among current files) in the same
//! direction as the key, so each order reads one index, (key, path), forwards or backwards. A
//! cursor names the last row of a page by (key, path) and the next page starts strictly after it,
//! so a file written while a client pages through appears at most once. A name search examines
//! at most [`SEARCH_WINDOW`] rows per page (it cannot use an index), so its pages may be short.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select,
};

use crate::entity::user_workspace_file as file;
use crate::error::{Result, WorkspaceError};
use crate::ids::WorkspaceId;
use crate::manager::{MAX_PAGE_SIZE, WorkspaceManager};
use crate::model::{FilePage, FolderInfo, ListOptions, SortKey, SortOrder};
use crate::path::{PathPrefix, WorkspacePath};
use crate::rows;

/// Longest name search accepted.
pub const MAX_QUERY_LEN: usize = 255;
/// Rows of the listing's order one page of a name search examines at most. A search that
/// matches little returns short (even empty) pages with a `next_cursor` to search on from,
/// rather than scanning a whole workspace in one request.
pub const SEARCH_WINDOW: u64 = 1000;

impl WorkspaceManager {
    /// Lists current files. See [`ListOptions`].
    pub async fn list(&self, options: ListOptions) -> Result<FilePage> {
        let ListOptions { prefix, include_all_sessions, limit, cursor, sort, order, query, delimiter } = options;
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(WorkspaceError::InvalidInput(format!("limit must be between 1 and {MAX_PAGE_SIZE}")));
        }
        let prefix = match prefix {
            Some(prefix) => prefix,
            None => self.resolve_prefix("", include_all_sessions)?,
        };
        if delimiter {
            if sort != SortKey::Path || order != SortOrder::Asc || query.as_deref().is_some_and(|q| !q.is_empty()) {
                return Err(WorkspaceError::InvalidInput(
                    "a folder listing (delimiter) is in path order and takes no name search".into(),
                ));
            }
            return self.list_children(&prefix, limit, cursor.as_deref()).await;
        }
        let key = match sort {
            SortKey::Path => None,
            SortKey::CreatedAt => Some(file::Column::CreatedAt),
            SortKey::Size => Some(file::Column::SizeBytes),
        };
        let mut scope = listing_scope(self.workspace_id(), &prefix, key);
        if let Some(cursor) = cursor {
            scope = scope.filter(Cursor::decode(&cursor, sort)?.after(order));
        }
        let direction = match order {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        };
        // Ties go by path in the same direction, so each order is one index (key, path) read
        // forwards or backwards.
        let sorted = |select: sea_orm::Select<file::Entity>| match key {
            None => select.order_by(file::Column::Path, direction.clone()),
            Some(key) => select.order_by(key, direction.clone()).order_by(file::Column::Path, direction.clone()),
        };
        let db = self.workspaces().db().conn();
        let mut select = scope.clone();
        // A name search cannot use an index, so one page examines at most SEARCH_WINDOW rows of the
        // listing's order: up to the row SEARCH_WINDOW rows on (one index step each, no table
        // row), then the matches within, read from the same index (name is in it).
        let mut window_end = None;
        if let Some(query) = query.as_deref().filter(|q| !q.is_empty()) {
            select = select.filter(name_contains(query, db.get_database_backend())?);
            let last = sorted(scope).offset(SEARCH_WINDOW - 1).limit(1).select_only();
            let last = match key {
                None => last,
                Some(key) => last.column(key),
            };
            window_end =
                self.window_end(last.column(file::Column::Path).build(db.get_database_backend()), sort).await?;
            if let Some(end) = &window_end {
                select = select.filter(end.clone().until(order));
            }
        }
        let mut found = self.select_files(sorted(select).limit(limit + 1)).await?;
        let next_cursor = if found.len() as u64 > limit {
            found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            found.last().map(|row| Cursor::of(row, sort).encode())
        } else {
            // Fewer matches than a page in a full window: the next page searches on after it (so
            // a page of a search may hold fewer files than `limit`, even none).
            window_end.map(|end| end.encode())
        };
        let files = found.into_iter().map(rows::to_info).collect::<Result<Vec<_>>>()?;
        Ok(FilePage { files, folders: Vec::new(), next_cursor })
    }

    /// The immediate children of a folder, files and folders together in path order.
    ///
    /// One statement walks the path index like a skip scan: from each child it jumps straight
    /// past the child's subtree (`dir/x0` is the first key after everything under `dir/x/`, `'0'`
    /// being the byte after `'/'`), so a page costs one index seek per child however many files
    /// lie beneath, and each folder's count and size are one range aggregate (both in one
    /// pass, as `count,bytes` text) on the covering index `(workspace, path, size, name)`, which
    /// needs no table row.
    /// A cursor is where the next page starts (a key inside the folder's range).
    async fn list_children(&self, prefix: &PathPrefix, limit: u64, cursor: Option<&str>) -> Result<FilePage> {
        let db = self.workspaces().db();
        let backend = db.backend();
        let (lo, hi) = match prefix.as_dir() {
            None => ("/".to_owned(), "0".to_owned()),
            Some(dir) => (format!("{dir}/"), format!("{dir}0")),
        };
        let start = match cursor {
            None => lo.clone(),
            Some(cursor) => {
                let bad =
                    || WorkspaceError::InvalidInput("cursor is not one this server issued for this folder".into());
                let start = String::from_utf8(hex::decode(cursor).map_err(|_| bad())?).map_err(|_| bad())?;
                if start < lo || start >= hi {
                    return Err(bad());
                }
                start
            }
        };
        let lo_chars = i32::try_from(lo.chars().count()).unwrap_or(i32::MAX);
        let sql = children_sql(backend);
        let values: Vec<sea_orm::Value> = vec![
            self.workspace_id().as_uuid().into(),
            start.into(),
            hi.into(),
            lo_chars.into(),
            i64::try_from(limit + 1).unwrap_or(i64::MAX).into(),
        ];
        let statement = sea_orm::Statement::from_sql_and_values(backend, sql, values);
        let direct =
            db.direct().and_then(|direct| direct.rows(&statement, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))));
        let found: Vec<(String, Option<String>, Option<String>)> = match direct {
            Some(found) => found,
            None => {
                let found = db.conn().query_all_raw(statement).await?;
                let mut rows = Vec::with_capacity(found.len());
                for row in &found {
                    rows.push((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?));
                }
                rows
            }
        };
        let mut children = Vec::with_capacity(found.len());
        for (first, folder, totals) in found {
            let (count, bytes) = totals
                .as_deref()
                .and_then(|t| t.split_once(','))
                .map_or((0, 0), |(n, b)| (n.parse::<i64>().unwrap_or(0), b.parse::<i64>().unwrap_or(0)));
            children.push((first, folder, count, bytes));
        }
        let next_cursor = if children.len() as u64 > limit {
            children.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            children.last().map(|(first, folder, _, _)| {
                // The next page starts past this child: past the folder's subtree, or just after the
                // file (no path holds a control character, so `\u{1}` sorts before any longer path).
                let next = match folder {
                    Some(folder) => format!("{folder}0"),
                    None => format!("{first}\u{1}"),
                };
                hex::encode(next.as_bytes())
            })
        } else {
            None
        };
        let file_paths: Vec<&str> = children.iter().filter(|c| c.1.is_none()).map(|c| c.0.as_str()).collect();
        let mut files = Vec::with_capacity(file_paths.len());
        if !file_paths.is_empty() {
            let rows = self
                .select_files(
                    file::Entity::find()
                        .filter(rows::current(self.workspace_id()))
                        .filter(file::Column::Path.is_in(file_paths))
                        .order_by_asc(file::Column::Path),
                )
                .await?;
            for row in rows {
                files.push(rows::to_info(row)?);
            }
        }
        let folders = children
            .into_iter()
            .filter_map(|(_, folder, count, bytes)| folder.map(|f| (f, count, bytes)))
            .map(|(folder, count, bytes)| {
                Ok(FolderInfo {
                    path: WorkspacePath::parse(&folder)
                        .map_err(|e| WorkspaceError::InvalidInput(format!("folder {folder}: {e}")))?,
                    file_count: u64::try_from(count).unwrap_or(0),
                    size_bytes: u64::try_from(bytes).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FilePage { files, folders, next_cursor })
    }

    /// The row `statement` selects (the sort's key, if any, then the path, of the row
    /// [`SEARCH_WINDOW`] rows into a name search's order, read from the index alone) as the cursor
    /// there: read on the calling thread where the database allows it (see [`crate::direct`]),
    /// else through the pool. `None`: the listing ends within the window.
    async fn window_end(&self, statement: sea_orm::Statement, sort: SortKey) -> Result<Option<Cursor>> {
        let db = self.workspaces().db();
        let read = |row: &rusqlite::Row<'_>| {
            Ok(match sort {
                SortKey::Path => Cursor::Path(row.get(0)?),
                SortKey::CreatedAt => Cursor::CreatedAt(crate::direct::required_time_at(row, 0)?, row.get(1)?),
                SortKey::Size => Cursor::Size(row.get(0)?, row.get(1)?),
            })
        };
        if let Some(found) = db.direct().and_then(|direct| direct.rows(&statement, read)) {
            return Ok(found.into_iter().next());
        }
        let Some(row) = db.conn().query_one_raw(statement).await? else { return Ok(None) };
        Ok(Some(match sort {
            SortKey::Path => Cursor::Path(row.try_get_by_index(0)?),
            SortKey::CreatedAt => Cursor::CreatedAt(row.try_get_by_index(0)?, row.try_get_by_index(1)?),
            SortKey::Size => Cursor::Size(row.try_get_by_index(0)?, row.try_get_by_index(1)?),
        }))
    }

    /// The file rows `select` finds: read on the calling thread where the database allows it
    /// (see [`crate::direct`]), else through the pool.
    async fn select_files(&self, select: sea_orm::Select<file::Entity>) -> Result<Vec<file::Model>> {
        let db = self.workspaces().db();
        if let Some(direct) = db.direct()
            && let Some(found) = direct.files(&select.build(DbBackend::Sqlite))
        {
            return Ok(found);
        }
        Ok(select.all(db.conn()).await?)
    }
}

/// The skip-scan statement of [`WorkspaceManager::list_children`]. Parameters: 1 workspace, 2 the
/// first key, 3 the end of the folder's range, 4 the length in characters of `dir/`, 5 how many
/// children. Rows: the first path of each child, the folder's path (NULL for a file), and the
/// folder's file count and bytes as `count,bytes` (NULL for a file).
fn children_sql(backend: sea_orm::DbBackend) -> String {
    let (pos, chr1, p) = match backend {
        sea_orm::DbBackend::Postgres => ("STRPOS", "CHR(1)", "$"),
        _ => ("INSTR", "CHAR(1)", "?"),
    };
    let current = "workspace_id = {p}1 AND is_current = true AND is_deleted = false";
    let folder_of = |v: &str| {
        format!(
            "CASE WHEN {pos}(SUBSTR({v}, {p}4 + 1), '/') > 0 \
             THEN SUBSTR({v}, 1, {p}4 + {pos}(SUBSTR({v}, {p}4 + 1), '/') - 1) END"
        )
    };
    let folder_next = folder_of("walk.first");
    let folder_first = folder_of("first");
    let sql = format!(
        "WITH RECURSIVE walk(first, n) AS ( \
           SELECT CAST((SELECT path FROM user_workspace_file WHERE {current} AND path >= {p}2 AND path < {p}3 \
                        ORDER BY path LIMIT 1) AS TEXT), 1 \
           UNION ALL \
           SELECT CAST((SELECT path FROM user_workspace_file WHERE {current} \
                          AND path >= COALESCE({folder_next} || '0', walk.first || {chr1}) AND path < {p}3 \
                        ORDER BY path LIMIT 1) AS TEXT), walk.n + 1 \
           FROM walk WHERE walk.first IS NOT NULL AND walk.n < {p}5 \
         ) \
         SELECT w.first, w.folder, \
           (SELECT CAST(COUNT(*) AS TEXT) || ',' || CAST(COALESCE(SUM(size_bytes), 0) AS TEXT) \
              FROM user_workspace_file WHERE {current} AND path >= w.folder || '/' AND path < w.folder || '0') \
         FROM (SELECT first, {folder_first} AS folder FROM walk WHERE first IS NOT NULL) AS w \
         ORDER BY w.first"
    );
    sql.replace("{p}", p)
}

/// The current files under `prefix` that a listing pages through. One sorted by a key (`key` is
/// `Some`; `None` is path order) also states the condition that lets it read that key's index
/// ([`rows::sort_index_guard`]).
fn listing_scope(workspace: WorkspaceId, prefix: &PathPrefix, key: Option<file::Column>) -> Select<file::Entity> {
    let scope = file::Entity::find().filter(rows::current(workspace)).filter(prefix_condition(prefix));
    match key {
        Some(_) => scope.filter(rows::sort_index_guard()),
        None => scope,
    }
}

/// Rows inside a folder: the folder path itself or anything below `dir/`. `'0'` is the byte
/// after `'/'`, so `[dir/, dir0)` is exactly "starts with `dir/`" under byte-wise ordering (the
/// path column uses the C collation on PostgreSQL and BINARY on SQLite).
pub(crate) fn prefix_condition(prefix: &PathPrefix) -> Condition {
    match prefix.as_dir() {
        None => Condition::all(),
        Some(dir) => Condition::any().add(file::Column::Path.eq(dir)).add(
            Condition::all()
                .add(file::Column::Path.gte(format!("{dir}/")))
                .add(file::Column::Path.lt(format!("{dir}0"))),
        ),
    }
}

/// `name` contains `query`, ASCII case ignored; `%`, `_` and backslashes in the query are literal.
/// SQLite's `LIKE` already ignores ASCII case (and its `lower` changes nothing else), so there
/// the name is compared as stored: no `lower` call and copy per row examined.
fn name_contains(query: &str, backend: DbBackend) -> Result<Condition> {
    if query.len() > MAX_QUERY_LEN || query.chars().any(char::is_control) {
        return Err(WorkspaceError::InvalidInput(format!(
            "a name search is at most {MAX_QUERY_LEN} bytes without control characters"
        )));
    }
    let mut escaped = String::with_capacity(query.len() + 2);
    escaped.push('%');
    for c in query.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    let pattern = LikeExpr::new(escaped).escape('\\');
    let name = match backend {
        DbBackend::Sqlite => Expr::col(file::Column::Name),
        _ => Expr::expr(Func::lower(Expr::col(file::Column::Name))),
    };
    Ok(Condition::all().add(name.like(pattern)))
}

/// Where a page ended: the sort key and path of its last row.
#[derive(Debug, Clone, PartialEq)]
enum Cursor {
    Path(String),
    CreatedAt(DateTime<Utc>, String),
    Size(i64, String),
}

impl Cursor {
    fn of(row: &file::Model, sort: SortKey) -> Self {
        match sort {
            SortKey::Path => Self::Path(row.path.clone()),
            SortKey::CreatedAt => Self::CreatedAt(row.created_at, row.path.clone()),
            SortKey::Size => Self::Size(row.size_bytes, row.path.clone()),
        }
    }

    /// Path cursors are the hex of the path (as in v1); others carry their key first.
    fn encode(&self) -> String {
        match self {
            Self::Path(path) => hex::encode(path.as_bytes()),
            Self::CreatedAt(at, path) => {
                hex::encode(format!("c|{}|{path}", at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)))
            }
            Self::Size(size, path) => hex::encode(format!("s|{size}|{path}")),
        }
    }

    fn decode(cursor: &str, sort: SortKey) -> Result<Self> {
        let bad = || WorkspaceError::InvalidInput("cursor is not one this server issued for this sort".into());
        let text = String::from_utf8(hex::decode(cursor).map_err(|_| bad())?).map_err(|_| bad())?;
        match sort {
            SortKey::Path => Ok(Self::Path(text)),
            SortKey::CreatedAt => {
                let rest = text.strip_prefix("c|").ok_or_else(bad)?;
                let (at, path) = rest.split_once('|').ok_or_else(bad)?;
                let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?.with_timezone(&Utc);
                Ok(Self::CreatedAt(at, path.to_owned()))
            }
            SortKey::Size => {
                let rest = text.strip_prefix("s|").ok_or_else(bad)?;
                let (size, path) = rest.split_once('|').ok_or_else(bad)?;
                Ok(Self::Size(size.parse().map_err(|_| bad())?, path.to_owned()))
            }
        }
    }

    /// The row comparison of (key, path) with the cursor's values.
    fn compare(self) -> (Expr, Expr) {
        let col = |c: file::Column| Expr::col((file::Entity, c));
        match self {
            Self::Path(path) => (col(file::Column::Path), Expr::val(path)),
            Self::CreatedAt(at, path) => (
                Expr::tuple([col(file::Column::CreatedAt), col(file::Column::Path)]),
                Expr::tuple([Expr::val(at), Expr::val(path)]),
            ),
            Self::Size(size, path) => (
                Expr::tuple([col(file::Column::SizeBytes), col(file::Column::Path)]),
                Expr::tuple([Expr::val(size), Expr::val(path)]),
            ),
        }
    }

    /// Rows strictly after the cursor in the listing's order (ties by path, in the same
    /// direction): a row-value comparison, one range of the (key, path) index.
    fn after(self, order: SortOrder) -> Condition {
        let (left, right) = self.compare();
        Condition::all().add(if order == SortOrder::Desc { left.lt(right) } else { left.gt(right) })
    }

    /// Rows up to and including the cursor's row in the listing's order.
    fn until(self, order: SortOrder) -> Condition {
        let (left, right) = self.compare();
        Condition::all().add(if order == SortOrder::Desc { left.gte(right) } else { left.lte(right) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_sorts() {
        let at = Utc::now();
        for (cursor, sort) in [
            (Cursor::Path("/a/b".into()), SortKey::Path),
            (Cursor::CreatedAt(at, "/x|y".into()), SortKey::CreatedAt),
            (Cursor::Size(42, "/z".into()), SortKey::Size),
        ] {
            assert_eq!(Cursor::decode(&cursor.encode(), sort).unwrap(), cursor);
        }
        let size = Cursor::Size(1, "/a".into()).encode();
        assert!(Cursor::decode(&size, SortKey::CreatedAt).is_err());
        assert!(Cursor::decode("zz", SortKey::Path).is_err());
    }
}

/// Which index answers a lookup by path and each listing's page, on both databases, as the
/// planner sees the tables with and without statistics.
#[cfg(test)]
mod plans {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use sea_orm::sea_query::SelectStatement;
    use sea_orm::{DatabaseConnection, QueryTrait, Statement};
    use workspace_testkit::{DbKind, TestEnv};

    use super::*;
    use crate::entity::workspace_content;
    use crate::ids::UserId;
    use crate::memory::InMemoryStorage;
    use crate::model::{NewFile, Settings};
    use crate::storage::Storage;
    use crate::{Db, Workspaces};

    /// The plan of `select` as the database would run it, one line per step.
    async fn plan(conn: &DatabaseConnection, select: Select<file::Entity>) -> String {
        let backend = conn.get_database_backend();
        let statement = select.build(backend);
        let (explain, column) = match backend {
            DbBackend::Sqlite => ("EXPLAIN QUERY PLAN", 3),
            _ => ("EXPLAIN", 0),
        };
        let explained = Statement::from_sql_and_values(
            backend,
            format!("{explain} {}", statement.sql),
            statement.values.map(|values| values.0).unwrap_or_default(),
        );
        lines(&conn.query_all_raw(explained).await.unwrap(), column)
    }

    /// The text of each row's `column`, one per line.
    fn lines(rows: &[sea_orm::QueryResult], column: usize) -> String {
        rows.iter().map(|row| row.try_get_by_index::<String>(column).unwrap()).collect::<Vec<_>>().join("\n")
    }

    /// The plan PostgreSQL keeps for `select` in a write batch's transaction (`txn::Plans::Kept`),
    /// made once for any values: its conditions name the parameters (`$2`), not values.
    async fn kept_plan(conn: &DatabaseConnection, select: SelectStatement) -> String {
        use sea_orm::TransactionTrait;
        use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder};
        let (sql, values) = select.build(PostgresQueryBuilder);
        let arguments: Vec<String> = values.0.iter().map(|v| PostgresQueryBuilder.value_to_string(v)).collect();
        let txn = conn.begin().await.unwrap();
        for (name, value) in crate::txn::KEPT_PLANS {
            txn.execute_unprepared(&format!("SET LOCAL {name} = {value}")).await.unwrap();
        }
        txn.execute_unprepared(&format!("PREPARE kept_probe AS {sql}")).await.unwrap();
        let explained = Statement::from_string(
            DbBackend::Postgres,
            format!("EXPLAIN EXECUTE kept_probe({})", arguments.join(", ")),
        );
        let rows = txn.query_all_raw(explained).await.unwrap();
        txn.rollback().await.unwrap();
        lines(&rows, 0)
    }

    /// The statement of a lookup of the current file at `path`.
    fn lookup(workspace: WorkspaceId, path: &str) -> Select<file::Entity> {
        file::Entity::find().filter(rows::current(workspace)).filter(file::Column::Path.eq(path))
    }

    /// The statement of a listing's first page sorted by `key` (`None`: by path), newest or
    /// largest first.
    fn page(workspace: WorkspaceId, key: Option<file::Column>) -> Select<file::Entity> {
        let scope = listing_scope(workspace, &PathPrefix::parse("/plans").unwrap(), key);
        let sorted = match key {
            Some(key) => scope.order_by(key, Order::Desc).order_by(file::Column::Path, Order::Desc),
            None => scope.order_by(file::Column::Path, Order::Asc),
        };
        sorted.limit(101)
    }

    /// A lookup by path reads a path-led index, never a sort index (where `path` comes after the
    /// key, so the whole workspace's range would be walked): on PostgreSQL before any analyze (an
    /// index built on an empty table is costed as empty until then) and after one, for a
    /// workspace its statistics do not know. Each listing reads its own sort index.
    async fn index_choices(env: TestEnv) {
        let kind = env.kind;
        let conn = env.db.conn().clone();
        let workspaces = Workspaces::new(
            Db::from_connection(conn.clone()),
            Storage::new(InMemoryStorage::new()),
            Settings::default(),
        )
        .unwrap();
        let manager = workspaces.manager(&UserId::new("planner").unwrap(), None).await.unwrap();
        let writes = (0..30).map(|i| {
            let new = NewFile::new(manager.resolve_path(&format!("/plans/d{}/f{i}.txt", i % 10)).unwrap());
            manager.write_bytes(new, format!("file {i}"))
        });
        for written in futures::future::join_all(writes).await {
            written.unwrap();
        }
        let workspace = manager.workspace_id();
        // Many more rows, as copies of one written row under other paths, names and times (writing
        // them one by one would take long): PostgreSQL's choice between indexes it cannot tell
        // apart follows their sizes, so the table must look like one writes made.
        let copies = match kind {
            DbKind::Sqlite => {
                "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 20000) \
                 SELECT randomblob(16), workspace_id, 'f' || i, path || '.' || i, storage_path, mime_type, size_bytes, \
                 checksum, is_deleted, deleted_at, metadata, source, source_session_id, source_exec_id, \
                 created_at, updated_at, content_id, chain_id, version, is_current, history_since \
                 FROM k, (SELECT * FROM user_workspace_file LIMIT 1)"
            }
            DbKind::Postgres => {
                "SELECT gen_random_uuid(), workspace_id, 'f' || i, path || '.' || i, storage_path, \
                 mime_type, size_bytes, checksum, is_deleted, deleted_at, metadata, source, source_session_id, \
                 source_exec_id, created_at + i * interval '1 millisecond', updated_at, content_id, chain_id, version, \
                 is_current, history_since \
                 FROM generate_series(1, 20000) AS k(i), (SELECT * FROM user_workspace_file LIMIT 1) AS one"
            }
        };
        conn.execute_unprepared(&format!(
            "INSERT INTO user_workspace_file (id, workspace_id, name, path, storage_path, mime_type, size_bytes, \
             checksum, is_deleted, deleted_at, metadata, source, source_session_id, source_exec_id, created_at, \
             updated_at, content_id, chain_id, version, is_current, history_since) {copies}"
        ))
        .await
        .unwrap();
        let path_led = |plan: &str| {
            (plan.contains("uq_user_workspace_file_live_path") || plan.contains("ix_user_workspace_file_tree"))
                && !plan.contains("ix_user_workspace_file_created")
                && !plan.contains("ix_user_workspace_file_size")
        };
        let unknown = WorkspaceId::from_uuid(uuid::Uuid::new_v4());
        let analyzed: &[bool] = if kind == DbKind::Postgres { &[false, true] } else { &[false] };
        for &analyzed in analyzed {
            if analyzed {
                conn.execute_unprepared("ANALYZE").await.unwrap();
            }
            for workspace in [workspace, unknown] {
                let plan = plan(&conn, lookup(workspace, "/plans/d3/f13.txt")).await;
                assert!(
                    path_led(&plan),
                    "{kind:?}, analyzed: {analyzed}: a lookup by path reads a path-led index:\n{plan}"
                );
            }
            if kind == DbKind::Postgres {
                // A write batch's lookups, planned once for any values: by path through a
                // path-led index, content by checksum through its own.
                for workspace in [workspace, unknown] {
                    let plan = kept_plan(&conn, lookup(workspace, "/plans/d3/f13.txt").into_query()).await;
                    assert!(plan.contains("$2"), "a plan kept for any values:\n{plan}");
                    assert!(
                        path_led(&plan),
                        "analyzed: {analyzed}: a kept lookup by path reads a path-led index:\n{plan}"
                    );
                    let content = workspace_content::Entity::find()
                        .filter(workspace_content::Column::WorkspaceId.eq(workspace.as_uuid()))
                        .filter(workspace_content::Column::Checksum.eq("00".repeat(32)))
                        .into_query();
                    let plan = kept_plan(&conn, content).await;
                    assert!(
                        plan.contains("ix_workspace_content_checksum"),
                        "analyzed: {analyzed}: a kept lookup of content by checksum reads its index:\n{plan}"
                    );
                    // The batch's one query of both (paths and checksums joined), as the lane
                    // sends it: each part through its index, no table read whole.
                    let both = crate::writes::plan_query(
                        workspace,
                        ["/plans/d3/f13.txt", "/plans/d4/f14.txt"],
                        ["00".repeat(32).as_str(), "11".repeat(32).as_str()],
                    )
                    .unwrap();
                    let plan = kept_plan(&conn, both).await;
                    assert!(
                        path_led(&plan) && plan.contains("ix_workspace_content_checksum") && !plan.contains("Seq Scan"),
                        "analyzed: {analyzed}: the batch's query reads the path and checksum indexes:\n{plan}"
                    );
                }
            }
            // Without statistics PostgreSQL costs every index scan alike and sorts; the listings'
            // plans are only meaningful with them.
            if kind == DbKind::Postgres && !analyzed {
                continue;
            }
            for (key, index) in [
                (Some(file::Column::CreatedAt), "ix_user_workspace_file_created"),
                (Some(file::Column::SizeBytes), "ix_user_workspace_file_size"),
            ] {
                let plan = plan(&conn, page(workspace, key)).await;
                assert!(plan.contains(index), "{kind:?}: a listing sorted by {key:?} reads {index}:\n{plan}");
                let sorts = plan.contains("Sort") || plan.contains("TEMP B-TREE");
                assert!(!sorts, "{kind:?}: no sort step for {key:?}:\n{plan}");
            }
            let plan = plan(&conn, page(workspace, None)).await;
            assert!(path_led(&plan), "{kind:?}: a listing in path order reads a path-led index:\n{plan}");
        }
    }

    workspace_testkit::db_tests!(index_choices);
}
