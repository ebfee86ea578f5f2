//! `Workspaces`: the one handle every layer holds (HTTP, tools, executors, the server). It owns
//! the database, the storage and the settings, remembers which workspace belongs to which user
//! in a bounded cache, and is the only way to get a [`WorkspaceManager`], so every manager has
//! the same limits and history policy.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::content;
use crate::db::Db;
use crate::entity::user_workspace;
use crate::error::{Result, WorkspaceError};
use crate::events::Event;
use crate::feed::{Feed, FeedStart, Subscription};
use crate::gc::{self, GcOptions, GcReport};
use crate::ids::{SessionId, UserId, WorkspaceId};
use crate::manager::WorkspaceManager;
use crate::model::Settings;
use crate::previews::Previews;
use crate::storage::Storage;
use crate::txn::Committed;
use crate::writes::WriteLanes;

/// How many user → workspace ids are remembered.
const ID_CACHE_ENTRIES: usize = 65_536;

/// The workspaces of every user, over one database and one storage. Cheap to clone.
#[derive(Clone)]
pub struct Workspaces(Arc<Inner>);

struct Inner {
    db: Db,
    storage: Storage,
    settings: Settings,
    /// The live change feed of this process (see [`crate::feed`]).
    feed: Feed,
    /// Thumbnail decode slots of this process.
    previews: Previews,
    /// user → workspace, so a request costs no upsert once the workspace is known. Bounded:
    /// least recently used ids are forgotten (and looked up again when needed).
    ids: Mutex<hashlink::LruCache<UserId, WorkspaceId>>,
    /// Writes waiting to commit together, by workspace (see [`crate::writes`]).
    write_lanes: WriteLanes,
}

impl fmt::Debug for Workspaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspaces")
            .field("db", &self.0.db)
            .field("storage", &self.0.storage)
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl Workspaces {
    /// The workspaces over `db` and `storage`. Fails when a setting is out of range (the error
    /// names it).
    pub fn new(db: Db, storage: Storage, settings: Settings) -> Result<Self> {
        settings.validate()?;
        let capacity = NonZeroUsize::new(ID_CACHE_ENTRIES).map_or(1, NonZeroUsize::get);
        let feed = Feed::new(db.clone());
        Ok(Self(Arc::new(Inner {
            db,
            storage,
            settings,
            feed,
            previews: Previews::new(),
            ids: Mutex::new(hashlink::LruCache::new(capacity)),
            write_lanes: WriteLanes::default(),
        })))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// The storage.
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }

    pub(crate) fn previews(&self) -> &Previews {
        &self.0.previews
    }

    /// The settings every manager applies.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// A manager for `user`'s workspace (created on first use), in `session` if given.
    pub async fn manager(&self, user: &UserId, session: Option<SessionId>) -> Result<WorkspaceManager> {
        let workspace = self.workspace_of(user).await?;
        Ok(WorkspaceManager::new(self.clone(), user.clone(), workspace, session))
    }

    /// A manager for an existing workspace by id (a signed link names the workspace, not the
    /// user), outside any session. NotFound when there is no such workspace.
    pub async fn manager_for_workspace(&self, workspace: WorkspaceId) -> Result<WorkspaceManager> {
        let row = user_workspace::Entity::find_by_id(workspace.as_uuid())
            .one(self.db().conn())
            .await?
            .ok_or_else(|| WorkspaceError::NotFound(format!("workspace {workspace}")))?;
        let user = UserId::new(row.user_id)
            .map_err(|e| WorkspaceError::InvalidInput(format!("stored user id is invalid: {e}")))?;
        Ok(WorkspaceManager::new(self.clone(), user, workspace, None))
    }

    /// The workspace id of `user`, created if missing.
    pub async fn workspace_of(&self, user: &UserId) -> Result<WorkspaceId> {
        if let Some(id) = self.0.ids.lock().unwrap_or_else(PoisonError::into_inner).get(user) {
            return Ok(*id);
        }
        let id = get_or_create(self.db(), user).await?;
        self.0.ids.lock().unwrap_or_else(PoisonError::into_inner).insert(user.clone(), id);
        Ok(id)
    }

    /// Subscribes to `workspace`'s change feed (SPEC §16): its events in id order, each once, from
    /// `start`, then live as changes commit in this or any other process or replica.
    ///
    /// `FeedStart::After(id)` resumes exactly after `id` (as an SSE `Last-Event-ID` does); `After(0)`
    /// starts at the oldest event retained. A resume from before retention is
    /// [`WorkspaceError::EventsExpired`] carrying the oldest id still held; an id beyond the
    /// latest event is InvalidInput. After [`Workspaces::close_feed`] this is Unavailable.
    pub async fn subscribe(&self, workspace: WorkspaceId, start: FeedStart) -> Result<Subscription> {
        self.0.feed.subscribe(workspace, start).await
    }

    /// Ends every live [`Subscription`] of this process (each answers `None` once it has caught
    /// up) and refuses new ones: call it at shutdown, or open event streams keep it waiting.
    pub fn close_feed(&self) {
        self.0.feed.close();
    }

    /// Hands a committed change's events to this process's subscribers.
    pub(crate) fn publish(&self, workspace: WorkspaceId, events: &[Event]) {
        self.0.feed.publish(workspace, events);
    }

    pub(crate) fn write_lanes(&self) -> &WriteLanes {
        &self.0.write_lanes
    }

    /// After a commit of `workspace`: durable before acknowledged (on a SQLite file the commit
    /// skipped its own fsync and the group fsync covers it, see `Db`), then its events go to this
    /// process's subscribers and the blobs nothing refers to any more are removed. If the fsync
    /// fails the change stays, unacknowledged (and its events reach subscribers from the table).
    pub(crate) async fn finish(&self, workspace: WorkspaceId, committed: Committed) -> Result<()> {
        self.db().sync_commits().await?;
        self.publish(workspace, &committed.events);
        content::remove_blobs(self.storage(), committed.unreferenced_blobs).await;
        Ok(())
    }

    /// One garbage collection over every workspace (see [`crate::gc`]).
    pub async fn gc(&self, options: GcOptions) -> Result<GcReport> {
        gc::run(self, options).await
    }
}

/// The workspace's id for `user`, created if missing. Safe when many callers race: the insert
/// ignores a conflict on `user_id` and everyone reads back the one row.
pub(crate) async fn get_or_create(db: &Db, user: &UserId) -> Result<WorkspaceId> {
    let now = Utc::now();
    let row = user_workspace::ActiveModel {
        id: Set(WorkspaceId::new().as_uuid()),
        user_id: Set(user.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        live_bytes: Set(0),
        history_bytes: Set(0),
        file_count: Set(0),
        event_seq: Set(0),
    };
    user_workspace::Entity::insert(row)
        .on_conflict(OnConflict::column(user_workspace::Column::UserId).do_nothing().to_owned())
        .exec_without_returning(db.conn())
        .await?;
    let found = user_workspace::Entity::find()
        .filter(user_workspace::Column::UserId.eq(user.as_str()))
        .one(db.conn())
        .await?
        .ok_or_else(|| WorkspaceError::NotFound(format!("workspace of user {user}")))?;
    Ok(WorkspaceId::from_uuid(found.id))
}
