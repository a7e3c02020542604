//! A simulated PTZ head per channel: the position moves while a move command lasts (pan and
//! tilt at up to 120°/s at speed 255, zoom at up to 4× per second at speed 15), stops on stop,
//! and presets remember positions (set, call, delete, listed by PresetQuery). Time is an input,
//! so the model is tested without waiting.

use std::collections::BTreeMap;

use gb::ptz::{Pan, PtzCommand, Tilt, Zoom};

/// Where the head points: pan 0–360° (wraps), tilt −90–90°, zoom 1–32×.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub pan: f64,
    pub tilt: f64,
    pub zoom: f64,
}

impl Default for Position {
    fn default() -> Self {
        Self { pan: 0.0, tilt: 0.0, zoom: 1.0 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Motion {
    /// Degrees per second (signed), and zoom factor per second (1 = still).
    pan: f64,
    tilt: f64,
    zoom: f64,
    since_ms: u64,
}

#[derive(Debug, Default)]
pub struct PtzHead {
    at: Position,
    motion: Option<Motion>,
    presets: BTreeMap<u8, Position>,
}

const PAN_DEG_PER_SEC_AT_255: f64 = 120.0;
const ZOOM_RATE_AT_15: f64 = 4.0;

impl PtzHead {
    /// The position at `now_ms` (moving heads move on).
    pub fn position(&self, now_ms: u64) -> Position {
        let Some(m) = self.motion else { return self.at };
        let secs = now_ms.saturating_sub(m.since_ms) as f64 / 1000.0;
        Position {
            pan: (self.at.pan + m.pan * secs).rem_euclid(360.0),
            tilt: (self.at.tilt + m.tilt * secs).clamp(-90.0, 90.0),
            zoom: (self.at.zoom * m.zoom.powf(secs)).clamp(1.0, 32.0),
        }
    }

    /// Presets by number, with their names as a camera lists them.
    pub fn presets(&self) -> Vec<(u8, String)> {
        self.presets.keys().map(|n| (*n, format!("预置位{n}"))).collect()
    }

    pub fn apply(&mut self, cmd: PtzCommand, now_ms: u64) {
        match cmd {
            PtzCommand::Move { pan, tilt, zoom, pan_speed, tilt_speed, zoom_speed } => {
                self.at = self.position(now_ms);
                let deg = |s: u8| f64::from(s) / 255.0 * PAN_DEG_PER_SEC_AT_255;
                let pan = match pan {
                    Pan::None => 0.0,
                    Pan::Left => -deg(pan_speed),
                    Pan::Right => deg(pan_speed),
                };
                let tilt = match tilt {
                    Tilt::None => 0.0,
                    Tilt::Up => deg(tilt_speed),
                    Tilt::Down => -deg(tilt_speed),
                };
                let rate = 1.0 + f64::from(zoom_speed) / 15.0 * (ZOOM_RATE_AT_15 - 1.0);
                let zoom = match zoom {
                    Zoom::None => 1.0,
                    Zoom::In => rate,
                    Zoom::Out => 1.0 / rate,
                };
                let still = pan == 0.0 && tilt == 0.0 && zoom == 1.0;
                self.motion = (!still).then_some(Motion { pan, tilt, zoom, since_ms: now_ms });
            }
            PtzCommand::SetPreset(n) => {
                let here = self.position(now_ms);
                self.presets.insert(n, here);
            }
            PtzCommand::CallPreset(n) => {
                if let Some(p) = self.presets.get(&n) {
                    self.at = *p;
                    self.motion = None;
                }
            }
            PtzCommand::DeletePreset(n) => {
                self.presets.remove(&n);
            }
            // Lens, cruise, scan and auxiliary switches are acknowledged; the picture is a clip.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_moves_while_commanded_and_presets_remember_where() {
        let mut h = PtzHead::default();
        let right = PtzCommand::Move { pan: Pan::Right, tilt: Tilt::Up, zoom: Zoom::In, pan_speed: 255, tilt_speed: 51, zoom_speed: 15 };
        h.apply(right, 1000);
        let p = h.position(1500);
        assert!((p.pan - 60.0).abs() < 1e-9 && (p.tilt - 12.0).abs() < 1e-9 && (p.zoom - 2.0).abs() < 1e-9, "{p:?}");
        h.apply(PtzCommand::STOP, 1500);
        assert_eq!(h.position(9000), p, "stopped");
        h.apply(PtzCommand::SetPreset(3), 9000);
        h.apply(
            PtzCommand::Move { pan: Pan::Left, tilt: Tilt::None, zoom: Zoom::None, pan_speed: 255, tilt_speed: 0, zoom_speed: 0 },
            9000,
        );
        // 60° − 120°/s × 1 s wraps to 300°.
        assert!((h.position(10000).pan - 300.0).abs() < 1e-9, "{:?}", h.position(10000));
        h.apply(PtzCommand::CallPreset(3), 10000);
        assert_eq!(h.position(20000), p, "back at the preset, still");
        h.apply(PtzCommand::SetPreset(1), 20000);
        h.apply(PtzCommand::DeletePreset(3), 20000);
        h.apply(PtzCommand::CallPreset(9), 20000); // unknown: nothing happens
        assert_eq!(h.presets(), vec![(1, "预置位1".to_owned())]);
    }
}
