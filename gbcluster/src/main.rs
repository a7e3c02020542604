//! `gbcluster`: every service in one binary, the role chosen by subcommand.

// Every SIP message allocates (rsipstack's message model); glibc's allocator contends on its
// arena locks across tokio's workers, mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct StoreConfig {
    /// `redis://…`, `redis+sentinel://h1,h2/master`, `redis+cluster://h1,h2`; empty: in-memory.
    url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LogConfig {
    /// tracing filter, e.g. `info` or `info,sip_server=debug`; `RUST_LOG` wins.
    level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
    }
}

/// The whole config file; each service reads its own section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    store: StoreConfig,
    log: LogConfig,
    sip: sip_server::SipConfig,
    sim: gbsim::SimConfig,
    stream: stream_server::StreamConfig,
    lpr: lpr_server::LprConfig,
    nvr: nvr_pusher::NvrConfig,
}

#[derive(Parser)]
#[command(name = "gbcluster", version, about = "GB/T 28181 signalling and media cluster")]
struct Cli {
    /// TOML config file (every key also settable as GBC_SECTION__KEY).
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything in one process (in-memory store unless store.url is set). The default.
    All {
        /// Also start simulated cameras registering to this process.
        #[arg(long)]
        demo: bool,
    },
    /// The SIP server (registrar, presence, catalog, web-tier API).
    Sip,
    /// The media node (stream-server): RTP in, RTMP push, RTMP play and HTTP-FLV out.
    Stream,
    /// The LPR push server: plate results, gate decisions, whitelist sync, comet commands.
    Lpr,
    /// The NVR pusher: live and recorded video of NVR channels pulled over RTSP, pushed as RTMP.
    Nvr,
    /// The camera simulator / load generator (`sim media …` streams video).
    Sim(Box<SimArgs>),
}

#[derive(Subcommand)]
enum SimCmd {
    /// Stream a video file as GB PS over RTP into a stream-server (one target, or N receivers
    /// opened through its API).
    Media(MediaArgs),
    /// LPR cameras pushing plate results to an lpr-server (and polling it), as a test or load.
    Lpr(LprArgs),
}

#[derive(clap::Args)]
struct LprArgs {
    /// lpr-server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    server: String,
    #[arg(long, default_value_t = 1)]
    cameras: usize,
    /// Plate results per second per camera (0: as fast as replies come).
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// A JPEG sent as each result's full image.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Heartbeat every 5 s instead of comet polling.
    #[arg(long)]
    no_comet: bool,
    /// Stored records each camera replays first (isoffline 1).
    #[arg(long, default_value_t = 0)]
    backlog: u64,
    /// During the backlog, a live result every this many records.
    #[arg(long, default_value_t = 10)]
    interrupt_every: u64,
    #[arg(long, default_value_t = 1000)]
    plates: u64,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "sim")]
    serial_prefix: String,
}

#[derive(clap::Args)]
struct MediaArgs {
    /// Annex B H.264 (.h264) or H.265 (.h265) file.
    #[arg(long)]
    video: PathBuf,
    /// ADTS .aac, or raw 8 kHz .alaw / .ulaw.
    #[arg(long)]
    audio: Option<PathBuf>,
    #[arg(long, default_value_t = 25.0)]
    fps: f64,
    /// udp, tcp-active (we connect) or tcp-passive (we listen).
    #[arg(long, default_value = "udp")]
    transport: String,
    /// Receiver address (single stream without --api).
    #[arg(long)]
    target: Option<String>,
    #[arg(long, default_value_t = 1_000_000_001)]
    ssrc: u32,
    /// stream-server API (http://host:port): open --streams receivers there and feed each.
    #[arg(long)]
    api: Option<String>,
    #[arg(long, default_value_t = 1)]
    streams: usize,
    #[arg(long, default_value = "sim")]
    stream_prefix: String,
    /// Stop after this many seconds (0: until stopped).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Packet loss probability (UDP), for tests.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Packet reorder probability (UDP), for tests.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
}

#[derive(clap::Args, Default)]
#[command(args_conflicts_with_subcommands = true)]
struct SimArgs {
    #[command(subcommand)]
    what: Option<SimCmd>,
    /// sip-server address (host:port).
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    devices: Option<usize>,
    #[arg(long)]
    channels: Option<usize>,
    /// udp or tcp.
    #[arg(long)]
    transport: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// Stop after this many seconds (0: run until stopped).
    #[arg(long)]
    duration: Option<u64>,
    /// Advertise this private IP in Via/Contact, as a camera behind NAT.
    #[arg(long)]
    nat_ip: Option<String>,
    #[arg(long)]
    keepalive: Option<u64>,
    #[arg(long)]
    first_device_id: Option<String>,
    #[arg(long)]
    register_rate: Option<u32>,
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

fn apply_sim_args(sim: &mut gbsim::SimConfig, a: SimArgs) -> anyhow::Result<()> {
    if let Some(v) = a.server {
        sim.server = v;
    }
    if let Some(v) = a.devices {
        sim.devices = v;
    }
    if let Some(v) = a.channels {
        sim.channels = v;
    }
    if let Some(v) = a.transport {
        sim.transport = match v.as_str() {
            "udp" => gbsim::SimTransport::Udp,
            "tcp" => gbsim::SimTransport::Tcp,
            other => anyhow::bail!("--transport must be udp or tcp, not {other:?}"),
        };
    }
    if let Some(v) = a.password {
        sim.password = v;
    }
    if let Some(v) = a.duration {
        sim.duration_secs = v;
    }
    if a.nat_ip.is_some() {
        sim.nat_ip = a.nat_ip;
    }
    if let Some(v) = a.keepalive {
        sim.keepalive_secs = v;
    }
    if let Some(v) = a.first_device_id {
        sim.first_device_id = v;
    }
    if let Some(v) = a.register_rate {
        sim.register_rate = v;
    }
    Ok(())
}

async fn sim_media(m: MediaArgs, shutdown: CancellationToken) -> anyhow::Result<serde_json::Value> {
    use gbsim::media::{self, Impairment, MediaSource, SendOptions, SendTransport};
    let transport: SendTransport = serde_json::from_value(serde_json::Value::String(m.transport.clone()))
        .map_err(|_| anyhow::anyhow!("--transport must be udp, tcp-active or tcp-passive"))?;
    let src = std::sync::Arc::new(MediaSource::load(&m.video, m.fps, m.audio.as_deref())?);
    let stop = shutdown.child_token();
    if m.seconds > 0 {
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(m.seconds)).await;
            s.cancel();
        });
    }
    let mut targets = Vec::new();
    match (&m.api, &m.target) {
        (Some(api), _) => {
            for i in 0..m.streams {
                let ssrc = m.ssrc.wrapping_add(i as u32);
                let stream_id = format!("{}{i}", m.stream_prefix);
                let target = media::open_receiver(api, &stream_id, ssrc, transport).await?;
                targets.push((stream_id, ssrc, target));
            }
        }
        (None, Some(t)) => targets.push(("target".into(), m.ssrc, t.parse().context("--target must be ip:port")?)),
        (None, None) => anyhow::bail!("give --target or --api"),
    }
    let mut tasks = Vec::new();
    for (id, ssrc, target) in targets {
        let src = src.clone();
        let opts =
            SendOptions { transport, target, ssrc, loops: 0, impairment: Impairment { loss: m.loss, reorder: m.reorder, seed: None } };
        let stop = stop.clone();
        tasks.push((id, tokio::spawn(async move { media::send(&src, opts, stop).await })));
    }
    let mut out = serde_json::Map::new();
    for (id, t) in tasks {
        let stats = t.await?.with_context(|| format!("stream {id}"))?;
        out.insert(id, serde_json::to_value(stats)?);
    }
    Ok(serde_json::json!({"video_frames_in_file": src.video_frames, "streams": out}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `[api]` was the sip-server's API section before it was `[sip.api]`.
    let (mut cfg, renamed): (Config, _) =
        kit::config::load_renaming(cli.config.as_deref(), &[("api", "sip.api")]).context("loading config")?;
    kit::telemetry::init(&cfg.log.level);
    if !renamed.is_empty() {
        tracing::warn!("the [api] section (GBC_API__*) is the sip-server's and is now [sip.api] (GBC_SIP__API__*); read as that");
    }
    let shutdown = shutdown_on_signal();
    match cli.cmd.unwrap_or(Cmd::All { demo: false }) {
        Cmd::All { demo } => {
            // One process: the console reaches this lpr-server with its own token.
            if cfg.sip.api.lpr_token.is_empty() {
                cfg.sip.api.lpr_token = cfg.lpr.api_token.clone();
            }
            let store = cluster::store::open(cfg.store.url.as_deref()).await.context("opening store")?;
            let handle = sip_server::start(cfg.sip.clone(), store.clone(), shutdown.clone()).await?;
            let media = stream_server::start(cfg.stream.clone(), store.clone(), shutdown.clone()).await?;
            lpr_server::start(cfg.lpr.clone(), store.clone(), shutdown.clone()).await?;
            let nvr = nvr_pusher::start(cfg.nvr.clone(), store, shutdown.clone()).await?;
            if demo {
                let mut sim = cfg.sim.clone();
                sim.server = format!("127.0.0.1:{}", handle.sip_addr.port());
                sim.server_id = cfg.sip.server_id.clone();
                sim.domain = cfg.sip.domain.clone();
                sim.password = cfg.sip.password.clone();
                if sim.devices <= 1 {
                    sim.devices = 3;
                }
                let h = gbsim::start(sim, shutdown.clone()).await?;
                tracing::info!(devices = ?h.device_ids, api = %handle.api_addr, "demo cameras started");
            }
            shutdown.cancelled().await;
            media.node.stopped(std::time::Duration::from_secs(3)).await;
            nvr.pusher.stopped(std::time::Duration::from_secs(3)).await;
        }
        Cmd::Sip => {
            let store = cluster::store::open(cfg.store.url.as_deref()).await.context("opening store")?;
            sip_server::run(cfg.sip, store, shutdown).await?;
        }
        Cmd::Stream => {
            let store = cluster::store::open(cfg.store.url.as_deref()).await.context("opening store")?;
            let media = stream_server::start(cfg.stream, store, shutdown.clone()).await?;
            shutdown.cancelled().await;
            media.node.stopped(std::time::Duration::from_secs(3)).await;
        }
        Cmd::Lpr => {
            let store = cluster::store::open(cfg.store.url.as_deref()).await.context("opening store")?;
            lpr_server::start(cfg.lpr, store, shutdown.clone()).await?;
            shutdown.cancelled().await;
        }
        Cmd::Nvr => {
            let store = cluster::store::open(cfg.store.url.as_deref()).await.context("opening store")?;
            let nvr = nvr_pusher::start(cfg.nvr, store, shutdown.clone()).await?;
            shutdown.cancelled().await;
            nvr.pusher.stopped(std::time::Duration::from_secs(3)).await;
        }
        Cmd::Sim(mut args) => {
            match args.what.take() {
                Some(SimCmd::Media(m)) => {
                    let report = sim_media(m, shutdown).await?;
                    println!("{report}");
                    return Ok(());
                }
                Some(SimCmd::Lpr(a)) => {
                    let image = match &a.image {
                        Some(p) => Some(std::sync::Arc::new(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)),
                        None => None,
                    };
                    let cfg = gbsim::lpr::LprSimConfig {
                        server: a.server,
                        cameras: a.cameras,
                        serial_prefix: a.serial_prefix,
                        rate: a.rate,
                        image,
                        comet: !a.no_comet,
                        backlog: a.backlog,
                        interrupt_every: a.interrupt_every,
                        plates: a.plates,
                        seconds: a.seconds,
                        ..Default::default()
                    };
                    let report = gbsim::lpr::run(cfg, shutdown).await;
                    println!("{}", serde_json::to_string(&report)?);
                    return Ok(());
                }
                None => {}
            }
            apply_sim_args(&mut cfg.sim, *args)?;
            let report = gbsim::run(cfg.sim, shutdown).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
