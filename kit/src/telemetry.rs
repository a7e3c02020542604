//! Logging setup shared by every entry point.

/// Installs a `tracing` subscriber. `RUST_LOG` wins over `default_filter`. rsipstack logs every
/// datagram at `info`, so it is held at `warn` unless asked for.
pub fn init(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default_filter},rsipstack=warn")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}
