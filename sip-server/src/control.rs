//! Device control from the API: `DeviceControl` with a PTZ command of annex A.3 (`gb::ptz`) —
//! moves and stop, focus and iris, presets, cruise, scan, auxiliary switches — and the
//! `PresetQuery` that lists a channel's presets (its Response awaited through `handles::Waiters`). It is sent by the
//! node that holds the device's connection (a call routed over the Store, like a play). A PTZ
//! command has no Response message: the device's final answer to the MESSAGE is the
//! acknowledgement, so it maps to HTTP at once — 200, a refusal 502 with the SIP status, no
//! answer 504.

use std::sync::Arc;

use gb::ids::{ChannelId, DeviceId};
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

/// `DeviceControl` commands other than PTZ, by what they ask (`POST …/control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
}

impl DeviceCommand {
    /// The command's element, as annex A.2.3 spells it.
    fn element(self) -> &'static str {
        match self {
            DeviceCommand::Teleboot => "<TeleBoot>Boot</TeleBoot>",
            DeviceCommand::RecordStart => "<RecordCmd>Record</RecordCmd>",
            DeviceCommand::RecordStop => "<RecordCmd>StopRecord</RecordCmd>",
            DeviceCommand::GuardSet => "<GuardCmd>SetGuard</GuardCmd>",
            DeviceCommand::GuardReset => "<GuardCmd>ResetGuard</GuardCmd>",
            DeviceCommand::AlarmReset => "<AlarmCmd>ResetAlarm</AlarmCmd>",
            DeviceCommand::Iframe => "<IFrameCmd>Send</IFrameCmd>",
        }
    }

    /// Whether the device answers with a Response carrying a `Result` (the others are done once
    /// the MESSAGE is taken).
    fn has_response(self) -> bool {
        !matches!(self, DeviceCommand::Teleboot | DeviceCommand::Iframe)
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
    let request = format!("{cmd:?} command");
    let mut waiting = match cmd.has_response() {
        true => Some(shared.waiters.wait(dev.id.as_str(), sn).ok_or_else(|| PlayError::Busy("too many device queries in flight".into()))?),
        false => None,
    };
    let body = gb::manscdp::build::device_control(sn, channel_id.as_str(), cmd.element());
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
    Ok(serde_json::json!({"device_id": dev.id, "channel_id": channel_id, "command": cmd, "result": result}))
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

/// The device, online, and the channel: one of its catalog's, or the device itself (an IPC
/// addressed by its own id).
pub(crate) async fn target(shared: &Shared, device_id: &DeviceId, channel_id: &ChannelId) -> Result<cluster::registry::Device, PlayError> {
    let dev = shared.store.get_device(device_id).await?.ok_or_else(|| PlayError::DeviceUnknown(device_id.to_string()))?;
    if !dev.online {
        return Err(PlayError::DeviceOffline(device_id.to_string()));
    }
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
