//! The 8-byte front-end control command of GB/T 28181 annex A.3 (`<PTZCmd>` in a
//! `DeviceControl`), both ways: what the platform sends and what a device (gbsim) reads.
//!
//! | byte | meaning |
//! | --- | --- |
//! | 1 | `A5H` |
//! | 2 | high nibble: version (0); low nibble: (byte 1 high + byte 1 low + byte 2 high) mod 16 — so `0FH` |
//! | 3 | address, low 8 bits |
//! | 4 | instruction |
//! | 5, 6 | data 1, data 2 |
//! | 7 | high nibble: data 3; low nibble: address, high 4 bits |
//! | 8 | checksum: bytes 1–7 summed, low 8 bits |
//!
//! Instructions: `00xx xxxx` pan/tilt/zoom (bit 5 zoom out, 4 zoom in, 3 up, 2 down, 1 left,
//! 0 right; data 1 pan speed, data 2 tilt speed, data 3 zoom speed), `0100 xxxx` focus/iris
//! (bit 3 iris close, 2 iris open, 1 focus near, 0 focus far; data 1 focus speed, data 2 iris
//! speed), `81H`–`83H` set/call/delete preset (data 2 the preset), `84H`–`88H` cruise,
//! `89H`–`8AH` scan, `8CH`/`8DH` auxiliary switch on/off.

use std::fmt;

/// One decoded or to-be-sent command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtzCommand {
    /// Pan, tilt and zoom at once; all-zero directions is stop. Speeds: pan and tilt 0–255,
    /// zoom 0–15.
    Move {
        pan: Pan,
        tilt: Tilt,
        zoom: Zoom,
        pan_speed: u8,
        tilt_speed: u8,
        zoom_speed: u8,
    },
    /// Focus and iris; both `None` stops them. Speeds 0–255.
    Lens {
        focus: Option<Focus>,
        iris: Option<Iris>,
        focus_speed: u8,
        iris_speed: u8,
    },
    SetPreset(u8),
    CallPreset(u8),
    DeletePreset(u8),
    /// Adds a preset to a cruise route (`group`, `preset`).
    CruiseAdd {
        group: u8,
        preset: u8,
    },
    /// Removes a preset from a route; preset 0 deletes the whole route.
    CruiseRemove {
        group: u8,
        preset: u8,
    },
    /// Cruise speed, 12 bits.
    CruiseSpeed {
        group: u8,
        speed: u16,
    },
    /// Dwell time at each point, seconds, 12 bits.
    CruiseDwell {
        group: u8,
        secs: u16,
    },
    CruiseStart {
        group: u8,
    },
    ScanStart {
        group: u8,
    },
    ScanLeftBound {
        group: u8,
    },
    ScanRightBound {
        group: u8,
    },
    /// Scan speed, 12 bits.
    ScanSpeed {
        group: u8,
        speed: u16,
    },
    AuxOn(u8),
    AuxOff(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pan {
    None,
    Left,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tilt {
    None,
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zoom {
    None,
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Near,
    Far,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iris {
    Open,
    Close,
}

/// What is wrong with a command's parameters, or with 8 bytes read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtzError {
    #[error("{field} must be {range}, not {value}")]
    OutOfRange { field: &'static str, range: &'static str, value: u32 },
    #[error("a PTZCmd is 16 hex digits")]
    NotHex,
    #[error("not a PTZCmd: the first byte is {0:#04x}, not 0xa5")]
    Header(u8),
    #[error("checksum {found:#04x}, expected {expected:#04x}")]
    Checksum { found: u8, expected: u8 },
    #[error("unknown instruction {0:#04x}")]
    Instruction(u8),
}

/// The 8 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtzBytes(pub [u8; 8]);

impl fmt::Display for PtzBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// The address most platforms send (peers' `A50F01…`): cameras take theirs from the SIP
/// channel id and ignore it.
pub const DEFAULT_ADDRESS: u16 = 1;

fn check12(field: &'static str, value: u16) -> Result<u16, PtzError> {
    if value > 0xFFF {
        return Err(PtzError::OutOfRange { field, range: "0-4095", value: u32::from(value) });
    }
    Ok(value)
}

fn check_preset(value: u8) -> Result<u8, PtzError> {
    if value == 0 {
        return Err(PtzError::OutOfRange { field: "preset", range: "1-255", value: 0 });
    }
    Ok(value)
}

impl PtzCommand {
    pub const STOP: PtzCommand =
        PtzCommand::Move { pan: Pan::None, tilt: Tilt::None, zoom: Zoom::None, pan_speed: 0, tilt_speed: 0, zoom_speed: 0 };

    /// (instruction, data 1, data 2, data 3) after checking the ranges.
    fn fields(&self) -> Result<(u8, u8, u8, u8), PtzError> {
        Ok(match *self {
            PtzCommand::Move { pan, tilt, zoom, pan_speed, tilt_speed, zoom_speed } => {
                if zoom_speed > 15 {
                    return Err(PtzError::OutOfRange { field: "zoom_speed", range: "0-15", value: u32::from(zoom_speed) });
                }
                let code = match pan {
                    Pan::None => 0,
                    Pan::Right => 0x01,
                    Pan::Left => 0x02,
                } | match tilt {
                    Tilt::None => 0,
                    Tilt::Down => 0x04,
                    Tilt::Up => 0x08,
                } | match zoom {
                    Zoom::None => 0,
                    Zoom::In => 0x10,
                    Zoom::Out => 0x20,
                };
                // A direction not moving sends speed 0, as the standard's examples do.
                let pan_speed = if pan == Pan::None { 0 } else { pan_speed };
                let tilt_speed = if tilt == Tilt::None { 0 } else { tilt_speed };
                let zoom_speed = if zoom == Zoom::None { 0 } else { zoom_speed };
                (code, pan_speed, tilt_speed, zoom_speed)
            }
            PtzCommand::Lens { focus, iris, focus_speed, iris_speed } => {
                let code =
                    0x40 | match focus {
                        None => 0,
                        Some(Focus::Far) => 0x01,
                        Some(Focus::Near) => 0x02,
                    } | match iris {
                        None => 0,
                        Some(Iris::Open) => 0x04,
                        Some(Iris::Close) => 0x08,
                    };
                let focus_speed = if focus.is_none() { 0 } else { focus_speed };
                let iris_speed = if iris.is_none() { 0 } else { iris_speed };
                (code, focus_speed, iris_speed, 0)
            }
            PtzCommand::SetPreset(p) => (0x81, 0, check_preset(p)?, 0),
            PtzCommand::CallPreset(p) => (0x82, 0, check_preset(p)?, 0),
            PtzCommand::DeletePreset(p) => (0x83, 0, check_preset(p)?, 0),
            PtzCommand::CruiseAdd { group, preset } => (0x84, group, check_preset(preset)?, 0),
            PtzCommand::CruiseRemove { group, preset } => (0x85, group, preset, 0),
            PtzCommand::CruiseSpeed { group, speed } => {
                let s = check12("speed", speed)?;
                (0x86, group, (s & 0xFF) as u8, (s >> 8) as u8)
            }
            PtzCommand::CruiseDwell { group, secs } => {
                let s = check12("dwell_secs", secs)?;
                (0x87, group, (s & 0xFF) as u8, (s >> 8) as u8)
            }
            PtzCommand::CruiseStart { group } => (0x88, group, 0, 0),
            PtzCommand::ScanStart { group } => (0x89, group, 0, 0),
            PtzCommand::ScanLeftBound { group } => (0x89, group, 1, 0),
            PtzCommand::ScanRightBound { group } => (0x89, group, 2, 0),
            PtzCommand::ScanSpeed { group, speed } => {
                let s = check12("speed", speed)?;
                (0x8A, group, (s & 0xFF) as u8, (s >> 8) as u8)
            }
            PtzCommand::AuxOn(n) => (0x8C, n, 0, 0),
            PtzCommand::AuxOff(n) => (0x8D, n, 0, 0),
        })
    }

    /// The command's 8 bytes for device `address` (12 bits).
    pub fn encode(&self, address: u16) -> Result<PtzBytes, PtzError> {
        let address = check12("address", address)?;
        let (code, d1, d2, d3) = self.fields()?;
        let mut b = [0xA5, 0, (address & 0xFF) as u8, code, d1, d2, (d3 << 4) | (address >> 8) as u8, 0];
        let version = 0u8;
        b[1] = (version << 4) | (((b[0] >> 4) + (b[0] & 0x0F) + version) & 0x0F);
        b[7] = b[..7].iter().fold(0u8, |s, x| s.wrapping_add(*x));
        Ok(PtzBytes(b))
    }

    /// Reads the hex text of a `<PTZCmd>` (what a device does). Never panics.
    pub fn decode_hex(hex: &str) -> Result<(PtzCommand, u16), PtzError> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 16 {
            return Err(PtzError::NotHex);
        }
        let mut b = [0u8; 8];
        for (i, pair) in hex.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| PtzError::NotHex)?;
            b[i] = u8::from_str_radix(s, 16).map_err(|_| PtzError::NotHex)?;
        }
        Self::decode(&b)
    }

    /// Reads 8 bytes: the command and the device address.
    pub fn decode(b: &[u8; 8]) -> Result<(PtzCommand, u16), PtzError> {
        if b[0] != 0xA5 {
            return Err(PtzError::Header(b[0]));
        }
        let expected = b[..7].iter().fold(0u8, |s, x| s.wrapping_add(*x));
        if b[7] != expected {
            return Err(PtzError::Checksum { found: b[7], expected });
        }
        let address = u16::from(b[2]) | (u16::from(b[6] & 0x0F) << 8);
        let (code, d1, d2, d3) = (b[3], b[4], b[5], b[6] >> 4);
        let twelve = u16::from(d2) | (u16::from(d3) << 8);
        let cmd = match code {
            0x00..=0x3F => PtzCommand::Move {
                pan: match code & 0x03 {
                    0x01 => Pan::Right,
                    0x02 => Pan::Left,
                    _ => Pan::None,
                },
                tilt: match code & 0x0C {
                    0x04 => Tilt::Down,
                    0x08 => Tilt::Up,
                    _ => Tilt::None,
                },
                zoom: match code & 0x30 {
                    0x10 => Zoom::In,
                    0x20 => Zoom::Out,
                    _ => Zoom::None,
                },
                pan_speed: d1,
                tilt_speed: d2,
                zoom_speed: d3,
            },
            0x40..=0x4F => PtzCommand::Lens {
                focus: match code & 0x03 {
                    0x01 => Some(Focus::Far),
                    0x02 => Some(Focus::Near),
                    _ => None,
                },
                iris: match code & 0x0C {
                    0x04 => Some(Iris::Open),
                    0x08 => Some(Iris::Close),
                    _ => None,
                },
                focus_speed: d1,
                iris_speed: d2,
            },
            0x81 => PtzCommand::SetPreset(d2),
            0x82 => PtzCommand::CallPreset(d2),
            0x83 => PtzCommand::DeletePreset(d2),
            0x84 => PtzCommand::CruiseAdd { group: d1, preset: d2 },
            0x85 => PtzCommand::CruiseRemove { group: d1, preset: d2 },
            0x86 => PtzCommand::CruiseSpeed { group: d1, speed: twelve },
            0x87 => PtzCommand::CruiseDwell { group: d1, secs: twelve },
            0x88 => PtzCommand::CruiseStart { group: d1 },
            0x89 => match d2 {
                1 => PtzCommand::ScanLeftBound { group: d1 },
                2 => PtzCommand::ScanRightBound { group: d1 },
                _ => PtzCommand::ScanStart { group: d1 },
            },
            0x8A => PtzCommand::ScanSpeed { group: d1, speed: twelve },
            0x8C => PtzCommand::AuxOn(d1),
            0x8D => PtzCommand::AuxOff(d1),
            other => return Err(PtzError::Instruction(other)),
        };
        Ok((cmd, address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: PtzCommand) -> String {
        c.encode(DEFAULT_ADDRESS).unwrap().to_string()
    }

    fn mv(pan: Pan, tilt: Tilt, zoom: Zoom, p: u8, t: u8, z: u8) -> PtzCommand {
        PtzCommand::Move { pan, tilt, zoom, pan_speed: p, tilt_speed: t, zoom_speed: z }
    }

    /// Bytes worked out by hand from the standard's table (annex A.3): byte 2 is
    /// (0xA + 0x5 + 0) mod 16 = 0xF, byte 8 the low 8 bits of the sum of bytes 1-7.
    #[test]
    fn commands_encode_to_the_standards_bytes() {
        // Stop: A5+0F+01 = B5.
        assert_eq!(hex(PtzCommand::STOP), "A50F0100000000B5");
        // Right at pan speed 0x32: instruction 01, B5+01+32 = E8.
        assert_eq!(hex(mv(Pan::Right, Tilt::None, Zoom::None, 0x32, 0, 0)), "A50F0101320000E8");
        // Left: 02, B5+02+32 = E9 (a direction not moving sends speed 0).
        assert_eq!(hex(mv(Pan::Left, Tilt::None, Zoom::None, 0x32, 0x40, 0)), "A50F0102320000E9");
        // Up 08 at tilt 0x64: B5+08+64 = 121 → 21.
        assert_eq!(hex(mv(Pan::None, Tilt::Up, Zoom::None, 0, 0x64, 0)), "A50F010800640021");
        // Down-left 06 at 0x10/0x10: B5+06+10+10 = DB.
        assert_eq!(hex(mv(Pan::Left, Tilt::Down, Zoom::None, 0x10, 0x10, 0)), "A50F0106101000DB");
        // Zoom in 10, zoom speed 4 in the high nibble of byte 7: B5+10+40 = 105 → 05.
        assert_eq!(hex(mv(Pan::None, Tilt::None, Zoom::In, 0, 0, 4)), "A50F011000004005");
        // Zoom out 20 at 15: B5+20+F0 = 1C5 → C5.
        assert_eq!(hex(mv(Pan::None, Tilt::None, Zoom::Out, 0, 0, 15)), "A50F01200000F0C5");
        // Focus far 41 at 0x20: B5+41+20 = 116 → 16; iris open 44 at 0x20: B5+44+20 = 119 → 19.
        let lens = |focus, iris, f, i| PtzCommand::Lens { focus, iris, focus_speed: f, iris_speed: i };
        assert_eq!(hex(lens(Some(Focus::Far), None, 0x20, 0)), "A50F014120000016");
        assert_eq!(hex(lens(None, Some(Iris::Open), 0, 0x20)), "A50F014400200019");
        assert_eq!(hex(lens(Some(Focus::Near), Some(Iris::Close), 1, 2)), "A50F014A01020002");
        assert_eq!(hex(lens(None, None, 9, 9)), "A50F0140000000F5");
        // Presets: data 2 is the number. Set 3: B5+81+03 = 139 → 39; call 3: 3A; delete 3: 3B.
        assert_eq!(hex(PtzCommand::SetPreset(3)), "A50F018100030039");
        assert_eq!(hex(PtzCommand::CallPreset(3)), "A50F01820003003A");
        assert_eq!(hex(PtzCommand::DeletePreset(255)), "A50F018300FF0037");
        // Cruise speed 0x123 in group 2: low 8 bits in data 2, high 4 in byte 7's high nibble.
        assert_eq!(hex(PtzCommand::CruiseSpeed { group: 2, speed: 0x123 }), "A50F018602231070");
        // Scan right bound of group 1: 89 01 02 (B5+89+01+02 = 141 → 41); aux 2 on: 8C 02.
        assert_eq!(hex(PtzCommand::ScanRightBound { group: 1 }), "A50F018901020041");
        assert_eq!(hex(PtzCommand::AuxOn(2)), "A50F018C02000043");
        // A 12-bit address: low 8 bits in byte 3, high 4 in byte 7's low nibble.
        assert_eq!(PtzCommand::STOP.encode(0x2AB).unwrap().to_string(), "A50FAB0000000261");
    }

    #[test]
    fn out_of_range_parameters_name_their_field() {
        let e = mv(Pan::None, Tilt::None, Zoom::In, 0, 0, 16).encode(1).unwrap_err();
        assert_eq!(e.to_string(), "zoom_speed must be 0-15, not 16");
        assert!(matches!(PtzCommand::SetPreset(0).encode(1), Err(PtzError::OutOfRange { field: "preset", .. })));
        assert!(matches!(PtzCommand::ScanSpeed { group: 0, speed: 4096 }.encode(1), Err(PtzError::OutOfRange { field: "speed", .. })));
        assert!(matches!(PtzCommand::STOP.encode(0x1000), Err(PtzError::OutOfRange { field: "address", .. })));
    }

    #[test]
    fn every_command_reads_back_as_sent() {
        let all = [
            PtzCommand::STOP,
            mv(Pan::Left, Tilt::Up, Zoom::Out, 200, 100, 7),
            PtzCommand::Lens { focus: Some(Focus::Near), iris: Some(Iris::Open), focus_speed: 3, iris_speed: 4 },
            PtzCommand::SetPreset(1),
            PtzCommand::CallPreset(200),
            PtzCommand::DeletePreset(9),
            PtzCommand::CruiseAdd { group: 1, preset: 2 },
            PtzCommand::CruiseRemove { group: 1, preset: 0 },
            PtzCommand::CruiseSpeed { group: 3, speed: 0xFFF },
            PtzCommand::CruiseDwell { group: 3, secs: 30 },
            PtzCommand::CruiseStart { group: 3 },
            PtzCommand::ScanStart { group: 4 },
            PtzCommand::ScanLeftBound { group: 4 },
            PtzCommand::ScanRightBound { group: 4 },
            PtzCommand::ScanSpeed { group: 4, speed: 77 },
            PtzCommand::AuxOn(1),
            PtzCommand::AuxOff(1),
        ];
        for c in all {
            let text = c.encode(0x123).unwrap().to_string();
            assert_eq!(PtzCommand::decode_hex(&text), Ok((c, 0x123)), "{text}");
            assert_eq!(PtzCommand::decode_hex(&text.to_lowercase()), Ok((c, 0x123)));
        }
    }

    #[test]
    fn bad_bytes_are_refused_not_guessed() {
        assert_eq!(PtzCommand::decode_hex("A50F0100000000B6"), Err(PtzError::Checksum { found: 0xB6, expected: 0xB5 }));
        assert_eq!(PtzCommand::decode_hex("B50F0100000000B5"), Err(PtzError::Header(0xB5)));
        assert_eq!(PtzCommand::decode_hex("A50F01000000"), Err(PtzError::NotHex));
        assert_eq!(PtzCommand::decode_hex("A50F01000000ZZB5"), Err(PtzError::NotHex));
        assert_eq!(PtzCommand::decode_hex("A50F0100000000é"), Err(PtzError::NotHex));
        assert_eq!(PtzCommand::decode_hex("A50F01FF000000B4"), Err(PtzError::Instruction(0xFF)));
    }
}
