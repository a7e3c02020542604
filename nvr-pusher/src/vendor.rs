//! What replaces the vendor SDKs: the RTSP live and playback URLs of Hikvision and Dahua NVRs,
//! their time formats (local time on the device), and how the API's PTZ commands map onto
//! Hikvision ISAPI continuous moves and Dahua `ptz.cgi` codes.

use std::fmt;

use kit::clock::civil;

/// `nvr_category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvrCategory {
    Hikvision,
    Dahua,
    /// Any brand: the request carries the full `rtsp_url`.
    RtspUrl,
    /// Any ONVIF device: the live URI from its media service, PTZ through its PTZ service.
    Onvif,
}

impl NvrCategory {
    pub fn from_code(c: i64) -> Option<Self> {
        match c {
            0 => Some(NvrCategory::Hikvision),
            1 => Some(NvrCategory::Dahua),
            2 => Some(NvrCategory::RtspUrl),
            3 => Some(NvrCategory::Onvif),
            _ => None,
        }
    }
}

/// A wall-clock time on the device, `YYYY-MM-DD HH:MM:SS` (what the API speaks; NVRs read
/// their RTSP playback times as local time too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl LocalTime {
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.trim().as_bytes();
        if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| std::str::from_utf8(&b[r]).ok()?.parse::<u16>().ok();
        let t = LocalTime {
            year: n(0..4)?,
            month: u8::try_from(n(5..7)?).ok()?,
            day: u8::try_from(n(8..10)?).ok()?,
            hour: u8::try_from(n(11..13)?).ok()?,
            minute: u8::try_from(n(14..16)?).ok()?,
            second: u8::try_from(n(17..19)?).ok()?,
        };
        let valid = (1970..=2100).contains(&t.year)
            && (1..=12).contains(&t.month)
            && (1..=civil::days_in_month(i64::from(t.year), u32::from(t.month))).contains(&u32::from(t.day))
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        valid.then_some(t)
    }

    /// Seconds since 1970-01-01 00:00:00 of this wall time (no zone: for differences and
    /// ordering only).
    pub fn to_secs(&self) -> i64 {
        let days = civil::days_from_civil(i64::from(self.year), i64::from(self.month), i64::from(self.day));
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }

    /// The inverse of [`LocalTime::to_secs`]; `None` outside 1970–2100.
    pub fn from_secs(secs: i64) -> Option<Self> {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil::civil_from_days(days);
        if !(1970..=2100).contains(&year) {
            return None;
        }
        Some(LocalTime {
            year: year as u16,
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        })
    }

    /// This time plus `secs` (clamped to the representable range).
    pub fn plus_secs(&self, secs: i64) -> Self {
        Self::from_secs(self.to_secs().saturating_add(secs)).unwrap_or(*self)
    }

    /// Hikvision RTSP: `YYYYMMDDThhmmssZ` (read as local time despite the Z).
    pub fn hikvision(&self) -> String {
        format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", self.year, self.month, self.day, self.hour, self.minute, self.second)
    }

    /// Dahua RTSP: `YYYY_MM_DD_hh_mm_ss`.
    pub fn dahua(&self) -> String {
        format!("{:04}_{:02}_{:02}_{:02}_{:02}_{:02}", self.year, self.month, self.day, self.hour, self.minute, self.second)
    }

    /// ISAPI XML: `YYYY-MM-DDThh:mm:ssZ`.
    pub fn isapi(&self) -> String {
        format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", self.year, self.month, self.day, self.hour, self.minute, self.second)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02} {:02}:{:02}:{:02}", self.year, self.month, self.day, self.hour, self.minute, self.second)
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The live RTSP URL of `channel` (1-based, as the API gives it), main stream.
pub fn live_url(category: NvrCategory, host: &str, rtsp_port: u16, channel: u32) -> Option<String> {
    let hp = host_port(host, rtsp_port);
    match category {
        // Channel 1 main stream is 101, channel 30 is 3001.
        NvrCategory::Hikvision => Some(format!("rtsp://{hp}/Streaming/Channels/{channel}01")),
        NvrCategory::Dahua => Some(format!("rtsp://{hp}/cam/realmonitor?channel={channel}&subtype=0")),
        NvrCategory::RtspUrl | NvrCategory::Onvif => None,
    }
}

/// The playback RTSP URL of `channel` for a range.
pub fn playback_url(category: NvrCategory, host: &str, rtsp_port: u16, channel: u32, start: &LocalTime, end: &LocalTime) -> Option<String> {
    let hp = host_port(host, rtsp_port);
    match category {
        NvrCategory::Hikvision => {
            Some(format!("rtsp://{hp}/Streaming/tracks/{channel}01?starttime={}&endtime={}", start.hikvision(), end.hikvision()))
        }
        // Dahua firmware is picky about the parameter order: keep it as documented.
        NvrCategory::Dahua => {
            Some(format!("rtsp://{hp}/cam/playback?channel={channel}&subtype=0&starttime={}&endtime={}", start.dahua(), end.dahua()))
        }
        NvrCategory::RtspUrl | NvrCategory::Onvif => None,
    }
}

/// The API's PTZ commands 0–13.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ptz {
    ZoomIn,
    ZoomOut,
    FocusNear,
    FocusFar,
    IrisOpen,
    IrisClose,
    Up,
    Down,
    Left,
    Right,
    UpLeft,
    UpRight,
    DownLeft,
    DownRight,
}

impl Ptz {
    pub fn from_command(c: u8) -> Option<Self> {
        use Ptz::*;
        [ZoomIn, ZoomOut, FocusNear, FocusFar, IrisOpen, IrisClose, Up, Down, Left, Right, UpLeft, UpRight, DownLeft, DownRight]
            .get(usize::from(c))
            .copied()
    }

    /// Dahua `ptz.cgi` `code=`.
    pub fn dahua_code(self) -> &'static str {
        use Ptz::*;
        match self {
            ZoomIn => "ZoomTele",
            ZoomOut => "ZoomWide",
            FocusNear => "FocusNear",
            FocusFar => "FocusFar",
            IrisOpen => "IrisLarge",
            IrisClose => "IrisSmall",
            Up => "Up",
            Down => "Down",
            Left => "Left",
            Right => "Right",
            UpLeft => "LeftUp",
            UpRight => "RightUp",
            DownLeft => "LeftDown",
            DownRight => "RightDown",
        }
    }

    /// Hikvision ISAPI continuous move `(pan, tilt, zoom)` at `speed` (1–100); `None` for focus
    /// and iris, which ISAPI drives through other resources (`/PTZCtrl/channels/{ch}/...`
    /// is pan/tilt/zoom only; focus and iris go to `/System/Video/inputs/channels/{ch}/focus|iris`).
    pub fn hikvision_move(self, speed: i32) -> Option<(i32, i32, i32)> {
        use Ptz::*;
        let s = speed.clamp(1, 100);
        match self {
            ZoomIn => Some((0, 0, s)),
            ZoomOut => Some((0, 0, -s)),
            Up => Some((0, s, 0)),
            Down => Some((0, -s, 0)),
            Left => Some((-s, 0, 0)),
            Right => Some((s, 0, 0)),
            UpLeft => Some((-s, s, 0)),
            UpRight => Some((s, s, 0)),
            DownLeft => Some((-s, -s, 0)),
            DownRight => Some((s, -s, 0)),
            FocusNear | FocusFar | IrisOpen | IrisClose => None,
        }
    }

    /// Hikvision focus / iris value (`<FocusData><focus>` / `<IrisData><iris>`), −100..100.
    pub fn hikvision_lens(self, speed: i32) -> Option<(&'static str, i32)> {
        let s = speed.clamp(1, 100);
        match self {
            Ptz::FocusNear => Some(("focus", -s)),
            Ptz::FocusFar => Some(("focus", s)),
            Ptz::IrisOpen => Some(("iris", s)),
            Ptz::IrisClose => Some(("iris", -s)),
            _ => None,
        }
    }
}

/// The ISAPI continuous-move body (all zero stops).
pub fn isapi_ptz_body(pan: i32, tilt: i32, zoom: i32) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><PTZData><pan>{pan}</pan><tilt>{tilt}</tilt><zoom>{zoom}</zoom></PTZData>")
}

/// The Dahua `ptz.cgi` query for a start or stop of `code` at `speed` (1–8).
pub fn dahua_ptz_query(start: bool, channel: u32, code: &str, speed: u8) -> String {
    format!(
        "/cgi-bin/ptz.cgi?action={}&channel={channel}&code={code}&arg1=0&arg2={}&arg3=0",
        if start { "start" } else { "stop" },
        speed.clamp(1, 8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = LocalTime::parse("2016-07-20 12:35:09").unwrap();
        assert_eq!(
            (t.hikvision(), t.dahua(), t.isapi(), t.to_string()),
            (
                "20160720T123509Z".to_string(),
                "2016_07_20_12_35_09".to_string(),
                "2016-07-20T12:35:09Z".to_string(),
                "2016-07-20 12:35:09".to_string()
            )
        );
        assert!(LocalTime::parse("2016-02-30 00:00:00").is_none());
        assert!(LocalTime::parse("2016-02-29 00:00:00").is_some());
        assert!(LocalTime::parse("2015-02-29 00:00:00").is_none());
        assert!(LocalTime::parse("2016-07-20 24:00:00").is_none());
        assert!(LocalTime::parse("2016/07/20 12:00:00").is_none());
        assert!(LocalTime::parse("大大大大-07-20 12:00:0").is_none());
        assert!(LocalTime::parse("2016-07-20 12:00:00") < LocalTime::parse("2016-07-20 12:00:01"));
        assert_eq!(LocalTime::parse("1970-01-02 00:00:01").unwrap().to_secs(), 86_401);
        for s in ["2016-02-29 23:59:59", "2000-03-01 00:00:00", "2099-12-31 12:34:56", "2026-11-21 08:00:00"] {
            let t = LocalTime::parse(s).unwrap();
            assert_eq!(LocalTime::from_secs(t.to_secs()), Some(t), "{s}");
        }
        assert_eq!(t.plus_secs(60 * 60 * 12).to_string(), "2016-07-21 00:35:09");
        assert_eq!(t.plus_secs(-9).to_string(), "2016-07-20 12:35:00");
    }

    #[test]
    fn urls() {
        let (s, e) = (LocalTime::parse("2016-07-20 12:00:00").unwrap(), LocalTime::parse("2016-07-20 13:00:00").unwrap());
        assert_eq!(live_url(NvrCategory::Hikvision, "10.8.30.109", 554, 30).unwrap(), "rtsp://10.8.30.109:554/Streaming/Channels/3001");
        assert_eq!(live_url(NvrCategory::Hikvision, "h", 554, 1).unwrap(), "rtsp://h:554/Streaming/Channels/101");
        assert_eq!(live_url(NvrCategory::Dahua, "h", 8554, 2).unwrap(), "rtsp://h:8554/cam/realmonitor?channel=2&subtype=0");
        assert_eq!(
            playback_url(NvrCategory::Hikvision, "h", 554, 1, &s, &e).unwrap(),
            "rtsp://h:554/Streaming/tracks/101?starttime=20160720T120000Z&endtime=20160720T130000Z"
        );
        assert_eq!(
            playback_url(NvrCategory::Dahua, "h", 554, 3, &s, &e).unwrap(),
            "rtsp://h:554/cam/playback?channel=3&subtype=0&starttime=2016_07_20_12_00_00&endtime=2016_07_20_13_00_00"
        );
        assert_eq!(live_url(NvrCategory::Hikvision, "fe80::1", 554, 1).unwrap(), "rtsp://[fe80::1]:554/Streaming/Channels/101");
        assert!(live_url(NvrCategory::RtspUrl, "h", 554, 1).is_none());
    }

    #[test]
    fn ptz_mappings() {
        assert_eq!(Ptz::from_command(0), Some(Ptz::ZoomIn));
        assert_eq!(Ptz::from_command(13), Some(Ptz::DownRight));
        assert_eq!(Ptz::from_command(14), None);
        assert_eq!(Ptz::UpLeft.dahua_code(), "LeftUp");
        assert_eq!(Ptz::ZoomIn.dahua_code(), "ZoomTele");
        assert_eq!(Ptz::DownRight.hikvision_move(60), Some((60, -60, 0)));
        assert_eq!(Ptz::FocusFar.hikvision_move(60), None);
        assert_eq!(Ptz::IrisClose.hikvision_lens(200), Some(("iris", -100)));
        assert_eq!(
            isapi_ptz_body(0, 0, 0),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><PTZData><pan>0</pan><tilt>0</tilt><zoom>0</zoom></PTZData>"
        );
        assert_eq!(dahua_ptz_query(true, 1, "Up", 5), "/cgi-bin/ptz.cgi?action=start&channel=1&code=Up&arg1=0&arg2=5&arg3=0");
        assert_eq!(dahua_ptz_query(false, 1, "Up", 0), "/cgi-bin/ptz.cgi?action=stop&channel=1&code=Up&arg1=0&arg2=1&arg3=0");
    }
}
