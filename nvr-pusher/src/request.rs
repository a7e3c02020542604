//! The request bodies of the six calls, read from JSON so that every missing or wrong-typed
//! field is named in the 600 reply (serde's derive would stop at the first, with its own
//! wording). Numbers sent as strings are accepted, as the original's clients do send them.

use serde_json::Value;

use crate::vendor::{LocalTime, NvrCategory};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

fn int(v: &Value, name: &str, errs: &mut Vec<String>) -> Option<i64> {
    match &v[name] {
        Value::Number(n) => n.as_i64().or_else(|| {
            errs.push(format!("{name} must be an integer"));
            None
        }),
        Value::String(s) => s.trim().parse().ok().or_else(|| {
            errs.push(format!("{name} must be an integer, not {s:?}"));
            None
        }),
        Value::Null => {
            errs.push(format!("{name} is missing"));
            None
        }
        other => {
            errs.push(format!("{name} must be an integer, not {other}"));
            None
        }
    }
}

fn string(v: &Value, name: &str, errs: &mut Vec<String>) -> Option<String> {
    match &v[name] {
        Value::String(s) if !s.trim().is_empty() && s.len() <= 256 => Some(s.trim().to_owned()),
        Value::String(_) => {
            errs.push(format!("{name} must be 1-256 characters"));
            None
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Null => {
            errs.push(format!("{name} is missing"));
            None
        }
        other => {
            errs.push(format!("{name} must be a string, not {other}"));
            None
        }
    }
}

fn time(v: &Value, name: &str, errs: &mut Vec<String>) -> Option<LocalTime> {
    let s = string(v, name, errs)?;
    LocalTime::parse(&s).or_else(|| {
        errs.push(format!("{name} must be YYYY-MM-DD HH:MM:SS, not {s:?}"));
        None
    })
}

/// Where the NVR is and how to log in (`REAL_STREAM`, and `BACK_STREAM` with a range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvrTarget {
    pub category: NvrCategory,
    pub addr: String,
    /// The port in the request (the vendor SDK's, e.g. 8000); RTSP and HTTP use their own.
    pub port: u16,
    pub user: String,
    pub password: String,
    pub channel: u32,
    /// `nvr_category` 2: the full RTSP URL to pull (any brand); for 3 (ONVIF), the one the
    /// device's media service gave.
    pub rtsp_url: Option<String>,
}

fn target(v: &Value, errs: &mut Vec<String>) -> Option<NvrTarget> {
    if !v.is_object() {
        errs.push("the body must be a JSON object".into());
        return None;
    }
    let category = int(v, "nvr_category", errs).and_then(|c| {
        NvrCategory::from_code(c).or_else(|| {
            errs.push(format!("nvr_category must be 0 (Hikvision), 1 (Dahua), 2 (RTSP URL) or 3 (ONVIF), not {c}"));
            None
        })
    });
    let rtsp_url = match &v["rtsp_url"] {
        Value::String(s) if s.starts_with("rtsp://") => Some(s.clone()),
        Value::Null => None,
        other => {
            errs.push(format!("rtsp_url must be an rtsp:// URL, not {other}"));
            None
        }
    };
    if category == Some(NvrCategory::RtspUrl) && rtsp_url.is_none() {
        errs.push("nvr_category 2 needs rtsp_url".into());
    }
    let addr = string(v, "nvr_addr", errs);
    let port = int(v, "nvr_port", errs).and_then(|p| {
        u16::try_from(p).ok().filter(|p| *p > 0).or_else(|| {
            errs.push(format!("nvr_port must be 1-65535, not {p}"));
            None
        })
    });
    let user = string(v, "nvr_user", errs);
    let password = match &v["nvr_pwd"] {
        Value::String(s) => Some(s.clone()),
        Value::Null => {
            errs.push("nvr_pwd is missing".into());
            None
        }
        _ => {
            errs.push("nvr_pwd must be a string".into());
            None
        }
    };
    let channel = int(v, "nvr_channel", errs).and_then(|c| {
        u32::try_from(c).ok().filter(|c| (1..=512).contains(c)).or_else(|| {
            errs.push(format!("nvr_channel must be 1-512, not {c}"));
            None
        })
    });
    Some(NvrTarget { category: category?, addr: addr?, port: port?, user: user?, password: password?, channel: channel?, rtsp_url })
}

fn done<T>(value: Option<T>, errs: Vec<String>) -> Result<T, BadRequest> {
    match (value, errs.is_empty()) {
        (Some(v), true) => Ok(v),
        _ => Err(BadRequest(errs.join("; "))),
    }
}

/// `POST /REAL_STREAM`.
pub fn real_stream(v: &Value) -> Result<NvrTarget, BadRequest> {
    let mut errs = Vec::new();
    let t = target(v, &mut errs);
    done(t, errs)
}

/// `POST /BACK_STREAM`: the target and the range (`startTime` < `endTime`).
pub fn back_stream(v: &Value) -> Result<(NvrTarget, LocalTime, LocalTime), BadRequest> {
    let mut errs = Vec::new();
    let t = target(v, &mut errs);
    let start = time(v, "startTime", &mut errs);
    let end = time(v, "endTime", &mut errs);
    if let (Some(s), Some(e)) = (&start, &end) {
        if s >= e {
            errs.push("startTime must be before endTime".into());
        }
    }
    done(t.zip(start).zip(end).map(|((t, s), e)| (t, s, e)), errs)
}

/// `POST /STREAM/{handle}/POSITION`.
pub fn position(v: &Value) -> Result<LocalTime, BadRequest> {
    let mut errs = Vec::new();
    let t = time(v, "pos_time", &mut errs);
    done(t, errs)
}

/// `POST /STREAM/{handle}/PTZControl`: command 0–13, duration 100–1000 ms (default 200).
pub fn ptz(v: &Value) -> Result<(u8, u32), BadRequest> {
    let mut errs = Vec::new();
    let command = int(v, "command", &mut errs).and_then(|c| {
        u8::try_from(c).ok().filter(|c| *c <= 13).or_else(|| {
            errs.push(format!("command must be 0-13, not {c}"));
            None
        })
    });
    let duration = if v["duration"].is_null() {
        Some(200)
    } else {
        int(v, "duration", &mut errs).and_then(|d| {
            u32::try_from(d).ok().filter(|d| (100..=1000).contains(d)).or_else(|| {
                errs.push(format!("duration must be 100-1000 ms, not {d}"));
                None
            })
        })
    };
    done(command.zip(duration), errs)
}

/// A play handle from the path: the original's are integers.
pub fn play_handle(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn real() -> Value {
        json!({"nvr_category": 0, "nvr_addr": "10.8.30.109", "nvr_port": 8000, "nvr_user": "admin", "nvr_pwd": "123456", "nvr_channel": 30})
    }

    #[test]
    fn reads_the_original_bodies() {
        let t = real_stream(&real()).unwrap();
        assert_eq!((t.category, t.addr.as_str(), t.port, t.channel), (NvrCategory::Hikvision, "10.8.30.109", 8000, 30));
        let mut b = real();
        b["startTime"] = json!("2016-07-20 12:00:00");
        b["endTime"] = json!("2016-07-20 13:00:00");
        let (_, s, e) = back_stream(&b).unwrap();
        assert_eq!((s.to_string(), e.to_string()), ("2016-07-20 12:00:00".to_string(), "2016-07-20 13:00:00".to_string()));
        assert_eq!(ptz(&json!({"command": 0})).unwrap(), (0, 200));
        assert_eq!(ptz(&json!({"command": "13", "duration": 1000})).unwrap(), (13, 1000));
        assert_eq!(position(&json!({"pos_time": "2016-07-20 12:35:00"})).unwrap().to_string(), "2016-07-20 12:35:00");
        assert_eq!(play_handle("12681"), Some(12681));
    }

    #[test]
    fn names_every_problem() {
        let e = real_stream(&json!({"nvr_category": 5, "nvr_port": "x", "nvr_channel": 0})).unwrap_err().0;
        for part in [
            "nvr_category must be",
            "nvr_addr is missing",
            "nvr_port must be an integer",
            "nvr_user is missing",
            "nvr_pwd is missing",
            "nvr_channel must be 1-512",
        ] {
            assert!(e.contains(part), "{part:?} not in {e:?}");
        }
        assert!(real_stream(&json!([1, 2])).unwrap_err().0.contains("JSON object"));
        let mut b = real();
        b["startTime"] = json!("2016-07-20 13:00:00");
        b["endTime"] = json!("2016-07-20 12:00:00");
        assert!(back_stream(&b).unwrap_err().0.contains("before endTime"));
        b["endTime"] = json!("20160720");
        assert!(back_stream(&b).unwrap_err().0.contains("endTime must be YYYY-MM-DD HH:MM:SS"));
        assert!(ptz(&json!({"command": 14})).unwrap_err().0.contains("0-13"));
        assert!(ptz(&json!({"command": 1, "duration": 50})).unwrap_err().0.contains("100-1000"));
        assert!(ptz(&json!({"command": 1, "duration": 1001})).is_err());
        let mut r = real();
        r["nvr_category"] = json!(2);
        assert!(real_stream(&r).unwrap_err().0.contains("needs rtsp_url"));
        r["rtsp_url"] = json!("rtsp://10.0.0.1/live");
        assert!(real_stream(&r).is_ok());
    }
}
