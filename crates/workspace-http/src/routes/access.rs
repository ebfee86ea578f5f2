//! Who may read a file: the bearer of a token (their own workspace), or the holder of a signed
//! link to that one file (`w`, `exp`, `sig` in the query; see [`crate::signed_link`]). Shared by
//! the download and the thumbnail routes, so a link that downloads a file also shows its
//! thumbnail, and nothing else.

use axum::http::HeaderMap;
use workspace_core::{FileId, WorkspaceId, WorkspaceManager};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// Who is asking: a bearer token or a signed link.
pub(crate) enum Caller {
    Bearer,
    Link { expires: i64 },
}

impl Caller {
    /// `Cache-Control` of what this caller reads: nothing kept for a bearer (the token is not in
    /// the URL), private caching until a signed link expires (at most a day).
    pub(crate) fn cache_control(&self) -> String {
        match self {
            Self::Bearer => "private, no-store".to_owned(),
            Self::Link { expires } => {
                format!("private, max-age={}", (expires - chrono::Utc::now().timestamp()).clamp(0, 86_400))
            }
        }
    }
}

/// The signed-link parameters of a query, as `create_link`'s URL carries them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkParams<'a> {
    pub w: Option<&'a str>,
    pub exp: Option<i64>,
    pub sig: Option<&'a str>,
}

/// The manager the caller reads `id` through. With `sig` in the query the link must verify for
/// exactly this file (else 403, whatever the token), and the manager is the link's workspace;
/// otherwise the bearer token's user's workspace. Either way the file is then looked up inside
/// that workspace only, so another workspace's file is a 404.
pub(crate) async fn resolve_caller(
    state: &AppState,
    headers: &HeaderMap,
    link: LinkParams<'_>,
    id: FileId,
) -> Result<(WorkspaceManager, Caller), ApiError> {
    if let Some(sig) = link.sig {
        let now = chrono::Utc::now().timestamp();
        let workspace: WorkspaceId = link.w.and_then(|w| w.parse().ok()).ok_or(ApiError::BadLink)?;
        let expires = link.exp.ok_or(ApiError::BadLink)?;
        if !state.config().links.verify(workspace, id, expires, sig, now) {
            return Err(ApiError::BadLink);
        }
        let manager = state.workspaces().manager_for_workspace(workspace).await.map_err(|_| ApiError::BadLink)?;
        return Ok((manager, Caller::Link { expires }));
    }
    let user = authenticate(headers, state.jwt()).await?;
    Ok((state.manager(&user, None).await?, Caller::Bearer))
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
pub(crate) fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}
