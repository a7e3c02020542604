//! Device control from the API: `DeviceControl` with a PTZ command of annex A.3 (`gb::ptz`) —
//! moves and stop, focus and iris, presets, cruise, scan, auxiliary switches — and the
//! `PresetQuery` that lists a channel's presets (its Response awaited through `handles::Waiters`). It is sent by the
//! node that holds the device's connection (a call routed over the Store, like a play). A PTZ
//! command has no Response message: the device's final answer to the MESSAGE is the
//! acknowledgement, so it maps to HTTP at once — 200, a refusal 502 with the SIP status, no
//! answer 504.

use std::sync::Arc;

use gb::ids::{ChannelId, DeviceId};
use gb::model::BasicParam;
use gb::ptz::{Focus, Iris, Pan, PtzBytes, PtzCommand, Tilt, Zoom};
use serde::Deserialize;

use crate::error::SipError;
use crate::play::PlayError;
use crate::server::Shared;

/// `POST /devices/{id}/channels/{ch}/ptz`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtzRequest {
    pub command: String,
    /// Pan/tilt speed (0-255), or focus/iris speed.
    pub speed: Option<u32>,
    /// Zoom speed (0-15).
    pub zoom_speed: Option<u32>,
    /// Preset number (1-255).
    pub preset: Option<u32>,
    /// Cruise or scan group (0-255).
    pub group: Option<u32>,
    /// Cruise speed, dwell seconds or scan speed (0-4095).
    pub value: Option<u32>,
    /// Auxiliary switch number (0-255).
    pub aux: Option<u32>,
}

/// The commands by name, for the error that lists them.
pub const COMMANDS: &[&str] = &[
    "stop",
    "left",
    "right",
    "up",
    "down",
    "up_left",
    "up_right",
    "down_left",
    "down_right",
    "zoom_in",
    "zoom_out",
    "focus_near",
    "focus_far",
    "iris_open",
    "iris_close",
    "lens_stop",
    "preset_set",
    "preset_call",
    "preset_delete",
    "cruise_add",
    "cruise_remove",
    "cruise_speed",
    "cruise_dwell",
    "cruise_start",
    "cruise_stop",
    "scan_start",
    "scan_left",
    "scan_right",
    "scan_speed",
    "scan_stop",
    "aux_on",
    "aux_off",
];

fn bad(msg: String) -> PlayError {
    PlayError::BadRequest(msg)
}

/// `field` within `0..=max` (`default` when absent; `None` default means required).
fn field(name: &str, value: Option<u32>, max: u32, default: Option<u32>) -> Result<u32, PlayError> {
    match value.or(default) {
        None => Err(bad(format!("{name} is required for this command"))),
        Some(v) if v > max => Err(bad(format!("{name} must be 0-{max}, not {v}"))),
        Some(v) => Ok(v),
    }
}

fn preset(req: &PtzRequest) -> Result<u8, PlayError> {
    match req.preset {
        None => Err(bad("preset is required for this command".into())),
        Some(p) if !(1..=255).contains(&p) => Err(bad(format!("preset must be 1-255, not {p}"))),
        Some(p) => Ok(p as u8),
    }
}

/// The command a request names, its parameters checked (a 400 names the field).
pub fn ptz_command(req: &PtzRequest) -> Result<PtzCommand, PlayError> {
    let speed = || field("speed", req.speed, 255, Some(128)).map(|v| v as u8);
    let group = || field("group", req.group, 255, Some(0)).map(|v| v as u8);
    let value = || field("value", req.value, 4095, None).map(|v| v as u16);
    let mv = |pan, tilt| -> Result<PtzCommand, PlayError> {
        let s = speed()?;
        Ok(PtzCommand::Move { pan, tilt, zoom: Zoom::None, pan_speed: s, tilt_speed: s, zoom_speed: 0 })
    };
    let zoom = |zoom| -> Result<PtzCommand, PlayError> {
        let z = field("zoom_speed", req.zoom_speed, 15, Some(8))? as u8;
        Ok(PtzCommand::Move { pan: Pan::None, tilt: Tilt::None, zoom, pan_speed: 0, tilt_speed: 0, zoom_speed: z })
    };
    let lens = |focus, iris| -> Result<PtzCommand, PlayError> {
        let s = speed()?;
        Ok(PtzCommand::Lens { focus, iris, focus_speed: s, iris_speed: s })
    };
    Ok(match req.command.as_str() {
        "stop" | "cruise_stop" | "scan_stop" => PtzCommand::STOP,
        "left" => mv(Pan::Left, Tilt::None)?,
        "right" => mv(Pan::Right, Tilt::None)?,
        "up" => mv(Pan::None, Tilt::Up)?,
        "down" => mv(Pan::None, Tilt::Down)?,
        "up_left" => mv(Pan::Left, Tilt::Up)?,
        "up_right" => mv(Pan::Right, Tilt::Up)?,
        "down_left" => mv(Pan::Left, Tilt::Down)?,
        "down_right" => mv(Pan::Right, Tilt::Down)?,
        "zoom_in" => zoom(Zoom::In)?,
        "zoom_out" => zoom(Zoom::Out)?,
        "focus_near" => lens(Some(Focus::Near), None)?,
        "focus_far" => lens(Some(Focus::Far), None)?,
        "iris_open" => lens(None, Some(Iris::Open))?,
        "iris_close" => lens(None, Some(Iris::Close))?,
        "lens_stop" => PtzCommand::Lens { focus: None, iris: None, focus_speed: 0, iris_speed: 0 },
        "preset_set" => PtzCommand::SetPreset(preset(req)?),
        "preset_call" => PtzCommand::CallPreset(preset(req)?),
        "preset_delete" => PtzCommand::DeletePreset(preset(req)?),
        "cruise_add" => PtzCommand::CruiseAdd { group: group()?, preset: preset(req)? },
        "cruise_remove" => PtzCommand::CruiseRemove { group: group()?, preset: field("preset", req.preset, 255, Some(0))? as u8 },
        "cruise_speed" => PtzCommand::CruiseSpeed { group: group()?, speed: value()? },
        "cruise_dwell" => PtzCommand::CruiseDwell { group: group()?, secs: value()? },
        "cruise_start" => PtzCommand::CruiseStart { group: group()? },
        "scan_start" => PtzCommand::ScanStart { group: group()? },
        "scan_left" => PtzCommand::ScanLeftBound { group: group()? },
        "scan_right" => PtzCommand::ScanRightBound { group: group()? },
        "scan_speed" => PtzCommand::ScanSpeed { group: group()?, speed: value()? },
        "aux_on" => PtzCommand::AuxOn(field("aux", req.aux, 255, None)? as u8),
        "aux_off" => PtzCommand::AuxOff(field("aux", req.aux, 255, None)? as u8),
        other => return Err(bad(format!("command {other:?} is unknown; one of {}", COMMANDS.join(", ")))),
    })
}

/// Checks the target and sends the command from the node holding the device's connection.
pub async fn ptz(
    shared: &Arc<Shared>,
    device_id: &DeviceId,
    channel_id: &ChannelId,
    cmd: PtzBytes,
) -> Result<serde_json::Value, PlayError> {
    let dev = target(shared, device_id, channel_id).await?;
    if dev.node != shared.me.node {
        let call = crate::rpc::Call::Ptz { device_id: device_id.clone(), channel_id: channel_id.clone(), ptz_cmd: cmd.to_string() };
        return crate::rpc::call(shared, &dev.node, call).await;
    }
    send_ptz(shared, &dev, channel_id, cmd).await
}

/// Sends the `DeviceControl` from this node and maps the device's answer.
pub async fn send_ptz(
    shared: &Shared,
    dev: &cluster::registry::Device,
    channel_id: &ChannelId,
    cmd: PtzBytes,
) -> Result<serde_json::Value, PlayError> {
    let body = gb::manscdp::build::device_control_ptz(shared.next_sn(), channel_id.as_str(), &cmd);
    crate::metrics::DEVICE_CONTROLS.inc();
    match crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body).await {
        Ok(_) => Ok(serde_json::json!({"device_id": dev.id, "channel_id": channel_id, "ptz_cmd": cmd.to_string()})),
        Err(e) => Err(sip_failure(e, "PTZ command")),
    }
}

/// `DeviceControl` commands other than PTZ, by what they ask (`POST …/control`, the name in
/// `command`, its parameters beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceCommand {
    /// Restart the device (`TeleBoot`); no Response: it goes away.
    Teleboot,
    /// Start or stop recording on the device (`RecordCmd`).
    RecordStart,
    RecordStop,
    /// Arm or disarm (`GuardCmd`).
    GuardSet,
    GuardReset,
    /// Clear the device's alarm (`AlarmCmd`).
    AlarmReset,
    /// Ask for a key frame now (`IFrameCmd`); no Response.
    Iframe,
    /// The home position (`HomePosition`): after `reset_secs` idle the camera returns to
    /// `preset`; `enabled: false` turns it off.
    HomePosition {
        enabled: bool,
        preset: Option<u8>,
        reset_secs: Option<u32>,
    },
    /// Zoom into (or out of) a rectangle of the picture (`DragZoomIn`/`DragZoomOut`). No
    /// Response, like PTZ.
    DragZoomIn(DragRect),
    DragZoomOut(DragRect),
}

/// A rectangle of the picture: the picture's `width`×`length` as the client shows it, the
/// rectangle's middle and size in that frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DragRect {
    pub width: u32,
    pub length: u32,
    pub mid_x: u32,
    pub mid_y: u32,
    pub length_x: u32,
    pub length_y: u32,
}

impl DragRect {
    /// The element of annex A.2.3 (`<DragZoomIn>…`).
    fn element(self, tag: &str) -> String {
        let DragRect { width, length, mid_x, mid_y, length_x, length_y } = self;
        format!(
            "<{tag}>\r\n<Length>{length}</Length>\r\n<Width>{width}</Width>\r\n<MidPointX>{mid_x}</MidPointX>\r\n<MidPointY>{mid_y}</MidPointY>\r\n\
             <LengthX>{length_x}</LengthX>\r\n<LengthY>{length_y}</LengthY>\r\n</{tag}>"
        )
    }

    fn check(self) -> Result<(), PlayError> {
        let DragRect { width, length, mid_x, mid_y, length_x, length_y } = self;
        if width == 0 || length == 0 {
            return Err(bad("width and length (the picture's size) must be above 0".into()));
        }
        if mid_x > width || mid_y > length || length_x > width || length_y > length {
            return Err(bad(format!("the rectangle must lie in the {width}x{length} picture")));
        }
        Ok(())
    }
}

impl DeviceCommand {
    /// The command's element, as annex A.2.3 spells it.
    fn element(self) -> String {
        match self {
            DeviceCommand::Teleboot => "<TeleBoot>Boot</TeleBoot>".into(),
            DeviceCommand::RecordStart => "<RecordCmd>Record</RecordCmd>".into(),
            DeviceCommand::RecordStop => "<RecordCmd>StopRecord</RecordCmd>".into(),
            DeviceCommand::GuardSet => "<GuardCmd>SetGuard</GuardCmd>".into(),
            DeviceCommand::GuardReset => "<GuardCmd>ResetGuard</GuardCmd>".into(),
            DeviceCommand::AlarmReset => "<AlarmCmd>ResetAlarm</AlarmCmd>".into(),
            DeviceCommand::Iframe => "<IFrameCmd>Send</IFrameCmd>".into(),
            DeviceCommand::HomePosition { enabled, preset, reset_secs } => {
                let mut s = format!("<HomePosition>\r\n<Enabled>{}</Enabled>\r\n", u8::from(enabled));
                if enabled {
                    s.push_str(&format!(
                        "<ResetTime>{}</ResetTime>\r\n<PresetIndex>{}</PresetIndex>\r\n",
                        reset_secs.unwrap_or(30),
                        preset.unwrap_or(1)
                    ));
                }
                s.push_str("</HomePosition>");
                s
            }
            DeviceCommand::DragZoomIn(r) => r.element("DragZoomIn"),
            DeviceCommand::DragZoomOut(r) => r.element("DragZoomOut"),
        }
    }

    /// Whether the device answers with a Response carrying a `Result` (the others are done once
    /// the MESSAGE is taken).
    fn has_response(self) -> bool {
        !matches!(self, DeviceCommand::Teleboot | DeviceCommand::Iframe | DeviceCommand::DragZoomIn(_) | DeviceCommand::DragZoomOut(_))
    }

    /// Parameters out of range, named (a 400).
    pub fn check(self) -> Result<(), PlayError> {
        match self {
            DeviceCommand::HomePosition { enabled: true, preset, reset_secs } => {
                if preset.is_some_and(|p| p == 0) {
                    return Err(bad("preset must be 1-255, not 0".into()));
                }
                match reset_secs {
                    Some(r) if !(1..=86_400).contains(&r) => Err(bad(format!("reset_secs must be 1-86400, not {r}"))),
                    _ => Ok(()),
                }
            }
            DeviceCommand::DragZoomIn(r) | DeviceCommand::DragZoomOut(r) => r.check(),
            _ => Ok(()),
        }
    }
}

/// A `DeviceControl` command from the node holding the device.
pub async fn command(
    shared: &Arc<Shared>,
    device_id: &DeviceId,
    channel_id: &ChannelId,
    cmd: DeviceCommand,
) -> Result<serde_json::Value, PlayError> {
    let dev = target(shared, device_id, channel_id).await?;
    if dev.node != shared.me.node {
        let call = crate::rpc::Call::Command { device_id: device_id.clone(), channel_id: channel_id.clone(), command: cmd };
        return crate::rpc::call(shared, &dev.node, call).await;
    }
    send_command(shared, &dev, channel_id, cmd).await
}

/// Sends the command from this node; with a Response, waits for its `Result`.
pub async fn send_command(
    shared: &Shared,
    dev: &cluster::registry::Device,
    channel_id: &ChannelId,
    cmd: DeviceCommand,
) -> Result<serde_json::Value, PlayError> {
    let sn = shared.next_sn();
    let request = format!("{} command", cmd_name(cmd));
    let mut waiting = match cmd.has_response() {
        true => Some(shared.waiters.wait(dev.id.as_str(), sn).ok_or_else(|| PlayError::Busy("too many device queries in flight".into()))?),
        false => None,
    };
    let body = gb::manscdp::build::device_control(sn, channel_id.as_str(), &cmd.element());
    crate::metrics::DEVICE_CONTROLS.inc();
    crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body).await.map_err(|e| sip_failure(e, &request))?;
    let result = match waiting.as_mut() {
        None => "sent",
        Some(w) => match w.next(ANSWER_TIMEOUT).await {
            Some(gb::manscdp::Body::ControlResult { ok: true }) => "OK",
            Some(gb::manscdp::Body::ControlResult { ok: false }) => return Err(PlayError::DeviceFailed { request }),
            Some(_) => return Err(PlayError::Internal(format!("the {request}'s answer was not a DeviceControl Response"))),
            None => {
                return Err(PlayError::DeviceTimeout { request: format!("{request}'s Response"), ms: ANSWER_TIMEOUT.as_millis() as u64 })
            }
        },
    };
    Ok(serde_json::json!({"device_id": dev.id, "channel_id": channel_id, "command": cmd_name(cmd), "result": result}))
}

/// The command's name as the API spells it.
fn cmd_name(cmd: DeviceCommand) -> String {
    serde_json::to_value(cmd).ok().and_then(|v| v["command"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// What `DeviceConfig` may set: the basic parameters a platform manages, each in a range a
/// camera takes. A field the device owns (its id, its server) is a 400 naming it.
pub fn check_config(p: &BasicParam) -> Result<(), PlayError> {
    let owned = [
        ("device_id", p.device_id.is_some()),
        ("sip_server_id", p.sip_server_id.is_some()),
        ("sip_server_ip", p.sip_server_ip.is_some()),
        ("sip_server_port", p.sip_server_port.is_some()),
        ("domain_name", p.domain_name.is_some()),
    ];
    if let Some((field, _)) = owned.iter().find(|(_, set)| *set) {
        return Err(bad(format!("{field} cannot be set by DeviceConfig; name, expiration, heartbeat_interval and heartbeat_count can")));
    }
    if p.name.is_none() && p.expiration.is_none() && p.heartbeat_interval.is_none() && p.heartbeat_count.is_none() {
        return Err(bad("nothing to set: give name, expiration, heartbeat_interval or heartbeat_count".into()));
    }
    let within = |field: &str, v: Option<u32>, lo: u32, hi: u32| match v {
        Some(v) if !(lo..=hi).contains(&v) => Err(bad(format!("{field} must be {lo}-{hi}, not {v}"))),
        _ => Ok(()),
    };
    within("expiration", p.expiration, 60, 86_400)?;
    within("heartbeat_interval", p.heartbeat_interval, 5, 3600)?;
    within("heartbeat_count", p.heartbeat_count, 1, 100)?;
    match &p.name {
        Some(n) if n.trim().is_empty() || n.chars().count() > 64 => Err(bad("name must be 1-64 characters".into())),
        _ => Ok(()),
    }
}

/// `PUT /devices/{id}/config`: `DeviceConfig` with the basic parameters given, from the node
/// holding the device; the device's `Result` is the answer.
pub async fn configure(shared: &Arc<Shared>, device_id: &DeviceId, set: BasicParam) -> Result<serde_json::Value, PlayError> {
    check_config(&set)?;
    let dev = online_device(shared, device_id).await?;
    if dev.node != shared.me.node {
        return crate::rpc::call(shared, &dev.node, crate::rpc::Call::Configure { device_id: device_id.clone(), set }).await;
    }
    send_config(shared, &dev, set).await
}

/// Sends `DeviceConfig` from this node and waits for its Response.
pub async fn send_config(shared: &Shared, dev: &cluster::registry::Device, set: BasicParam) -> Result<serde_json::Value, PlayError> {
    let sn = shared.next_sn();
    let mut waiting =
        shared.waiters.wait(dev.id.as_str(), sn).ok_or_else(|| PlayError::Busy("too many device queries in flight".into()))?;
    let body = gb::manscdp::build::device_config(sn, dev.id.as_str(), &set);
    crate::metrics::DEVICE_CONTROLS.inc();
    crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body)
        .await
        .map_err(|e| sip_failure(e, "DeviceConfig"))?;
    match waiting.next(ANSWER_TIMEOUT).await {
        Some(gb::manscdp::Body::ControlResult { ok: true }) => Ok(serde_json::json!({"device_id": dev.id, "result": "OK", "set": set})),
        Some(_) => Err(PlayError::DeviceFailed { request: "DeviceConfig".into() }),
        None => Err(PlayError::DeviceTimeout { request: "DeviceConfig Response".into(), ms: ANSWER_TIMEOUT.as_millis() as u64 }),
    }
}

/// `GET /devices/{id}/config`: the device's basic parameters (`ConfigDownload`), from the node
/// holding it.
pub async fn download_config(shared: &Arc<Shared>, device_id: &DeviceId) -> Result<serde_json::Value, PlayError> {
    let dev = online_device(shared, device_id).await?;
    if dev.node != shared.me.node {
        return crate::rpc::call(shared, &dev.node, crate::rpc::Call::ConfigDownload { device_id: device_id.clone() }).await;
    }
    query_config(shared, &dev).await
}

/// Sends the `ConfigDownload` query from this node and waits for the answer.
pub async fn query_config(shared: &Shared, dev: &cluster::registry::Device) -> Result<serde_json::Value, PlayError> {
    let sn = shared.next_sn();
    let mut waiting =
        shared.waiters.wait(dev.id.as_str(), sn).ok_or_else(|| PlayError::Busy("too many device queries in flight".into()))?;
    let body = gb::manscdp::build::config_download_query(sn, dev.id.as_str());
    crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body)
        .await
        .map_err(|e| sip_failure(e, "ConfigDownload"))?;
    match waiting.next(ANSWER_TIMEOUT).await {
        Some(gb::manscdp::Body::ConfigDownload { ok: true, basic }) => {
            Ok(serde_json::json!({"device_id": dev.id, "basic_param": basic.unwrap_or_default()}))
        }
        Some(_) => Err(PlayError::DeviceFailed { request: "ConfigDownload".into() }),
        None => Err(PlayError::DeviceTimeout { request: "ConfigDownload answer".into(), ms: ANSWER_TIMEOUT.as_millis() as u64 }),
    }
}

/// How long a device has to send the Response of a query.
pub(crate) const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `PresetQuery` of a channel: the presets the device lists, from the node holding it.
pub async fn presets(shared: &Arc<Shared>, device_id: &DeviceId, channel_id: &ChannelId) -> Result<serde_json::Value, PlayError> {
    let dev = target(shared, device_id, channel_id).await?;
    if dev.node != shared.me.node {
        let call = crate::rpc::Call::Presets { device_id: device_id.clone(), channel_id: channel_id.clone() };
        return crate::rpc::call(shared, &dev.node, call).await;
    }
    query_presets(shared, &dev, channel_id).await
}

/// Sends the query from this node and waits for its Response (matched by device and SN).
pub async fn query_presets(
    shared: &Shared,
    dev: &cluster::registry::Device,
    channel_id: &ChannelId,
) -> Result<serde_json::Value, PlayError> {
    let sn = shared.next_sn();
    // The answer comes From the device (or the channel, for some NVRs): wait under the device.
    let mut waiting =
        shared.waiters.wait(dev.id.as_str(), sn).ok_or_else(|| PlayError::Busy("too many device queries in flight".into()))?;
    let body = gb::manscdp::build::query("PresetQuery", sn, channel_id.as_str(), "");
    if let Err(e) = crate::outbound::send_request(shared, dev, "MESSAGE", gb::manscdp::CONTENT_TYPE, &body).await {
        return Err(sip_failure(e, "PresetQuery"));
    }
    let items = match waiting.next(ANSWER_TIMEOUT).await {
        Some(gb::manscdp::Body::PresetList { items }) => items,
        Some(_) => return Err(PlayError::Internal("the PresetQuery answer was not a preset list".into())),
        None => return Err(PlayError::DeviceTimeout { request: "PresetQuery answer".into(), ms: ANSWER_TIMEOUT.as_millis() as u64 }),
    };
    let presets: Vec<serde_json::Value> = items.into_iter().map(|(id, name)| serde_json::json!({"preset": id, "name": name})).collect();
    Ok(serde_json::json!({"device_id": dev.id, "channel_id": channel_id, "total": presets.len(), "items": presets}))
}

pub(crate) fn sip_failure(e: SipError, request: &str) -> PlayError {
    match e {
        SipError::Refused { code, .. } => PlayError::DeviceRefused { request: request.into(), code },
        SipError::Timeout { timeout_ms, .. } => PlayError::DeviceTimeout { request: request.into(), ms: timeout_ms },
        SipError::NotRegistered(d) => PlayError::DeviceOffline(d),
        e => PlayError::Internal(e.to_string()),
    }
}

/// The device, known and online.
async fn online_device(shared: &Shared, device_id: &DeviceId) -> Result<cluster::registry::Device, PlayError> {
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(device_id.to_string()))?;
    match dev.online {
        true => Ok(dev),
        false => Err(PlayError::DeviceOffline(device_id.to_string())),
    }
}

/// The device, online, and the channel: one of its catalog's, or the device itself (an IPC
/// addressed by its own id).
pub(crate) async fn target(shared: &Shared, device_id: &DeviceId, channel_id: &ChannelId) -> Result<cluster::registry::Device, PlayError> {
    let dev = online_device(shared, device_id).await?;
    if channel_id.as_str() != device_id.as_str()
        && !shared.store.list_channels(device_id).await?.iter().any(|c| c.item.id.as_ref() == Some(channel_id))
    {
        return Err(PlayError::ChannelUnknown { device: device_id.to_string(), channel: channel_id.to_string() });
    }
    Ok(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(command: &str) -> PtzRequest {
        PtzRequest { command: command.into(), ..Default::default() }
    }

    #[test]
    fn every_named_command_maps_and_bad_parameters_name_their_field() {
        for name in COMMANDS {
            let mut r = req(name);
            r.preset = Some(1);
            r.value = Some(10);
            r.aux = Some(1);
            assert!(ptz_command(&r).is_ok(), "{name}");
        }
        let r = PtzRequest { speed: Some(256), ..req("left") };
        assert_eq!(ptz_command(&r), Err(PlayError::BadRequest("speed must be 0-255, not 256".into())));
        let r = PtzRequest { zoom_speed: Some(16), ..req("zoom_in") };
        assert_eq!(ptz_command(&r), Err(PlayError::BadRequest("zoom_speed must be 0-15, not 16".into())));
        assert_eq!(ptz_command(&req("preset_call")), Err(PlayError::BadRequest("preset is required for this command".into())));
        let r = PtzRequest { preset: Some(0), ..req("preset_set") };
        assert_eq!(ptz_command(&r), Err(PlayError::BadRequest("preset must be 1-255, not 0".into())));
        assert!(
            matches!(ptz_command(&req("spin")), Err(PlayError::BadRequest(m)) if m.starts_with("command \"spin\" is unknown; one of stop, left"))
        );
        // Defaults: speed 128, zoom speed 8.
        let bytes = |r: &PtzRequest| ptz_command(r).unwrap().encode(gb::ptz::DEFAULT_ADDRESS).unwrap().to_string();
        // Right at 128: A5+0F+01+01+80 = 136 → 36 (the tilt speed is 0: no tilt).
        assert_eq!(bytes(&req("right")), "A50F010180000036");
        // Zoom out at 8, in byte 7's high nibble: A5+0F+01+20+80 = 155 → 55.
        assert_eq!(bytes(&req("zoom_out")), "A50F012000008055");
    }
}
