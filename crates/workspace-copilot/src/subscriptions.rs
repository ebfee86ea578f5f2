//! MCP resource subscriptions (SPEC §15) fed by the change feed (SPEC §16): which feed events
//! touch which subscribed `workspace://` URI, which change the listing, and the one task per MCP
//! session that turns the session's workspace's events into notifications. Because the feed is
//! read from the event table (PostgreSQL `LISTEN/NOTIFY`, SQLite's counter check), changes made
//! by any process or replica reach the subscriber.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use workspace_core::{Event, EventKind, FeedStart, FileId, FileRef, Subscription, UserId, Workspaces};

use crate::error::ToolError;
use crate::resources::parse_uri;

/// What a subscribed URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// `workspace:///{path}`: whatever file is current at that path.
    Path(String),
    /// `workspace://{file_id}`: that file (version).
    Id(FileId),
}

impl Watched {
    /// The target of a resource URI (the forms `resources/read` accepts).
    pub fn parse(uri: &str) -> Result<Self, ToolError> {
        Ok(match parse_uri(uri)? {
            FileRef::Path(path) => Self::Path(path.as_str().to_owned()),
            FileRef::Id(id) => Self::Id(id),
        })
    }

    /// Whether `event` changes the content or state of this resource: a path URI when its current
    /// file is created, overwritten, edited, moved away or deleted (the event's `path` or
    /// `old_path` is it); an id URI when that file is moved, trashed, restored or purged.
    pub fn is_touched_by(&self, event: &Event) -> bool {
        match self {
            Self::Path(path) => event.path == *path || event.old_path.as_deref() == Some(path.as_str()),
            Self::Id(id) => event.file_id == *id,
        }
    }
}

/// Whether `kind` changes what `resources/list` returns. The listing names files by version id,
/// so an overwrite (a new current version) changes it too.
pub fn changes_listing(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Created
            | EventKind::Overwritten
            | EventKind::Moved
            | EventKind::Copied
            | EventKind::Deleted
            | EventKind::Restored
            | EventKind::Purged
    )
}

/// Where notifications go (the session's peer, or a `subscriptions/listen` stream). A send that
/// answers false found the receiver gone, and the watch ends.
pub trait Notifier: Send + Sync {
    /// Sends `notifications/resources/updated` for `uri`.
    fn updated(&self, uri: String) -> impl Future<Output = bool> + Send;
    /// Sends `notifications/resources/list_changed`.
    fn list_changed(&self) -> impl Future<Output = bool> + Send;
}

/// The URIs one session is subscribed to. Shared between the handlers that change it and the
/// task that reads it for each event.
#[derive(Debug, Clone, Default)]
pub struct SubscribedUris(Arc<Mutex<BTreeMap<String, Watched>>>);

impl SubscribedUris {
    /// Adds `uri`; false when it was there already.
    pub fn insert(&self, uri: String, watched: Watched) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(uri, watched).is_none()
    }

    /// Removes `uri`; false when it was not there.
    pub fn remove(&self, uri: &str) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(uri).is_some()
    }

    /// Whether no URI is subscribed.
    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    /// The subscribed URIs `event` touches.
    pub fn touched_by(&self, event: &Event) -> Vec<String> {
        let uris = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        uris.iter().filter(|(_, w)| w.is_touched_by(event)).map(|(uri, _)| uri.clone()).collect()
    }
}

/// Most `subscriptions/listen` streams one user holds open at once (each holds a connection and a
/// feed subscription); one more is refused until another closes.
pub const MAX_LISTENS_PER_USER: usize = 8;

/// The open `subscriptions/listen` streams per user, shared by all sessions of a server.
#[derive(Debug, Clone, Default)]
pub struct ListenCounts(Arc<Mutex<HashMap<UserId, usize>>>);

/// One counted stream; dropping it frees the place.
#[derive(Debug)]
pub struct ListenSlot {
    counts: ListenCounts,
    user: UserId,
}

impl ListenCounts {
    /// A place for one more stream of `user`, or None at [`MAX_LISTENS_PER_USER`].
    pub fn acquire(&self, user: &UserId) -> Option<ListenSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(user.clone()).or_default();
        if *open >= MAX_LISTENS_PER_USER {
            return None;
        }
        *open += 1;
        Some(ListenSlot { counts: self.clone(), user: user.clone() })
    }
}

impl Drop for ListenSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.user) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// How long a watch waits before reopening a feed that failed with a transient fault.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Follows `feed` (one workspace's change feed, opened before the subscription was
/// acknowledged so nothing after it is missed) until `stop` is cancelled, the feed closes or
/// `notifier` finds the receiver gone: each event touching a URI in `uris` sends `updated` for it,
/// and each event that changes the listing sends `list_changed` when `list_changed` is set. The
/// feed holds only the session's own workspace, so other users' changes never notify. A transient
/// fault (database unavailable) reopens the feed after its last event, so nothing is lost; any
/// other fault ends the watch with it.
pub async fn watch(
    workspaces: &Workspaces,
    mut feed: Subscription,
    uris: SubscribedUris,
    list_changed: bool,
    notifier: &impl Notifier,
    stop: CancellationToken,
) -> Result<(), ToolError> {
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            next = feed.next() => next,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            Err(err) if err.is_transient() => {
                tracing::debug!(error = %err, "change feed of a resource subscription failed; reopening");
                feed = loop {
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(REOPEN_AFTER) => {}
                    }
                    match workspaces.subscribe(feed.workspace(), FeedStart::After(feed.cursor())).await {
                        Ok(reopened) => break reopened,
                        Err(err) if err.is_transient() => continue,
                        Err(err) => return Err(err.into()),
                    }
                };
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        for uri in uris.touched_by(&event) {
            if !notifier.updated(uri).await {
                return Ok(());
            }
        }
        if list_changed && changes_listing(event.kind) && !notifier.list_changed().await {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn event(kind: EventKind, id: &FileId, path: &str, old_path: Option<&str>) -> Event {
        Event {
            id: 1,
            kind,
            file_id: *id,
            path: path.into(),
            old_path: old_path.map(Into::into),
            size_bytes: 1,
            checksum: "c".into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn path_and_id_uris_are_touched_by_their_events() {
        let id: FileId = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".parse().unwrap();
        let other: FileId = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c".parse().unwrap();
        let by_path = Watched::parse("workspace:///notes/a%20b.md").unwrap();
        let by_id = Watched::parse(&format!("workspace://{id}")).unwrap();
        assert!(by_path.is_touched_by(&event(EventKind::Overwritten, &other, "/notes/a b.md", None)));
        assert!(by_path.is_touched_by(&event(EventKind::Moved, &other, "/x.md", Some("/notes/a b.md"))));
        assert!(!by_path.is_touched_by(&event(EventKind::Created, &other, "/notes/c.md", None)));
        assert!(by_id.is_touched_by(&event(EventKind::Deleted, &id, "/x.md", None)));
        assert!(!by_id.is_touched_by(&event(EventKind::Deleted, &other, "/x.md", None)));
        assert!(Watched::parse("file:///etc/passwd").is_err());
    }

    #[test]
    fn listen_streams_are_bounded_per_user() {
        let counts = ListenCounts::default();
        let (alice, bob) = (UserId::new("alice").unwrap(), UserId::new("bob").unwrap());
        let mut held: Vec<_> = (0..MAX_LISTENS_PER_USER).map(|_| counts.acquire(&alice).unwrap()).collect();
        assert!(counts.acquire(&alice).is_none(), "one more is refused");
        assert!(counts.acquire(&bob).is_some(), "per user");
        held.pop();
        assert!(counts.acquire(&alice).is_some(), "a closed stream frees its place");
    }
}
