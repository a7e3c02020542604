//! Dahua CGI: record search through `mediaFileFind.cgi` (factory.create → findFile →
//! findNextFile until fewer than asked come back → close → destroy) and PTZ through `ptz.cgi`
//! (start, wait, stop). The answers are `key=value` lines; the parser is sans-I/O.

use std::time::Duration;

use crate::isapi::RecordFile;
use crate::vendor::{dahua_ptz_query, LocalTime, Ptz};
use crate::vendor_http::{VendorError, VendorHttp};

/// Files asked for per `findNextFile`.
pub const PAGE: usize = 100;
pub const MAX_PAGES: usize = 20;

const CGI: &str = "/cgi-bin/mediaFileFind.cgi";

/// `2016-07-20 12:00:00` with the space escaped, as the CGI takes its times.
fn cgi_time(t: &LocalTime) -> String {
    t.to_string().replace(' ', "%20")
}

/// Dahua writes times as `2016-7-20 12:0:0` on some firmware: read each field as a number.
fn dahua_time(s: &str) -> Option<LocalTime> {
    let (date, time) = s.trim().split_once(' ')?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let n = |s: &str| s.trim().parse::<u16>().ok();
    let text = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", n(d[0])?, n(d[1])?, n(d[2])?, n(t[0])?, n(t[1])?, n(t[2])?);
    LocalTime::parse(&text)
}

fn lines(body: &str) -> impl Iterator<Item = (&str, &str)> {
    body.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim(), v.trim()))
}

/// The `result=` of `factory.create`.
pub fn parse_object(body: &str) -> Option<String> {
    lines(body).find(|(k, _)| *k == "result").map(|(_, v)| v.to_owned()).filter(|v| !v.is_empty() && v.len() <= 32)
}

/// A `findNextFile` answer: `found=N` and `items[i].Field=value` lines.
pub fn parse_files(body: &str) -> (usize, Vec<RecordFile>) {
    #[derive(Default)]
    struct Item {
        path: Option<String>,
        size: u64,
        start: Option<LocalTime>,
        stop: Option<LocalTime>,
    }
    let mut found = 0;
    let mut items: Vec<Item> = Vec::new();
    for (k, v) in lines(body) {
        if k == "found" {
            found = v.parse().unwrap_or(0);
            continue;
        }
        let Some(rest) = k.strip_prefix("items[") else { continue };
        let Some((i, field)) = rest.split_once("].") else { continue };
        let Ok(i) = i.parse::<usize>() else { continue };
        if i >= PAGE * 2 {
            continue; // bounded: a page never has more
        }
        if items.len() <= i {
            items.resize_with(i + 1, Item::default);
        }
        let it = &mut items[i];
        match field {
            "FilePath" => it.path = Some(v.to_owned()),
            "Length" => it.size = v.parse().unwrap_or(0),
            "StartTime" => it.start = dahua_time(v),
            "EndTime" => it.stop = dahua_time(v),
            _ => {}
        }
    }
    let files = items
        .into_iter()
        .filter_map(|it| {
            let (start, stop) = (it.start?, it.stop?);
            let file_name = it
                .path
                .map(|p| p.rsplit('/').next().unwrap_or(&p).to_owned())
                .unwrap_or_else(|| format!("{}-{}", start.dahua(), stop.dahua()));
            Some(RecordFile { file_name, file_size: it.size, start, stop })
        })
        .collect();
    (found, files)
}

/// Every recording of `channel` overlapping the range, in time order. The finder object is
/// closed and destroyed however the search ends.
pub async fn search(http: &VendorHttp, channel: u32, start: &LocalTime, end: &LocalTime) -> Result<Vec<RecordFile>, VendorError> {
    let r = http.call("GET", &format!("{CGI}?action=factory.create"), "", b"").await?;
    let object = parse_object(&String::from_utf8_lossy(&r.body))
        .ok_or_else(|| VendorError::Refused("mediaFileFind factory.create: no result= in the answer".into()))?;
    let found = find(http, &object, channel, start, end).await;
    let _ = http.call("GET", &format!("{CGI}?action=close&object={object}"), "", b"").await;
    let _ = http.call("GET", &format!("{CGI}?action=destroy&object={object}"), "", b"").await;
    let mut files = found?;
    files.sort_by_key(|f| f.start);
    Ok(files)
}

async fn find(http: &VendorHttp, object: &str, channel: u32, start: &LocalTime, end: &LocalTime) -> Result<Vec<RecordFile>, VendorError> {
    let q = format!(
        "{CGI}?action=findFile&object={object}&condition.Channel={channel}&condition.StartTime={}&condition.EndTime={}",
        cgi_time(start),
        cgi_time(end)
    );
    match http.call("GET", &q, "", b"").await {
        Ok(_) => {}
        // The CGI answers findFile with an error when nothing matches.
        Err(VendorError::Refused(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    let mut files = Vec::new();
    for _ in 0..MAX_PAGES {
        let r = http.call("GET", &format!("{CGI}?action=findNextFile&object={object}&count={PAGE}"), "", b"").await?;
        let (found, page) = parse_files(&String::from_utf8_lossy(&r.body));
        files.extend(page);
        if found < PAGE {
            break;
        }
    }
    Ok(files)
}

/// Moves for `duration`, then stops. `speed` 1–8.
pub async fn ptz(http: &VendorHttp, cmd: Ptz, channel: u32, speed: u8, duration: Duration) -> Result<(), VendorError> {
    http.call("GET", &dahua_ptz_query(true, channel, cmd.dahua_code(), speed), "", b"").await?;
    tokio::time::sleep(duration).await;
    http.call("GET", &dahua_ptz_query(false, channel, cmd.dahua_code(), speed), "", b"").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cgi_answers() {
        assert_eq!(parse_object("result=08137\r\n").as_deref(), Some("08137"));
        assert_eq!(parse_object("Error\r\n"), None);
        let body = "found=2\r\nitems[0].Channel=1\r\nitems[0].StartTime=2016-07-20 12:00:00\r\nitems[0].EndTime=2016-07-20 12:30:00\r\n\
                    items[0].FilePath=/mnt/sd/2016-07-20/001/dav/12/12.00.00-12.30.00[R][0@0][0].dav\r\nitems[0].Length=104857600\r\n\
                    items[0].Type=dav\r\nitems[1].StartTime=2016-7-20 12:30:0\r\nitems[1].EndTime=2016-07-20 13:00:00\r\n";
        let (found, files) = parse_files(body);
        assert_eq!(found, 2);
        assert_eq!(files[0].file_name, "12.00.00-12.30.00[R][0@0][0].dav");
        assert_eq!(files[0].file_size, 104_857_600);
        assert_eq!(files[1].start.to_string(), "2016-07-20 12:30:00");
        assert_eq!(files[1].file_name, "2016_07_20_12_30_00-2016_07_20_13_00_00");
        assert_eq!(parse_files("found=0\r\n"), (0, vec![]));
        assert_eq!(parse_files("items[99999999999].StartTime=x\r\nitems[].x=1\r\n=\r\n").1, vec![]);
    }
}
