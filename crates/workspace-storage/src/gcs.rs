//! `GcsStorage`: blobs in a Google Cloud Storage bucket (SPEC §6).
//!
//! Bytes move through Google's official `google-cloud-storage` client: uploads stream (one
//! request up to [`SINGLE_SHOT_MAX`], a resumable session in [`RESUMABLE_CHUNK`] pieces above
//! it) and downloads stream with byte ranges. Object metadata, listing and deletion go through
//! the GCS JSON API with the same `google-cloud-auth` credentials, because that client offers
//! them only over gRPC (`StorageControl`), which the fake-gcs-server emulator does not speak; see
//! the crate README for the reasoning.
//!
//! A failing body never leaves an object: a small body is read completely before its single
//! request is sent, and a resumable session is finalized only by its last chunk, which is sent
//! only after the body ended cleanly. An abandoned session holds no object and expires on its own.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use google_cloud_auth::credentials::{self, CacheableResource, Credentials};
use google_cloud_auth::signer::Signer;
use google_cloud_storage::builder::storage::SignedUrlBuilder;
use google_cloud_storage::client::Storage as GcsClient;
use google_cloud_storage::model_ext::ReadRange;
use google_cloud_storage::streaming_source::StreamingSource;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use workspace_core::{
    BlobKey, BodyStream, ByteRange, GetResult, ObjectMeta, ObjectStream, StorageError, WorkspaceStorageBackend,
};

/// Bodies up to this size are buffered and sent in one request; larger ones use a resumable
/// upload session.
pub const SINGLE_SHOT_MAX: usize = 4 * 1024 * 1024;
/// Bytes per request of a resumable upload (a multiple of 256 KiB, as GCS requires). This is
/// also the most one upload holds in memory.
pub const RESUMABLE_CHUNK: usize = 8 * 1024 * 1024;
/// The public GCS endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// The longest expiry a V4 signed URL may have.
pub const MAX_SIGNED_URL_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Time limit of one JSON API call (metadata, list page, delete). The storage deadline of the
/// `Storage` handle above is usually shorter.
const JSON_API_TIMEOUT: Duration = Duration::from_secs(60);
/// Objects per page of a listing.
pub const LIST_PAGE_SIZE: u32 = 1000;

/// Which credentials authenticate the calls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcsCredentials {
    /// Application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's login, or
    /// the metadata server).
    ApplicationDefault,
    /// No credentials, for an emulator.
    Anonymous,
    /// A service-account JSON key file. Such credentials can sign URLs locally.
    KeyFile(PathBuf),
}

impl GcsCredentials {
    /// Reads a `WS_GCS_CREDENTIALS` setting: unset (or `default`) means application default
    /// credentials, `anonymous` means none, anything else is the path of a key file.
    pub fn from_setting(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            None | Some("") | Some("default") => Self::ApplicationDefault,
            Some("anonymous") => Self::Anonymous,
            Some(path) => Self::KeyFile(PathBuf::from(path)),
        }
    }

    /// What an operator should know when these credentials yield no token: which ones were
    /// used and what to set instead. The auth library's own words ("transient errors… might
    /// succeed") describe the token fetch, not the cause: usually no credentials are configured.
    fn failure_hint(&self) -> String {
        match self {
            Self::ApplicationDefault => "WS_GCS_CREDENTIALS is unset, so application default credentials were \
                used (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, or the metadata server on Google Cloud) \
                and none could give a token. For an emulator such as fake-gcs-server set \
                WS_GCS_CREDENTIALS=anonymous; elsewhere set it to the path of a service-account key file, or \
                configure application default credentials"
                .to_owned(),
            Self::KeyFile(path) => format!(
                "the service-account key file {} (WS_GCS_CREDENTIALS) gave no token; check that the key is \
                 valid and not revoked, and that Google's token endpoint is reachable",
                path.display()
            ),
            Self::Anonymous => "anonymous credentials (WS_GCS_CREDENTIALS=anonymous) gave no token".to_owned(),
        }
    }
}

/// A bucket of Google Cloud Storage (or of an emulator).
#[derive(Clone)]
pub struct GcsStorage {
    bucket: String,
    /// The endpoint override, if any (the emulator's address); also used for signed URLs.
    endpoint: Option<String>,
    client: GcsClient,
    json: JsonApi,
    signer: Option<Signer>,
    list_page_size: u32,
    /// Said with every authentication failure: which credentials were used, what to set instead.
    auth_hint: Arc<str>,
}

impl fmt::Debug for GcsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsStorage")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("can_sign", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

/// Makes ring rustls's process-wide crypto provider unless one is installed already: the
/// Google crates are built without their aws-lc default and use whatever is installed, for TLS
/// and for signing with a service-account key.
fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn other(context: &str, err: impl fmt::Display) -> StorageError {
    StorageError::Other(format!("gcs: {context}: {err}"))
}

/// HTTP statuses after which the same call may succeed later.
fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

impl GcsStorage {
    /// Connects to `bucket` (a bare bucket name) at `endpoint` (default: the public GCS
    /// endpoint). Makes no request; a wrong bucket or credentials show on first use or `ping`.
    pub async fn new(
        bucket: impl Into<String>,
        endpoint: Option<String>,
        credentials: &GcsCredentials,
    ) -> Result<Self, StorageError> {
        ensure_crypto_provider();
        let bucket = bucket.into();
        let endpoint = endpoint.map(|e| e.trim_end_matches('/').to_owned()).filter(|e| !e.is_empty());
        let (creds, signer) = match credentials {
            GcsCredentials::Anonymous => (credentials::anonymous::Builder::new().build(), None),
            GcsCredentials::ApplicationDefault => {
                let creds = credentials::Builder::default().build().map_err(|e| other("credentials", e))?;
                // Signs locally with a key, or through the IAM API on GCE/GKE/Cloud Run; when
                // neither is possible, downloads are served through the application.
                let signer = credentials::Builder::default().build_signer().ok();
                (creds, signer)
            }
            GcsCredentials::KeyFile(path) => {
                let text = tokio::fs::read(path)
                    .await
                    .map_err(|e| other(&format!("reading the key file {}", path.display()), e))?;
                let key: serde_json::Value = serde_json::from_slice(&text)
                    .map_err(|e| other(&format!("parsing the key file {}", path.display()), e))?;
                let creds = credentials::service_account::Builder::new(key.clone())
                    .build()
                    .map_err(|e| other("service-account credentials", e))?;
                let signer = credentials::service_account::Builder::new(key)
                    .build_signer()
                    .map_err(|e| other("service-account signer", e))?;
                (creds, Some(signer))
            }
        };
        let mut builder = GcsClient::builder()
            .with_credentials(creds.clone())
            .with_resumable_upload_threshold(SINGLE_SHOT_MAX + 1)
            .with_resumable_upload_buffer_size(RESUMABLE_CHUNK);
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        let client = builder.build().await.map_err(|e| other("building the client", e))?;
        let base = endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        let auth_hint: Arc<str> = credentials.failure_hint().into();
        if endpoint.is_some() && *credentials == GcsCredentials::ApplicationDefault {
            tracing::warn!(
                "gcs: WS_GCS_ENDPOINT is set but WS_GCS_CREDENTIALS is not, so application default \
                 credentials are used; an emulator needs WS_GCS_CREDENTIALS=anonymous"
            );
        }
        let json = JsonApi::new(base, creds)?.with_auth_hint(Arc::clone(&auth_hint));
        Ok(Self { bucket, endpoint, client, json, signer, list_page_size: LIST_PAGE_SIZE, auth_hint })
    }

    /// Lists in pages of `size` objects (default [`LIST_PAGE_SIZE`]; tests use small pages).
    pub fn with_list_page_size(mut self, size: u32) -> Self {
        self.list_page_size = size.max(1);
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether `download_url` can hand out signed URLs.
    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// Creates the bucket if it does not exist (for emulators and tests; production buckets are
    /// provisioned by the operator).
    pub async fn create_bucket(&self) -> Result<(), StorageError> {
        self.json.create_bucket(&self.bucket).await
    }

    /// The bucket as the client names it.
    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    fn map_client_error(&self, key: &BlobKey, err: google_cloud_storage::Error) -> StorageError {
        match err.http_status_code() {
            Some(404) => StorageError::NotFound(key.to_string()),
            _ if err.is_authentication() => {
                StorageError::Other(format!("gcs {key}: no access token: {} ({err})", self.auth_hint))
            }
            Some(status) if transient_status(status) => StorageError::Unavailable(format!("gcs {key}: {err}")),
            _ if err.is_timeout() || err.is_exhausted() || err.is_connect() || err.is_io() || err.is_transport() => {
                StorageError::Unavailable(format!("gcs {key}: {err}"))
            }
            _ => StorageError::Io(io::Error::other(format!("gcs {key}: {err}"))),
        }
    }

    /// Sends a body that ended within [`SINGLE_SHOT_MAX`] in one request.
    async fn put_single_shot(&self, key: &BlobKey, chunks: Vec<Bytes>, len: u64) -> Result<(), StorageError> {
        let source = BodySource {
            pending: chunks.into(),
            body: Mutex::new(Box::pin(futures::stream::empty())),
            exact_size: Some(len),
            state: Arc::default(),
        };
        self.client
            .write_object(self.bucket_path(), key.as_str(), source)
            .with_resumable_upload_threshold(SINGLE_SHOT_MAX + 1)
            .send_buffered()
            .await
            .map_err(|e| self.map_client_error(key, e))?;
        Ok(())
    }

    /// Streams a body through a resumable session; `head` holds the chunks already read.
    async fn put_resumable(&self, key: &BlobKey, head: Vec<Bytes>, body: BodyStream) -> Result<u64, StorageError> {
        let state = Arc::new(SourceState::default());
        let source =
            BodySource { pending: head.into(), body: Mutex::new(body), exact_size: None, state: Arc::clone(&state) };
        let result = self
            .client
            .write_object(self.bucket_path(), key.as_str(), source)
            .with_resumable_upload_threshold(0usize)
            .with_resumable_upload_buffer_size(RESUMABLE_CHUNK)
            .send_buffered()
            .await;
        // The body's own failure wins over whatever the client made of it.
        if let Some(err) = state.failure.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(StorageError::Body(err));
        }
        let object = result.map_err(|e| self.map_client_error(key, e))?;
        let sent = *state.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = u64::try_from(object.size).unwrap_or_default();
        if stored != sent {
            return Err(other("upload", format!("{key}: sent {sent} bytes, the service stored {stored}")));
        }
        Ok(sent)
    }
}

/// What a resumable upload's source reports back: bytes handed out and the body's failure.
#[derive(Debug, Default)]
struct SourceState {
    bytes: Mutex<u64>,
    failure: Mutex<Option<io::Error>>,
}

/// Adapts a [`BodyStream`] to the client's `StreamingSource` (which must be `Sync`, hence the
/// mutex, only ever reached through `&mut`).
struct BodySource {
    pending: VecDeque<Bytes>,
    body: Mutex<BodyStream>,
    /// Known only when the whole body is already in `pending`.
    exact_size: Option<u64>,
    state: Arc<SourceState>,
}

impl BodySource {
    fn count(&self, chunk: &Bytes) {
        *self.state.bytes.lock().unwrap_or_else(PoisonError::into_inner) += chunk.len() as u64;
    }
}

impl StreamingSource for BodySource {
    type Error = io::Error;

    async fn next(&mut self) -> Option<Result<Bytes, io::Error>> {
        if let Some(chunk) = self.pending.pop_front() {
            self.count(&chunk);
            return Some(Ok(chunk));
        }
        let body = self.body.get_mut().unwrap_or_else(PoisonError::into_inner);
        match body.next().await {
            Some(Ok(chunk)) => {
                self.count(&chunk);
                Some(Ok(chunk))
            }
            Some(Err(err)) => {
                // The upload stops here, before the chunk that would finalize it.
                let for_client = io::Error::new(err.kind(), err.to_string());
                *self.state.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
                Some(Err(for_client))
            }
            None => None,
        }
    }

    async fn size_hint(&self) -> Result<google_cloud_storage::streaming_source::SizeHint, io::Error> {
        Ok(match self.exact_size {
            Some(n) => google_cloud_storage::streaming_source::SizeHint::with_exact(n),
            None => google_cloud_storage::streaming_source::SizeHint::new(),
        })
    }
}

#[async_trait]
impl WorkspaceStorageBackend for GcsStorage {
    fn storage_path(&self, key: &BlobKey) -> String {
        format!("gcs://{}/{key}", self.bucket)
    }

    async fn put(&self, key: &BlobKey, mut body: BodyStream) -> Result<u64, StorageError> {
        let mut head = Vec::new();
        let mut len = 0usize;
        while len <= SINGLE_SHOT_MAX {
            match body.next().await {
                Some(Ok(chunk)) => {
                    len += chunk.len();
                    head.push(chunk);
                }
                Some(Err(err)) => return Err(StorageError::Body(err)),
                None => {
                    self.put_single_shot(key, head, len as u64).await?;
                    return Ok(len as u64);
                }
            }
        }
        self.put_resumable(key, head, body).await
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<GetResult, StorageError> {
        // The object's size resolves the range exactly as every backend does; its generation
        // pins the read, so an overwrite in between cannot mix two versions.
        let meta = self.json.object(&self.bucket, key).await?.ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        let size = meta.meta.size;
        let range = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        if range.is_empty() {
            return Ok(GetResult { size, range, stream: Box::pin(futures::stream::empty()) });
        }
        let response = self
            .client
            .read_object(self.bucket_path(), key.as_str())
            .set_generation(meta.generation)
            .set_read_range(ReadRange::segment(range.start, range.end - range.start))
            .send()
            .await
            .map_err(|e| self.map_client_error(key, e))?;
        let name = key.to_string();
        let stream = futures::stream::unfold(response, move |mut response| {
            let name = name.clone();
            async move {
                let item = response.next().await?;
                Some((item.map_err(|e| StorageError::Io(io::Error::other(format!("gcs read {name}: {e}")))), response))
            }
        });
        Ok(GetResult { size, range, stream: Box::pin(stream) })
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        self.json.delete(&self.bucket, key).await
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<ObjectMeta>, StorageError> {
        Ok(self.json.object(&self.bucket, key).await?.map(|m| m.meta))
    }

    fn list(&self, prefix: &str) -> ObjectStream {
        // Page by page as the stream is read; GCS lists in key order.
        enum Next {
            Page(Option<String>),
            Done,
        }
        let (json, bucket, prefix, size) =
            (self.json.clone(), self.bucket.clone(), prefix.to_owned(), self.list_page_size);
        futures::stream::try_unfold(Next::Page(None), move |next| {
            let (json, bucket, prefix) = (json.clone(), bucket.clone(), prefix.clone());
            async move {
                let Next::Page(token) = next else { return Ok::<_, StorageError>(None) };
                let (items, token) = json.list_page(&bucket, &prefix, size, token.as_deref()).await?;
                let next = match token {
                    Some(token) => Next::Page(Some(token)),
                    None => Next::Done,
                };
                Ok(Some((futures::stream::iter(items.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
        .boxed()
    }

    async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<Option<String>, StorageError> {
        let Some(signer) = &self.signer else { return Ok(None) };
        let mut builder = SignedUrlBuilder::for_object(self.bucket_path(), key.as_str())
            .with_method(google_cloud_storage::http::Method::GET)
            .with_expiration(expires_in.min(MAX_SIGNED_URL_EXPIRY));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        match builder.sign_with(signer).await {
            Ok(url) => Ok(Some(url)),
            Err(err) => {
                // Application default credentials may be unable to sign (no key, no IAM
                // permission); serving through the application still works.
                tracing::warn!(%err, "gcs: cannot sign a download URL; serving through the application");
                Ok(None)
            }
        }
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.json.list_page(&self.bucket, "__ping__/", 1, None).await.map(|_| ())
    }
}

/// What the JSON API says of one object.
#[derive(Debug)]
struct ObjectInfo {
    meta: ObjectMeta,
    generation: i64,
}

/// The fields of the JSON API's object resource that we read.
#[derive(Debug, Deserialize)]
struct ObjectResource {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    generation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<ObjectResource>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl ObjectResource {
    fn into_info(self, key: BlobKey) -> Result<ObjectInfo, StorageError> {
        let size =
            self.size.as_deref().unwrap_or("0").parse::<u64>().map_err(|e| other(&format!("size of {key}"), e))?;
        let generation = self.generation.as_deref().unwrap_or("0").parse::<i64>().unwrap_or_default();
        let last_modified = self
            .updated
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(SystemTime::from)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(ObjectInfo { meta: ObjectMeta { key, size, last_modified }, generation })
    }
}

/// The few GCS JSON API calls the official client offers only over gRPC.
#[derive(Debug, Clone)]
struct JsonApi {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    /// See [`GcsCredentials::failure_hint`].
    auth_hint: Arc<str>,
}

impl JsonApi {
    fn new(base: &str, credentials: Credentials) -> Result<Self, StorageError> {
        ensure_crypto_provider();
        let base = Url::parse(base).map_err(|e| other(&format!("endpoint {base:?}"), e))?;
        if base.cannot_be_a_base() {
            return Err(other("endpoint", format!("{base} cannot hold a path")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(JSON_API_TIMEOUT)
            .build()
            .map_err(|e| other("building the HTTP client", e))?;
        Ok(Self { http, base, credentials, auth_hint: Arc::from("") })
    }

    fn with_auth_hint(self, auth_hint: Arc<str>) -> Self {
        Self { auth_hint, ..self }
    }

    /// `{base}/storage/v1/{segments…}`, each segment percent-encoded (so `/` in a key is `%2F`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["storage", "v1"]).extend(segments);
        }
        url
    }

    async fn send(&self, method: Method, url: Url, body: Option<String>) -> Result<reqwest::Response, StorageError> {
        let headers = match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => http::HeaderMap::new(),
            Err(err) => return Err(other("no access token", format!("{} ({err})", self.auth_hint))),
        };
        let mut request = self.http.request(method.clone(), url.clone()).headers(headers);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        request.send().await.map_err(|e| {
            let message = format!("gcs {method} {url}: {e}");
            if e.is_connect() || e.is_timeout() || e.is_request() {
                StorageError::Unavailable(message)
            } else {
                StorageError::Io(io::Error::other(message))
            }
        })
    }

    async fn failure(what: &str, response: reqwest::Response) -> StorageError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        let message = format!("gcs {what}: HTTP {status}: {text}");
        if transient_status(status.as_u16()) {
            StorageError::Unavailable(message)
        } else {
            StorageError::Io(io::Error::other(message))
        }
    }

    async fn object(&self, bucket: &str, key: &BlobKey) -> Result<Option<ObjectInfo>, StorageError> {
        let mut url = self.url(&["b", bucket, "o", key.as_str()]);
        url.query_pairs_mut().append_pair("fields", "name,size,updated,generation");
        let response = self.send(Method::GET, url, None).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let bytes = response.bytes().await.map_err(|e| other("reading metadata", e))?;
                let resource: ObjectResource =
                    serde_json::from_slice(&bytes).map_err(|e| other(&format!("metadata of {key}"), e))?;
                resource.into_info(key.clone()).map(Some)
            }
            _ => Err(Self::failure(&format!("metadata of {key}"), response).await),
        }
    }

    async fn delete(&self, bucket: &str, key: &BlobKey) -> Result<(), StorageError> {
        let response = self.send(Method::DELETE, self.url(&["b", bucket, "o", key.as_str()]), None).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(Self::failure(&format!("delete {key}"), response).await),
        }
    }

    /// One page of the objects under `prefix`, and the token of the next page if there is one.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        size: u32,
        page_token: Option<&str>,
    ) -> Result<(Vec<ObjectMeta>, Option<String>), StorageError> {
        let mut url = self.url(&["b", bucket, "o"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("prefix", prefix);
            query.append_pair("fields", "items(name,size,updated,generation),nextPageToken");
            query.append_pair("maxResults", &size.to_string());
            if let Some(token) = page_token {
                query.append_pair("pageToken", token);
            }
        }
        let response = self.send(Method::GET, url, None).await?;
        if !response.status().is_success() {
            return Err(Self::failure(&format!("list {prefix:?}"), response).await);
        }
        let bytes = response.bytes().await.map_err(|e| other("reading a listing", e))?;
        let page: ObjectList = serde_json::from_slice(&bytes).map_err(|e| other("parsing a listing", e))?;
        let mut out = Vec::with_capacity(page.items.len());
        for item in page.items {
            // Only names we could have written are keys; anything else in the bucket is not ours.
            match BlobKey::parse(&item.name) {
                Ok(key) if key.as_str().starts_with(prefix) => out.push(item.into_info(key)?.meta),
                _ => tracing::debug!(name = %item.name, "gcs: skipping an object that is not a blob key"),
            }
        }
        Ok((out, page.next_page_token.filter(|t| !t.is_empty())))
    }

    async fn create_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        let body = serde_json::json!({ "name": bucket }).to_string();
        let response = self.send(Method::POST, self.url(&["b"]), Some(body)).await?;
        match response.status() {
            StatusCode::CONFLICT => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(Self::failure(&format!("create bucket {bucket}"), response).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_setting_is_read() {
        assert_eq!(GcsCredentials::from_setting(None), GcsCredentials::ApplicationDefault);
        assert_eq!(GcsCredentials::from_setting(Some(" ")), GcsCredentials::ApplicationDefault);
        assert_eq!(GcsCredentials::from_setting(Some("default")), GcsCredentials::ApplicationDefault);
        assert_eq!(GcsCredentials::from_setting(Some("anonymous")), GcsCredentials::Anonymous);
        assert_eq!(
            GcsCredentials::from_setting(Some("/etc/ws/key.json")),
            GcsCredentials::KeyFile("/etc/ws/key.json".into())
        );
    }

    #[test]
    fn credential_failures_say_what_to_set() {
        let hint = GcsCredentials::ApplicationDefault.failure_hint();
        assert!(hint.contains("WS_GCS_CREDENTIALS is unset"), "{hint}");
        assert!(hint.contains("WS_GCS_CREDENTIALS=anonymous"), "{hint}");
        let hint = GcsCredentials::KeyFile("/etc/ws/key.json".into()).failure_hint();
        assert!(hint.contains("/etc/ws/key.json"), "{hint}");
    }

    #[test]
    fn json_api_urls_encode_keys_as_one_segment() {
        let api = JsonApi::new("http://127.0.0.1:80/", credentials::anonymous::Builder::new().build()).unwrap();
        let url = api.url(&["b", "bkt", "o", "workspaces/a/b"]);
        assert_eq!(url.as_str(), "http://127.0.0.1/storage/v1/b/bkt/o/workspaces%2Fa%2Fb");
        let api = JsonApi::new("https://example.test/prefix", credentials::anonymous::Builder::new().build()).unwrap();
        assert_eq!(api.url(&["b"]).as_str(), "https://example.test/prefix/storage/v1/b");
    }

    #[test]
    fn object_resources_parse() {
        let r: ObjectResource = serde_json::from_str(
            r#"{"name":"a/b","size":"11","updated":"2026-01-02T03:04:05.123Z","generation":"42"}"#,
        )
        .unwrap();
        let info = r.into_info(BlobKey::parse("a/b").unwrap()).unwrap();
        assert_eq!(info.meta.size, 11);
        assert_eq!(info.generation, 42);
        assert!(info.meta.last_modified > SystemTime::UNIX_EPOCH);
    }
}
