//! The live change feed (SPEC §16): [`Subscription`]s to one workspace's events, from now on or
//! resumed after an id, with no gap and no duplicate, whichever process or replica made the
//! change. This is the hook the HTTP event stream, the MCP resource subscriptions and the web UI
//! consume; get one from [`crate::Workspaces::subscribe`].
//!
//! The `workspace_event` table is the source of truth; everything else only says "look again":
//! - a commit in this process hands its events to the hub after it is durable
//!   ([`crate::WorkspaceManager`]'s `finish`), which broadcasts them in process at once;
//! - on PostgreSQL every change also sends `pg_notify('workspace_events', '{workspace}:{id}')` in
//!   its transaction (delivered only if it commits), and one `LISTEN` connection per process wakes
//!   the hub, which reads the new events from the table once per workspace and broadcasts them;
//! - while anyone subscribes, the hub checks the subscribed workspaces' event counters
//!   (`user_workspace.event_seq`, primary-key lookups) every [`SQLITE_POLL`] on SQLite (another
//!   process on the same file: a stdio MCP server, the CLI) and every [`POSTGRES_POLL`] on
//!   PostgreSQL (a notification lost while the listener reconnected).
//!
//! A subscription first reads the table after its cursor, then follows the broadcast; anything
//! it cannot take from the broadcast in order (a receiver that lagged, an id that skips one) it
//! reads from the table again. The hub only ever broadcasts a workspace's events in id order.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::Stream;
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{Notify, broadcast};

use crate::db::Db;
use crate::entity::{user_workspace, workspace_event};
use crate::error::{Result, WorkspaceError};
use crate::events::Event;
use crate::ids::WorkspaceId;

/// The PostgreSQL notification channel every change notifies (payload `{workspace}:{last id}`).
pub const NOTIFY_CHANNEL: &str = "workspace_events";
/// How often the subscribed workspaces' counters are checked on SQLite.
pub const SQLITE_POLL: Duration = Duration::from_millis(250);
/// How often they are checked on PostgreSQL, where notifications do the waking.
pub const POSTGRES_POLL: Duration = Duration::from_secs(5);
/// Events read from the table at once.
const PAGE: u64 = 500;
/// Events a subscriber may fall behind the broadcast before it re-reads the table.
const BROADCAST_CAPACITY: usize = 1024;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStart {
    /// With the next change (the first event is the one after the latest now).
    Now,
    /// After the event with this id (`After(0)`: from the oldest event still retained).
    After(u64),
}

/// The in-process hub: one broadcast channel per workspace with subscribers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Feed(Arc<Hub>);

struct Hub {
    db: Db,
    state: Mutex<HubState>,
    /// Wakes the driver task when `dirty` gained an entry.
    wake: Notify,
}

#[derive(Default)]
struct HubState {
    channels: HashMap<WorkspaceId, Channel>,
    /// Workspaces to read from the table, with the id known to exist (`u64::MAX`: unknown).
    dirty: HashMap<WorkspaceId, u64>,
    /// Whether the driver task runs (it runs while there are channels).
    driving: bool,
    /// Set by [`Feed::close`]: no new subscriptions, live ones end.
    closed: bool,
}

struct Channel {
    tx: broadcast::Sender<Arc<Event>>,
    /// The highest id broadcast: the next one sent is `last + 1` (or the table's next).
    last: u64,
    subscribers: usize,
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0.lock();
        f.debug_struct("Feed").field("channels", &state.channels.len()).field("closed", &state.closed).finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the driver to read `workspace`'s events up to at least `seq` from the table.
    fn mark_dirty(&self, workspace: WorkspaceId, seq: u64) {
        let mut state = self.lock();
        if state.channels.get(&workspace).is_some_and(|c| c.last < seq) {
            let entry = state.dirty.entry(workspace).or_insert(0);
            *entry = (*entry).max(seq);
            drop(state);
            self.wake.notify_one();
        }
    }

    fn mark_all_dirty(&self) {
        let mut state = self.lock();
        let all: Vec<WorkspaceId> = state.channels.keys().copied().collect();
        for workspace in all {
            state.dirty.insert(workspace, u64::MAX);
        }
        drop(state);
        self.wake.notify_one();
    }
}

impl Feed {
    pub(crate) fn new(db: Db) -> Self {
        Self(Arc::new(Hub { db, state: Mutex::new(HubState::default()), wake: Notify::new() }))
    }

    /// Hands the events of a change that committed (and is durable) to the subscribers of this
    /// process. Events that do not follow the last one broadcast are left to the table.
    pub(crate) fn publish(&self, workspace: WorkspaceId, events: &[Event]) {
        let Some(highest) = events.last().map(|e| e.id) else { return };
        let mut state = self.0.lock();
        let Some(channel) = state.channels.get_mut(&workspace) else { return };
        for event in events {
            if event.id <= channel.last {
                continue;
            }
            if event.id != channel.last + 1 {
                // An earlier change has not been broadcast yet: read them in order from the table.
                drop(state);
                self.0.mark_dirty(workspace, highest);
                return;
            }
            channel.last = event.id;
            // No receiver left is fine: the channel goes with its last subscription.
            let _ = channel.tx.send(Arc::new(event.clone()));
        }
    }

    /// Ends every subscription (their `next` answers `None` once they have caught up) and refuses
    /// new ones. For shutdown: open event streams would otherwise never finish.
    pub(crate) fn close(&self) {
        let mut state = self.0.lock();
        state.closed = true;
        state.channels.clear();
        state.dirty.clear();
        drop(state);
        self.0.wake.notify_one();
    }

    /// A subscription to `workspace`'s events from `start`. An `After` id older than the oldest
    /// event retained is [`WorkspaceError::EventsExpired`]; one beyond the latest is InvalidInput.
    pub(crate) async fn subscribe(&self, workspace: WorkspaceId, start: FeedStart) -> Result<Subscription> {
        // The cursor first: anything committed after it is either in the table when the
        // subscription reads it, or broadcast after the receiver below exists.
        let latest = latest_id(&self.0.db, workspace).await?;
        let (cursor, backlog) = match start {
            FeedStart::Now => (latest, VecDeque::new()),
            FeedStart::After(after) => (after, read_after(&self.0.db, workspace, after, PAGE).await?.into()),
        };
        let rx = {
            let mut state = self.0.lock();
            if state.closed {
                return Err(WorkspaceError::Unavailable("the server is shutting down".into()));
            }
            let created = !state.channels.contains_key(&workspace);
            // Everything up to `latest` committed before the channel existed: subscribers read
            // it from the table, the channel broadcasts what follows.
            let channel = state.channels.entry(workspace).or_insert_with(|| Channel {
                tx: broadcast::channel(BROADCAST_CAPACITY).0,
                last: latest,
                subscribers: 0,
            });
            channel.subscribers += 1;
            let rx = channel.tx.subscribe();
            if created {
                // A change that committed since `latest` was read found no channel to publish to.
                state.dirty.insert(workspace, u64::MAX);
            }
            if !state.driving {
                state.driving = true;
                tokio::spawn(drive(Arc::clone(&self.0)));
            }
            rx
        };
        self.0.wake.notify_one();
        // A full first page may have more behind it; a short one reached the end of the table.
        let catching_up = match start {
            FeedStart::Now => true,
            FeedStart::After(_) => backlog.len() as u64 == PAGE,
        };
        Ok(Subscription { hub: Arc::clone(&self.0), workspace, cursor, backlog, catching_up, rx, done: false })
    }
}

/// A workspace's events, in id order, each exactly once: first those already in the table after
/// the start, then live ones as they commit in any process or replica. `next` is cancel-safe, so
/// it can sit in a `select!`. Dropping it unsubscribes.
pub struct Subscription {
    hub: Arc<Hub>,
    workspace: WorkspaceId,
    cursor: u64,
    backlog: VecDeque<Event>,
    /// Read the table after `cursor` before following the broadcast.
    catching_up: bool,
    rx: broadcast::Receiver<Arc<Event>>,
    done: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("workspace", &self.workspace).field("cursor", &self.cursor).finish()
    }
}

impl Subscription {
    /// The workspace subscribed to.
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// The id of the last event handed out (or the start): resume with `FeedStart::After` it.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next event; `None` once the feed closed (server shutdown). Errors are the table's (a
    /// database fault) or [`WorkspaceError::EventsExpired`] for a subscriber so far behind that
    /// retention removed what it had not read yet.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.cursor = event.id;
                return Ok(Some(event));
            }
            if self.done {
                return Ok(None);
            }
            if self.catching_up {
                let page = read_after(&self.hub.db, self.workspace, self.cursor, PAGE).await?;
                self.catching_up = page.len() as u64 == PAGE;
                self.backlog.extend(page);
                continue;
            }
            match self.rx.recv().await {
                Ok(event) if event.id <= self.cursor => {}
                Ok(event) if event.id == self.cursor + 1 => {
                    self.cursor = event.id;
                    return Ok(Some(Event::clone(&event)));
                }
                // Ids only skip when the hub skipped, or retention removed some: ask the table.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => self.done = true,
            }
        }
    }

    /// The subscription as a stream, which ends after the feed closes or after its first error.
    pub fn into_stream(self) -> impl Stream<Item = Result<Event>> + Send + 'static {
        futures::stream::unfold(Some(self), |sub| async move {
            let mut sub = sub?;
            match sub.next().await {
                Ok(Some(event)) => Some((Ok(event), Some(sub))),
                Ok(None) => None,
                Err(err) => Some((Err(err), None)),
            }
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(channel) = state.channels.get_mut(&self.workspace) {
            channel.subscribers = channel.subscribers.saturating_sub(1);
            if channel.subscribers == 0 {
                state.channels.remove(&self.workspace);
                state.dirty.remove(&self.workspace);
            }
        }
    }
}

/// The id of `workspace`'s latest event (0 before the first).
pub(crate) async fn latest_id(db: &Db, workspace: WorkspaceId) -> Result<u64> {
    let seq: Option<i64> = user_workspace::Entity::find_by_id(workspace.as_uuid())
        .select_only()
        .column(user_workspace::Column::EventSeq)
        .into_tuple()
        .one(db.conn())
        .await?;
    let seq = seq.ok_or_else(|| WorkspaceError::NotFound(format!("workspace {workspace}")))?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

/// At most `limit` of `workspace`'s events after `after`, oldest first. `after = 0` is the start
/// of what is retained. When events after `after` existed but retention removed them, this is
/// [`WorkspaceError::EventsExpired`] with the oldest id still held (or the next id when none is);
/// an `after` beyond the latest event is InvalidInput.
pub(crate) async fn read_after(db: &Db, workspace: WorkspaceId, after: u64, limit: u64) -> Result<Vec<Event>> {
    let page = page_after(db, workspace, after, limit).await?;
    if after == 0 || !page.is_empty() {
        return held_after(page, after);
    }
    let latest = latest_id(db, workspace).await?;
    if after > latest {
        return Err(WorkspaceError::InvalidInput(format!(
            "event id {after} is beyond the workspace's latest event ({latest})"
        )));
    }
    if after == latest {
        return Ok(page);
    }
    // Events up to `latest` committed after the empty page was read and before `latest` was: they
    // are in the table for a read that starts now, unless retention (oldest first) removed them.
    let page = page_after(db, workspace, after, limit).await?;
    if page.is_empty() {
        return Err(WorkspaceError::EventsExpired { after, oldest: latest + 1 });
    }
    held_after(page, after)
}

/// At most `limit` of `workspace`'s events after `after`, oldest first, as the table holds them.
async fn page_after(db: &Db, workspace: WorkspaceId, after: u64, limit: u64) -> Result<Vec<Event>> {
    workspace_event::Entity::find()
        .filter(workspace_event::Column::WorkspaceId.eq(workspace.as_uuid()))
        .filter(workspace_event::Column::Id.gt(i64::try_from(after).unwrap_or(i64::MAX)))
        .order_by_asc(workspace_event::Column::Id)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Event::try_from)
        .collect()
}

/// `page` (non-empty, or read from the start) if it follows `after` without a gap. Ids are
/// consecutive: a first id past `after + 1` means the ones between were purged.
fn held_after(page: Vec<Event>, after: u64) -> Result<Vec<Event>> {
    match page.first() {
        Some(first) if after != 0 && first.id != after + 1 => {
            Err(WorkspaceError::EventsExpired { after, oldest: first.id })
        }
        _ => Ok(page),
    }
}

/// The hub's background task, one per process while anyone subscribes: turns notifications,
/// counter checks and gaps into table reads, one per workspace, and broadcasts what they find.
async fn drive(hub: Arc<Hub>) {
    let postgres = hub.db.backend() == DbBackend::Postgres;
    let listener = postgres.then(|| tokio::spawn(listen(Arc::clone(&hub))));
    let mut ticker = tokio::time::interval(if postgres { POSTGRES_POLL } else { SQLITE_POLL });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(err) = check_counters(&hub).await {
                    tracing::warn!(error = %err, "change feed: checking the event counters failed");
                }
            }
            () = hub.wake.notified() => {}
        }
        let dirty = {
            let mut state = hub.lock();
            if state.channels.is_empty() {
                state.driving = false;
                state.dirty.clear();
                break;
            }
            std::mem::take(&mut state.dirty)
        };
        for (workspace, seq) in dirty {
            if let Err(err) = refresh(&hub, workspace, seq).await {
                tracing::warn!(error = %err, %workspace, "change feed: reading new events failed");
                // Try again at the next tick.
                hub.lock().dirty.insert(workspace, u64::MAX);
            }
        }
    }
    if let Some(listener) = listener {
        listener.abort();
    }
}

/// Reads `workspace`'s events after the last one broadcast (known to reach at least `seq`)
/// and broadcasts them in order.
async fn refresh(hub: &Hub, workspace: WorkspaceId, seq: u64) -> Result<()> {
    loop {
        let Some(last) = hub.lock().channels.get(&workspace).map(|c| c.last) else { return Ok(()) };
        if last >= seq {
            return Ok(());
        }
        let page = read_raw(&hub.db, workspace, last, PAGE).await?;
        let full = page.len() as u64 == PAGE;
        let mut state = hub.lock();
        let Some(channel) = state.channels.get_mut(&workspace) else { return Ok(()) };
        for event in page {
            if event.id > channel.last {
                channel.last = event.id;
                let _ = channel.tx.send(Arc::new(event));
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Events after `after` without the retention checks (the hub skips what retention removed;
/// subscribers notice the gap and read the table themselves).
async fn read_raw(db: &Db, workspace: WorkspaceId, after: u64, limit: u64) -> Result<Vec<Event>> {
    workspace_event::Entity::find()
        .filter(workspace_event::Column::WorkspaceId.eq(workspace.as_uuid()))
        .filter(workspace_event::Column::Id.gt(i64::try_from(after).unwrap_or(i64::MAX)))
        .order_by_asc(workspace_event::Column::Id)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Event::try_from)
        .collect()
}

/// Compares the subscribed workspaces' event counters with what was broadcast; marks the ones
/// that moved (commits of another process, or a lost notification).
async fn check_counters(hub: &Hub) -> Result<()> {
    let ids: Vec<uuid::Uuid> = hub.lock().channels.keys().map(|w| w.as_uuid()).collect();
    // Bounded statements, however many workspaces are subscribed.
    for chunk in ids.chunks(500) {
        let seqs: Vec<(uuid::Uuid, i64)> = user_workspace::Entity::find()
            .select_only()
            .column(user_workspace::Column::Id)
            .column(user_workspace::Column::EventSeq)
            .filter(user_workspace::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(hub.db.conn())
            .await?;
        for (id, seq) in seqs {
            hub.mark_dirty(WorkspaceId::from_uuid(id), u64::try_from(seq).unwrap_or(0));
        }
    }
    Ok(())
}

/// PostgreSQL: one `LISTEN` connection; each notification marks its workspace, a lost connection
/// marks them all (notifications sent meanwhile are gone; the table is not).
async fn listen(hub: Arc<Hub>) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = hub.db.conn().get_postgres_connection_pool().clone();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "change feed: cannot open the LISTEN connection; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(err) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(error = %err, "change feed: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever committed before LISTEN took effect is only in the table.
        hub.mark_all_dirty();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match parse_payload(notification.payload()) {
                    Some((workspace, seq)) => hub.mark_dirty(workspace, seq),
                    None => tracing::warn!(payload = notification.payload(), "change feed: unexpected notification"),
                },
                Ok(None) => hub.mark_all_dirty(),
                Err(err) => {
                    tracing::warn!(error = %err, "change feed: the LISTEN connection failed; reconnecting");
                    hub.mark_all_dirty();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// `{workspace}:{seq}`.
fn parse_payload(payload: &str) -> Option<(WorkspaceId, u64)> {
    let (workspace, seq) = payload.split_once(':')?;
    Some((WorkspaceId::from_uuid(workspace.parse().ok()?), seq.parse().ok()?))
}

/// The statement a change runs in its transaction on PostgreSQL, so every replica's listener
/// wakes when (and only if) it commits: `SELECT pg_notify(channel, '{workspace}:{seq}')`.
pub(crate) fn notify_statement(workspace: WorkspaceId, seq: u64) -> crate::db::Pending {
    use sea_orm::sea_query::{Func, Query};
    Query::select()
        .expr(Func::cust("pg_notify").arg(NOTIFY_CHANNEL).arg(format!("{}:{seq}", workspace.as_uuid())))
        .to_owned()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let id = WorkspaceId::from_uuid(uuid::Uuid::new_v4());
        assert_eq!(parse_payload(&format!("{}:42", id.as_uuid())), Some((id, 42)));
        assert_eq!(parse_payload("nonsense"), None);
        assert_eq!(parse_payload("x:1"), None);
    }
}
