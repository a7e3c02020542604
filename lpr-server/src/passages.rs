//! Plate results as passages (table `lpr_passages`, indexes by time, camera and plate): images
//! written atomically first, then the record once (insert-if-absent on `<serialno>-<plateid>`),
//! so a resent record lands exactly once; and the cameras' IO and serial-data events.

use std::path::PathBuf;

use cluster::store::{Op, OpOut};
use cluster::table::Table;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cameras::Camera;
use crate::commands::{cmd_queue, COMMANDS_PER_REPLY};
use crate::gate::{self, Verdict};
use crate::proto::PlateResult;
use crate::service::{date_dir, now_ms, safe, Lpr, LprError, DEVICE_EVENTS};
use crate::whitelist::Group;

pub const PASSAGES: Table<Passage> = Table::new(crate::service::PASSAGES);

/// A stored passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// `<serialno>-<plateid>` (or the camera time when there is no plateid).
    pub id: String,
    pub serialno: String,
    pub device_name: Option<String>,
    pub ipaddr: Option<String>,
    pub plate: Option<String>,
    pub color_type: Option<u64>,
    pub plate_type: Option<u64>,
    pub confidence: Option<u64>,
    pub direction: Option<u64>,
    pub trigger_type: Option<u64>,
    pub plateid: Option<u64>,
    pub offline: bool,
    /// When it happened: the camera's time if it sent one, else when we received it.
    pub time_ms: u64,
    pub received_ms: u64,
    pub verdict: Verdict,
    pub gate_opened: bool,
    pub group: String,
    /// Image files, relative to `lpr.image_dir`.
    pub image_full: Option<String>,
    pub image_plate: Option<String>,
    /// The rest of the camera's PlateResult, as sent (images removed).
    pub detail: Value,
}

/// A plate result once stored.
pub struct StoredPassage {
    pub passage: Passage,
    /// This call stored it (false: a resend of a stored record).
    pub fresh: bool,
    pub json: String,
    pub commands: Vec<String>,
}

/// Adds to the indexes a passage is listed in: all, its camera, its plate.
fn index_ops(p: &Passage) -> Vec<Op> {
    let mut indexes = vec!["lpr:passages".to_owned(), format!("lpr:camera:{}", p.serialno)];
    if let Some(plate) = &p.plate {
        indexes.push(format!("lpr:plate:{plate}"));
    }
    indexes.into_iter().map(|index| Op::IndexAdd { index, score: p.time_ms as f64, member: p.id.clone() }).collect()
}

impl Lpr {
    fn image_path(&self, rel: &str) -> PathBuf {
        PathBuf::from(&self.cfg.image_dir).join(rel)
    }

    pub(crate) async fn write_image(&self, rel: &str, data: &[u8]) -> Result<(), LprError> {
        let path = self.image_path(rel);
        let err = |e| LprError::Image(path.display().to_string(), e);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(err)?;
        }
        // Written beside and renamed: a crash never leaves half an image under the final name.
        let tmp = path.with_extension("part");
        let mut f = tokio::fs::File::create(&tmp).await.map_err(err)?;
        tokio::io::AsyncWriteExt::write_all(&mut f, data).await.map_err(err)?;
        if self.cfg.fsync {
            f.sync_all().await.map_err(err)?;
        }
        drop(f);
        tokio::fs::rename(&tmp, &path).await.map_err(err)?;
        Ok(())
    }

    pub async fn read_image(&self, rel: &str) -> Option<Vec<u8>> {
        if rel.contains("..") {
            return None;
        }
        tokio::fs::read(self.image_path(rel)).await.ok()
    }

    /// Stores a plate result (images, record, indexes) and decides the gate. Idempotent: a
    /// record resent (offline backlog, or a retry after a lost reply) is stored once, and
    /// returned as first stored with `false`.
    /// Returns the passage, whether this call stored it, its JSON, and the camera's queued
    /// commands (taken in the same round trip, for the reply).
    pub async fn store_passage(&self, pr: &PlateResult, cam: &Camera, group: &Group) -> Result<StoredPassage, LprError> {
        let received = now_ms();
        let serial = safe(&pr.sender.serialno);
        let time_ms = pr.camera_time_ms.filter(|t| *t > 0).unwrap_or(received);
        let id = match pr.plateid {
            Some(p) => format!("{serial}-{p}"),
            None => format!("{serial}-t{time_ms}"),
        };
        let verdict = if pr.is_offline {
            Verdict::OfflineRecord
        } else {
            let entry = match pr.plate() {
                Some(plate) => self.entry(&cam.group, plate).await?,
                None => None,
            };
            gate::decide(group.policy, pr.plate(), entry.as_ref(), received, self.cfg.utc_offset_minutes)
        };
        let dir = format!("{}/{serial}", date_dir(time_ms));
        let mut p = Passage {
            id: id.clone(),
            serialno: pr.sender.serialno.clone(),
            device_name: pr.sender.device_name.clone(),
            ipaddr: pr.sender.ipaddr.clone(),
            plate: pr.plate().map(str::to_owned),
            color_type: pr.color_type,
            plate_type: pr.plate_type,
            confidence: pr.confidence,
            direction: pr.direction,
            trigger_type: pr.trigger_type,
            plateid: pr.plateid,
            offline: pr.is_offline,
            time_ms,
            received_ms: received,
            verdict,
            gate_opened: verdict.opens(),
            group: cam.group.clone(),
            image_full: None,
            image_plate: None,
            detail: pr.extra.clone(),
        };
        if let Some(img) = &pr.image_full {
            let rel = format!("{dir}/{id}-full.jpg");
            self.write_image(&rel, img).await?;
            p.image_full = Some(rel);
        }
        if let Some(img) = &pr.image_plate {
            let rel = format!("{dir}/{id}-plate.jpg");
            self.write_image(&rel, img).await?;
            p.image_plate = Some(rel);
        }
        // Images first (same names on a resend), then the record once: insert-if-absent is what
        // makes a resent record land exactly once.
        let mut json = PASSAGES.encode(&id, &p)?;
        // One round trip: the record (insert-if-absent), its indexes (idempotent) and the
        // camera's queued commands for the reply.
        let mut ops = vec![Op::TableInsert { table: PASSAGES.name().into(), id: id.clone(), record: json.clone() }];
        ops.extend(index_ops(&p));
        ops.push(Op::QueuePop { queue: cmd_queue(&cam.serialno), max: COMMANDS_PER_REPLY });
        let out = self.store.pipeline(&ops).await?;
        let fresh = matches!(out.first(), Some(OpOut::Inserted(true)));
        let commands = match out.last() {
            Some(OpOut::Items(items)) => items.clone(),
            _ => Vec::new(),
        };
        if !fresh {
            // Resent: answer as the first time (its verdict, its indexes under its own time).
            if let Some(raw) = self.store.table_get(PASSAGES.name(), &id).await? {
                p = PASSAGES.decode(&id, &raw)?;
                json = raw;
                self.index(&p).await?;
            }
        }
        Ok(StoredPassage { passage: p, fresh, json, commands })
    }

    /// Indexes are idempotent (re-adding moves nothing), so a crash between the record and its
    /// indexes is repaired by the camera's resend.
    async fn index(&self, p: &Passage) -> Result<(), LprError> {
        self.store.pipeline(&index_ops(p)).await?;
        Ok(())
    }

    pub async fn passage(&self, id: &str) -> Result<Option<Passage>, LprError> {
        Ok(PASSAGES.get(self.store.as_ref(), id).await?.map(|read| read.row))
    }

    /// Passages newest first, by time range and optionally one plate or camera.
    pub async fn passages(
        &self,
        from_ms: u64,
        to_ms: u64,
        plate: Option<&str>,
        serial: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Passage>, usize), LprError> {
        let index = match (plate, serial) {
            (Some(p), _) => format!("lpr:plate:{p}"),
            (None, Some(s)) => format!("lpr:camera:{s}"),
            (None, None) => "lpr:passages".to_owned(),
        };
        let (lo, hi) = (from_ms as f64, to_ms as f64);
        let total = self.store.index_count(&index, lo, hi).await?;
        let ids = self.store.index_range(&index, lo, hi, true, offset, limit).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.passage(&id).await? {
                if plate.is_none() || serial.is_none_or(|s| p.serialno == s) {
                    out.push(p);
                }
            }
        }
        Ok((out, total))
    }

    /// Keeps an IO trigger or serial-data event (queryable by camera and time) and publishes it.
    pub async fn record_event(&self, serial: &str, kind: &str, mut event: Value) -> Result<(), LprError> {
        let at = now_ms();
        let id = format!("{}-{kind}-{at}-{:04x}", safe(serial), rand::random::<u16>());
        event["id"] = json!(id);
        event["event"] = json!(kind);
        event["serialno"] = json!(serial);
        event["at_ms"] = json!(at);
        self.store.table_put(DEVICE_EVENTS, &id, &event.to_string()).await?;
        let t = at as f64;
        let ops = [("lpr:events".to_owned(), id.clone()), (format!("lpr:events:{serial}"), id)].map(|(index, member)| Op::IndexAdd {
            index,
            score: t,
            member,
        });
        self.store.pipeline(&ops).await?;
        self.publish(event).await;
        Ok(())
    }

    /// IO and serial events, newest first.
    pub async fn events(
        &self,
        serial: Option<&str>,
        kind: Option<&str>,
        from_ms: u64,
        to_ms: u64,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Value>, usize), LprError> {
        let index = match serial {
            Some(s) => format!("lpr:events:{s}"),
            None => "lpr:events".to_owned(),
        };
        let (lo, hi) = (from_ms as f64, to_ms as f64);
        let total = self.store.index_count(&index, lo, hi).await?;
        // A kind filter reads past the page: bounded to a few pages.
        let want = if kind.is_some() { (offset + limit) * 4 } else { limit };
        let ids = self.store.index_range(&index, lo, hi, true, if kind.is_some() { 0 } else { offset }, want).await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(v) = self.store.table_get(DEVICE_EVENTS, &id).await?.and_then(|r| serde_json::from_str::<Value>(&r).ok()) {
                if kind.is_none_or(|k| v["event"] == k) {
                    out.push(v);
                }
            }
        }
        if kind.is_some() {
            out = out.into_iter().skip(offset).take(limit).collect();
        }
        Ok((out, total))
    }
}
