//! The LPR camera HTTP push protocol (`../shared/specs/lpr-http-push.md`), sans-I/O: what the
//! camera sends, read leniently (any field but the envelope may be missing, numbers may come as
//! strings), and the reply we write back. Never panics on any input (fuzz target `lpr`).

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("not a message this endpoint takes (expected {0})")]
    WrongEnvelope(&'static str),
    #[error("bad base64 in {0}")]
    BadBase64(&'static str),
    #[error("{0} is too large")]
    TooLarge(&'static str),
}

/// Parses a body as JSON: a BOM and surrounding whitespace are tolerated (cameras send either,
/// with any Content-Type).
pub fn json_body(body: &[u8]) -> Result<Value, ProtoError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body.trim_ascii()).map_err(|e| ProtoError::NotJson(e.to_string()))
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn uint(v: &Value) -> Option<u64> {
    num(v).filter(|n| *n >= 0.0 && n.is_finite()).map(|n| n as u64)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Case-insensitive field lookup (firmware versions differ in case).
fn field<'a>(obj: &'a Value, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match obj {
        Value::Object(m) => m.get(name).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)).unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// Decodes base64 (standard alphabet, padding optional, whitespace and line breaks ignored).
pub fn decode_base64(s: &str, what: &'static str, max: usize) -> Result<Vec<u8>, ProtoError> {
    if s.len() / 4 * 3 > max + 3 {
        return Err(ProtoError::TooLarge(what));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    // Line-wrapped base64 is rare: copy only when there is whitespace to drop.
    let decoded = if s.bytes().any(|b| b.is_ascii_whitespace()) {
        let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        engine.decode(clean)
    } else {
        engine.decode(s.as_bytes())
    };
    decoded.map_err(|_| ProtoError::BadBase64(what))
}

pub fn encode_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Who sent it: the envelope fields every message carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Sender {
    pub serialno: String,
    pub device_name: Option<String>,
    pub ipaddr: Option<String>,
    pub channel: Option<u64>,
}

fn sender(env: &Value) -> Sender {
    Sender {
        serialno: text(field(env, "serialno")).unwrap_or_default(),
        device_name: text(field(env, "deviceName")),
        ipaddr: text(field(env, "ipaddr")),
        channel: uint(field(env, "channel")),
    }
}

/// A plate result, as much of it as the camera sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PlateResult {
    pub sender: Sender,
    /// "无" (none) when no plate was read.
    pub license: Option<String>,
    pub color_type: Option<u64>,
    pub plate_type: Option<u64>,
    pub confidence: Option<u64>,
    pub direction: Option<u64>,
    pub trigger_type: Option<u64>,
    /// The camera's clock, Unix ms, when it sent `timeStamp.Timeval.sec/usec`.
    pub camera_time_ms: Option<u64>,
    pub plateid: Option<u64>,
    pub is_offline: bool,
    pub image_path: Option<String>,
    /// The rest of `PlateResult`, minus the images (kept for the record as sent).
    pub extra: Value,
    #[serde(skip)]
    pub image_full: Option<Vec<u8>>,
    #[serde(skip)]
    pub image_plate: Option<Vec<u8>>,
}

impl PlateResult {
    /// A real plate was read ("无" or empty means the trigger saw none).
    pub fn plate(&self) -> Option<&str> {
        self.license.as_deref().map(str::trim).filter(|l| !l.is_empty() && *l != "无" && *l != "_无_")
    }
}

/// Reads `{"AlarmInfoPlate": {…, "result": {"PlateResult": {…}}}}`. Images are decoded (each
/// at most `max_image` bytes); missing optional fields stay `None`.
pub fn plate_result(v: &Value, max_image: usize) -> Result<PlateResult, ProtoError> {
    let env = field(v, "AlarmInfoPlate");
    if !env.is_object() {
        return Err(ProtoError::WrongEnvelope("AlarmInfoPlate"));
    }
    let pr = field(field(env, "result"), "PlateResult");
    let image = |name: &'static str| -> Result<Option<Vec<u8>>, ProtoError> {
        match field(pr, name) {
            Value::String(s) if !s.is_empty() => decode_base64(s, name, max_image).map(Some),
            _ => Ok(None),
        }
    };
    let tv = field(field(pr, "timeStamp"), "Timeval");
    let camera_time_ms = uint(field(tv, "sec")).map(|s| s.saturating_mul(1000).saturating_add(uint(field(tv, "usec")).unwrap_or(0) / 1000));
    // The record keeps every field but the images (copied without them: they are most of it).
    let extra = match pr {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "imageFile" | "imageFragmentFile"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    };
    Ok(PlateResult {
        sender: sender(env),
        license: text(field(pr, "license")),
        color_type: uint(field(pr, "colorType")),
        plate_type: uint(field(pr, "type")),
        confidence: uint(field(pr, "confidence")),
        direction: uint(field(pr, "direction")),
        trigger_type: uint(field(pr, "triggerType")),
        camera_time_ms,
        plateid: uint(field(pr, "plateid")),
        is_offline: uint(field(pr, "isoffline")) == Some(1),
        image_path: text(field(pr, "imagePath")),
        extra,
        image_full: image("imageFile")?,
        image_plate: image("imageFragmentFile")?,
    })
}

/// An IO input trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GioIn {
    pub sender: Sender,
    pub source: Option<u64>,
    pub value: Option<u64>,
}

pub fn gio_in(v: &Value) -> Result<GioIn, ProtoError> {
    let env = field(v, "AlarmGioIn");
    if !env.is_object() {
        return Err(ProtoError::WrongEnvelope("AlarmGioIn"));
    }
    let t = field(field(env, "result"), "TriggerResult");
    Ok(GioIn { sender: sender(env), source: uint(field(t, "source")), value: uint(field(t, "value")) })
}

/// Data read from the camera's RS-485/232 port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SerialIn {
    pub sender: Sender,
    pub serial_channel: Option<u64>,
    /// Base64 as sent (decoded length is checked).
    pub data: String,
    pub len: usize,
}

pub fn serial_data(v: &Value) -> Result<SerialIn, ProtoError> {
    let env = field(v, "SerialData");
    if !env.is_object() {
        return Err(ProtoError::WrongEnvelope("SerialData"));
    }
    let data = text(field(env, "data")).unwrap_or_default();
    let raw = decode_base64(&data, "data", 64 * 1024)?;
    Ok(SerialIn { sender: sender(env), serial_channel: uint(field(env, "serialChannel")), data, len: raw.len() })
}

/// A snapshot the camera uploads on our request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotUpload {
    pub ipaddr: Option<String>,
    pub serialno: Option<String>,
    pub image: Vec<u8>,
}

pub fn snapshot(v: &Value, max_image: usize) -> Result<SnapshotUpload, ProtoError> {
    let ti = field(v, "TriggerImage");
    if !ti.is_object() {
        return Err(ProtoError::WrongEnvelope("TriggerImage"));
    }
    let image = match field(ti, "imageFile") {
        Value::String(s) => decode_base64(s, "imageFile", max_image)?,
        _ => Vec::new(),
    };
    Ok(SnapshotUpload { ipaddr: text(field(v, "ipaddr")), serialno: text(field(v, "serialno")), image })
}

/// The heartbeat / registration form (also the comet poll).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    pub serialno: String,
    pub device_name: Option<String>,
    pub ipaddr: Option<String>,
    pub port: Option<u64>,
    pub user_name: Option<String>,
    /// The camera's admin password in clear: never logged or stored as is (see `registry`).
    pub pass_wd: Option<String>,
    pub channel_num: Option<u64>,
}

/// From form fields (multipart or urlencoded), or a JSON object with the same names.
pub fn heartbeat(fields: &[(String, String)]) -> Heartbeat {
    let get = |n: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.chars().take(256).collect::<String>());
    Heartbeat {
        serialno: get("serialno").unwrap_or_default(),
        device_name: get("device_name"),
        ipaddr: get("ipaddr"),
        port: get("port").and_then(|p| p.trim().parse().ok()),
        user_name: get("user_name"),
        pass_wd: get("pass_wd"),
        channel_num: get("channel_num").and_then(|p| p.trim().parse().ok()),
    }
}

/// Fields of an `application/x-www-form-urlencoded` body.
pub fn urlencoded(body: &[u8]) -> Vec<(String, String)> {
    fn unescape(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .take(64)
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

/// One whitelist entry as the camera takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WhiteListEntry {
    pub plate: String,
    pub enable: u8,
    pub need_alarm: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enable_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub overdue_time: Option<String>,
}

/// What goes into one `Response_AlarmInfoPlate`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// Open the gate: `info: "ok"` with this IO output.
    pub open_gate: Option<u64>,
    pub plateid: Option<u64>,
    /// Offline resend: ask for the next stored record.
    pub continue_offline: Option<u64>,
    pub manual_trigger: bool,
    /// Snapshot upload target: (port, relative URL).
    pub trigger_image: Option<(u16, String)>,
    /// (serialChannel, base64 data, decoded length).
    pub serial_data: Vec<(u64, String, usize)>,
    /// (operate_type 0 add / 1 delete, entries).
    pub white_list: Option<(u8, Vec<WhiteListEntry>)>,
}

impl Reply {
    /// The JSON the firmware reads (key spellings exactly as it looks for them).
    pub fn to_json(&self) -> Value {
        let mut r = Map::new();
        if let Some(ch) = self.open_gate {
            r.insert("info".into(), json!("ok"));
            r.insert("channelNum".into(), json!(ch));
        }
        if let Some(id) = self.plateid {
            r.insert("plateid".into(), json!(id));
        }
        if let Some(id) = self.continue_offline {
            r.insert("ContinuePushOffline".into(), json!({"plateid": id, "continue": 1}));
        }
        if self.manual_trigger {
            r.insert("manualTrigger".into(), json!("ok"));
        }
        if let Some((port, url)) = &self.trigger_image {
            r.insert("TriggerImage".into(), json!({"port": port, "snapImageRelativeUrl": url}));
        }
        if !self.serial_data.is_empty() {
            let list: Vec<Value> =
                self.serial_data.iter().map(|(ch, data, len)| json!({"serialChannel": ch, "data": data, "dataLen": len})).collect();
            r.insert("serialData".into(), Value::Array(list));
        }
        if let Some((op, entries)) = &self.white_list {
            r.insert("white_list_operate".into(), json!({"operate_type": op, "white_list_data": entries}));
        }
        json!({ "Response_AlarmInfoPlate": Value::Object(r) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESULT: &str = r#"{"AlarmInfoPlate":{"channel":0,"deviceName":"IVS","ipaddr":"192.168.1.100","serialno":"eff50e18-e3d3862b",
      "result":{"PlateResult":{"license":"京A12345","colorType":1,"type":1,"confidence":"92","direction":4,"triggerType":1,
      "timeStamp":{"Timeval":{"sec":1700000000,"usec":250000}},"plateid":"715","isoffline":1,"imageFile":"/9j/4AAQ","imageFileLen":6,
      "location":{"RECT":{"left":1,"top":2,"right":3,"bottom":4}}}}}}"#;

    #[test]
    fn reads_a_plate_result_with_strings_for_numbers() {
        let p = plate_result(&json_body(RESULT.as_bytes()).unwrap(), 1 << 20).unwrap();
        assert_eq!(p.sender.serialno, "eff50e18-e3d3862b");
        assert_eq!(p.plate(), Some("京A12345"));
        assert_eq!((p.confidence, p.plateid, p.is_offline), (Some(92), Some(715), true));
        assert_eq!(p.camera_time_ms, Some(1_700_000_000_250));
        assert_eq!(p.image_full.as_deref(), Some(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10][..]));
        assert!(p.extra.get("imageFile").is_none() && p.extra.get("location").is_some());
    }

    #[test]
    fn tolerates_minimal_and_odd_bodies() {
        let min = json_body(br#"{"AlarmInfoPlate":{"result":{"PlateResult":{"license":"\u65e0"}}}}"#).unwrap();
        let p = plate_result(&min, 10).unwrap();
        assert_eq!((p.plate(), p.plateid, p.sender.serialno.as_str()), (None, None, ""));
        assert!(json_body(b"\xEF\xBB\xBF {\"a\":1}\r\n").is_ok(), "BOM and whitespace");
        assert_eq!(plate_result(&json!({"x": 1}), 10), Err(ProtoError::WrongEnvelope("AlarmInfoPlate")));
        assert!(matches!(json_body(b"{not json"), Err(ProtoError::NotJson(_))));
        let big = json!({"AlarmInfoPlate": {"result": {"PlateResult": {"imageFile": "QUFB".repeat(100)}}}});
        assert_eq!(plate_result(&big, 10), Err(ProtoError::TooLarge("imageFile")));
        let bad = json!({"AlarmInfoPlate": {"result": {"PlateResult": {"imageFile": "!!!!"}}}});
        assert_eq!(plate_result(&bad, 100), Err(ProtoError::BadBase64("imageFile")));
    }

    #[test]
    fn other_messages() {
        let g = gio_in(&json!({"AlarmGioIn": {"serialno": "s", "result": {"TriggerResult": {"source": 1, "value": "0"}}}})).unwrap();
        assert_eq!((g.source, g.value), (Some(1), Some(0)));
        let s = serial_data(&json!({"SerialData": {"serialno": "s", "serialChannel": 0, "data": "AQID", "dataLen": 3}})).unwrap();
        assert_eq!(s.len, 3);
        let t = snapshot(&json!({"ipaddr": "1.2.3.4", "TriggerImage": {"imageFile": "AQID"}}), 10).unwrap();
        assert_eq!(t.image, [1, 2, 3]);
        let h = heartbeat(&urlencoded(
            b"device_name=IVS&ipaddr=192.168.1.100&port=80&user_name=admin&pass_wd=s%21cret&serialno=abc&channel_num=1",
        ));
        assert_eq!((h.serialno.as_str(), h.pass_wd.as_deref(), h.channel_num), ("abc", Some("s!cret"), Some(1)));
        assert_eq!(urlencoded(b"a=%&b=%4&c=%zz"), vec![("a".into(), "%".into()), ("b".into(), "%4".into()), ("c".into(), "%zz".into())]);
    }

    #[test]
    fn reply_keys_are_spelled_as_the_firmware_reads_them() {
        let r = Reply {
            open_gate: Some(0),
            plateid: Some(7),
            continue_offline: Some(7),
            serial_data: vec![(0, "AQID".into(), 3)],
            white_list: Some((
                0,
                vec![WhiteListEntry { plate: "京A1".into(), enable: 1, need_alarm: 0, enable_time: None, overdue_time: None }],
            )),
            ..Default::default()
        }
        .to_json();
        let r = &r["Response_AlarmInfoPlate"];
        assert_eq!((r["info"].as_str(), r["channelNum"].as_u64(), r["plateid"].as_u64()), (Some("ok"), Some(0), Some(7)));
        assert_eq!(r["ContinuePushOffline"], json!({"plateid": 7, "continue": 1}));
        assert_eq!(r["serialData"][0]["dataLen"], 3);
        assert_eq!(r["white_list_operate"]["white_list_data"][0]["plate"], "京A1");
        assert_eq!(Reply::default().to_json(), json!({"Response_AlarmInfoPlate": {}}));
    }
}
