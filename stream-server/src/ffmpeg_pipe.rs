//! ffmpeg as a live filter between two pipes, the way the MJPEG encoder (H.264/H.265 → JPEG)
//! and a JPEG source's H.264 encoder (JPEG → H.264) run it: input on stdin, output on stdout,
//! killed with its handle.

use std::process::Stdio;

/// An ffmpeg that reads `format` from stdin as a live stream: it starts on the first pictures
/// (not after probing megabytes) and times them by their arrival, so the output follows the
/// source's rate whatever it is. The caller adds the output arguments and spawns it.
pub fn live(ffmpeg: &str, format: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-fflags", "nobuffer", "-probesize", "32768", "-analyzeduration", "0"])
        .args(["-use_wallclock_as_timestamps", "1", "-f", format, "-i", "pipe:0", "-an"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}
