//! Builds MANSCDP bodies, GBK-encoded under a GB2312 declaration as devices expect.

use std::fmt::Write as _;

use super::text::encode_gbk;
use crate::model::{Alarm, BasicParam, CatalogEvent, Channel, DeviceInfo, Position, RecordItem};

const DECL: &str = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n";

/// Escapes text for an XML element body.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// `<Query><CmdType>{cmd}</CmdType>…` — Catalog, DeviceInfo, DeviceStatus, RecordInfo (the
/// caller adds the extra elements of the latter through `extra`).
pub fn query(cmd: &str, sn: u32, device_id: &str, extra: &str) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Query>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n{extra}</Query>\r\n",
        escape(device_id)
    ))
}

/// `DeviceControl` with a PTZ command (annex A.3) for `device_id` (the channel). PTZ commands
/// have no Response message: the device's 200 to the MESSAGE is the acknowledgement.
pub fn device_control_ptz(sn: u32, device_id: &str, cmd: &crate::ptz::PtzBytes) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<PTZCmd>{cmd}</PTZCmd>\r\n\
         <Info>\r\n<ControlPriority>5</ControlPriority>\r\n</Info>\r\n</Control>\r\n",
        escape(device_id)
    ))
}

/// `DeviceControl` with one command element (`element` is trusted XML built by the caller,
/// e.g. `<RecordCmd>Record</RecordCmd>`).
pub fn device_control(sn: u32, device_id: &str, element: &str) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n{element}\r\n</Control>\r\n",
        escape(device_id)
    ))
}

/// A device's Response to a `DeviceControl` that has one.
pub fn device_control_response(sn: u32, device_id: &str, ok: bool) -> Vec<u8> {
    result_response("DeviceControl", sn, device_id, ok)
}

/// A Response carrying only a `Result` (`DeviceControl`, `DeviceConfig`).
pub fn result_response(cmd: &str, sn: u32, device_id: &str, ok: bool) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Response>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Result>{}</Result>\r\n</Response>\r\n",
        escape(device_id),
        if ok { "OK" } else { "ERROR" }
    ))
}

/// `DeviceConfig` (A.2.3.2) setting the basic parameters present in `p` (name, expiration,
/// heartbeat interval and count; the others are the device's own and not sent).
pub fn device_config(sn: u32, device_id: &str, p: &BasicParam) -> Vec<u8> {
    let mut s = format!(
        "{DECL}<Control>\r\n<CmdType>DeviceConfig</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<BasicParam>\r\n",
        escape(device_id)
    );
    opt(&mut s, "Name", &p.name);
    opt(&mut s, "Expiration", &p.expiration);
    opt(&mut s, "HeartBeatInterval", &p.heartbeat_interval);
    opt(&mut s, "HeartBeatCount", &p.heartbeat_count);
    s.push_str("</BasicParam>\r\n</Control>\r\n");
    encode_gbk(&s)
}

/// `ConfigDownload` query of the basic parameters (A.2.4.7).
pub fn config_download_query(sn: u32, device_id: &str) -> Vec<u8> {
    query("ConfigDownload", sn, device_id, "<ConfigType>BasicParam</ConfigType>\r\n")
}

/// A device's `ConfigDownload` answer with its basic parameters.
pub fn config_download_response(sn: u32, device_id: &str, p: &BasicParam) -> Vec<u8> {
    let mut s = format!(
        "{DECL}<Response>\r\n<CmdType>ConfigDownload</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Result>OK</Result>\r\n<BasicParam>\r\n",
        escape(device_id)
    );
    opt(&mut s, "Name", &p.name);
    opt(&mut s, "DeviceID", &p.device_id);
    opt(&mut s, "SIPServerID", &p.sip_server_id);
    opt(&mut s, "SIPServerIP", &p.sip_server_ip);
    opt(&mut s, "SIPServerPort", &p.sip_server_port);
    opt(&mut s, "DomainName", &p.domain_name);
    opt(&mut s, "Expiration", &p.expiration);
    opt(&mut s, "HeartBeatInterval", &p.heartbeat_interval);
    opt(&mut s, "HeartBeatCount", &p.heartbeat_count);
    s.push_str("</BasicParam>\r\n</Response>\r\n");
    encode_gbk(&s)
}

/// The answer to a `PresetQuery`: `<PresetList Num=…>` of `<Item><PresetID>…<PresetName>…`.
pub fn preset_query_response(sn: u32, device_id: &str, presets: &[(u32, String)]) -> Vec<u8> {
    let mut s = format!(
        "{DECL}<Response>\r\n<CmdType>PresetQuery</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<PresetList Num=\"{}\">\r\n",
        escape(device_id),
        presets.len()
    );
    for (id, name) in presets {
        let _ = write!(s, "<Item>\r\n<PresetID>{id}</PresetID>\r\n<PresetName>{}</PresetName>\r\n</Item>\r\n", escape(name));
    }
    s.push_str("</PresetList>\r\n</Response>\r\n");
    encode_gbk(&s)
}

/// `RecordInfo` query of a channel (A.2.4.5): device-local start and end (`2026-12-01T10:00:00`)
/// and a type (`all`, `time`, `alarm`, `manual`). `Secrecy` is sent because some devices refuse
/// a query without it.
pub fn record_info_query(sn: u32, channel_id: &str, start_local: &str, end_local: &str, record_type: &str) -> Vec<u8> {
    let extra = format!(
        "<StartTime>{}</StartTime>\r\n<EndTime>{}</EndTime>\r\n<Secrecy>0</Secrecy>\r\n<Type>{}</Type>\r\n",
        escape(start_local),
        escape(end_local),
        escape(record_type)
    );
    query("RecordInfo", sn, channel_id, &extra)
}

/// One MESSAGE of a `RecordInfo` answer: `items` is its share of `sum_num`.
pub fn record_info_response(sn: u32, device_id: &str, name: &str, sum_num: usize, items: &[RecordItem]) -> Vec<u8> {
    let mut s = format!(
        "{DECL}<Response>\r\n<CmdType>RecordInfo</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Name>{}</Name>\r\n<SumNum>{sum_num}</SumNum>\r\n<RecordList Num=\"{}\">\r\n",
        escape(device_id),
        escape(name),
        items.len()
    );
    for r in items {
        s.push_str("<Item>\r\n");
        opt(&mut s, "DeviceID", &r.device_id);
        opt(&mut s, "Name", &r.name);
        opt(&mut s, "FilePath", &r.file_path);
        opt(&mut s, "Address", &r.address);
        opt(&mut s, "StartTime", &r.start_time);
        opt(&mut s, "EndTime", &r.end_time);
        opt(&mut s, "Secrecy", &r.secrecy);
        opt(&mut s, "Type", &r.record_type);
        opt(&mut s, "RecorderID", &r.recorder_id);
        opt(&mut s, "FileSize", &r.file_size);
        s.push_str("</Item>\r\n");
    }
    s.push_str("</RecordList>\r\n</Response>\r\n");
    encode_gbk(&s)
}

/// An `Alarm` notification as a device sends it.
pub fn alarm_notify(sn: u32, device_id: &str, a: &Alarm) -> Vec<u8> {
    let mut s = format!("{DECL}<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n", escape(device_id));
    opt(&mut s, "AlarmPriority", &a.priority);
    opt(&mut s, "AlarmMethod", &a.method);
    opt(&mut s, "AlarmTime", &a.time);
    opt(&mut s, "AlarmDescription", &a.description);
    opt(&mut s, "Longitude", &a.longitude);
    opt(&mut s, "Latitude", &a.latitude);
    if a.alarm_type.is_some() || a.event_type.is_some() {
        s.push_str("<Info>\r\n");
        opt(&mut s, "AlarmType", &a.alarm_type);
        if let Some(e) = a.event_type {
            let _ = write!(s, "<AlarmTypeParam>\r\n<EventType>{e}</EventType>\r\n</AlarmTypeParam>\r\n");
        }
        s.push_str("</Info>\r\n");
    }
    s.push_str("</Notify>\r\n");
    encode_gbk(&s)
}

/// `MediaStatus` as a device sends it when a playback or download reaches the end of its span
/// (`NotifyType` 121).
pub fn media_status(sn: u32, device_id: &str, notify_type: u32) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Notify>\r\n<CmdType>MediaStatus</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<NotifyType>{notify_type}</NotifyType>\r\n</Notify>\r\n",
        escape(device_id)
    ))
}

/// The platform's answer to an `Alarm` notification: `Response` with Result OK.
pub fn alarm_response(sn: u32, device_id: &str) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Response>\r\n<CmdType>Alarm</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n",
        escape(device_id)
    ))
}

/// A `MobilePosition` notification as a device sends it.
pub fn mobile_position_notify(sn: u32, device_id: &str, p: &Position) -> Vec<u8> {
    let mut s =
        format!("{DECL}<Notify>\r\n<CmdType>MobilePosition</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n", escape(device_id));
    opt(&mut s, "Time", &p.time);
    opt(&mut s, "Longitude", &p.longitude);
    opt(&mut s, "Latitude", &p.latitude);
    opt(&mut s, "Speed", &p.speed);
    opt(&mut s, "Direction", &p.direction);
    opt(&mut s, "Altitude", &p.altitude);
    s.push_str("</Notify>\r\n");
    encode_gbk(&s)
}

pub fn keepalive(sn: u32, device_id: &str) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n",
        escape(device_id)
    ))
}

fn opt(out: &mut String, tag: &str, v: &Option<impl std::fmt::Display>) {
    if let Some(v) = v {
        let _ = write!(out, "<{tag}>{}</{tag}>\r\n", escape(&v.to_string()));
    }
}

/// One page of a catalog answer: `items` is this MESSAGE's share of `sum_num`.
pub fn catalog_response(sn: u32, device_id: &str, sum_num: usize, items: &[Channel]) -> Vec<u8> {
    let mut s = format!(
        "{DECL}<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<SumNum>{sum_num}</SumNum>\r\n<DeviceList Num=\"{}\">\r\n",
        escape(device_id),
        items.len()
    );
    for c in items {
        catalog_item(&mut s, c, None);
    }
    s.push_str("</DeviceList>\r\n</Response>\r\n");
    encode_gbk(&s)
}

/// A catalog subscription's `NOTIFY` (annex A.2.6.2): each item with what happened to it.
pub fn catalog_notify(sn: u32, device_id: &str, items: &[(CatalogEvent, Channel)]) -> Vec<u8> {
    let mut s = format!(
        "{DECL}<Notify>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<SumNum>{n}</SumNum>\r\n<DeviceList Num=\"{n}\">\r\n",
        escape(device_id),
        n = items.len()
    );
    for (event, c) in items {
        catalog_item(&mut s, c, Some(*event));
    }
    s.push_str("</DeviceList>\r\n</Notify>\r\n");
    encode_gbk(&s)
}

fn catalog_item(s: &mut String, c: &Channel, event: Option<CatalogEvent>) {
    s.push_str("<Item>\r\n");
    opt(s, "DeviceID", &c.id);
    if let Some(e) = event {
        let _ = write!(s, "<Event>{}</Event>\r\n", e.as_str());
    }
    opt(s, "Name", &c.name);
    opt(s, "Manufacturer", &c.manufacturer);
    opt(s, "Model", &c.model);
    opt(s, "Owner", &c.owner);
    opt(s, "CivilCode", &c.civil_code);
    opt(s, "Address", &c.address);
    opt(s, "Parental", &c.parental);
    opt(s, "ParentID", &c.parent_id);
    opt(s, "SafetyWay", &c.safety_way);
    opt(s, "RegisterWay", &c.register_way);
    opt(s, "Secrecy", &c.secrecy);
    opt(s, "IPAddress", &c.ip_address);
    opt(s, "Port", &c.port);
    opt(s, "Status", &c.status);
    opt(s, "Longitude", &c.longitude);
    opt(s, "Latitude", &c.latitude);
    if let Some(p) = c.ptz_type {
        let _ = write!(s, "<Info>\r\n<PTZType>{p}</PTZType>\r\n</Info>\r\n");
    }
    s.push_str("</Item>\r\n");
}

pub fn device_info_response(sn: u32, device_id: &str, info: &DeviceInfo) -> Vec<u8> {
    let mut s =
        format!("{DECL}<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n", escape(device_id));
    opt(&mut s, "DeviceName", &info.name);
    s.push_str("<Result>OK</Result>\r\n");
    opt(&mut s, "Manufacturer", &info.manufacturer);
    opt(&mut s, "Model", &info.model);
    opt(&mut s, "Firmware", &info.firmware);
    opt(&mut s, "Channel", &info.channels);
    s.push_str("</Response>\r\n");
    encode_gbk(&s)
}

pub fn device_status_response(sn: u32, device_id: &str, device_time: &str) -> Vec<u8> {
    encode_gbk(&format!(
        "{DECL}<Response>\r\n<CmdType>DeviceStatus</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Result>OK</Result>\r\n\
         <Online>ONLINE</Online>\r\n<Status>OK</Status>\r\n<Encode>ON</Encode>\r\n<Record>OFF</Record>\r\n<DeviceTime>{}</DeviceTime>\r\n\
         <Alarmstatus Num=\"0\">\r\n</Alarmstatus>\r\n</Response>\r\n",
        escape(device_id),
        escape(device_time)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Body};
    use super::*;

    #[test]
    fn catalog_round_trips_through_the_parser() {
        let ch = Channel {
            id: Some("34020000001310000001".parse().unwrap()),
            name: Some("大门口 <east> & \"west\"".into()),
            status: Some("ON".into()),
            longitude: Some(120.5),
            ptz_type: Some(1),
            parental: Some(0),
            ..Default::default()
        };
        let bytes = catalog_response(9, "34020000001180000001", 1, std::slice::from_ref(&ch));
        assert!(std::str::from_utf8(&bytes).is_err(), "must be GBK, not UTF-8");
        let m = parse(&bytes).unwrap();
        assert_eq!(m.header.sn, 9);
        let Body::Catalog { sum_num, items } = m.body else { panic!() };
        assert_eq!(sum_num, 1);
        assert_eq!(items, vec![ch]);
    }

    #[test]
    fn basic_params_round_trip_through_config_and_download() {
        let set =
            BasicParam { name: Some("大门 <1>".into()), heartbeat_interval: Some(30), heartbeat_count: Some(3), ..Default::default() };
        let m = parse(&device_config(5, "34020000001320000001", &set)).unwrap();
        assert_eq!((m.header.cmd_type.as_str(), m.body), ("DeviceConfig", Body::DeviceConfig(set.clone())));
        let m = parse(&result_response("DeviceConfig", 5, "34020000001320000001", false)).unwrap();
        assert_eq!(m.body, Body::ControlResult { ok: false });
        let m = parse(&config_download_query(6, "34020000001320000001")).unwrap();
        assert_eq!(m.body, Body::ConfigQuery { config_type: "BasicParam".into() });
        let full =
            BasicParam { device_id: Some("34020000001320000001".into()), sip_server_port: Some(5060), expiration: Some(3600), ..set };
        let m = parse(&config_download_response(6, "34020000001320000001", &full)).unwrap();
        assert_eq!(m.body, Body::ConfigDownload { ok: true, basic: Some(full) });
        // Quirk: an answer with the parameters and no Result is taken as OK.
        let m = parse(b"<Response><CmdType>ConfigDownload</CmdType><SN>7</SN><DeviceID>1</DeviceID><BasicParam><Expiration>60</Expiration></BasicParam></Response>").unwrap();
        assert!(matches!(m.body, Body::ConfigDownload { ok: true, basic: Some(BasicParam { expiration: Some(60), .. }) }));
    }

    #[test]
    fn catalog_notifications_round_trip_with_their_events() {
        let ch = |n: u32, name: &str| Channel {
            id: Some(format!("3402000000131000000{n}").parse().unwrap()),
            name: Some(name.into()),
            ..Default::default()
        };
        let items = vec![(CatalogEvent::Add, ch(1, "东门")), (CatalogEvent::Del, ch(2, "x")), (CatalogEvent::Off, ch(3, "y"))];
        let m = parse(&catalog_notify(3, "34020000001320000001", &items)).unwrap();
        assert_eq!(m.body, Body::CatalogChange { items });
        // An item whose Event is unreadable is left out; the rest stand.
        let m = parse(b"<Notify><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><DeviceList><Item><DeviceID>34020000001310000001</DeviceID><Event>EXPLODE</Event></Item><Item><DeviceID>34020000001310000002</DeviceID><Event>on</Event></Item></DeviceList></Notify>").unwrap();
        assert!(matches!(&m.body, Body::CatalogChange { items } if items.len() == 1 && items[0].0 == CatalogEvent::On));
        let m = parse(&query("MobilePosition", 4, "34020000001320000001", "<Interval>5</Interval>\r\n")).unwrap();
        assert_eq!(m.body, Body::PositionQuery { interval_secs: Some(5) });
    }

    #[test]
    fn queries_parse_as_queries() {
        let m = parse(&query("Catalog", 3, "34020000001320000001", "")).unwrap();
        assert_eq!(m.body, Body::Query);
        assert_eq!(m.header.cmd_type, "Catalog");
        let m = parse(&keepalive(4, "34020000001320000001")).unwrap();
        assert!(matches!(m.body, Body::Keepalive { .. }));
    }
}
