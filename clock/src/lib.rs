//! Time for every gbcluster crate: the wall clock in one place (`now_ms`), and civil dates
//! (`civil`) for GB `Date` headers, folder names and device-local times; date-times as text
//! (`stamp`: the GB zoneless form and RFC 3339). Cores take `now` as an
//! argument; only shells call `now_ms`.

pub mod civil;
pub mod stamp;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
