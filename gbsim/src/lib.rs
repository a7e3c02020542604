//! gbsim: a GB28181 camera simulator and load generator. `run` registers N devices (M channels
//! each) over UDP or TCP with digest auth, keeps them alive, answers the server's queries, and
//! reports what it achieved.

pub mod call;
pub mod config;
pub mod device;
pub mod lpr;
pub mod media;
pub mod ptz;
pub mod records;
pub mod stats;
pub mod subscriptions;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::{SimConfig, SimTransport};
pub use stats::{SimReport, SimStats};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("bad config: {0}")]
    Config(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The id of device `i`: the first id with its last 7 digits counted up.
pub fn device_id(first: &str, i: usize) -> Result<String, SimError> {
    let id: gb::ids::DeviceId = first.parse().map_err(|e| SimError::Config(format!("sim.first_device_id: {e}")))?;
    let (prefix, serial) = id.as_str().split_at(13);
    let serial: usize = serial.parse().map_err(|_| SimError::Config("sim.first_device_id".into()))?;
    if serial + i >= 10_000_000 {
        return Err(SimError::Config("too many devices for first_device_id's serial range".into()));
    }
    Ok(format!("{prefix}{:07}", serial + i))
}

/// A running simulation.
pub struct SimHandle {
    pub stats: Arc<SimStats>,
    pub devices: usize,
    pub started: Instant,
    pub device_ids: Vec<String>,
}

impl SimHandle {
    /// Waits until every device has registered once (or `timeout`); returns the seconds taken.
    pub async fn wait_all_registered(&self, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stats.devices_registered_once.load(std::sync::atomic::Ordering::Relaxed) as usize >= self.devices {
                return Some(self.started.elapsed().as_secs_f64());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts every device; they run until `shutdown`.
pub async fn start(cfg: SimConfig, shutdown: CancellationToken) -> Result<SimHandle, SimError> {
    let server: SocketAddr = tokio::net::lookup_host(&cfg.server)
        .await?
        .next()
        .ok_or_else(|| SimError::Config(format!("sim.server {:?} does not resolve", cfg.server)))?;
    let server_id: gb::ids::ServerId = cfg.server_id.parse().map_err(|e| SimError::Config(format!("sim.server_id: {e}")))?;
    let domain = cfg.domain.clone().unwrap_or_else(|| server_id.domain().to_owned());
    let media = Arc::new(match &cfg.media_video {
        Some(v) if !v.is_empty() => {
            media::MediaSource::load(v.as_ref(), cfg.media_fps, cfg.media_audio.as_deref().map(std::path::Path::new))
                .map_err(|e| SimError::Config(format!("sim.media_video: {e}")))?
        }
        _ => media::MediaSource::demo(),
    });
    let cfg = Arc::new(cfg);
    let stats = Arc::new(SimStats::default());
    let started = Instant::now();
    let mut ids = Vec::with_capacity(cfg.devices);
    let mut udp: Option<(Arc<tokio::net::UdpSocket>, SocketAddr, Arc<transport::Routes>, usize)> = None;
    // Sockets outlive the devices by a moment, so that their unregistering REGISTERs get answers.
    let sockets = CancellationToken::new();
    {
        let (shutdown, sockets) = (shutdown.clone(), sockets.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            sockets.cancel();
        });
    }
    for i in 0..cfg.devices {
        let id = device_id(&cfg.first_device_id, i)?;
        let (tx, rx) = mpsc::channel(256);
        let (link, local) = match cfg.transport {
            SimTransport::Udp => {
                let full = udp.as_ref().is_none_or(|(_, _, _, n)| *n >= cfg.devices_per_socket.max(1));
                if full {
                    let routes = Arc::new(transport::Routes::default());
                    let (sock, local) = transport::udp_socket(&cfg.bind_ip, routes.clone(), sockets.clone()).await?;
                    udp = Some((sock, local, routes, 0));
                }
                let Some((sock, local, routes, n)) = udp.as_mut() else { unreachable!("set above") };
                // Requests reach a device by its id or one of its channels' (INVITE).
                for ch in device::channel_ids(&id, i, cfg.channels) {
                    routes.add(&ch, tx.clone());
                }
                routes.add(&id, tx);
                *n += 1;
                (transport::Link::Udp { sock: sock.clone(), server }, *local)
            }
            SimTransport::Tcp => transport::tcp_link(&cfg.bind_ip, server, tx, sockets.clone()).await?,
        };
        let start_at = match cfg.register_rate {
            0 => started,
            r => started + Duration::from_secs_f64(i as f64 / f64::from(r)),
        };
        let dev = device::SimDevice::new(id.clone(), i, cfg.clone(), domain.clone(), link, local, rx, stats.clone(), media.clone());
        ids.push(id);
        tokio::spawn(dev.run(start_at, shutdown.clone()));
    }
    Ok(SimHandle { stats, devices: cfg.devices, started, device_ids: ids })
}

/// Runs the simulation for `duration_secs` (or until `shutdown`) and reports.
pub async fn run(cfg: SimConfig, shutdown: CancellationToken) -> Result<SimReport, SimError> {
    let duration = cfg.duration_secs;
    let handle = start(cfg, shutdown.clone()).await?;
    let stop = shutdown.clone();
    let all = tokio::select! {
        _ = stop.cancelled() => None,
        t = handle.wait_all_registered(if duration == 0 { Duration::from_secs(86_400 * 365) } else { Duration::from_secs(duration) }) => t,
    };
    let rate = all.map(|s| handle.devices as f64 / s.max(1e-9));
    tracing::info!(devices = handle.devices, all_registered_secs = ?all, registrations_per_sec = ?rate, "registration phase done");
    if duration == 0 {
        shutdown.cancelled().await;
    } else {
        let rest = Duration::from_secs(duration).saturating_sub(handle.started.elapsed());
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(rest) => {}
        }
    }
    let report = handle.stats.report(handle.devices, all);
    shutdown.cancel();
    // Let devices unregister.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_ids_count_up_in_the_serial() {
        assert_eq!(super::device_id("34020000001320000001", 0).unwrap(), "34020000001320000001");
        assert_eq!(super::device_id("34020000001320000001", 41).unwrap(), "34020000001320000042");
        assert!(super::device_id("34020000001329999999", 1).is_err());
        assert!(super::device_id("bad", 1).is_err());
    }
}
