//! The change feed over HTTP (SPEC §16): `GET /api/workspace/events`.
//!
//! One route, two forms, chosen by `Accept`:
//! - `Accept: text/event-stream` (what `EventSource` sends): Server-Sent Events, from now on, or
//!   after `Last-Event-ID` (a reconnecting `EventSource` sends it; it wins) or `?after=ID`. Each
//!   event is `id:` its id, `event:` its type, `data:` its JSON; comment lines keep idle
//!   connections alive. A user may hold [`crate::RequestLimits::max_event_streams`] streams.
//! - anything else: one JSON page, `?after=ID&limit=N` (`after=0`, the default, is the start of
//!   what is retained), so a plain request never hangs.
//!
//! Either form answers 410 `events_expired` with `oldest_id` when the events after the id asked
//! for were purged by retention, and 400 for an id that is malformed or beyond the latest.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use workspace_core::{Event, EventKind, FeedStart};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::routes::ApiQuery;
use crate::state::AppState;

/// Default and largest page of the JSON form.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;

/// Where to start.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events after this id. JSON form: default 0, the start of what is retained. Stream: start
    /// here instead of now (`Last-Event-ID` wins when both are sent).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// JSON form: page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A file appeared at a free path.
    Created,
    /// A new version replaced the current one.
    Overwritten,
    /// A file changed path (same id); `old_path` says where from.
    Moved,
    /// A new file was made from another's content.
    Copied,
    /// A file went to the trash.
    Deleted,
    /// A file came back from the trash, or an old version became current.
    Restored,
    /// A file or version was removed for good.
    Purged,
}

impl From<EventKind> for EventType {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Created => Self::Created,
            EventKind::Overwritten => Self::Overwritten,
            EventKind::Moved => Self::Moved,
            EventKind::Copied => Self::Copied,
            EventKind::Deleted => Self::Deleted,
            EventKind::Restored => Self::Restored,
            EventKind::Purged => Self::Purged,
        }
    }
}

/// One committed change. The stream's `data:` lines carry the same JSON.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    /// Increasing per workspace, consecutive; resume after it.
    pub id: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The file (version) it happened to.
    pub file_id: uuid::Uuid,
    /// Its path after the change.
    pub path: String,
    /// Its path before a move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// SHA-256 of its content (hex).
    pub checksum: String,
    /// When the change committed.
    pub at: DateTime<Utc>,
}

impl From<Event> for EventResponse {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            kind: e.kind.into(),
            file_id: e.file_id.as_uuid(),
            path: e.path,
            old_path: e.old_path,
            size_bytes: e.size_bytes,
            checksum: e.checksum,
            at: e.at,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<EventResponse>,
    /// Pass as `after` for the next page (the last event's id, or `after` when there is none).
    pub next_after: u64,
    /// Whether more events follow this page right now.
    pub has_more: bool,
    /// The workspace's latest event id (0 before the first change).
    pub latest_id: u64,
}

/// The workspace's changes: a JSON page, or a live Server-Sent Events stream with
/// `Accept: text/event-stream`.
#[utoipa::path(get, path = "/api/workspace/events", tag = "events", operation_id = "list_events",
    params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header,
            description = "Resume after this event id (a non-negative integer); sent by a reconnecting EventSource")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events (JSON), or with `Accept: text/event-stream` a live \
            stream: `id:` the event id, `event:` its type, `data:` the event JSON, and keep-alive comments",
            content(
                (EventPage = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "Bad `after`, `limit` or `Last-Event-ID`, or an id beyond the latest event", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 410, description = "The events after that id are no longer retained; `oldest_id` is the oldest held",
            body = ErrorBody),
        (status = 429, description = "The user holds the most event streams allowed", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let after = last_event_id(&headers)?.or(query.after);
    if wants_stream(&headers) {
        return stream(state, &user, after).await;
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest("invalid_query", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let after = after.unwrap_or(0);
    let manager = state.manager(&user, None).await?;
    let latest_id = manager.latest_event_id().await?;
    let events = manager.events(after, limit).await?;
    let next_after = events.last().map_or(after, |e| e.id);
    Ok(Json(EventPage {
        has_more: next_after < latest_id,
        next_after,
        latest_id,
        events: events.into_iter().map(Into::into).collect(),
    })
    .into_response())
}

/// The live form: a slot of the user's streams, a subscription, and the SSE response.
async fn stream(state: AppState, user: &workspace_core::UserId, after: Option<u64>) -> Result<Response, ApiError> {
    let slot = state.event_stream_slot(user)?;
    let workspace = state.workspaces().workspace_of(user).await?;
    let start = after.map_or(FeedStart::Now, FeedStart::After);
    let subscription = state.workspaces().subscribe(workspace, start).await?;
    let events = subscription.into_stream().map(move |event| {
        // The slot is held while the stream lives; the client going away drops both.
        let _held = &slot;
        match event {
            Ok(event) => Some(sse_event(event)),
            Err(err) => {
                // The client reconnects with Last-Event-ID and resumes where this ended.
                tracing::warn!(error = %err, "event stream ended");
                None
            }
        }
    });
    let events = events.take_while(|event| std::future::ready(event.is_some())).filter_map(std::future::ready);
    let keep_alive = KeepAlive::new().interval(state.request_limits().event_keep_alive).text("keep-alive");
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    // Proxies must not buffer the stream (nginx honours this header).
    response.headers_mut().insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    Ok(response)
}

fn sse_event(event: Event) -> Result<SseEvent, Infallible> {
    let id = event.id;
    let kind = event.kind.as_str();
    let body = EventResponse::from(event);
    let data = serde_json::to_string(&body).unwrap_or_default();
    Ok(SseEvent::default().id(id.to_string()).event(kind).data(data))
}

/// Whether the client asked for the stream.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream")))
}

/// `Last-Event-ID`: an event id (a non-negative integer), as the stream's `id:` lines carry.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    let bad = || {
        ApiError::BadRequest(
            "invalid_last_event_id",
            "Last-Event-ID must be an event id: a non-negative integer, as sent in the stream's `id:` lines".into(),
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    }

    #[test]
    fn last_event_id_is_a_non_negative_integer() {
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), None);
        assert_eq!(last_event_id(&with("last-event-id", "42")).unwrap(), Some(42));
        assert_eq!(last_event_id(&with("last-event-id", " 7 ")).unwrap(), Some(7));
        for bad in ["", "-1", "1.5", "abc", "0x10", "99999999999999999999999"] {
            assert!(last_event_id(&with("last-event-id", bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_stream_is_chosen_by_accept() {
        assert!(wants_stream(&with("accept", "text/event-stream")));
        assert!(wants_stream(&with("accept", "application/json, Text/Event-Stream;q=0.9")));
        assert!(!wants_stream(&with("accept", "application/json")));
        assert!(!wants_stream(&HeaderMap::new()));
    }
}
