//! Snapshots a camera uploads on request (table `lpr_snapshots`): the request is recorded when
//! queued, the image stored and linked when it arrives.

use cluster::table::Table;
use serde::{Deserialize, Serialize};

use crate::service::{date_dir, new_id, now_ms, safe, Lpr, LprError};

pub const SNAPSHOTS: Table<Snapshot> = Table::new(crate::service::SNAPSHOTS);

/// A snapshot request, then (once the camera uploaded it) its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub serialno: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_ms: Option<u64>,
    /// The image file, relative to `lpr.image_dir`; `null` until uploaded.
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
}

impl Lpr {
    /// An operator asked for a snapshot (`Command::Snapshot`): recorded, image to come.
    pub async fn snapshot_requested(&self, id: &str, serial: &str) -> Result<(), LprError> {
        let rec = Snapshot {
            id: id.to_owned(),
            serialno: serial.to_owned(),
            requested_ms: Some(now_ms()),
            received_ms: None,
            image: None,
            bytes: None,
        };
        Ok(SNAPSHOTS.put(self.store.as_ref(), id, &rec).await?)
    }

    /// A requested snapshot arrived: stored and linked to its request.
    pub async fn store_snapshot(&self, req: Option<&str>, serial: &str, image: &[u8]) -> Result<String, LprError> {
        let id = req.map(safe).filter(|r| !r.is_empty()).unwrap_or_else(new_id);
        let rel = format!("{}/{}/snapshot-{id}.jpg", date_dir(now_ms()), safe(serial));
        self.write_image(&rel, image).await?;
        let rec = Snapshot {
            id: id.clone(),
            serialno: serial.to_owned(),
            requested_ms: None,
            received_ms: Some(now_ms()),
            image: Some(rel),
            bytes: Some(image.len()),
        };
        SNAPSHOTS.put(self.store.as_ref(), &id, &rec).await?;
        Ok(id)
    }

    pub async fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, LprError> {
        Ok(SNAPSHOTS.get(self.store.as_ref(), id).await?.map(|read| read.row))
    }
}
