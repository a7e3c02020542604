//! Lane groups (table `lpr_groups`: policy, serial payloads, whitelist version), their
//! whitelists (`lpr_wl:<group>`) and each camera's copy (`lpr_copy:<serial>`). What a camera
//! still needs is planned by `plan_sync`, without I/O; replies carry it a batch at a time.

use std::collections::HashMap;

use cluster::table::Table;
use serde::{Deserialize, Serialize};

use crate::cameras::Camera;
use crate::gate::Policy;
use crate::proto::WhiteListEntry;
use crate::service::{lock, readable, Lpr, LprError};

pub const GROUPS: Table<Group> = Table::new(crate::service::GROUPS);

const GROUP_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// A group's whitelist, by plate.
pub fn whitelist_table(group: &str) -> Table<WhiteListEntry> {
    Table::named(format!("lpr_wl:{group}"))
}

/// What a camera holds of its group's whitelist, by plate.
pub fn copy_table(serial: &str) -> Table<WhiteListEntry> {
    Table::named(format!("lpr_copy:{serial}"))
}

/// A lane group's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub policy: Policy,
    /// Counts whitelist changes: a camera synced at this version needs nothing.
    #[serde(default)]
    pub wl_version: u64,
    /// Serial payloads (base64) sent with decisions: for LED boards and voice modules.
    #[serde(default)]
    pub serial_on_open: Vec<SerialPayload>,
    #[serde(default)]
    pub serial_on_deny: Vec<SerialPayload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialPayload {
    pub serial_channel: u64,
    /// Base64 bytes to write.
    pub data: String,
}

/// What a camera still needs to receive for its whitelist to match its group's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncState {
    pub group: String,
    pub desired: usize,
    pub on_camera: usize,
    pub to_add: usize,
    pub to_delete: usize,
    pub in_sync: bool,
}

/// The next whitelist operation for a camera holding `copy` whose group wants `desired`:
/// deletes first (a removed plate must stop opening), then adds and changes (by plate); one
/// operate type (1 delete, 0 add), at most `batch` entries. `None`: in sync.
pub fn plan_sync(desired: &[WhiteListEntry], copy: &[WhiteListEntry], batch: usize) -> Option<(u8, Vec<WhiteListEntry>)> {
    let batch = batch.clamp(1, 5);
    let wanted: HashMap<&str, &WhiteListEntry> = desired.iter().map(|e| (e.plate.as_str(), e)).collect();
    let deletes: Vec<WhiteListEntry> = copy
        .iter()
        .filter(|e| !wanted.contains_key(e.plate.as_str()))
        .take(batch)
        .map(|e| WhiteListEntry { plate: e.plate.clone(), enable: 0, need_alarm: 0, enable_time: None, overdue_time: None })
        .collect();
    if !deletes.is_empty() {
        return Some((1, deletes));
    }
    let have: HashMap<&str, &WhiteListEntry> = copy.iter().map(|e| (e.plate.as_str(), e)).collect();
    let mut adds: Vec<&WhiteListEntry> = desired.iter().filter(|e| have.get(e.plate.as_str()) != Some(e)).collect();
    adds.sort_by(|a, b| a.plate.cmp(&b.plate));
    let adds: Vec<WhiteListEntry> = adds.into_iter().take(batch).cloned().collect();
    (!adds.is_empty()).then_some((0, adds))
}

impl Lpr {
    pub async fn group(&self, name: &str) -> Result<Group, LprError> {
        if let Some((g, at)) = lock(&self.groups_seen).get(name) {
            if at.elapsed() < GROUP_REFRESH {
                return Ok(g.clone());
            }
        }
        self.group_fresh(name).await
    }

    /// The group as stored now (and cached for `group`).
    pub async fn group_fresh(&self, name: &str) -> Result<Group, LprError> {
        let g = GROUPS.get(self.store.as_ref(), name).await?.map(|read| read.row).unwrap_or_default();
        let mut m = lock(&self.groups_seen);
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(name.to_owned(), (g.clone(), std::time::Instant::now()));
        Ok(g)
    }

    /// Sets a group's policy and payloads (its whitelist version is kept).
    pub async fn set_group(&self, name: &str, g: &Group) -> Result<Group, LprError> {
        let mut g = g.clone();
        g.wl_version = self.group_fresh(name).await?.wl_version;
        GROUPS.put(self.store.as_ref(), name, &g).await?;
        lock(&self.groups_seen).remove(name);
        Ok(g)
    }

    pub async fn whitelist(&self, group: &str) -> Result<Vec<WhiteListEntry>, LprError> {
        Ok(readable(whitelist_table(group).list(self.store.as_ref()).await?))
    }

    pub(crate) async fn entry(&self, group: &str, plate: &str) -> Result<Option<WhiteListEntry>, LprError> {
        Ok(whitelist_table(group).get(self.store.as_ref(), plate).await?.map(|read| read.row))
    }

    /// Adds or replaces entries, then wakes the group's cameras so the change reaches them.
    pub async fn whitelist_put(&self, group: &str, entries: &[WhiteListEntry]) -> Result<(), LprError> {
        let table = whitelist_table(group);
        for e in entries {
            table.put(self.store.as_ref(), &e.plate, e).await?;
        }
        self.bump_version(group).await?;
        self.wake_group(group).await
    }

    pub async fn whitelist_delete(&self, group: &str, plate: &str) -> Result<bool, LprError> {
        // A corrupt entry is deleted all the same (and reported by `take`).
        let gone = match whitelist_table(group).take(self.store.as_ref(), plate).await {
            Ok(row) => row.is_some(),
            Err(cluster::store::StoreError::CorruptRow { .. }) => true,
            Err(e) => return Err(e.into()),
        };
        self.bump_version(group).await?;
        self.wake_group(group).await?;
        Ok(gone)
    }

    /// A whitelist changed: cameras synced at an older version compare again.
    async fn bump_version(&self, group: &str) -> Result<(), LprError> {
        let store = self.store.as_ref();
        for _ in 0..64 {
            let read = GROUPS.get(store, group).await?;
            let mut g = read.as_ref().map(|r| r.row.clone()).unwrap_or_default();
            g.wl_version += 1;
            let done = match &read {
                Some(read) => GROUPS.swap(store, group, read, &g).await?,
                None => GROUPS.insert(store, group, &g).await?,
            };
            if done {
                lock(&self.groups_seen).remove(group);
                return Ok(());
            }
        }
        Err(LprError::Busy(format!("group {group} changes too fast")))
    }

    async fn wake_group(&self, group: &str) -> Result<(), LprError> {
        for c in self.cameras().await?.into_iter().filter(|c| c.group == group) {
            self.wake(&c.serialno).await;
        }
        Ok(())
    }

    /// What the camera holds. A row that does not read stands as an entry that matches
    /// nothing: deleted if its plate is not wanted, sent again if it is.
    async fn copy_of(&self, serial: &str) -> Result<Vec<WhiteListEntry>, LprError> {
        let rows = copy_table(serial).list(self.store.as_ref()).await?;
        Ok(rows
            .into_iter()
            .map(|(plate, row)| {
                row.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "unreadable whitelist copy row: syncing it again");
                    WhiteListEntry { plate, enable: u8::MAX, need_alarm: u8::MAX, enable_time: None, overdue_time: None }
                })
            })
            .collect())
    }

    /// The next whitelist operation for a camera (`plan_sync`, at most `whitelist_batch`
    /// entries), or `None` when its copy matches.
    pub async fn next_sync(&self, cam: &Camera, group: &Group) -> Result<Option<(u8, Vec<WhiteListEntry>)>, LprError> {
        // The common case, once a camera is in sync: nothing changed since, no Store reads.
        if cam.synced_version == Some(group.wl_version) {
            return Ok(None);
        }
        let desired = self.whitelist(&cam.group).await?;
        let copy = self.copy_of(&cam.serialno).await?;
        let next = plan_sync(&desired, &copy, self.cfg.whitelist_batch);
        if next.is_none() {
            // In sync at this version: remembered so the next replies skip the comparison.
            let mut c = cam.clone();
            c.synced_version = Some(group.wl_version);
            self.put_camera(&c).await?;
        }
        Ok(next)
    }

    /// After a reply carrying a whitelist operation was sent: the camera's copy now has it.
    pub async fn sync_sent(&self, serial: &str, op: u8, entries: &[WhiteListEntry]) -> Result<(), LprError> {
        let (t, store) = (copy_table(serial), self.store.as_ref());
        for e in entries {
            if op == 1 {
                store.table_take(t.name(), &e.plate).await?;
            } else {
                t.put(store, &e.plate, e).await?;
            }
        }
        Ok(())
    }

    pub async fn sync_state(&self, cam: &Camera) -> Result<SyncState, LprError> {
        let desired = self.whitelist(&cam.group).await?;
        let copy = self.copy_of(&cam.serialno).await?;
        let to_add = desired.iter().filter(|e| !copy.contains(e)).count();
        let to_delete = copy.iter().filter(|c| !desired.iter().any(|e| e.plate == c.plate)).count();
        Ok(SyncState {
            group: cam.group.clone(),
            desired: desired.len(),
            on_camera: copy.len(),
            to_add,
            to_delete,
            in_sync: to_add == 0 && to_delete == 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(plate: &str, enable: u8) -> WhiteListEntry {
        WhiteListEntry { plate: plate.into(), enable, need_alarm: 0, enable_time: None, overdue_time: None }
    }

    fn plates(v: &[WhiteListEntry]) -> Vec<&str> {
        v.iter().map(|e| e.plate.as_str()).collect()
    }

    #[test]
    fn deletes_go_first_then_adds_and_changes_by_plate_in_batches() {
        let desired = [e("粤B3", 1), e("粤B1", 1), e("粤B2", 0)];
        let copy = [e("粤B1", 1), e("粤B2", 1), e("粤X9", 1), e("粤X8", 1)];
        let (op, batch) = plan_sync(&desired, &copy, 5).unwrap();
        assert_eq!((op, plates(&batch)), (1, vec!["粤X9", "粤X8"]), "unwanted plates deleted first");
        assert!(batch.iter().all(|e| e.enable == 0));
        let copy = [e("粤B1", 1), e("粤B2", 1)];
        let (op, batch) = plan_sync(&desired, &copy, 5).unwrap();
        assert_eq!((op, plates(&batch)), (0, vec!["粤B2", "粤B3"]), "a changed entry and a new one, sorted");
        assert_eq!(batch[0].enable, 0, "sent as wanted");
    }

    #[test]
    fn batches_are_one_to_five_entries() {
        let desired: Vec<_> = (0..12).map(|i| e(&format!("P{i:02}"), 1)).collect();
        assert_eq!(plan_sync(&desired, &[], 3).unwrap().1.len(), 3);
        assert_eq!(plan_sync(&desired, &[], 50).unwrap().1.len(), 5, "at most 5: the firmware's limit");
        assert_eq!(plan_sync(&desired, &[], 0).unwrap().1.len(), 1);
    }

    #[test]
    fn in_sync_is_none() {
        let list = [e("A1", 1), e("A2", 0)];
        assert_eq!(plan_sync(&list, &list, 5), None);
        assert_eq!(plan_sync(&[], &[], 5), None);
    }
}
