//! Downloads: a recording the device sends at `downloadspeed` (a receiver opened with
//! `record`), written as it arrives into a faststart MP4 without transcoding
//! (`media::mp4_file`), then served over HTTP with Range requests (`GET /downloads/{id}.mp4`).
//!
//! The writer reads the stream's hub like a viewer from the moment the receiver opens (so it
//! counts as one: the stream stays wanted), turns FLV tags into samples with the same muxer as
//! the browsers' fMP4, appends their bytes to `<id>.mdat.part` and keeps the sample tables in
//! memory (bounded by `mp4_file::MAX_SAMPLES` and `download_max_bytes`). When the stream ends
//! (the device's end of file, the sip-server's BYE) the header is written to `<id>.mp4.part`,
//! the payload copied behind it, and the file renamed to `<id>.mp4`. Finished files are kept
//! `download_keep_secs`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::flv::{FlvTag, TagKind};
use media::fmp4::{Fmp4Muxer, Sample};
use media::mp4_file::Mp4Index;
use serde::Serialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::stream::StreamEntry;

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    /// Media arrives and is written.
    Writing,
    /// The stream ended; the header is being written in front of the payload.
    Finishing,
    /// The file is complete and served.
    Done,
    Failed,
    Cancelled,
}

/// What the API reports of a download.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadStatus {
    pub id: String,
    pub state: DownloadState,
    /// Media time written so far (the longer track), milliseconds: progress against the span.
    pub media_ms: u64,
    /// Sample bytes written (the file, once done).
    pub bytes: u64,
    pub video_samples: usize,
    pub audio_samples: usize,
    /// Times the writer fell behind its hub and skipped to the next key frame.
    pub gaps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it ended (done, failed or cancelled), Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
}

struct Job {
    status: Mutex<DownloadStatus>,
    cancel: CancellationToken,
}

impl Job {
    fn status(&self) -> DownloadStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut DownloadStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// The node's downloads: running and finished, by id (the stream id).
pub struct Downloads {
    dir: PathBuf,
    max_bytes: u64,
    keep: Duration,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

/// The paths of a download's files.
#[derive(Clone)]
struct Files {
    payload: PathBuf,
    part: PathBuf,
    done: PathBuf,
}

impl Downloads {
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64, keep: Duration) -> Self {
        Self { dir: dir.into(), max_bytes, keep, jobs: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn files(&self, id: &str) -> Files {
        Files {
            payload: self.dir.join(format!("{id}.mdat.part")),
            part: self.dir.join(format!("{id}.mp4.part")),
            done: self.dir.join(format!("{id}.mp4")),
        }
    }

    /// Where a finished download's file is (ids are stream ids: no path separators).
    pub fn file(&self, id: &str) -> Option<PathBuf> {
        crate::stream::valid_stream_id(id).then(|| self.files(id).done)
    }

    /// Starts writing `entry`'s media. Call before any media reaches its hub (at open), so the
    /// file starts at the recording's first frame.
    pub fn start(self: &Arc<Self>, entry: &Arc<StreamEntry>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let files = self.files(&entry.id);
        let payload = std::fs::File::create(&files.payload)?;
        let job = Arc::new(Job {
            status: Mutex::new(DownloadStatus {
                id: entry.id.clone(),
                state: DownloadState::Writing,
                media_ms: 0,
                bytes: 0,
                video_samples: 0,
                audio_samples: 0,
                gaps: 0,
                error: None,
                ended_ms: None,
            }),
            cancel: CancellationToken::new(),
        });
        self.lock().insert(entry.id.clone(), job.clone());
        // Subscribed here, not in the task: nothing published from now on is missed.
        let sub = entry.hub.subscribe();
        let writer = Writer { index: Mp4Index::new(), mux: Fmp4Muxer::new(), out: std::io::BufWriter::with_capacity(256 << 10, payload) };
        tokio::spawn(record(self.clone(), job, entry.clone(), sub, writer, files));
        Ok(())
    }

    pub fn status(&self, id: &str) -> Option<DownloadStatus> {
        if let Some(job) = self.lock().get(id) {
            return Some(job.status());
        }
        // Finished by an earlier run of the node: the file is what is known.
        let meta = std::fs::metadata(self.file(id)?).ok()?;
        Some(DownloadStatus {
            id: id.to_owned(),
            state: DownloadState::Done,
            media_ms: 0,
            bytes: meta.len(),
            video_samples: 0,
            audio_samples: 0,
            gaps: 0,
            error: None,
            ended_ms: None,
        })
    }

    pub fn list(&self) -> Vec<DownloadStatus> {
        let mut all: Vec<DownloadStatus> = self.lock().values().map(|j| j.status()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Cancels a running download and deletes its files, or deletes a finished one's. False
    /// if there is no such download.
    pub fn remove(&self, id: &str) -> bool {
        let job = self.lock().remove(id);
        if let Some(job) = &job {
            job.cancel.cancel();
        }
        let Some(done) = self.file(id) else { return false };
        let files = self.files(id);
        let existed = done.exists();
        for path in [&files.payload, &files.part, &files.done] {
            let _ = std::fs::remove_file(path);
        }
        job.is_some() || existed
    }

    /// Deletes what ended more than `download_keep_secs` ago, and half-written files nobody
    /// has written for `STALE_PART` (an earlier run's; another node's running download on a
    /// shared directory is written every few seconds, so it is left alone).
    pub fn sweep(&self) {
        let now = kit::clock::now_ms();
        let keep_ms = self.keep.as_millis() as u64;
        let expired: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, j)| j.status().ended_ms.is_some_and(|t| now.saturating_sub(t) > keep_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        for f in dir.flatten() {
            let path = f.path();
            let name = f.file_name().to_string_lossy().into_owned();
            let age = f.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).unwrap_or_default();
            let stale = (name.ends_with(".part") && age > STALE_PART) || (name.ends_with(".mp4") && age > self.keep);
            let running = name.split('.').next().is_some_and(|id| self.lock().contains_key(id));
            if stale && !running {
                tracing::info!(file = %path.display(), "old download deleted");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// A half-written file untouched this long is an abandoned one.
const STALE_PART: Duration = Duration::from_secs(600);

/// The muxer, the tables and the payload file of one download.
struct Writer {
    index: Mp4Index,
    mux: Fmp4Muxer,
    out: std::io::BufWriter<std::fs::File>,
}

impl Writer {
    /// Takes in one tag; writes the samples whose durations are now known.
    fn push(&mut self, tag: &FlvTag) -> Result<(), String> {
        self.mux.push_flv(tag);
        self.drain()
    }

    fn drain(&mut self) -> Result<(), String> {
        let (video, audio) = self.mux.take_samples();
        for (is_video, samples) in [(true, &video), (false, &audio)] {
            self.index.add(is_video, samples).map_err(|e| e.to_string())?;
            write_samples(&mut self.out, samples).map_err(|e| format!("writing the payload: {e}"))?;
        }
        Ok(())
    }
}

fn write_samples(out: &mut impl Write, samples: &[Sample]) -> std::io::Result<()> {
    samples.iter().try_for_each(|s| out.write_all(&s.data))
}

/// The writer task: reads the hub until the stream ends, then finishes the file.
async fn record(
    downloads: Arc<Downloads>,
    job: Arc<Job>,
    entry: Arc<StreamEntry>,
    mut sub: crate::hub::Subscription,
    mut w: Writer,
    files: Files,
) {
    let audio_rate = |w: &Writer| w.mux.configs().1.map_or(0, |a| a.sample_rate);
    let mut skip_to_key = false;
    let mut result: Result<(), String> = std::mem::take(&mut sub.start).iter().try_for_each(|t| w.push(t));
    let mut ended = false;
    while result.is_ok() && !ended {
        let tag = tokio::select! {
            _ = job.cancel.cancelled() => break,
            _ = entry.cancel.cancelled() => {
                // What the hub sent before the stream closed is still in the queue.
                ended = true;
                loop {
                    match sub.rx.try_recv() {
                        Ok(tag) => if let Err(e) = w.push(&tag) { result = Err(e); break },
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                continue;
            }
            r = sub.rx.recv() => r,
        };
        match tag {
            Ok(tag) => {
                // After a gap, video resumes at a key frame (a P-frame without its reference
                // would decode as garbage until the next one).
                if skip_to_key && tag.kind == TagKind::Video && !tag.header {
                    if !tag.key {
                        continue;
                    }
                    skip_to_key = false;
                }
                result = w.push(&tag);
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(download = %entry.id, skipped = n, "download writer fell behind its hub; resuming at the next key frame");
                job.update(|s| s.gaps += 1);
                skip_to_key = true;
            }
            Err(RecvError::Closed) => ended = true,
        }
        if result.is_ok() && w.index.payload_len() > downloads.max_bytes {
            result = Err(format!("larger than download_max_bytes ({} bytes)", downloads.max_bytes));
        }
        let (v, a) = w.index.samples();
        let (media_ms, bytes) = (w.index.duration_ms(audio_rate(&w)), w.index.payload_len());
        job.update(|s| (s.media_ms, s.bytes, s.video_samples, s.audio_samples) = (media_ms, bytes, v, a));
    }
    drop(sub); // no longer a viewer
    if job.cancel.is_cancelled() {
        job.update(|s| (s.state, s.ended_ms) = (DownloadState::Cancelled, Some(kit::clock::now_ms())));
        for path in [&files.payload, &files.part] {
            let _ = std::fs::remove_file(path);
        }
        return;
    }
    if result.is_ok() {
        w.mux.flush();
        result = w.drain();
    }
    job.update(|s| s.state = DownloadState::Finishing);
    let outcome = match result {
        Ok(()) => {
            let (v, a) = w.mux.configs();
            let header = w.index.header(v, a);
            let (media_ms, samples) = (w.index.duration_ms(audio_rate(&w)), w.index.samples());
            let payload = w.out.into_inner().map_err(|e| e.into_error());
            // The copy behind the header is file I/O of the whole payload: off the runtime.
            let paths = files.clone();
            let copied = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                drop(payload?);
                finish(&header, &paths)
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
            match copied {
                Ok(len) if samples != (0, 0) => {
                    tracing::info!(download = %entry.id, media_ms, bytes = len, "download written");
                    Ok((media_ms, len))
                }
                Ok(_) => Err("the device sent no media".to_owned()),
                Err(e) => Err(format!("finishing the file: {e}")),
            }
        }
        Err(e) => {
            for path in [&files.payload, &files.part] {
                let _ = std::fs::remove_file(path);
            }
            Err(e)
        }
    };
    let now = kit::clock::now_ms();
    // Cancelled while the file was being finished (the stream ended and the download was
    // deleted at once): what finishing wrote goes too.
    if job.cancel.is_cancelled() {
        for path in [&files.payload, &files.part, &files.done] {
            let _ = std::fs::remove_file(path);
        }
        job.update(|s| (s.state, s.ended_ms) = (DownloadState::Cancelled, Some(now)));
        return;
    }
    match outcome {
        Ok((media_ms, len)) => job.update(|s| {
            (s.state, s.media_ms, s.bytes, s.ended_ms) = (DownloadState::Done, media_ms, len, Some(now));
        }),
        Err(e) => {
            tracing::warn!(download = %entry.id, error = %e, "download failed");
            if let Some(done) = downloads.file(&entry.id) {
                let _ = std::fs::remove_file(done);
            }
            job.update(|s| (s.state, s.error, s.ended_ms) = (DownloadState::Failed, Some(e), Some(now)));
        }
    }
}

/// Writes the header then the payload into the `.part` file and renames it into place.
fn finish(header: &[u8], files: &Files) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&files.part)?);
    out.write_all(header)?;
    let mut payload = std::fs::File::open(&files.payload)?;
    std::io::copy(&mut payload, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let len = file.metadata()?.len();
    std::fs::rename(&files.part, &files.done)?;
    let _ = std::fs::remove_file(&files.payload);
    Ok(len)
}

/// The default directory: beside the process's temporary files.
pub fn default_dir() -> String {
    std::env::temp_dir().join("gbcluster-downloads").to_string_lossy().into_owned()
}
