//! MPEG-TS over RTP (some devices send it instead of PS), demuxed with `mpeg2ts-reader` into the
//! same per-PTS payloads the PS demuxer produces, so everything after the demuxer is shared.
//! The first video and the first audio stream of the PMT are taken; memory is bounded by
//! `max_frame` per stream.

use std::collections::VecDeque;

use mpeg2ts_reader::demultiplex::{self, DemuxContext, FilterChangeset, FilterRequest, NullPacketFilter, PatPacketFilter, PmtPacketFilter};
use mpeg2ts_reader::pes::{self, ElementaryStreamConsumer, PesContents, PesHeader, PtsDts};
use mpeg2ts_reader::{packet_filter_switch, psi};

use crate::es::{Codec, EsFrame};

packet_filter_switch! {
    TsFilter<TsContext> {
        Pes: pes::PesPacketFilter<TsContext, EsCollector>,
        Pat: PatPacketFilter<TsContext>,
        Pmt: PmtPacketFilter<TsContext>,
        Null: NullPacketFilter<TsContext>,
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsStats {
    pub frames: u64,
    pub continuity_errors: u64,
    pub oversize_frames: u64,
}

pub struct TsContext {
    changeset: FilterChangeset<TsFilter>,
    out: VecDeque<EsFrame>,
    /// PES in progress per collector (0 video, 1 audio). Kept here, not in the collector, so an
    /// idle stream can be flushed: a video PES of unbounded length ends only when the next
    /// begins, and the last frame before a pause would otherwise wait.
    partial: [Option<EsFrame>; 2],
    have_video: bool,
    have_audio: bool,
    max_frame: usize,
    stats: TsStats,
}

impl DemuxContext for TsContext {
    type F = TsFilter;

    fn filter_changeset(&mut self) -> &mut FilterChangeset<Self::F> {
        &mut self.changeset
    }

    fn construct(&mut self, req: FilterRequest<'_, '_>) -> Self::F {
        match req {
            FilterRequest::ByPid(psi::pat::PAT_PID) => TsFilter::Pat(PatPacketFilter::default()),
            FilterRequest::ByPid(_) | FilterRequest::Nit { .. } => TsFilter::Null(NullPacketFilter::default()),
            FilterRequest::Pmt { pid, program_number } => TsFilter::Pmt(PmtPacketFilter::new(pid, program_number)),
            FilterRequest::ByStream { stream_type, .. } => {
                let codec = Codec::from_stream_type(stream_type.0);
                let wanted = if codec.is_video() {
                    !std::mem::replace(&mut self.have_video, true)
                } else if matches!(codec, Codec::Aac | Codec::G711A | Codec::G711U) {
                    !std::mem::replace(&mut self.have_audio, true)
                } else {
                    false
                };
                if wanted {
                    let (stream_id, slot) = if codec.is_video() { (0xE0, 0) } else { (0xC0, 1) };
                    TsFilter::Pes(pes::PesPacketFilter::new(EsCollector { codec, stream_id, slot }))
                } else {
                    TsFilter::Null(NullPacketFilter::default())
                }
            }
        }
    }
}

pub struct EsCollector {
    codec: Codec,
    stream_id: u8,
    slot: usize,
}

impl EsCollector {
    fn append(&mut self, ctx: &mut TsContext, data: &[u8]) {
        let max = ctx.max_frame;
        if let Some(f) = &mut ctx.partial[self.slot] {
            if f.data.len() + data.len() > max {
                ctx.stats.oversize_frames += 1;
                ctx.partial[self.slot] = None;
            } else {
                f.data.extend_from_slice(data);
            }
        }
    }
}

impl TsContext {
    fn finish(&mut self, slot: usize) {
        if let Some(f) = self.partial[slot].take() {
            if !f.data.is_empty() {
                self.stats.frames += 1;
                self.out.push_back(f);
            }
        }
    }
}

impl ElementaryStreamConsumer<TsContext> for EsCollector {
    fn start_stream(&mut self, _ctx: &mut TsContext) {}

    fn begin_packet(&mut self, ctx: &mut TsContext, header: PesHeader<'_>) {
        let (pts, dts, payload) = match header.contents() {
            PesContents::Parsed(Some(p)) => {
                let (pts, dts) = match p.pts_dts() {
                    Ok(PtsDts::PtsOnly(Ok(pts))) => (Some(pts.value()), None),
                    Ok(PtsDts::Both { pts: Ok(pts), dts: Ok(dts) }) => (Some(pts.value()), Some(dts.value())),
                    _ => (None, None),
                };
                (pts, dts, p.payload())
            }
            PesContents::Parsed(None) => return,
            PesContents::Payload(p) => (None, None, p),
        };
        ctx.finish(self.slot);
        ctx.partial[self.slot] = Some(EsFrame { stream_id: self.stream_id, codec: self.codec, pts, dts, data: Vec::new() });
        self.append(ctx, payload);
    }

    fn continue_packet(&mut self, ctx: &mut TsContext, data: &[u8]) {
        self.append(ctx, data);
    }

    fn end_packet(&mut self, ctx: &mut TsContext) {
        ctx.finish(self.slot);
    }

    fn continuity_error(&mut self, ctx: &mut TsContext) {
        ctx.stats.continuity_errors += 1;
        // The PES in progress is missing bytes: drop it.
        ctx.partial[self.slot] = None;
    }
}

pub struct TsDemuxer {
    ctx: TsContext,
    demux: demultiplex::Demultiplex<TsContext>,
}

impl TsDemuxer {
    pub fn new(max_frame: usize) -> Self {
        let mut ctx = TsContext {
            changeset: FilterChangeset::default(),
            out: VecDeque::new(),
            partial: [None, None],
            have_video: false,
            have_audio: false,
            max_frame,
            stats: TsStats::default(),
        };
        let demux = demultiplex::Demultiplex::new(&mut ctx);
        Self { ctx, demux }
    }

    /// Feeds TS bytes (whole 188-byte packets; an RTP payload holds several).
    pub fn push(&mut self, data: &[u8]) {
        self.demux.push(&mut self.ctx, data);
    }

    /// Loss before the next input: continuity counters will tell each stream, which drops its
    /// partial PES; nothing else to do.
    pub fn discontinuity(&mut self) {}

    /// Ends the PES packets in progress (the RTP marker, or the stream went idle).
    pub fn end_of_frame(&mut self) {
        self.ctx.finish(0);
        self.ctx.finish(1);
    }

    pub fn poll(&mut self) -> Option<EsFrame> {
        self.ctx.out.pop_front()
    }

    pub fn stats(&self) -> TsStats {
        self.ctx.stats
    }
}
