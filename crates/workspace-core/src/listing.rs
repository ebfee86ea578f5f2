//! Listing current files (SPEC §5, §18): a folder (segment-aligned, so `/sessions/abc` never
//! matches `/sessions/abc123/…`), sorted by path, creation time or size in either order, searched
//! by name, paged with keyset cursors that work with every sort.
//!
//! Every order is total: ties are broken by path, which is unique among current files. A cursor
//! names the last row of a page by (key, path) and the next page starts strictly after it, so a
//! file written while a client pages through appears at most once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::user_workspace_file as file;
use crate::error::{Result, WorkspaceError};
use crate::manager::{MAX_PAGE_SIZE, WorkspaceManager};
use crate::model::{FilePage, ListOptions, SortKey, SortOrder};
use crate::path::PathPrefix;
use crate::rows;

/// Longest name search accepted.
pub const MAX_QUERY_LEN: usize = 255;

impl WorkspaceManager {
    /// Lists current files. See [`ListOptions`].
    pub async fn list(&self, options: ListOptions) -> Result<FilePage> {
        let ListOptions { prefix, include_all_sessions, limit, cursor, sort, order, query } = options;
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(WorkspaceError::InvalidInput(format!("limit must be between 1 and {MAX_PAGE_SIZE}")));
        }
        let prefix = match prefix {
            Some(prefix) => prefix,
            None => self.resolve_prefix("", include_all_sessions)?,
        };
        let mut select =
            file::Entity::find().filter(rows::current(self.workspace_id())).filter(prefix_condition(&prefix));
        if let Some(query) = query.as_deref().filter(|q| !q.is_empty()) {
            select = select.filter(name_contains(query)?);
        }
        if let Some(cursor) = cursor {
            select = select.filter(Cursor::decode(&cursor, sort)?.after(order));
        }
        let direction = match order {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        };
        select = match sort {
            SortKey::Path => select.order_by(file::Column::Path, direction),
            SortKey::CreatedAt => {
                select.order_by(file::Column::CreatedAt, direction).order_by(file::Column::Path, Order::Asc)
            }
            SortKey::Size => {
                select.order_by(file::Column::SizeBytes, direction).order_by(file::Column::Path, Order::Asc)
            }
        };
        let mut found = select.limit(limit + 1).all(self.workspaces().db().conn()).await?;
        let next_cursor = if found.len() as u64 > limit {
            found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            found.last().map(|row| Cursor::of(row, sort).encode())
        } else {
            None
        };
        let files = found.into_iter().map(rows::to_info).collect::<Result<Vec<_>>>()?;
        Ok(FilePage { files, next_cursor })
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

/// `name` contains `query`, ASCII case ignored; `%`, `_` and `\` in the query are literal.
fn name_contains(query: &str) -> Result<Condition> {
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
    let lowered = Expr::expr(Func::lower(Expr::col(file::Column::Name)));
    Ok(Condition::all().add(lowered.like(LikeExpr::new(escaped).escape('\\'))))
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

    /// Rows strictly after the cursor in the listing's order (ties by path, ascending).
    fn after(self, order: SortOrder) -> Condition {
        let desc = order == SortOrder::Desc;
        match self {
            Self::Path(path) if desc => Condition::all().add(file::Column::Path.lt(path)),
            Self::Path(path) => Condition::all().add(file::Column::Path.gt(path)),
            Self::CreatedAt(at, path) => keyset(file::Column::CreatedAt, at, path, desc),
            Self::Size(size, path) => keyset(file::Column::SizeBytes, size, path, desc),
        }
    }
}

fn keyset<V>(column: file::Column, key: V, path: String, desc: bool) -> Condition
where
    V: Into<sea_orm::Value> + Clone,
{
    let beyond = if desc { column.lt(key.clone()) } else { column.gt(key.clone()) };
    Condition::any().add(beyond).add(Condition::all().add(column.eq(key)).add(file::Column::Path.gt(path)))
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
