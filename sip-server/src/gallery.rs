//! Snapshot files and their gallery: pictures of channels saved on request or on a schedule
//! under `<dir>/YYYY/MM/DD/<stream>/HHMMSSmmm.jpg` (UTC; the stream is `<device>_<channel>`),
//! each written to a temporary name and renamed into place, so a reader never sees half a
//! picture. The files are the index: a picture's id is its path under `dir`, listing walks the
//! day folders newest first, and retention (per channel count, age, total bytes) deletes the
//! oldest. Nodes that share `dir` (a shared volume) share the gallery.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[sip.snapshots]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GalleryConfig {
    /// Where pictures are kept.
    pub dir: String,
    /// Pictures kept per channel; the oldest go first.
    pub keep_per_channel: usize,
    /// Days pictures are kept.
    pub keep_days: u32,
    /// Bytes all pictures may take; past it the oldest go.
    pub max_bytes: u64,
    /// How often age and size are checked (the per-channel count is checked at each save).
    pub prune_every_secs: u64,
}

impl Default for GalleryConfig {
    fn default() -> Self {
        Self { dir: "snapshots".into(), keep_per_channel: 1000, keep_days: 30, max_bytes: 10 << 30, prune_every_secs: 60 }
    }
}

/// A saved picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    /// Its path under `dir`: `YYYY/MM/DD/<stream>/HHMMSSmmm.jpg`.
    pub id: String,
    pub stream_id: String,
    pub taken_ms: u64,
    pub bytes: u64,
}

/// Which pictures a listing or a range delete is about.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `<device>_` (a device's channels) or `<device>_<channel>` (one channel); empty: all.
    pub stream_prefix: String,
    /// Exact stream (a channel) rather than a prefix.
    pub exact: bool,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
}

impl Filter {
    fn stream(&self, s: &str) -> bool {
        if self.exact {
            s == self.stream_prefix
        } else {
            s.starts_with(&self.stream_prefix)
        }
    }

    fn time(&self, t: u64) -> bool {
        self.from_ms.is_none_or(|f| t >= f) && self.to_ms.is_none_or(|to| t < to)
    }
}

/// The day folder of a time: `YYYY/MM/DD`.
fn day_of(ms: u64) -> (i64, u32, u32) {
    kit::clock::civil::civil_from_days((ms / 1000) as i64 / 86_400)
}

/// A picture's path for `stream` taken at `ms`.
pub fn path_of(stream: &str, ms: u64) -> String {
    let (y, m, d) = day_of(ms);
    let secs = (ms / 1000) % 86_400;
    format!("{y:04}/{m:02}/{d:02}/{stream}/{:02}{:02}{:02}{:03}.jpg", secs / 3600, secs / 60 % 60, secs % 60, ms % 1000)
}

/// Reads an id back: (stream, taken ms). Anything else (another shape, `..`, a separator in a
/// name) is none, so an id from a request can never name a file outside the gallery.
pub fn parse_id(id: &str) -> Option<(String, u64)> {
    let parts: Vec<&str> = id.split('/').collect();
    let [y, m, d, stream, file] = parts.as_slice() else { return None };
    let num = |s: &str, len: usize| (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok()).flatten();
    let (y, m, d) = (num(y, 4)?, num(m, 2)?, num(d, 2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    if stream.is_empty() || stream.len() > 128 || !stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return None;
    }
    let t = num(file.strip_suffix(".jpg")?, 9)?;
    let (hh, mm, ss, ms) = (t / 10_000_000, t / 100_000 % 100, t / 1000 % 100, t % 1000);
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = kit::clock::civil::days_from_civil(y as i64, m as i64, d as i64);
    let taken = (days.max(0) as u64 * 86_400 + hh * 3600 + mm * 60 + ss) * 1000 + ms;
    Some((stream.to_string(), taken))
}

/// Saves `jpeg` as `stream`'s picture at `ms`: written beside, then renamed into place.
pub fn save(dir: &Path, stream: &str, ms: u64, jpeg: &[u8]) -> std::io::Result<Saved> {
    let id = path_of(stream, ms);
    let path = dir.join(&id);
    let folder = path.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
    std::fs::create_dir_all(folder)?;
    let tmp = folder.join(format!(".{}.tmp", rand::random::<u32>()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(jpeg)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(Saved { id, stream_id: stream.to_owned(), taken_ms: ms, bytes: jpeg.len() as u64 })
}

/// The file of an id, if the id is well formed.
pub fn file_of(dir: &Path, id: &str) -> Option<PathBuf> {
    parse_id(id).map(|_| dir.join(id))
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> =
        std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect()).unwrap_or_default();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

/// Every picture matching `f`, newest first.
pub fn all(dir: &Path, f: &Filter) -> Vec<Saved> {
    let mut out = Vec::new();
    for y in names(dir) {
        for m in names(&dir.join(&y)) {
            for d in names(&dir.join(&y).join(&m)) {
                let day = dir.join(&y).join(&m).join(&d);
                for stream in names(&day).into_iter().filter(|s| f.stream(s)) {
                    for file in names(&day.join(&stream)) {
                        let id = format!("{y}/{m}/{d}/{stream}/{file}");
                        let Some((_, taken_ms)) = parse_id(&id) else { continue };
                        if f.time(taken_ms) {
                            let bytes = std::fs::metadata(dir.join(&id)).map(|m| m.len()).unwrap_or(0);
                            out.push(Saved { id, stream_id: stream.clone(), taken_ms, bytes });
                        }
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| b.taken_ms.cmp(&a.taken_ms).then_with(|| b.id.cmp(&a.id)));
    out
}

/// Deletes one picture (and folders it leaves empty).
pub fn delete(dir: &Path, id: &str) -> bool {
    let Some(path) = file_of(dir, id) else { return false };
    let gone = std::fs::remove_file(&path).is_ok();
    if gone {
        // Empty folders up to the gallery's root go (remove_dir refuses non-empty ones).
        let mut p = path.parent();
        while let Some(folder) = p.filter(|f| f.starts_with(dir) && *f != dir) {
            if std::fs::remove_dir(folder).is_err() {
                break;
            }
            p = folder.parent();
        }
    }
    gone
}

/// What retention deletes among `pictures` (newest first): beyond `keep_per_channel` per
/// stream, older than `keep_days`, then the oldest until the rest fits in `max_bytes`.
pub fn to_prune(pictures: &[Saved], cfg: &GalleryConfig, now_ms: u64) -> Vec<String> {
    let oldest_kept = now_ms.saturating_sub(u64::from(cfg.keep_days) * 86_400_000);
    let mut per_stream: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut kept_bytes = 0u64;
    // Once the budget is spent, everything older goes too.
    let mut over = false;
    let mut out = Vec::new();
    for p in pictures {
        let n = per_stream.entry(p.stream_id.as_str()).or_default();
        *n += 1;
        over |= kept_bytes + p.bytes > cfg.max_bytes;
        if over || *n > cfg.keep_per_channel || p.taken_ms < oldest_kept {
            out.push(p.id.clone());
        } else {
            kept_bytes += p.bytes;
        }
    }
    out
}

/// Applies retention to the whole gallery; returns how many pictures went.
pub fn prune(dir: &Path, cfg: &GalleryConfig, now_ms: u64) -> usize {
    let doomed = to_prune(&all(dir, &Filter::default()), cfg, now_ms);
    doomed.iter().filter(|id| delete(dir, id)).count()
}

/// Applies the per-channel count to one stream (at each save: cheap, one stream's folders).
pub fn prune_stream(dir: &Path, cfg: &GalleryConfig, stream: &str) -> usize {
    let f = Filter { stream_prefix: stream.to_owned(), exact: true, ..Default::default() };
    let pictures = all(dir, &f);
    pictures.iter().skip(cfg.keep_per_channel).filter(|p| delete(dir, &p.id)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_paths_read_back_and_nothing_else_is_an_id() {
        let ms = 1_796_115_615_123; // 2026-12-01T09:00:15.123Z
        let id = path_of("34020000001320000001_34020000001310000001", ms);
        assert_eq!(id, "2026/12/01/34020000001320000001_34020000001310000001/090015123.jpg");
        assert_eq!(parse_id(&id), Some(("34020000001320000001_34020000001310000001".into(), ms)));
        for bad in [
            "2026/12/01/../090015123.jpg",
            "2026/12/01/a/b/090015123.jpg",
            "2026/13/01/s/090015123.jpg",
            "2026/12/01/s/250015123.jpg",
            "2026/12/01/s/090015123.png",
            "/etc/passwd",
            "2026/12/01/s.x/090015123.jpg",
            "",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn retention_keeps_the_newest_by_count_age_and_bytes() {
        let cfg = GalleryConfig { keep_per_channel: 2, keep_days: 1, max_bytes: 250, ..Default::default() };
        let now = 10 * 86_400_000;
        let p = |id: &str, s: &str, t: u64, b: u64| Saved { id: id.into(), stream_id: s.into(), taken_ms: t, bytes: b };
        // Newest first, as `all` gives them.
        let pics = vec![
            p("a3", "a", now - 1000, 100),
            p("b2", "b", now - 2000, 100),
            p("a2", "a", now - 3000, 100),
            p("a1", "a", now - 4000, 10),
            p("b1", "b", now - 2 * 86_400_000, 10),
        ];
        assert_eq!(to_prune(&pics, &cfg, now), vec!["a2", "a1", "b1"], "a2: bytes; a1: count; b1: age");
    }

    #[test]
    fn saved_pictures_are_listed_newest_first_and_deleted_with_their_folders() {
        let dir = std::env::temp_dir().join(format!("gbc-gallery-unit-{}", rand::random::<u32>()));
        let day = 1_796_115_615_000;
        for (s, t) in [("d_c1", day), ("d_c1", day + 1000), ("d_c2", day + 2000), ("e_c1", day + 86_400_000)] {
            save(&dir, s, t, &[0xff, 0xd8, 1, 0xff, 0xd9]).unwrap();
        }
        let f = Filter { stream_prefix: "d_".into(), ..Default::default() };
        let got: Vec<String> = all(&dir, &f).into_iter().map(|p| p.stream_id + "@" + &p.taken_ms.to_string()).collect();
        assert_eq!(got, [format!("d_c2@{}", day + 2000), format!("d_c1@{}", day + 1000), format!("d_c1@{day}")]);
        let f = Filter { from_ms: Some(day + 500), to_ms: Some(day + 1500), ..Default::default() };
        assert_eq!(all(&dir, &f).len(), 1);
        let e = all(&dir, &Filter { stream_prefix: "e_c1".into(), exact: true, ..Default::default() });
        assert!(delete(&dir, &e[0].id));
        assert!(!dir.join("2026/12/02").exists(), "its empty day folder goes with it");
        assert_eq!(prune_stream(&dir, &GalleryConfig { keep_per_channel: 1, ..Default::default() }, "d_c1"), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
