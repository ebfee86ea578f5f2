//! The Model Context Protocol server: the same tool registry, offered to any MCP client over
//! stdio (one user and session per process) or streamable HTTP (the user set per request by the
//! HTTP layer's authentication). Built on the official Rust SDK, `rmcp`.

use std::sync::{Arc, Mutex, PoisonError};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam,
    ResourcesCapability, ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool as McpTool,
    ToolAnnotations, UnsubscribeRequestParams,
};
use rmcp::service::{Peer, RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use workspace_core::{FeedStart, SessionId, Subscription, UserId};

use crate::copilot::Copilot;
use crate::error::ToolError;
use crate::resources::{self, ID_TEMPLATE, PATH_TEMPLATE, ResourceBody};
use crate::subscriptions::{self, ListenCounts, MAX_LISTENS_PER_USER, Notifier, SubscribedUris, Watched};

/// Most resource links one tool result carries.
const MAX_RESOURCE_LINKS: usize = 25;

/// The session used when the client names none (stdio without `--session`, HTTP without
/// `?session=`), so files of one conversation are listed again in the next.
pub const DEFAULT_SESSION: &str = "default";

/// The query parameter of the HTTP endpoint that names the chat session (`/mcp?session=abc`).
pub const SESSION_QUERY_PARAM: &str = "session";

const INSTRUCTIONS: &str = "Tools over the user's persistent file workspace: list, read (whole, by lines or \
by characters), grep, glob, write, append, edit, move, copy and delete files, their versions and usage, and \
run blocks whose media outputs are saved as workspace:// references. Files written in one session stay \
readable in later ones (by id or absolute path). A call never returns more than 32 KiB of file content; \
large files come back as metadata, a preview and a workspace:// reference, readable in slices. Files are \
also resources: workspace://{file_id} and workspace:///{path}.";

/// The authenticated caller of an HTTP request. The HTTP layer inserts it into the request's
/// extensions after checking the bearer token; requests without it are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCaller {
    /// The user from the token.
    pub user: UserId,
}

#[derive(Debug, Clone)]
enum Identity {
    /// stdio: one user and session for the whole process.
    Fixed { user: UserId, session: SessionId },
    /// HTTP: the caller of each request, from its extensions.
    PerRequest,
}

/// An MCP server over a [`Copilot`]. One value serves one MCP session (clones share it).
#[derive(Debug, Clone)]
pub struct McpServer {
    copilot: Copilot,
    identity: Identity,
    subscriptions: Arc<SessionSubscriptions>,
    listens: ListenCounts,
}

/// The `resources/subscribe` state of one MCP session: the subscribed URIs and, while there is
/// at least one, the token of the task that follows the workspace's change feed for them.
/// Dropping it (the session ended and its handler with it) stops that task.
#[derive(Debug, Default)]
struct SessionSubscriptions {
    uris: SubscribedUris,
    task: Mutex<Option<CancellationToken>>,
    ended: CancellationToken,
}

impl Drop for SessionSubscriptions {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

/// Notifications to a legacy (`resources/subscribe`) session, through its peer.
struct PeerNotifier(Peer<RoleServer>);

impl Notifier for PeerNotifier {
    async fn updated(&self, uri: String) -> bool {
        self.0.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await.is_ok()
    }

    async fn list_changed(&self) -> bool {
        self.0.notify_resource_list_changed().await.is_ok()
    }
}

/// Notifications on a `subscriptions/listen` stream, through its sink.
struct SinkNotifier<'a>(&'a SubscriptionSink);

impl Notifier for SinkNotifier<'_> {
    async fn updated(&self, uri: String) -> bool {
        self.0.notify_resource_updated(uri).await.is_ok()
    }

    async fn list_changed(&self) -> bool {
        self.0.notify_resource_list_changed().await.is_ok()
    }
}

impl McpServer {
    /// A server acting for one user in one session (the stdio transport).
    pub fn for_user(copilot: Copilot, user: UserId, session: SessionId) -> Self {
        Self {
            copilot,
            identity: Identity::Fixed { user, session },
            subscriptions: Arc::default(),
            listens: ListenCounts::default(),
        }
    }

    /// A server that acts for whoever each HTTP request was authenticated as (see [`McpCaller`]).
    pub fn per_request(copilot: Copilot) -> Self {
        Self {
            copilot,
            identity: Identity::PerRequest,
            subscriptions: Arc::default(),
            listens: ListenCounts::default(),
        }
    }

    /// The same server for another MCP session (no subscriptions shared).
    fn for_new_session(&self) -> Self {
        Self {
            copilot: self.copilot.clone(),
            identity: self.identity.clone(),
            subscriptions: Arc::default(),
            listens: self.listens.clone(),
        }
    }

    /// The change feed of the caller's workspace from now on.
    async fn feed(&self, user: &UserId) -> Result<Subscription, ErrorData> {
        let workspaces = self.copilot.workspaces();
        let workspace = workspaces.workspace_of(user).await.map_err(|e| resource_error(e.into()))?;
        workspaces.subscribe(workspace, FeedStart::Now).await.map_err(|e| resource_error(e.into()))
    }

    /// The tools in MCP form.
    pub fn mcp_tools(&self) -> Vec<McpTool> {
        self.copilot
            .tools()
            .definitions()
            .into_iter()
            .map(|d| {
                let schema = match d.parameters {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                let output = match d.output_schema {
                    Value::Object(map) => Some(Arc::new(map)),
                    _ => None,
                };
                let annotations = annotations_for(&d.name);
                let mut tool = McpTool::new(d.name, d.description, Arc::new(schema)).annotate(annotations);
                tool.output_schema = output;
                tool
            })
            .collect()
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<(UserId, SessionId), ErrorData> {
        match &self.identity {
            Identity::Fixed { user, session } => Ok((user.clone(), session.clone())),
            Identity::PerRequest => {
                let parts = ctx.extensions.get::<http::request::Parts>();
                let caller = parts.and_then(|p| p.extensions.get::<McpCaller>()).ok_or_else(|| {
                    ErrorData::invalid_request("this request is not authenticated; send a bearer token", None)
                })?;
                let session = parts
                    .and_then(|p| session_from_query(p.uri.query()))
                    .unwrap_or_else(|| SessionId::new(DEFAULT_SESSION).map_err(|e| e.to_string()))
                    .map_err(|e| ErrorData::invalid_params(format!("`session`: {e}"), None))?;
                Ok((caller.user.clone(), session))
            }
        }
    }
}

/// The `session` query parameter, if present and not empty (percent-decoding `%XX` and `+`). An
/// empty `?session=` counts as absent, as `""` does for tool parameters (SPEC §9).
fn session_from_query(query: Option<&str>) -> Option<Result<SessionId, String>> {
    let value = query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == SESSION_QUERY_PARAM && !value.is_empty()).then_some(value)
    })?;
    Some(percent_decode(value).and_then(|s| SessionId::new(s).map_err(|e| e.to_string())))
}

fn percent_decode(input: &str) -> Result<String, String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3).ok_or("truncated percent escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "invalid percent escape")?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8".to_owned())
}

/// SPEC §15: read-only on list, read, grep, glob, versions and usage; destructive on write, edit,
/// move, delete and restore (each replaces or removes what a path held).
pub fn annotations_for(name: &str) -> ToolAnnotations {
    let annotations = ToolAnnotations::new();
    match name {
        "list_workspace_files"
        | "read_workspace_file"
        | "grep_workspace_files"
        | "glob_workspace_files"
        | "list_workspace_versions"
        | "workspace_usage" => annotations.read_only(true).idempotent(true).open_world(false),
        "write_workspace_file"
        | "edit_workspace_file"
        | "move_workspace_file"
        | "delete_workspace_file"
        | "restore_workspace_file" => {
            annotations.read_only(false).destructive(true).idempotent(false).open_world(false)
        }
        "copy_workspace_file" => annotations.read_only(false).destructive(false).idempotent(false).open_world(false),
        // run_block: blocks may fetch from the internet and store files.
        _ => annotations.read_only(false).destructive(false).open_world(true),
    }
}

/// Resource links to the files a result names: objects with a `workspace://` `uri`, and matches
/// with a `file_id` and `path` (grep), each file once, at most [`MAX_RESOURCE_LINKS`].
fn resource_links(value: &Value) -> Vec<ContentBlock> {
    fn walk(value: &Value, seen: &mut Vec<String>, out: &mut Vec<ContentBlock>) {
        if out.len() >= MAX_RESOURCE_LINKS {
            return;
        }
        match value {
            Value::Object(map) => {
                let name = map.get("path").and_then(Value::as_str);
                let uri = match (map.get("uri").and_then(Value::as_str), map.get("file_id").and_then(Value::as_str)) {
                    (Some(uri), _) if uri.starts_with(workspace_core::uri::SCHEME_PREFIX) => Some(uri.to_owned()),
                    (_, Some(id)) if name.is_some() => Some(format!("workspace://{id}")),
                    _ => None,
                };
                if let Some(uri) = uri {
                    let key = uri.split('#').next().unwrap_or(&uri).to_owned();
                    if !seen.contains(&key) {
                        seen.push(key);
                        let name = name.unwrap_or(&uri).to_owned();
                        let mut resource = Resource::new(uri, name);
                        if let Some(mime) = map.get("mime_type").and_then(Value::as_str) {
                            resource = resource.with_mime_type(mime);
                        }
                        if let Some(size) = map.get("size_bytes").and_then(Value::as_u64) {
                            resource = resource.with_size(size);
                        }
                        out.push(ContentBlock::resource_link(resource));
                    }
                }
                for (key, child) in map {
                    if key != "uri" {
                        walk(child, seen, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, seen, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// A tool result in MCP form: the JSON as text (what every client shows the model) plus the same
/// value as structured content; small inline images also as an image block.
fn to_mcp_result(result: Result<Value, ToolError>) -> CallToolResult {
    match result {
        Ok(value) => {
            let image = match (
                value.get("content_base64").and_then(Value::as_str),
                value.get("mime_type").and_then(Value::as_str),
            ) {
                (Some(data), Some(mime)) if mime.starts_with("image/") => Some(ContentBlock::image(data, mime)),
                _ => None,
            };
            let links = resource_links(&value);
            let mut result = CallToolResult::structured(value);
            result.content.extend(image);
            result.content.extend(links);
            result
        }
        Err(err) => CallToolResult::structured_error(err.to_json()),
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder().enable_tools().enable_resources().build();
        // Subscriptions are fed by the change feed (SPEC §16): `resources/subscribe` on sessions
        // of the legacy protocol, `subscriptions/listen` on 2026-07-28.
        let mut resources = ResourcesCapability::default();
        resources.subscribe = Some(true);
        resources.list_changed = Some(true);
        capabilities.resources = Some(resources);
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info =
            Implementation::new("workspace-copilot", env!("CARGO_PKG_VERSION")).with_title("Agent workspace");
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.mcp_tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.copilot.tools().get(&request.name).is_none() {
            return Err(ErrorData::invalid_params(format!("unknown tool `{}`", request.name), None));
        }
        let (user, session) = self.caller(&context)?;
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = self.copilot.call(&user, &session, &request.name, args).await;
        if let Err(err) = &result {
            tracing::debug!(tool = %request.name, code = err.code, "tool call failed");
        }
        Ok(to_mcp_result(result).into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (user, session) = self.caller(&context)?;
        let ctx = self.copilot.context(&user, &session).await.map_err(resource_error)?;
        let cursor = request.and_then(|r| r.cursor);
        let (entries, next) = resources::list(ctx.manager(), cursor).await.map_err(resource_error)?;
        let listed = entries
            .into_iter()
            .map(|e| Resource::new(e.uri, e.name).with_mime_type(e.mime_type).with_size(e.size))
            .collect();
        let mut result = ListResourcesResult::with_all_items(listed);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(ID_TEMPLATE, "workspace-file").with_description(
                "A file of the workspace by id (a version id names that version). Text up to 32 KiB and images up \
                 to 32 KiB are returned; read larger files with the read_workspace_file tool.",
            ),
            ResourceTemplate::new(PATH_TEMPLATE, "workspace-path").with_description(
                "The current file at an absolute workspace path, e.g. workspace:///sessions/abc/notes.md.",
            ),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (user, session) = self.caller(&context)?;
        let ctx = self.copilot.context(&user, &session).await.map_err(resource_error)?;
        let (_, body) = resources::read(ctx.manager(), &request.uri).await.map_err(resource_error)?;
        let contents = match body {
            ResourceBody::Text { text, mime_type } => {
                ResourceContents::text(text, &request.uri).with_mime_type(mime_type)
            }
            ResourceBody::Blob { blob, mime_type } => {
                ResourceContents::blob(blob, &request.uri).with_mime_type(mime_type)
            }
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if matches!(self.identity, Identity::PerRequest) {
            // Streamable HTTP is stateless here: nothing outlives the response to carry a
            // notification. The 2026-07-28 protocol's `subscriptions/listen` streams them instead.
            return Err(ErrorData::invalid_request(
                "resources/subscribe needs a session; over streamable HTTP use subscriptions/listen \
                 (protocol 2026-07-28), which streams the notifications on its own response",
                None,
            ));
        }
        let watched = Watched::parse(&request.uri).map_err(resource_error)?;
        let (user, _) = self.caller(&context)?;
        let state = &self.subscriptions;
        // Open the feed before answering, so no change after the answer is missed.
        let feed = if state.task.lock().unwrap_or_else(PoisonError::into_inner).is_none() {
            Some(self.feed(&user).await?)
        } else {
            None
        };
        state.uris.insert(request.uri, watched);
        let mut task = state.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let (None, Some(feed)) = (task.as_ref(), feed) {
            let stop = state.ended.child_token();
            *task = Some(stop.clone());
            let uris = state.uris.clone();
            let notifier = PeerNotifier(context.peer.clone());
            let workspaces = self.copilot.workspaces().clone();
            tokio::spawn(async move {
                if let Err(err) = subscriptions::watch(&workspaces, feed, uris, true, &notifier, stop).await {
                    tracing::warn!(code = err.code, "resource subscription ended: {}", err.message);
                }
            });
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let state = &self.subscriptions;
        state.uris.remove(&request.uri);
        if state.uris.is_empty()
            && let Some(stop) = state.task.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            stop.cancel();
        }
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.resource_subscriptions = requested
            .resource_subscriptions
            .as_ref()
            .map(|uris| uris.iter().filter(|uri| Watched::parse(uri).is_ok()).cloned().collect());
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let (user, _) = self.caller(context.request_context())?;
        let _slot = self.listens.acquire(&user).ok_or_else(|| {
            ErrorData::invalid_request(
                format!(
                    "this user already has {MAX_LISTENS_PER_USER} subscriptions/listen streams open; close one \
                     (one stream can carry many resource URIs)"
                ),
                None,
            )
        })?;
        let uris = SubscribedUris::default();
        for uri in context.accepted().resource_subscriptions.iter().flatten() {
            if let Ok(watched) = Watched::parse(uri) {
                uris.insert(uri.clone(), watched);
            }
        }
        let list_changed = context.accepted().resources_list_changed == Some(true);
        let feed = self.feed(&user).await?;
        let notifier = SinkNotifier(context.sink());
        let stop = self.subscriptions.ended.child_token();
        tokio::select! {
            () = context.cancelled() => Ok(()),
            watched = subscriptions::watch(self.copilot.workspaces(), feed, uris, list_changed, &notifier, stop) => {
                watched.map_err(resource_error)
            }
        }
    }
}

/// A resource failure as a JSON-RPC error: unknown files are "resource not found", the rest
/// invalid params with the tool error's code and message (which name the tool to use instead).
fn resource_error(err: ToolError) -> ErrorData {
    let data = Some(err.to_json());
    match err.code {
        "not_found" => ErrorData::resource_not_found(err.message, data),
        "storage_error" | "database_error" | "unavailable" | "internal_error" => {
            ErrorData::internal_error(err.message, data)
        }
        _ => ErrorData::invalid_params(err.message, data),
    }
}

/// Errors of the MCP transports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The client went away or spoke something other than MCP during the handshake.
    #[error("MCP handshake failed: {0}")]
    Handshake(String),
    /// The server task failed.
    #[error("MCP server stopped: {0}")]
    Stopped(String),
}

/// Serves MCP on this process's stdin/stdout for `user` in `session` until the client closes the
/// stream. Nothing else may write to stdout meanwhile (log to stderr).
pub async fn serve_stdio(copilot: Copilot, user: UserId, session: SessionId) -> Result<(), McpError> {
    let server = McpServer::for_user(copilot, user, session);
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| McpError::Handshake(e.to_string()))?;
    running.waiting().await.map_err(|e| McpError::Stopped(e.to_string()))?;
    Ok(())
}

/// Options of the streamable HTTP endpoint.
#[derive(Debug, Clone, Default)]
pub struct McpHttpOptions {
    /// Accepted `Host` headers; empty accepts any. Requests carry a bearer token, which a
    /// DNS-rebinding page cannot attach, so the check is optional here.
    pub allowed_hosts: Vec<String>,
}

/// The streamable HTTP transport as a tower service (`http::Request` in, `http::Response` out),
/// for the HTTP layer to mount (at `/mcp`) behind its authentication, which must insert an
/// [`McpCaller`] into each request's extensions. Stateless: every POST is answered on its own
/// with a JSON body, so any replica can serve any request.
pub fn http_service(
    copilot: Copilot,
    options: McpHttpOptions,
) -> StreamableHttpService<McpServer, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None);
    let config = if options.allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(options.allowed_hosts)
    };
    let server = McpServer::per_request(copilot);
    StreamableHttpService::new(move || Ok(server.for_new_session()), Arc::new(LocalSessionManager::default()), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_comes_from_the_query() {
        let got = |q: &str| session_from_query(Some(q)).map(|r| r.map(|s| s.as_str().to_owned()));
        assert_eq!(got("session=abc"), Some(Ok("abc".into())));
        assert_eq!(got("x=1&session=chat%20one"), Some(Ok("chat one".into())));
        assert_eq!(got("other=1"), None);
        assert_eq!(got("session="), None, "an empty session is the default one");
        assert_eq!(got("session&x=1"), None);
        assert!(matches!(got("session=a%2Fb"), Some(Err(_))), "a session may not contain /");
        assert!(matches!(got("session=%zz"), Some(Err(_))));
        assert_eq!(session_from_query(None), None);
    }
}
