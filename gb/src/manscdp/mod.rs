//! MANSCDP (GB/T 28181 XML over SIP MESSAGE): bytes in → typed message; typed request → bytes.

pub mod build;
pub mod text;

use crate::model::{Alarm, BasicParam, CatalogEvent, Channel, DeviceInfo, DeviceStatus, Position, RecordItem};
use crate::xml::Element;

pub const CONTENT_TYPE: &str = "Application/MANSCDP+xml";
/// Largest body we parse; NVR catalogs split into several MESSAGEs each well under this.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManscdpError {
    #[error("body of {0} bytes exceeds {MAX_BODY}")]
    TooLarge(usize),
    #[error("xml: {0}")]
    Xml(#[from] crate::xml::TreeError),
    #[error("missing {0}")]
    Missing(&'static str),
}

/// The root element kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Query,
    Control,
    Notify,
    Response,
    Other,
}

/// Fields every MANSCDP message has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub root: Root,
    pub cmd_type: String,
    pub sn: u32,
    pub device_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Keepalive {
        status: Option<String>,
    },
    Catalog {
        sum_num: u32,
        items: Vec<Channel>,
    },
    DeviceInfo(DeviceInfo),
    DeviceStatus(DeviceStatus),
    /// A query sent to a device (what the simulator receives).
    Query,
    /// A `RecordInfo` query as a device receives it: device-local times as written, and the type.
    RecordQuery {
        start_time: Option<String>,
        end_time: Option<String>,
        record_type: Option<String>,
    },
    /// One MESSAGE of a `RecordInfo` answer: `sum_num` is the answer's total, `items` this
    /// MESSAGE's share (at most `MAX_RECORDS_PER_MESSAGE`).
    RecordInfo {
        sum_num: u32,
        items: Vec<RecordItem>,
    },
    /// A `PresetQuery` answer: (preset number, name), at most 256.
    PresetList {
        items: Vec<(u32, String)>,
    },
    /// `DeviceControl` sent to a device: the PTZ command's hex text when it has one, and the
    /// lower-case names of its other command elements (`recordcmd`, `guardcmd`, …).
    DeviceControl {
        ptz_cmd: Option<String>,
        commands: Vec<String>,
    },
    /// `MediaStatus` of a playback or download (`NotifyType` 121: the file ended).
    MediaStatus {
        notify_type: Option<u32>,
    },
    /// An alarm the device raises (`Notify` `Alarm`), answered with a `Response` Result OK.
    Alarm(Alarm),
    /// Where a mobile device is (`Notify` `MobilePosition`, by MESSAGE or subscription NOTIFY).
    MobilePosition(Position),
    /// A device's Response to a `DeviceControl` that has one: its `Result` was `OK`.
    ControlResult {
        ok: bool,
    },
    /// `DeviceConfig` sent to a device: the basic parameters to set (those present).
    DeviceConfig(BasicParam),
    /// `ConfigDownload` query as a device receives it: the asked types (`BasicParam`, or
    /// several joined by `/`).
    ConfigQuery {
        config_type: String,
    },
    /// A device's `ConfigDownload` answer: its `Result` and the basic parameters it sent.
    ConfigDownload {
        ok: bool,
        basic: Option<BasicParam>,
    },
    /// A catalog subscription's `NOTIFY`: what happened to each item (an item whose `Event`
    /// we cannot read is left out).
    CatalogChange {
        items: Vec<(CatalogEvent, Channel)>,
    },
    /// A `MobilePosition` subscription as the device receives it: the report interval asked.
    PositionQuery {
        interval_secs: Option<u32>,
    },
    /// Anything else: answered 200 and logged.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

fn num<T: std::str::FromStr>(el: &Element, name: &str) -> Option<T> {
    el.text_of(name).and_then(|t| t.parse().ok())
}

fn text(el: &Element, name: &str) -> Option<String> {
    el.text_of(name).map(str::to_owned)
}

/// A header field of the root: a child element as the standard has it, or an attribute of the
/// root as some device stacks send it (`<Notify CmdType="Keepalive" SN="1" DeviceID="…">`;
/// refusing those made such devices re-register in a loop).
fn header_field<'a>(root: &'a Element, name: &str) -> Option<&'a str> {
    root.text_of(name).or_else(|| root.attr(name).map(str::trim).filter(|v| !v.is_empty()))
}

/// More items than this in one MESSAGE is not a device's answer (64 KiB holds about 250); it
/// bounds catalog notifications too.
pub const MAX_RECORDS_PER_MESSAGE: usize = 1024;

fn record(item: &Element) -> RecordItem {
    RecordItem {
        device_id: text(item, "deviceid"),
        name: text(item, "name"),
        file_path: text(item, "filepath"),
        address: text(item, "address"),
        start_time: text(item, "starttime"),
        end_time: text(item, "endtime"),
        secrecy: num(item, "secrecy"),
        record_type: text(item, "type"),
        recorder_id: text(item, "recorderid"),
        file_size: num(item, "filesize"),
    }
}

fn basic_param(p: &Element) -> BasicParam {
    BasicParam {
        name: text(p, "name"),
        device_id: text(p, "deviceid"),
        sip_server_id: text(p, "sipserverid"),
        sip_server_ip: text(p, "sipserverip"),
        sip_server_port: num(p, "sipserverport"),
        domain_name: text(p, "domainname"),
        expiration: num(p, "expiration"),
        heartbeat_interval: num(p, "heartbeatinterval"),
        heartbeat_count: num(p, "heartbeatcount"),
    }
}

/// `Result` of a Response: `OK` (any case) or not.
fn result_ok(root: &Element) -> bool {
    header_field(root, "result").is_some_and(|r| r.eq_ignore_ascii_case("ok"))
}

/// A coordinate: finite and within the globe, else none (cameras send 0, "", or garbage).
fn coordinate(el: &Element, name: &str, limit: f64) -> Option<f64> {
    num::<f64>(el, name).filter(|v| v.is_finite() && v.abs() <= limit)
}

fn finite(el: &Element, name: &str) -> Option<f64> {
    num::<f64>(el, name).filter(|v| v.is_finite())
}

fn channel(item: &Element) -> Channel {
    let info = item.child("info");
    Channel {
        id: item.text_of("deviceid").and_then(|t| t.parse().ok()),
        name: text(item, "name"),
        manufacturer: text(item, "manufacturer"),
        model: text(item, "model"),
        owner: text(item, "owner"),
        civil_code: text(item, "civilcode"),
        block: text(item, "block"),
        address: text(item, "address"),
        parental: num(item, "parental"),
        parent_id: text(item, "parentid"),
        business_group_id: text(item, "businessgroupid"),
        safety_way: num(item, "safetyway"),
        register_way: num(item, "registerway"),
        secrecy: num(item, "secrecy"),
        ip_address: text(item, "ipaddress"),
        port: num(item, "port"),
        status: text(item, "status"),
        longitude: num::<f64>(item, "longitude").filter(|v| v.is_finite()),
        latitude: num::<f64>(item, "latitude").filter(|v| v.is_finite()),
        ptz_type: info.and_then(|i| num(i, "ptztype")).or_else(|| num(item, "ptztype")),
    }
}

/// Parses a MANSCDP body (raw bytes from the wire, any of the encodings cameras use).
pub fn parse(bytes: &[u8]) -> Result<Message, ManscdpError> {
    if bytes.len() > MAX_BODY {
        return Err(ManscdpError::TooLarge(bytes.len()));
    }
    let xml = text::decode_body(bytes);
    let root = crate::xml::parse(&xml)?;
    let root_kind = match root.name.as_str() {
        "query" => Root::Query,
        "control" => Root::Control,
        "notify" => Root::Notify,
        "response" => Root::Response,
        _ => Root::Other,
    };
    let cmd_type = header_field(&root, "cmdtype").ok_or(ManscdpError::Missing("CmdType"))?.to_owned();
    let header = Header {
        root: root_kind,
        sn: header_field(&root, "sn").and_then(|t| t.parse().ok()).unwrap_or(0),
        device_id: header_field(&root, "deviceid").unwrap_or_default().to_owned(),
        cmd_type,
    };
    let cmd = header.cmd_type.to_ascii_lowercase();
    let body = match (root_kind, cmd.as_str()) {
        (Root::Notify, "keepalive") => Body::Keepalive { status: text(&root, "status") },
        (Root::Notify, "alarm") => {
            let info = root.child("info");
            Body::Alarm(Alarm {
                priority: num(&root, "alarmpriority"),
                method: num(&root, "alarmmethod"),
                time: text(&root, "alarmtime"),
                description: text(&root, "alarmdescription"),
                longitude: coordinate(&root, "longitude", 180.0),
                latitude: coordinate(&root, "latitude", 90.0),
                alarm_type: info.and_then(|i| num(i, "alarmtype")).or_else(|| num(&root, "alarmtype")),
                event_type: info.and_then(|i| i.child("alarmtypeparam")).and_then(|p| num(p, "eventtype")),
            })
        }
        (Root::Notify, "catalog") => Body::CatalogChange {
            items: root
                .child("devicelist")
                .map(|l| {
                    l.children_named("item")
                        .take(MAX_RECORDS_PER_MESSAGE)
                        .filter_map(|i| Some((CatalogEvent::parse(i.text_of("event")?)?, channel(i))))
                        .collect()
                })
                .unwrap_or_default(),
        },
        (Root::Query, "mobileposition") => Body::PositionQuery { interval_secs: num(&root, "interval") },
        (Root::Notify, "mediastatus") => Body::MediaStatus { notify_type: num(&root, "notifytype") },
        (Root::Notify, "mobileposition") => Body::MobilePosition(Position {
            time: text(&root, "time"),
            longitude: coordinate(&root, "longitude", 180.0),
            latitude: coordinate(&root, "latitude", 90.0),
            speed: finite(&root, "speed"),
            direction: finite(&root, "direction"),
            altitude: finite(&root, "altitude"),
        }),
        (Root::Response, "catalog") => {
            let items = root.child("devicelist").map(|l| l.children_named("item").map(channel).collect()).unwrap_or_default();
            Body::Catalog { sum_num: num(&root, "sumnum").unwrap_or(0), items }
        }
        (Root::Response, "deviceinfo") => Body::DeviceInfo(DeviceInfo {
            name: text(&root, "devicename"),
            manufacturer: text(&root, "manufacturer"),
            model: text(&root, "model"),
            firmware: text(&root, "firmware"),
            channels: num(&root, "channel"),
        }),
        (Root::Response, "devicestatus") => Body::DeviceStatus(DeviceStatus {
            online: text(&root, "online"),
            status: text(&root, "status"),
            encode: text(&root, "encode"),
            record: text(&root, "record"),
            device_time: text(&root, "devicetime"),
            alarms: root
                .child("alarmstatus")
                .map(|a| {
                    a.children_named("item")
                        .take(256)
                        .map(|i| (text(i, "deviceid").unwrap_or_default(), text(i, "dutystatus").unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default(),
            utc_offset_minutes: None,
        }),
        (Root::Response, "recordinfo") => Body::RecordInfo {
            sum_num: num(&root, "sumnum").unwrap_or(0),
            items: root
                .child("recordlist")
                .map(|l| l.children_named("item").take(MAX_RECORDS_PER_MESSAGE).map(record).collect())
                .unwrap_or_default(),
        },
        (Root::Response, "presetquery") => Body::PresetList {
            items: root
                .child("presetlist")
                .map(|l| {
                    l.children_named("item")
                        .take(256)
                        .filter_map(|i| Some((num(i, "presetid")?, text(i, "presetname").unwrap_or_default())))
                        .collect()
                })
                .unwrap_or_default(),
        },
        (Root::Query, "recordinfo") => {
            Body::RecordQuery { start_time: text(&root, "starttime"), end_time: text(&root, "endtime"), record_type: text(&root, "type") }
        }
        (Root::Control, "devicecontrol") => Body::DeviceControl {
            ptz_cmd: text(&root, "ptzcmd"),
            commands: root
                .children
                .iter()
                .filter(|c| !matches!(c.name.as_str(), "cmdtype" | "sn" | "deviceid" | "ptzcmd" | "info"))
                .take(16)
                .map(|c| c.name.clone())
                .collect(),
        },
        (Root::Response, "devicecontrol" | "deviceconfig") => Body::ControlResult { ok: result_ok(&root) },
        (Root::Control, "deviceconfig") => Body::DeviceConfig(root.child("basicparam").map(basic_param).unwrap_or_default()),
        (Root::Query, "configdownload") => Body::ConfigQuery { config_type: text(&root, "configtype").unwrap_or_default() },
        // Some devices leave `Result` out of a ConfigDownload answer that carries the parameters.
        (Root::Response, "configdownload") => {
            let basic = root.child("basicparam").map(basic_param);
            Body::ConfigDownload { ok: result_ok(&root) || (header_field(&root, "result").is_none() && basic.is_some()), basic }
        }
        (Root::Query, _) => Body::Query,
        _ => Body::Other,
    };
    Ok(Message { header, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hikvision_keepalive() {
        let body = b"<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>43</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n";
        let m = parse(body).unwrap();
        assert_eq!(m.header.sn, 43);
        assert_eq!(m.header.device_id, "34020000001320000001");
        assert_eq!(m.body, Body::Keepalive { status: Some("OK".into()) });
    }

    /// Quirk: some device stacks put the header in attributes of the root element.
    #[test]
    fn keepalive_with_its_header_in_root_attributes() {
        let m = parse(b"<?xml version=\"1.0\"?><Notify CmdType=\"Keepalive\" SN=\"17\" DeviceID=\" 34020000001320000001 \"><Status>OK</Status></Notify>").unwrap();
        assert_eq!(m.header.cmd_type, "Keepalive");
        assert_eq!((m.header.sn, m.header.device_id.as_str()), (17, "34020000001320000001"));
        assert_eq!(m.body, Body::Keepalive { status: Some("OK".into()) });
        // Elements win over attributes; an empty attribute is no value.
        let m = parse(b"<Notify cmdtype=\"Alarm\" sn=\"\"><CmdType>Keepalive</CmdType><SN>5</SN></Notify>").unwrap();
        assert_eq!((m.header.cmd_type.as_str(), m.header.sn), ("Keepalive", 5));
        assert_eq!(parse(b"<Notify CmdType=\"  \"/>"), Err(ManscdpError::Missing("CmdType")));
    }

    #[test]
    fn device_control_round_trips_its_ptz_command() {
        let cmd = crate::ptz::PtzCommand::CallPreset(3).encode(1).unwrap();
        let m = parse(&build::device_control_ptz(9, "34020000001310000001", &cmd)).unwrap();
        assert_eq!((m.header.root, m.header.sn, m.header.device_id.as_str()), (Root::Control, 9, "34020000001310000001"));
        assert_eq!(m.body, Body::DeviceControl { ptz_cmd: Some("A50F01820003003A".into()), commands: vec![] });
        let m = parse(&build::device_control(3, "34020000001320000001", "<RecordCmd>Record</RecordCmd>")).unwrap();
        assert_eq!(m.body, Body::DeviceControl { ptz_cmd: None, commands: vec!["recordcmd".into()] });
        let ok = parse(&build::device_control_response(3, "34020000001320000001", true)).unwrap();
        assert_eq!((ok.header.sn, ok.body), (3, Body::ControlResult { ok: true }));
        let failed = parse(b"<Response><CmdType>DeviceControl</CmdType><SN>3</SN><Result>ERROR</Result></Response>").unwrap();
        assert_eq!(failed.body, Body::ControlResult { ok: false });
    }

    #[test]
    fn preset_list_round_trips_in_gb2312() {
        let body = build::preset_query_response(4, "34020000001310000001", &[(1, "大门".into()), (7, String::new())]);
        let m = parse(&body).unwrap();
        assert_eq!(m.header.sn, 4);
        assert_eq!(m.body, Body::PresetList { items: vec![(1, "大门".into()), (7, String::new())] });
        let m = parse(b"<Response><CmdType>PresetQuery</CmdType><PresetList Num=\"2\"><Item><PresetID>x</PresetID></Item><Item><PresetID>2</PresetID></Item></PresetList></Response>").unwrap();
        assert_eq!(m.body, Body::PresetList { items: vec![(2, String::new())] }, "an item without a number is left out");
    }

    #[test]
    fn record_info_round_trips_and_reads_what_devices_send() {
        let item = RecordItem {
            device_id: Some("34020000001310000001".into()),
            name: Some("大门".into()),
            file_path: Some("/rec/1".into()),
            start_time: Some("2026-12-01T10:00:00".into()),
            end_time: Some("2026-12-01T10:15:00".into()),
            secrecy: Some(0),
            record_type: Some("time".into()),
            file_size: Some(1 << 33),
            ..Default::default()
        };
        let m = parse(&build::record_info_response(8, "34020000001320000001", "cam", 40, std::slice::from_ref(&item))).unwrap();
        assert_eq!(m.header.sn, 8);
        assert_eq!(m.body, Body::RecordInfo { sum_num: 40, items: vec![item] });
        let q = parse(&build::record_info_query(9, "34020000001310000001", "2026-12-01T00:00:00", "2026-12-01T23:59:59", "all")).unwrap();
        let asked = Body::RecordQuery {
            start_time: Some("2026-12-01T00:00:00".into()),
            end_time: Some("2026-12-01T23:59:59".into()),
            record_type: Some("all".into()),
        };
        assert_eq!((q.header.cmd_type.as_str(), q.body), ("RecordInfo", asked));
        // No recordings: many devices leave the list out altogether.
        let m = parse(b"<Response><CmdType>RecordInfo</CmdType><SN>3</SN><SumNum>0</SumNum></Response>").unwrap();
        assert_eq!(m.body, Body::RecordInfo { sum_num: 0, items: vec![] });
    }

    #[test]
    fn alarms_and_positions_round_trip_and_garbage_coordinates_are_none() {
        let alarm = Alarm {
            priority: Some(1),
            method: Some(5),
            time: Some("2026-12-01T10:00:00".into()),
            description: Some("移动侦测".into()),
            longitude: Some(116.39),
            latitude: Some(39.9),
            alarm_type: Some(2),
            event_type: Some(1),
        };
        let m = parse(&build::alarm_notify(5, "34020000001340000001", &alarm)).unwrap();
        assert_eq!((m.header.root, m.header.sn, m.header.device_id.as_str()), (Root::Notify, 5, "34020000001340000001"));
        assert_eq!(m.body, Body::Alarm(alarm));
        let pos = Position {
            time: Some("2026-12-01T10:00:01".into()),
            longitude: Some(-73.98),
            latitude: Some(40.75),
            speed: Some(36.5),
            direction: Some(270.0),
            altitude: Some(12.0),
        };
        let m = parse(&build::mobile_position_notify(6, "34020000001320000001", &pos)).unwrap();
        assert_eq!(m.body, Body::MobilePosition(pos));
        let m = parse(
            b"<Notify><CmdType>MobilePosition</CmdType><Longitude>200</Longitude><Latitude>NaN</Latitude><Speed>inf</Speed></Notify>",
        )
        .unwrap();
        assert_eq!(m.body, Body::MobilePosition(Position::default()));
        // The platform's answer to an alarm.
        let m = parse(&build::alarm_response(5, "34020000001340000001")).unwrap();
        assert_eq!((m.header.root, m.header.cmd_type.as_str(), m.body), (Root::Response, "Alarm", Body::Other));
    }

    #[test]
    fn catalog_in_gb2312_with_sloppy_items() {
        let xml = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>Catalog</CmdType><SN>7</SN>\
            <DeviceID>34020000001180000001</DeviceID><SumNum>3</SumNum><DeviceList Num=\"2\">\
            <Item><DeviceID>34020000001310000001</DeviceID><Name>大门口</Name><Manufacturer>Hikvision</Manufacturer>\
            <Parental>0</Parental><ParentID>34020000001180000001</ParentID><Status>ON</Status><Longitude>116.3</Longitude>\
            <Latitude></Latitude><Info><PTZType>1</PTZType></Info><Unknown>x</Unknown></Item>\
            <item><deviceid>bogus</deviceid><name/></item></DeviceList></Response>";
        let m = parse(&text::encode_gbk(xml)).unwrap();
        let Body::Catalog { sum_num, items } = m.body else { panic!("not a catalog") };
        assert_eq!(sum_num, 3);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].name.as_deref(), Some("大门口"));
        assert_eq!(items[0].longitude, Some(116.3));
        assert_eq!(items[0].latitude, None);
        assert_eq!(items[0].ptz_type, Some(1));
        assert_eq!(items[1].id, None);
    }

    #[test]
    fn device_info_and_unknown_cmd() {
        let m = parse(b"<Response><CmdType>DeviceInfo</CmdType><SN>1</SN><DeviceID>1</DeviceID><DeviceName>IPC</DeviceName><Channel>4</Channel><Result>OK</Result></Response>").unwrap();
        let Body::DeviceInfo(info) = m.body else { panic!() };
        assert_eq!(info.channels, Some(4));
        let m = parse(b"<Notify><CmdType>Broadcast</CmdType></Notify>").unwrap();
        assert_eq!(m.body, Body::Other);
        assert!(parse(b"<Notify></Notify>").is_err());
        assert!(parse(&vec![b' '; MAX_BODY + 1]).is_err());
    }
}
