//! The media processor wired into the HTTP API: `POST /v1/assets`, `GET /v1/assets/{id}` and
//! `GET /v1/sessions/{id}/preview?tier=T`. Decoding and rendering run on the blocking pool under
//! a small semaphore (ffprobe on uploads under its own); decoded assets, encoded previews and
//! temporary copies of remote videos are cached, all bounded in bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use montage_media::{
    Asset, ClipAt, CropRect, Limits, MediaError, Preview, PreviewCache, PreviewFormat, Size, Tier,
    Warning,
};
use montage_protocol::ErrorCode;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::App;
use crate::api::{AppError, Caller, json};
use crate::byte_lru::ByteLru;
use crate::config::MediaConfig;
use crate::media::blobs::{BlobStore, DecodedAssets, new_asset_id, valid_asset_id};
use crate::store::AssetRecord;

/// Longest `X-Montage-Warnings` header; the rest is cut (the full list is in the log).
const MAX_WARNINGS_HEADER: usize = 2048;
/// How long a preview that came with warnings (a missing asset may be uploaded any moment) is
/// answered again instead of rendered again.
pub const WARNED_PREVIEW_TTL: Duration = Duration::from_secs(5);
/// Users remembered by the per-user turns before idle ones are swept.
const MAX_TURN_USERS: usize = 10_000;

/// One at a time per user, waiting or running: one user's stream of requests queues behind
/// itself, not in front of everyone else's, for the shared permits after it.
#[derive(Default)]
struct Turns(std::sync::Mutex<HashMap<String, Arc<Semaphore>>>);

impl Turns {
    /// `user`'s turn, after any request of theirs before it.
    async fn wait(&self, user: &str) -> Result<OwnedSemaphorePermit, AppError> {
        let turn = {
            let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if m.len() >= MAX_TURN_USERS {
                // Users with nothing waiting or running.
                m.retain(|_, s| Arc::strong_count(s) > 1);
            }
            m.entry(user.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(1)))
                .clone()
        };
        acquire(&turn).await
    }
}

/// What the media endpoints share.
pub struct Media {
    pub blobs: Arc<dyn BlobStore>,
    pub assets: Arc<DecodedAssets>,
    pub previews: PreviewCache,
    /// Permits for decodes and renders: each may hold hundreds of MB and a core.
    work: Arc<Semaphore>,
    /// Permits for ffprobe runs on uploads, apart from `work`: uploads can't starve previews.
    probes: Arc<Semaphore>,
    /// Permits for uploads, taken before the body is read and held until it is stored.
    uploads: Arc<Semaphore>,
    /// Permits for image decodes of uploads, apart from `work`: uploads can't starve previews.
    decodes: Arc<Semaphore>,
    /// Previews that came with warnings, kept for [`WARNED_PREVIEW_TTL`].
    warned: ByteLru<Arc<Warned>>,
    /// Previews of past versions (`?version=V`), apart from `previews`, which keeps each
    /// session's newest only and feeds live previews.
    past: ByteLru<Arc<Preview>>,
    /// The per-user asset quota: count and bytes.
    quota: (u64, u64),
    /// One render at a time per user: one user's uncacheable previews queue behind each other.
    renderers: Turns,
    /// One upload at a time per user: one user's slow uploads can't hold every upload permit.
    uploaders: Turns,
    /// Local copies of remote blobs for ffmpeg (frame requests).
    copies: TempCopies,
    /// Waveforms by asset: decoding a sound once serves every clip of it and every zoom.
    waveforms: ByteLru<Arc<montage_media::Waveform>>,
    /// Video frames for composite frames, by asset, time, crop and size: scrubbing back and
    /// forth, or several people at one playhead, runs ffmpeg once per frame.
    frames: ByteLru<Arc<Asset>>,
    pub intake: Limits,
}

impl Media {
    /// Forgets the previews of past versions (history was trimmed: some may be gone).
    pub fn forget_past_previews(&self) {
        self.past.clear();
    }

    /// Releases an asset of a deleted session: its bytes, its waveform, its decoded copy and its
    /// previews.
    pub async fn forget_asset(&self, id: &str) {
        self.assets.remove(id);
        self.waveforms.remove(id);
        let blobs = self.blobs.clone();
        let owned = id.to_owned();
        let r = tokio::task::spawn_blocking(move || {
            blobs.delete(&waveform_blob(&owned))?;
            blobs.delete(&owned)
        })
        .await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::warn!(
                asset = id,
                "could not delete the bytes of a deleted session's asset"
            );
        }
    }

    pub fn new(blobs: Arc<dyn BlobStore>, config: &MediaConfig) -> Media {
        Media {
            assets: Arc::new(DecodedAssets::new(
                blobs.clone(),
                config.intake,
                config.asset_cache_bytes,
            )),
            blobs,
            previews: PreviewCache::new(config.preview_cache_bytes),
            work: Arc::new(Semaphore::new(config.max_renders.max(1))),
            probes: Arc::new(Semaphore::new(config.max_probes.max(1))),
            uploads: Arc::new(Semaphore::new(config.max_uploads.max(1))),
            decodes: Arc::new(Semaphore::new(config.max_upload_decodes.max(1))),
            warned: ByteLru::new((config.preview_cache_bytes / 4) as u64),
            past: ByteLru::new((config.preview_cache_bytes / 4) as u64),
            quota: (config.assets_per_user, config.asset_bytes_per_user),
            renderers: Turns::default(),
            uploaders: Turns::default(),
            copies: TempCopies::new(config.frame_copy_bytes),
            frames: ByteLru::new((config.preview_cache_bytes / 4) as u64),
            waveforms: ByteLru::new((config.preview_cache_bytes / 8) as u64),
            intake: config.intake,
        }
    }

    /// Blob `id` as a file ffmpeg can read: the stored file, or (a store not on disk, S3) a
    /// temporary copy kept per asset, held as long as the returned value.
    fn blob_file(&self, id: &str) -> Result<BlobFile, MediaError> {
        let missing = || MediaError::MissingAsset { id: id.to_owned() };
        if !valid_asset_id(id) {
            return Err(missing());
        }
        if let Some(path) = self.blobs.local_path(id) {
            return Ok(BlobFile { path, _copy: None });
        }
        let copy = self
            .copies
            .get_or_copy(&*self.blobs, id)
            .ok_or_else(missing)?;
        Ok(BlobFile {
            path: copy.to_path_buf(),
            _copy: Some(copy),
        })
    }

    /// A render permit for `user`, after any render of theirs before it.
    async fn permit(&self, user: &str) -> Result<[OwnedSemaphorePermit; 2], AppError> {
        let turn = self.renderers.wait(user).await?;
        Ok([turn, acquire(&self.work).await?])
    }

    /// An upload permit for `user`, after any upload of theirs before it.
    async fn upload_permit(&self, user: &str) -> Result<[OwnedSemaphorePermit; 2], AppError> {
        let turn = self.uploaders.wait(user).await?;
        Ok([turn, acquire(&self.uploads).await?])
    }
}

/// See [`Media::blob_file`].
struct BlobFile {
    path: std::path::PathBuf,
    /// Keeps a temporary copy from being deleted (evicted) while a tool reads it.
    _copy: Option<Arc<tempfile::TempPath>>,
}

/// A preview rendered with warnings, and when.
struct Warned {
    preview: Arc<Preview>,
    warnings: Vec<Warning>,
    at: tokio::time::Instant,
}

fn warned_key(id: &str, version: u64, tier: Tier) -> String {
    format!("{id}\0{version}\0{}", tier.as_str())
}

impl Media {
    /// A preview with warnings of this version and tier rendered less than
    /// [`WARNED_PREVIEW_TTL`] ago.
    fn warned(&self, id: &str, version: u64, tier: Tier) -> Option<Arc<Warned>> {
        let key = warned_key(id, version, tier);
        let w = self.warned.get(&key)?;
        if w.at.elapsed() < WARNED_PREVIEW_TTL {
            return Some(w);
        }
        self.warned.remove(&key);
        None
    }
}

async fn acquire(s: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, AppError> {
    s.clone()
        .acquire_owned()
        .await
        .map_err(|_| AppError(ErrorCode::Internal, "shutting down".into()))
}

fn media_error(e: MediaError) -> AppError {
    if let MediaError::MalformedMedia { detail, .. } = &e {
        // What the tool said stays in the log: it may name server paths.
        if !detail.is_empty() {
            tracing::info!(error = %e, %detail, "media tool refused a file");
        }
    }
    let code = match e.code() {
        "too_large" => ErrorCode::TooLarge,
        "bad_request" => ErrorCode::BadRequest,
        "not_supported" => ErrorCode::NotSupported,
        "not_found" => ErrorCode::NotFound,
        _ => {
            tracing::error!(error = %e, "media processing failed");
            return AppError(ErrorCode::Internal, "internal error".into());
        }
    };
    AppError(code, e.to_string())
}

fn too_large(max: u64) -> AppError {
    AppError(
        ErrorCode::TooLarge,
        format!("the upload is larger than {max} bytes"),
    )
}

fn join_error(e: tokio::task::JoinError) -> AppError {
    tracing::error!(error = %e, "media task failed");
    AppError(ErrorCode::Internal, "internal error".into())
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    session: Option<String>,
}

/// `POST /v1/assets[?session=S]`: with `session`, the uploader must be an editor (or owner) of
/// S — the upload is for a layer there — checked before the body is read. Without it any
/// authenticated user may upload: an asset belongs to no session until a layer references it,
/// its id is unguessable, and only an editor can put it into a document.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/sessions/{id}/preview", get(preview))
        .route("/v1/sessions/{id}/frame", get(frame))
        .route("/v1/assets", post(upload))
        .route("/v1/assets/{id}", get(download))
        .route("/v1/assets/{id}/meta", get(meta))
        .route("/v1/assets/{id}/waveform", get(waveform))
}

pub async fn upload(
    State(app): State<Arc<App>>,
    Query(q): Query<UploadQuery>,
    Caller(claims): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    // An encrypted session's uploads are sealed by the SDKs: the key epoch they must carry.
    let mut sealed_epoch = None;
    if let Some(session) = &q.session {
        let meta = app
            .store
            .meta(session)
            .await?
            .ok_or_else(|| AppError(ErrorCode::NotFound, format!("no session {session}")))?;
        if !crate::access::check_permission(
            &meta,
            session,
            &claims.principal(),
            montage_protocol::Role::Editor,
        ) {
            return Err(AppError(
                ErrorCode::Forbidden,
                format!("uploading for session {session} needs the editor role"),
            ));
        }
        sealed_epoch = meta.encrypted.then_some(meta.key_epoch);
    }
    let media = app.media.clone();
    let max = media.intake.max_bytes;
    // Refuse a declared oversize body before reading any of it (a client sending
    // `Expect: 100-continue` never sends it at all).
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    check_quota(&app, &claims.sub, declared.unwrap_or(0)).await?;
    // The permit comes before the body: waiting uploads hold a socket, not their bytes.
    let upload = media.upload_permit(&claims.sub).await?;
    let bytes = read_limited(body, max, declared.unwrap_or(0)).await?;
    check_quota(&app, &claims.sub, bytes.len() as u64).await?;
    if let Some(epoch) = sealed_epoch {
        let record = store_sealed(&app, &claims.sub, q.session.clone(), epoch, bytes).await?;
        drop(upload);
        return Ok(uploaded(&claims.sub, &record));
    }
    if montage_protocol::sealed::asset_epoch(&bytes).is_some() {
        return Err(AppError(
            ErrorCode::BadRequest,
            "a sealed asset belongs to an encrypted session: upload it with ?session= naming one"
                .into(),
        ));
    }
    let image = montage_media::sniff(&bytes).is_some();
    // Images decode under upload decode permits, ffprobe under its own: never the render
    // permits, so uploads can't starve previews.
    let permit = if image {
        acquire(&media.decodes).await?
    } else {
        acquire(&media.probes).await?
    };
    let (uploader, session) = (claims.sub.clone(), q.session.clone());
    let record = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut record = new_record(uploader, session, bytes.len())?;
        let id = record.id.clone();
        if image {
            // Decoding validates completely (format sniffed, dimensions checked before any
            // pixel is decoded, truncation), and the decoded image warms the cache for the
            // first preview.
            let (info, image) =
                montage_media::decode_with_info(&bytes, &media.intake).map_err(media_error)?;
            media.blobs.put(&id, &bytes)?;
            media.assets.insert(&id, Arc::new(Asset::new(image)));
            record.kind = info.kind.as_str().into();
            record.format = info.format.mime().trim_start_matches("image/").into();
            (record.width, record.height) = (Some(info.width), Some(info.height));
        } else if let Some(container) = montage_media::sniff_container(&bytes) {
            let info = probe_av(&bytes, container, &media.intake)?;
            media.blobs.put(&id, &bytes)?;
            record.kind = info.kind.as_str().into();
            record.format = container.name().into();
            (record.width, record.height) = (info.width, info.height);
            record.duration = info.duration;
        } else {
            return Err(AppError(
                ErrorCode::BadRequest,
                "unrecognised format: upload a PNG, JPEG or WebP image, an MP4, MOV, WebM or MKV \
                 video, or MP3, M4A, WAV, Ogg or FLAC audio"
                    .into(),
            ));
        }
        Ok::<_, AppError>(record)
    })
    .await
    .map_err(join_error)??;
    record_asset(&app, &record).await?;
    // The upload permit is held until the record is stored, so at most `--max-uploads` uploads
    // are between their quota check and their record.
    drop(upload);
    Ok(uploaded(&claims.sub, &record))
}

/// Stores an encrypted session's upload as it came: only its header is read (a sealed asset
/// under the session's current key epoch, docs/E2E.md), never decoded or probed.
async fn store_sealed(
    app: &App,
    uploader: &str,
    session: Option<String>,
    key_epoch: u64,
    bytes: Vec<u8>,
) -> Result<AssetRecord, AppError> {
    match montage_protocol::sealed::asset_epoch(&bytes) {
        None => {
            return Err(AppError(
                ErrorCode::BadRequest,
                "an encrypted session's uploads must be sealed by the SDK (a sealed asset: \
                 MTGSEAL1, key epoch, nonce, ciphertext); the server does not take pictures in \
                 the clear here"
                    .into(),
            ));
        }
        Some(e) if e != key_epoch => {
            return Err(AppError(
                ErrorCode::Conflict,
                format!(
                    "the asset is sealed under key epoch {e}; the session takes key epoch \
                     {key_epoch}"
                ),
            ));
        }
        Some(_) => {}
    }
    let mut record = new_record(uploader.to_owned(), session, bytes.len())?;
    (record.kind, record.format) = (SEALED.into(), SEALED.into());
    let id = record.id.clone();
    let blobs = app.media.blobs.clone();
    tokio::task::spawn_blocking(move || blobs.put(&id, &bytes))
        .await
        .map_err(join_error)??;
    record_asset(app, &record).await?;
    Ok(record)
}

/// The record of a new upload of `len` bytes under a fresh id; kind, format and what was read
/// of it are filled in by the caller.
fn new_record(
    uploader: String,
    session: Option<String>,
    len: usize,
) -> Result<AssetRecord, AppError> {
    let id = new_asset_id().map_err(|e| {
        AppError::from(crate::Error::Io {
            path: "getrandom".into(),
            source: e,
        })
    })?;
    Ok(AssetRecord {
        id,
        kind: String::new(),
        format: String::new(),
        width: None,
        height: None,
        duration: None,
        bytes: len as u64,
        uploader,
        session,
        created_at: crate::clock::now_secs(),
    })
}

/// The kind and format of a sealed asset's record.
const SEALED: &str = "sealed";

/// Records a stored upload. The blob is stored first, so a record always names bytes that
/// exist; a record that can't be stored takes its blob with it, so no blob is left that nothing
/// records.
async fn record_asset(app: &App, record: &AssetRecord) -> Result<(), AppError> {
    if let Some(store) = app.store.assets()
        && let Err(e) = store.put_asset(record).await
    {
        let (blobs, id) = (app.media.blobs.clone(), record.id.clone());
        app.media.assets.remove(&id);
        let removed = tokio::task::spawn_blocking(move || blobs.delete(&id)).await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::error!(asset = %record.id, "an asset without a record could not be deleted");
        }
        return Err(e.into());
    }
    Ok(())
}

/// The `201` answer to an upload: the record's id, kind, format, dimensions and duration (a
/// sealed asset: its size instead).
fn uploaded(user: &str, record: &AssetRecord) -> Response {
    tracing::info!(%user, asset = %record.id, kind = %record.kind, bytes = record.bytes, "asset uploaded");
    let mut body = serde_json::json!({
        "id": record.id,
        "kind": record.kind,
        "format": record.format,
    });
    for (k, v) in [("width", record.width), ("height", record.height)] {
        if let Some(v) = v {
            body[k] = v.into();
        }
    }
    if let Some(d) = record.duration {
        body["duration"] = d.into();
    }
    if record.kind == SEALED {
        body["bytes"] = record.bytes.into();
    }
    json(StatusCode::CREATED, body.to_string())
}

/// Refuses an upload that would take `uploader` past the asset quota (`too_large`, 413: waiting
/// does not help; deleting assets' sessions does). Counted from the store, so it holds across
/// nodes; uploads running at once may each pass before any is recorded (at most
/// `--max-uploads` of them per node).
async fn check_quota(app: &App, uploader: &str, adding: u64) -> Result<(), AppError> {
    let Some(store) = app.store.assets() else {
        return Ok(());
    };
    let (max_count, max_bytes) = app.media.quota;
    let used = store.usage(uploader).await?;
    if used.count >= max_count {
        return Err(AppError(
            ErrorCode::TooLarge,
            format!("asset quota: at most {max_count} assets per user"),
        ));
    }
    if used.bytes.saturating_add(adding) > max_bytes {
        return Err(AppError(
            ErrorCode::TooLarge,
            format!(
                "asset quota: at most {max_bytes} bytes of assets per user ({} stored)",
                used.bytes
            ),
        ));
    }
    Ok(())
}

/// Validates and measures a video or audio upload: ffprobe reads files, so the bytes go to a
/// temporary file first (removed when this returns). `not_supported` without ffprobe.
fn probe_av(
    bytes: &[u8],
    container: montage_media::Container,
    limits: &montage_media::Limits,
) -> Result<montage_media::AvInfo, AppError> {
    if montage_media::tool_path("ffprobe").is_none() {
        return Err(AppError(
            ErrorCode::NotSupported,
            format!(
                "{} uploads need ffprobe (ffmpeg), which is not installed on this server",
                container.name()
            ),
        ));
    }
    let tmp = temp_file("montage-upload-", bytes).map_err(|e| {
        AppError::from(crate::Error::Io {
            path: std::env::temp_dir(),
            source: e,
        })
    })?;
    montage_media::probe_av(&tmp, container, limits).map_err(media_error)
}

/// `bytes` in a new temporary file, deleted when the returned path is dropped: the tools
/// (ffprobe, ffmpeg) read files.
fn temp_file(prefix: &str, bytes: &[u8]) -> std::io::Result<tempfile::TempPath> {
    let mut f = tempfile::Builder::new().prefix(prefix).tempfile()?;
    std::io::Write::write_all(&mut f, bytes)?;
    Ok(f.into_temp_path())
}

/// The body, refused with `too_large` as soon as it passes `max` bytes: a chunked body has no
/// declared length, so it is counted as it arrives.
async fn read_limited(body: Body, max: u64, declared: u64) -> Result<Vec<u8>, AppError> {
    let mut bytes = Vec::with_capacity(declared.min(max) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::gateway::listener::is_body_timeout(&e) {
                AppError(
                    ErrorCode::BadRequest,
                    "the body was not sent in time".into(),
                )
            } else {
                AppError(ErrorCode::BadRequest, "unreadable body".into())
            }
        })?;
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Assets belong to sessions (DESIGN §9.1): their uploader and whoever may view the session
/// they were uploaded for may read them; nobody else.
async fn may_see_asset(
    app: &App,
    record: &crate::store::AssetRecord,
    who: &crate::access::Principal,
) -> Result<bool, AppError> {
    if record.uploader == *who.user && who.scope.is_none() {
        return Ok(true);
    }
    let Some(s) = &record.session else {
        return Ok(record.uploader == *who.user);
    };
    Ok(app.store.meta(s).await?.is_some_and(|m| {
        crate::access::check_permission(&m, s, who, montage_protocol::Role::Viewer)
    }))
}

/// `GET /v1/assets/{id}`: the stored bytes, immutable, so cacheable forever by the client.
pub async fn download(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let not_found = || AppError(ErrorCode::NotFound, "no such asset".into());
    visible_asset(&app, &id, &claims.principal())
        .await?
        .ok_or_else(not_found)?;
    let blobs = app.media.blobs.clone();
    let bytes = tokio::task::spawn_blocking(move || blobs.get(&id))
        .await
        .map_err(join_error)??
        .ok_or_else(not_found)?;
    let mime = montage_media::sniff(&bytes)
        .map(|f| f.mime())
        .or_else(|| montage_media::sniff_container(&bytes).map(|c| c.mime()))
        .unwrap_or("application/octet-stream");
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// The blob id an asset's waveform is kept under: derived from the asset's id, of the same
/// shape (no asset record has it, so it is never served as an asset).
fn waveform_blob(asset: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("montage waveform\0{asset}"));
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Peaks one `GET …/waveform?buckets=N` asks for at most.
const MAX_WAVEFORM_BUCKETS: usize = 10_000;

#[derive(Debug, Deserialize)]
pub struct WaveformQuery {
    buckets: Option<usize>,
}

/// `GET /v1/assets/{id}/waveform[?buckets=N]`: the loudness of an audio or video asset's sound
/// over time, for whoever may see the asset: `{"asset","duration","peaks_per_second","peaks"}`
/// with every peak (50 a second, 0–255), or `N` (1 to 10,000) peaks over the whole sound.
/// Decoded by ffmpeg once per asset and cached.
pub async fn waveform(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<WaveformQuery>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let not_found = || AppError(ErrorCode::NotFound, "no such asset".into());
    if q.buckets
        .is_some_and(|n| n == 0 || n > MAX_WAVEFORM_BUCKETS)
    {
        return Err(AppError(
            ErrorCode::BadRequest,
            format!("buckets is 1 to {MAX_WAVEFORM_BUCKETS}"),
        ));
    }
    let record = visible_asset(&app, &id, &claims.principal())
        .await?
        .ok_or_else(not_found)?;
    if record.kind == "image" {
        return Err(AppError(
            ErrorCode::BadRequest,
            "a picture has no sound: waveforms are of audio and video assets".into(),
        ));
    }
    if record.kind == SEALED {
        return Err(AppError(
            ErrorCode::Conflict,
            "the asset is sealed (an encrypted session's): the server can't read its sound".into(),
        ));
    }
    let media = app.media.clone();
    let wave = match media.waveforms.get(&id) {
        Some(w) => w,
        None => {
            let permit = media.permit(&claims.sub).await?;
            let limits = media.intake;
            let m = media.clone();
            let asset = id.clone();
            let wave = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                // Decoded once per asset: kept beside it in the blob store, across restarts
                // and nodes.
                let kept = waveform_blob(&asset);
                if let Ok(Some(b)) = m.blobs.get(&kept)
                    && let Some(w) = montage_media::Waveform::from_bytes(&b)
                {
                    return Ok(w);
                }
                let file = m.blob_file(&asset)?;
                let w = montage_media::waveform(&file.path, &limits)?;
                if let Err(e) = m.blobs.put(&kept, &w.to_bytes()) {
                    tracing::warn!(asset = %asset, error = %e, "keeping a waveform failed");
                }
                Ok(w)
            })
            .await
            .map_err(join_error)?
            .map_err(media_error)?;
            let wave = Arc::new(wave);
            media
                .waveforms
                .insert(&id, wave.clone(), wave.peaks.len() as u64 + 256);
            wave
        }
    };
    let (peaks, per_second) = match q.buckets {
        Some(n) => (wave.buckets(n), None),
        None => (
            wave.peaks.clone(),
            Some(montage_media::audio::PEAKS_PER_SECOND),
        ),
    };
    let mut body = serde_json::json!({
        "asset": id,
        "duration": wave.duration(),
        "peaks": peaks,
    });
    if let Some(p) = per_second {
        body["peaks_per_second"] = p.into();
    }
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // An asset never changes: its waveform neither.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok((StatusCode::OK, h, body.to_string()).into_response())
}

/// `GET /v1/assets/{id}/meta`: what the store recorded on upload (kind, format, size, duration,
/// time, uploader, session). 404 for unknown ids, for assets stored before records were kept,
/// and for callers who may not see the asset.
pub async fn meta(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let not_found = || AppError(ErrorCode::NotFound, "no record of such an asset".into());
    let record = visible_asset(&app, &id, &claims.principal())
        .await?
        .ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, record.to_json().to_string()))
}

/// The record of asset `id` if `who` may see it; `None` alike for a malformed id, an asset
/// without a record and one of a session `who` can't view: strangers learn nothing, not even
/// that it exists.
async fn visible_asset(
    app: &App,
    id: &str,
    who: &crate::access::Principal,
) -> Result<Option<AssetRecord>, AppError> {
    if !valid_asset_id(id) {
        return Ok(None);
    }
    let Some(store) = app.store.assets() else {
        return Ok(None);
    };
    match store.asset(id).await? {
        Some(r) if may_see_asset(app, &r, who).await? => Ok(Some(r)),
        _ => Ok(None),
    }
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    tier: Option<String>,
    version: Option<u64>,
}

/// `GET /v1/sessions/{id}/preview?tier=T[&version=V]`: the session's current canvas (or its
/// canvas at a past version), at most the tier's resolution, for anyone who may view the session.
pub async fn preview(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<PreviewQuery>,
    Caller(claims): Caller,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tier = tier_param(q.tier.as_deref())?;
    match q.version {
        Some(v) => {
            let state = crate::sync::state_at(&app, &id, &claims.principal(), v).await?;
            render(&app, &id, v, &state, true, tier, &claims.sub, &headers).await
        }
        None => {
            let (version, state) = session_state(&app, &id, &claims.principal()).await?;
            render(
                &app,
                &id,
                version,
                &state,
                false,
                tier,
                &claims.sub,
                &headers,
            )
            .await
        }
    }
}

/// The preview of `state`, session `id`'s document at `version` (a `past` one, or its head), at
/// `tier`: from the caches, or rendered under one of `user`'s render permits. The caller checked
/// who may see it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn render(
    app: &App,
    id: &str,
    version: u64,
    state: &str,
    past: bool,
    tier: Tier,
    user: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let media = app.media.clone();
    let past_key = past.then(|| warned_key(id, version, tier));
    if let Some(p) = past_key.as_deref().and_then(|k| media.past.get(k)) {
        return Ok(answer(&p, &[], headers));
    }
    if let Some(p) = media.previews.get(id, version, tier) {
        return Ok(answer(&p, &[], headers));
    }
    if let Some(w) = media.warned(id, version, tier) {
        return Ok(answer(&w.preview, &w.warnings, headers));
    }
    let permit = media.permit(user).await?;
    // Another request may have rendered this version while we waited for the permit.
    if let Some(p) = media.previews.get(id, version, tier) {
        return Ok(answer(&p, &[], headers));
    }
    if let Some(w) = media.warned(id, version, tier) {
        return Ok(answer(&w.preview, &w.warnings, headers));
    }
    // Parsed only on a cache miss.
    let doc = parse_doc(id, state)?;
    let assets = media.assets.clone();
    let (p, warnings) = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        montage_media::render_preview(&doc, &*assets, version, tier, PreviewFormat::DEFAULT)
    })
    .await
    .map_err(join_error)?
    .map_err(media_error)?;
    let p = Arc::new(p);
    if let (Some(key), true) = (&past_key, warnings.is_empty()) {
        media
            .past
            .insert(key, p.clone(), p.bytes.len() as u64 + 256);
    } else if warnings.is_empty() {
        media.previews.insert(id, p.clone());
    } else {
        // A preview with warnings (a missing asset may be uploaded later) is kept only briefly,
        // so asking for it again and again doesn't render it again and again.
        tracing::debug!(session = %id, version, ?warnings, "preview rendered with warnings");
        let w = Warned {
            preview: p.clone(),
            warnings: warnings.clone(),
            at: tokio::time::Instant::now(),
        };
        let bytes = p.bytes.len() as u64 + 256;
        media
            .warned
            .insert(&warned_key(id, version, tier), Arc::new(w), bytes);
    }
    Ok(answer(&p, &warnings, headers))
}

#[derive(Debug, Deserialize)]
pub struct FrameQuery {
    t: Option<String>,
    tier: Option<String>,
}

/// `GET /v1/sessions/{id}/frame?t=SECONDS&tier=T`: the whole composition at playhead `t`
/// (`montage_media::composite_frame`: black, every video track's clip at `t` from the lowest
/// track up, then the canvas layers), a JPEG of the canvas at the tier's preview size, for anyone
/// who may view the session. Frames come through ffmpeg, cached per (asset, time, crop, size);
/// 501 `not_supported` without ffmpeg when a clip plays at `t`. `X-Montage-Clips` names the
/// clips drawn, lowest first (`X-Montage-Clip` the top one).
pub async fn frame(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<FrameQuery>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let tier = tier_param(q.tier.as_deref())?;
    let t =
        q.t.as_deref()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                AppError(
                    ErrorCode::BadRequest,
                    "t must be a non-negative number of seconds".into(),
                )
            })?;
    let (version, doc) = session_doc(&app, &id, &claims.principal()).await?;
    let media = app.media.clone();
    let permit = media.permit(&claims.sub).await?;
    let limits = media.intake;
    let canvas = montage_media::canvas_size(&doc);
    let size = montage_media::preview_size(canvas.width, canvas.height, tier);
    let (composite, bytes) = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let frame_of = |clip: &ClipAt, crop: Option<CropRect>, fit: Size| {
            // Times to the millisecond: a scrub asks again and again for nearly the same one.
            let ms = (clip.source_time.max(0.0) * 1000.0).round();
            let key = format!(
                "{}\0{ms}\0{}x{}\0{crop:?}",
                clip.asset, fit.width, fit.height
            );
            if let Some(f) = media.frames.get(&key) {
                return Ok(f);
            }
            let file = media.blob_file(&clip.asset)?;
            let img = montage_media::frame_region(&file.path, ms / 1000.0, crop, fit, &limits)?;
            let frame = Arc::new(Asset::drawn_once(img));
            media
                .frames
                .insert(&key, frame.clone(), frame.retained_bytes() + 256);
            Ok(frame)
        };
        let c = montage_media::composite_frame(&doc, t, size, &*media.assets, &frame_of)?;
        let bytes = montage_media::encode_preview(&c.image, PreviewFormat::DEFAULT)?;
        Ok::<_, MediaError>((c, bytes))
    })
    .await
    .map_err(join_error)?
    .map_err(media_error)?;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PreviewFormat::DEFAULT.mime()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-montage-version", HeaderValue::from(version));
    h.insert("x-montage-tier", HeaderValue::from_static(tier.as_str()));
    let ids: Vec<&str> = composite.clips.iter().map(|c| c.clip.as_str()).collect();
    if let Ok(v) = HeaderValue::from_str(&ids.join(",")) {
        h.insert("x-montage-clips", v);
    }
    if let Some(v) = ids.last().and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("x-montage-clip", v);
    }
    if !composite.warnings.is_empty() {
        tracing::debug!(session = %id, t, warnings = ?composite.warnings, "frame rendered with warnings");
        if let Ok(v) = HeaderValue::from_str(&warnings_header(&composite.warnings)) {
            h.insert("x-montage-warnings", v);
        }
    }
    Ok((StatusCode::OK, h, bytes).into_response())
}

/// Temporary copies of remote blobs, by asset id, least-recently-used beyond a byte budget.
/// An evicted copy's file is deleted as soon as no request still reads it.
struct TempCopies(ByteLru<Arc<tempfile::TempPath>>);

impl TempCopies {
    fn new(budget: u64) -> TempCopies {
        TempCopies(ByteLru::new(budget))
    }

    fn get(&self, id: &str) -> Option<Arc<tempfile::TempPath>> {
        self.0.get(id)
    }

    /// Keeps `path` (a copy of `bytes` bytes) for `id` if it fits the budget.
    fn insert(&self, id: &str, path: tempfile::TempPath, bytes: u64) -> Arc<tempfile::TempPath> {
        let path = Arc::new(path);
        self.0.insert(id, path.clone(), bytes);
        path
    }

    /// The cached copy of blob `id`, or a new one; `None` if there is no such blob or it can't
    /// be copied (logged).
    fn get_or_copy(&self, blobs: &dyn BlobStore, id: &str) -> Option<Arc<tempfile::TempPath>> {
        if let Some(p) = self.get(id) {
            return Some(p);
        }
        let bytes = match blobs.get(id) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(asset = id, error = %e, "reading a blob for ffmpeg failed");
                return None;
            }
        };
        let path = temp_file("montage-blob-", &bytes)
            .inspect_err(
                |e| tracing::warn!(asset = id, error = %e, "copying a blob for ffmpeg failed"),
            )
            .ok()?;
        Some(self.insert(id, path, bytes.len() as u64))
    }
}

/// `tier=` as a tier, or a `bad_request` naming the choices.
pub(crate) fn tier_param(tier: Option<&str>) -> Result<Tier, AppError> {
    tier.and_then(Tier::parse).ok_or_else(|| {
        AppError(
            ErrorCode::BadRequest,
            "tier must be excellent, good, fair or poor".into(),
        )
    })
}

/// The committed version and state (JSON text) of a session the user may view.
async fn session_state(
    app: &App,
    id: &str,
    who: &crate::access::Principal,
) -> Result<(u64, String), AppError> {
    match app.sessions.state(id, who).await {
        Ok(s) => Ok(s),
        Err(ErrorCode::NotFound) => Err(AppError(ErrorCode::NotFound, format!("no session {id}"))),
        Err(ErrorCode::Forbidden) => Err(AppError(ErrorCode::Forbidden, "no access".into())),
        Err(ErrorCode::Conflict) => Err(crate::sync::encrypted_session(id)),
        Err(code) => Err(AppError(code, "could not read the session".into())),
    }
}

/// A session's state text as a document, straight into the OT value (no intermediate tree).
fn parse_doc(id: &str, state: &str) -> Result<montage_ot::Value, AppError> {
    // Any depth: a session may hold a document written before depth was capped.
    montage_ot::Value::from_json_str(state).map_err(|e| {
        tracing::error!(session = %id, error = %e, "session state is not JSON");
        AppError(ErrorCode::Internal, "internal error".into())
    })
}

/// The committed version and document of a session the user may view.
async fn session_doc(
    app: &App,
    id: &str,
    who: &crate::access::Principal,
) -> Result<(u64, montage_ot::Value), AppError> {
    let (version, state) = session_state(app, id, who).await?;
    Ok((version, parse_doc(id, &state)?))
}

fn answer(p: &Preview, warnings: &[Warning], req: &HeaderMap) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(p.format.mime()),
    );
    h.insert("x-montage-version", HeaderValue::from(p.version));
    h.insert("x-montage-tier", HeaderValue::from_static(p.tier.as_str()));
    if warnings.is_empty() {
        // Same version and tier, same picture: the ETag lets a client revalidate for free.
        let etag = format!("\"{}-{}\"", p.version, p.tier.as_str());
        let matches = req
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        if matches {
            return (StatusCode::NOT_MODIFIED, h).into_response();
        }
    } else {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::from_str(&warnings_header(warnings)) {
            h.insert("x-montage-warnings", v);
        }
    }
    (StatusCode::OK, h, p.bytes.clone()).into_response()
}

/// `kind layer=… [asset=…]` per warning, `; `-separated, printable ASCII only (layer ids come from
/// the document), cut at [`MAX_WARNINGS_HEADER`].
fn warnings_header(warnings: &[Warning]) -> String {
    let mut out = String::new();
    for w in warnings {
        let s = match w {
            Warning::MissingAsset { layer, asset } => {
                format!("missing_asset layer={layer} asset={asset}")
            }
            Warning::AssetError { layer, asset, .. } => {
                format!("asset_error layer={layer} asset={asset}")
            }
            Warning::Skipped { layer, reason } => format!("skipped layer={layer}: {reason}"),
            Warning::TooManyLayers { drawn, total } => {
                format!("too_many_layers drawn={drawn} total={total}")
            }
            other => format!("{other:?}"),
        };
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.extend(s.chars().map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        }));
        if out.len() >= MAX_WARNINGS_HEADER {
            out.truncate(MAX_WARNINGS_HEADER);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests;
