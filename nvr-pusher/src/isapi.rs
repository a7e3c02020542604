//! Hikvision ISAPI: record search (`POST /ISAPI/ContentMgmt/search`, paged while the answer
//! says `MORE`) and PTZ (`PUT /ISAPI/PTZCtrl/channels/{ch}/continuous`, focus and iris under
//! `/ISAPI/System/Video/inputs/channels/{ch}/`). Request bodies and the result parser are
//! sans-I/O; `search` and `ptz` drive them over [`VendorHttp`].

use std::time::Duration;

use gb::xml;

use crate::vendor::{isapi_ptz_body, LocalTime, Ptz};
use crate::vendor_http::{VendorError, VendorHttp};

/// Results asked for per page (the devices cap it at 40-50).
pub const PAGE: usize = 40;
/// Pages read at most (a day of 1-minute files is 1,440 results: 36 pages).
pub const MAX_PAGES: usize = 50;

/// One recorded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFile {
    pub file_name: String,
    pub file_size: u64,
    pub start: LocalTime,
    pub stop: LocalTime,
}

/// The `CMSearchDescription` for one page. `track` is `{channel}01` (main stream recordings).
pub fn search_body(search_id: &str, channel: u32, start: &LocalTime, end: &LocalTime, position: usize) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <CMSearchDescription>\
         <searchID>{search_id}</searchID>\
         <trackList><trackID>{channel}01</trackID></trackList>\
         <timeSpanList><timeSpan><startTime>{}</startTime><endTime>{}</endTime></timeSpan></timeSpanList>\
         <maxResults>{PAGE}</maxResults>\
         <searchResultPostion>{position}</searchResultPostion>\
         <metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor></metadataList>\
         </CMSearchDescription>",
        start.isapi(),
        end.isapi()
    )
}

/// What one page of `CMSearchResult` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub files: Vec<RecordFile>,
    /// `responseStatusStrg` was `MORE`.
    pub more: bool,
}

/// `2016-07-20T12:00:00Z` (or with a zone offset, which devices add; the wall time is kept).
fn isapi_time(s: &str) -> Option<LocalTime> {
    let s = s.trim();
    LocalTime::parse(s.get(..19)?)
}

/// A query parameter of a playback URI (`...?starttime=..&name=ch01_08000000000000100&size=..`).
fn query_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let q = uri.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

pub fn parse_search(xml: &str) -> Result<SearchPage, String> {
    let root = xml::parse(xml).map_err(|e| format!("ISAPI search answer: {e}"))?;
    if root.name != "cmsearchresult" {
        return Err(format!("ISAPI search answer: expected CMSearchResult, got <{}>", root.name));
    }
    let status = root.text_of("responsestatusstrg").unwrap_or("");
    let mut files = Vec::new();
    if let Some(list) = root.child("matchlist") {
        for item in list.children_named("searchmatchitem") {
            let span = item.child("timespan");
            let start = span.and_then(|s| s.text_of("starttime")).and_then(isapi_time);
            let stop = span.and_then(|s| s.text_of("endtime")).and_then(isapi_time);
            let (Some(start), Some(stop)) = (start, stop) else { continue };
            let uri = item.child("mediasegmentdescriptor").and_then(|m| m.text_of("playbackuri")).unwrap_or("");
            let file_name =
                query_param(uri, "name").map(str::to_owned).unwrap_or_else(|| format!("{}-{}", start.hikvision(), stop.hikvision()));
            let file_size = query_param(uri, "size").and_then(|s| s.parse().ok()).unwrap_or(0);
            files.push(RecordFile { file_name, file_size, start, stop });
        }
    }
    Ok(SearchPage { files, more: status.eq_ignore_ascii_case("MORE") })
}

/// Every recording of `channel` overlapping the range, in time order.
pub async fn search(http: &VendorHttp, channel: u32, start: &LocalTime, end: &LocalTime) -> Result<Vec<RecordFile>, VendorError> {
    let search_id = uuid_v4();
    let mut files = Vec::new();
    for _ in 0..MAX_PAGES {
        let body = search_body(&search_id, channel, start, end, files.len());
        let r = http.call("POST", "/ISAPI/ContentMgmt/search", "application/xml", body.as_bytes()).await?;
        let page = parse_search(&String::from_utf8_lossy(&r.body)).map_err(VendorError::Refused)?;
        let got = page.files.len();
        files.extend(page.files);
        if !page.more || got == 0 {
            break;
        }
    }
    files.sort_by_key(|f| f.start);
    Ok(files)
}

/// A random UUID (version 4), as ISAPI wants for `searchID`.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The requests one PTZ command makes: (path, body to start, body to stop).
pub fn ptz_requests(cmd: Ptz, channel: u32, speed: i32) -> (String, String, String) {
    if let Some((pan, tilt, zoom)) = cmd.hikvision_move(speed) {
        (format!("/ISAPI/PTZCtrl/channels/{channel}/continuous"), isapi_ptz_body(pan, tilt, zoom), isapi_ptz_body(0, 0, 0))
    } else {
        let (what, v) = cmd.hikvision_lens(speed).unwrap_or(("focus", 0));
        let (tag, data) = if what == "iris" { ("iris", "IrisData") } else { ("focus", "FocusData") };
        let body = |v: i32| format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><{data}><{tag}>{v}</{tag}></{data}>");
        (format!("/ISAPI/System/Video/inputs/channels/{channel}/{what}"), body(v), body(0))
    }
}

/// Moves for `duration`, then stops (the stop is sent even when waiting was cut short).
pub async fn ptz(http: &VendorHttp, cmd: Ptz, channel: u32, speed: i32, duration: Duration) -> Result<(), VendorError> {
    let (path, start, stop) = ptz_requests(cmd, channel, speed);
    http.call("PUT", &path, "application/xml", start.as_bytes()).await?;
    tokio::time::sleep(duration).await;
    http.call("PUT", &path, "application/xml", stop.as_bytes()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> LocalTime {
        LocalTime::parse(s).unwrap()
    }

    #[test]
    fn search_body_pages_and_names_the_track() {
        let b = search_body("ID", 3, &t("2016-07-20 12:00:00"), &t("2016-07-20 13:00:00"), 40);
        assert!(b.contains("<trackID>301</trackID>"), "{b}");
        assert!(b.contains("<startTime>2016-07-20T12:00:00Z</startTime><endTime>2016-07-20T13:00:00Z</endTime>"));
        assert!(b.contains("<maxResults>40</maxResults><searchResultPostion>40</searchResultPostion>"));
        let id = uuid_v4();
        assert_eq!((id.len(), &id[14..15]), (36, "4"));
    }

    #[test]
    fn reads_a_search_result() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<CMSearchResult version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<searchID>C8A7F9D2-0000-0000-0000-000000000000</searchID>
<responseStatus>true</responseStatus>
<responseStatusStrg>MORE</responseStatusStrg>
<numOfMatches>2</numOfMatches>
<matchList>
<searchMatchItem><sourceID>{0000}</sourceID><trackID>101</trackID>
<timeSpan><startTime>2016-07-20T11:58:02Z</startTime><endTime>2016-07-20T12:30:00Z</endTime></timeSpan>
<mediaSegmentDescriptor><contentType>video</contentType><codecType>H.264-BP</codecType>
<playbackURI>rtsp://10.8.30.109/Streaming/tracks/101/?starttime=20160720T115802Z&amp;endtime=20160720T123000Z&amp;name=ch01_08000000000000100&amp;size=262144000</playbackURI>
</mediaSegmentDescriptor></searchMatchItem>
<searchMatchItem><timeSpan><startTime>2016-07-20T12:30:00+08:00</startTime><endTime>2016-07-20T13:00:00+08:00</endTime></timeSpan></searchMatchItem>
</matchList></CMSearchResult>"#;
        let p = parse_search(xml).unwrap();
        assert!(p.more);
        assert_eq!(
            p.files[0],
            RecordFile {
                file_name: "ch01_08000000000000100".into(),
                file_size: 262_144_000,
                start: t("2016-07-20 11:58:02"),
                stop: t("2016-07-20 12:30:00")
            }
        );
        assert_eq!((p.files[1].file_name.as_str(), p.files[1].stop), ("20160720T123000Z-20160720T130000Z", t("2016-07-20 13:00:00")));
        let none = parse_search("<CMSearchResult><responseStatusStrg>NO MATCHES</responseStatusStrg></CMSearchResult>").unwrap();
        assert!(none.files.is_empty() && !none.more);
        assert!(parse_search("<ResponseStatus/>").is_err());
        assert!(parse_search("").is_err());
    }

    #[test]
    fn ptz_bodies() {
        let (path, start, stop) = ptz_requests(Ptz::UpLeft, 2, 60);
        assert_eq!(path, "/ISAPI/PTZCtrl/channels/2/continuous");
        assert!(start.contains("<pan>-60</pan><tilt>60</tilt><zoom>0</zoom>"), "{start}");
        assert!(stop.contains("<pan>0</pan><tilt>0</tilt><zoom>0</zoom>"));
        let (path, start, _) = ptz_requests(Ptz::IrisOpen, 1, 60);
        assert_eq!(path, "/ISAPI/System/Video/inputs/channels/1/iris");
        assert!(start.contains("<IrisData><iris>60</iris></IrisData>"), "{start}");
    }
}
