//! The play session record (Store table `sessions`, JSON, keyed by stream id) and its states.

use cluster::store::Store;
use cluster::table::{Table, Versioned};
use cluster::wire::StreamId;
use gb::ids::{ChannelId, DeviceId, NodeId, Ssrc};
use serde::{Deserialize, Serialize};

use super::{PlayError, PlayTransport};

/// The sessions, keyed by stream id.
pub const TABLE: Table<Session> = Table::new("sessions");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Reserved: a node is choosing a media node and INVITEing the camera.
    Starting,
    /// The camera answered; media flows to `media_node`.
    Playing,
    /// Its media node died; being set up again elsewhere under the same stream id.
    Recovering,
}

/// Where players find the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Urls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmp: Option<String>,
    pub http_flv: String,
    /// Fragmented MP4 for browsers' Media Source Extensions (H.264/H.265 and AAC).
    #[serde(default)]
    pub fmp4: String,
    /// HLS (fMP4 segments) for Safari and iOS.
    #[serde(default)]
    pub hls: String,
}

/// What a session carries: live video, or a recording played back over a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    #[default]
    Live,
    /// `s=Playback` of a span (`Session::playback`), steered by INFO (MANSRTSP).
    Playback,
    /// `s=Download` of a span at `downloadspeed` (`Session::download`): the media node writes
    /// it to an MP4 file.
    Download,
}

/// A playback's span and where it stands: what the last control asked, and the position's
/// anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlaybackState {
    /// The span, Unix seconds.
    pub start: i64,
    pub end: i64,
    /// Speed in thousandths (1000 = 1×).
    pub scale_milli: u32,
    pub paused: bool,
    /// Milliseconds from the span's start that the media node's timeline mark stands for (the
    /// start, then each seek's target): position = anchor + source time since the mark.
    pub anchor_ms: u64,
    /// CSeq of the last MANSRTSP control sent.
    pub rtsp_cseq: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub stream_id: StreamId,
    pub device_id: DeviceId,
    pub channel_id: ChannelId,
    pub transport: PlayTransport,
    /// GB SSRC (10 digits), held in the Store's SSRC table by this stream id.
    pub ssrc: Ssrc,
    pub state: SessionState,
    /// The sip-server node that drives the session and holds its dialog.
    pub sip_node: NodeId,
    #[serde(default)]
    pub media_node: String,
    #[serde(default)]
    pub media_api: String,
    /// The media node's process run when the receiver was opened (a restart loses it).
    #[serde(default)]
    pub media_instance: String,
    /// Where the camera sends RTP (or, TCP active, where the media node connects from).
    #[serde(default)]
    pub rtp_addr: String,
    #[serde(default)]
    pub call_id: Option<String>,
    /// The dialog, so any node can hang up if the owner is gone.
    #[serde(default)]
    pub dialog: Option<crate::dialog::Dialog>,
    /// API plays holding it (each `DELETE` releases one).
    pub holders: u32,
    #[serde(default)]
    pub urls: Urls,
    pub created_ms: u64,
    #[serde(default)]
    pub started_ms: Option<u64>,
    /// Times it was moved to another media node.
    #[serde(default)]
    pub recoveries: u32,
    /// How long the last move took, from noticing the node gone to the camera's 200.
    #[serde(default)]
    pub last_recovery_ms: Option<u64>,
    #[serde(default)]
    pub kind: SessionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback: Option<PlaybackState>,
}

impl Session {
    /// A new session of a channel, being set up by `sip_node` with one holder.
    pub fn starting(
        device_id: DeviceId,
        channel_id: ChannelId,
        transport: PlayTransport,
        ssrc: Ssrc,
        sip_node: NodeId,
        now_ms: u64,
    ) -> Self {
        Self {
            stream_id: StreamId::of_channel(&device_id, &channel_id),
            device_id,
            channel_id,
            transport,
            ssrc,
            state: SessionState::Starting,
            sip_node,
            media_node: String::new(),
            media_api: String::new(),
            media_instance: String::new(),
            rtp_addr: String::new(),
            call_id: None,
            dialog: None,
            holders: 1,
            urls: Urls::default(),
            created_ms: now_ms,
            started_ms: None,
            recoveries: 0,
            last_recovery_ms: None,
            kind: SessionKind::Live,
            playback: None,
        }
    }

    /// A new playback of `[start, end)`, under its own stream id (`<device>_<channel>_pb<tag>`:
    /// every playback is its own session, never joined).
    #[allow(clippy::too_many_arguments)]
    pub fn playback(
        device_id: DeviceId,
        channel_id: ChannelId,
        transport: PlayTransport,
        ssrc: Ssrc,
        sip_node: NodeId,
        now_ms: u64,
        stream_id: StreamId,
        (start, end): (i64, i64),
    ) -> Self {
        let mut s = Self::starting(device_id, channel_id, transport, ssrc, sip_node, now_ms);
        s.stream_id = stream_id;
        s.kind = SessionKind::Playback;
        s.playback = Some(PlaybackState { start, end, scale_milli: 1000, paused: false, anchor_ms: 0, rtsp_cseq: 0 });
        s
    }

    /// This new playback as a download at `speed`× instead (`<device>_<channel>_dl<tag>`): the
    /// span and speed are kept in `playback` (`scale_milli`).
    pub fn downloading(mut self, speed: u32) -> Self {
        self.kind = SessionKind::Download;
        if let Some(p) = self.playback.as_mut() {
            p.scale_milli = speed * 1000;
        }
        self
    }
}

pub async fn get(store: &dyn Store, stream_id: &StreamId) -> Result<Option<Versioned<Session>>, PlayError> {
    Ok(TABLE.get(store, stream_id.as_str()).await?)
}

/// Every readable session; a corrupt one is logged by name (and left for an operator).
pub async fn list(store: &dyn Store) -> Result<Vec<Session>, PlayError> {
    let rows = TABLE.list(store).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, row)| row.map_err(|e| tracing::warn!(error = %e, "unreadable play session skipped")).ok())
        .collect())
}

/// Read-modify-write with compare-and-set, retried on a concurrent change. `f` returns false
/// to leave the record alone. Returns the record as written (or as found).
pub async fn update(
    store: &dyn Store,
    stream_id: &StreamId,
    mut f: impl FnMut(&mut Session) -> bool,
) -> Result<Option<Session>, PlayError> {
    for _ in 0..32 {
        let Some(read) = get(store, stream_id).await? else { return Ok(None) };
        let mut s = read.row.clone();
        if !f(&mut s) {
            return Ok(Some(s));
        }
        if TABLE.swap(store, stream_id.as_str(), &read, &s).await? {
            return Ok(Some(s));
        }
    }
    Err(PlayError::Internal(format!("session {stream_id} changes too fast to update")))
}

/// Removes the record; of several racing callers exactly one gets it back (and cleans up).
pub async fn take(store: &dyn Store, stream_id: &StreamId) -> Result<Option<Session>, PlayError> {
    Ok(TABLE.take(store, stream_id.as_str()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_with_its_kind_and_older_records_read_as_live() {
        let now = 1_796_090_400_000;
        let dev: DeviceId = "34020000001320000001".parse().unwrap();
        let ch: ChannelId = "34020000001310000001".parse().unwrap();
        let ssrc: Ssrc = "1340200001".parse().unwrap();
        let node: NodeId = "sip-a".parse().unwrap();
        let pb = Session::playback(
            dev.clone(),
            ch.clone(),
            PlayTransport::Udp,
            ssrc.clone(),
            node.clone(),
            now,
            StreamId::from("x_pb1"),
            (10, 20),
        );
        let json = serde_json::to_value(&pb).unwrap();
        assert_eq!(
            (json["kind"].as_str(), json["playback"]["start"].as_i64(), json["playback"]["end"].as_i64()),
            (Some("playback"), Some(10), Some(20)),
            "{json}"
        );
        assert_eq!(serde_json::from_value::<Session>(json).unwrap(), pb);
        let live = Session::starting(dev, ch, PlayTransport::Udp, ssrc, node, now);
        let mut json = serde_json::to_value(&live).unwrap();
        assert_eq!(json["kind"], "live");
        json.as_object_mut().unwrap().remove("kind");
        assert_eq!(serde_json::from_value::<Session>(json).unwrap(), live, "a record from before kinds is live");
    }
}
