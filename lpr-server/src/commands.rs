//! Operator commands (open gate, trigger, snapshot, serial data) queued per camera in the
//! Store (`lpr:cmd:<serial>`) and delivered in the next reply, and comet polls: a heartbeat that
//! follows our reply at once is held until a wake-up (`gbc:lpr:wake`, any node) or the hold
//! time. Which commands fit one reply is `pack_commands`, without I/O.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::cameras::Camera;
use crate::proto::{Reply, WhiteListEntry};
use crate::service::{lock, new_id, Lpr, LprError, WAKE};
use crate::whitelist::Group;

/// Queued commands taken for one reply (those that do not fit go back).
pub const COMMANDS_PER_REPLY: usize = 16;

pub fn cmd_queue(serial: &str) -> String {
    format!("lpr:cmd:{serial}")
}

/// An operator command queued for a camera.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    OpenGate { id: String, io: Option<u64> },
    Trigger { id: String },
    Snapshot { id: String },
    Serial { id: String, serial_channel: u64, data: String },
}

impl Command {
    pub fn id(&self) -> &str {
        match self {
            Command::OpenGate { id, .. } | Command::Trigger { id } | Command::Snapshot { id } | Command::Serial { id, .. } => id,
        }
    }
}

/// Puts into `reply` the queued commands that fit one reply (every open-gate and trigger, one
/// snapshot, up to 8 serial writes, in order: once one does not fit, the rest wait too).
/// Returns those that did not fit, to go back to the front of the queue. `snapshot_url` gives
/// the (port, path) a camera uploads a snapshot to.
pub fn pack_commands(queued: Vec<String>, gate_io: u64, reply: &mut Reply, snapshot_url: impl Fn(&str) -> (u16, String)) -> Vec<String> {
    let mut back = Vec::new();
    for raw in queued {
        // An unreadable command (written by a newer node?) is dropped, not retried forever.
        let Ok(cmd) = serde_json::from_str::<Command>(&raw) else { continue };
        let fits = match &cmd {
            Command::OpenGate { io, .. } => {
                reply.open_gate = Some(io.unwrap_or(gate_io));
                true
            }
            Command::Trigger { .. } => {
                reply.manual_trigger = true;
                true
            }
            Command::Snapshot { id } if reply.trigger_image.is_none() && back.is_empty() => {
                reply.trigger_image = Some(snapshot_url(id));
                true
            }
            Command::Serial { serial_channel, data, .. } if back.is_empty() && reply.serial_data.len() < 8 => {
                let len = crate::proto::decode_base64(data, "data", 64 * 1024).map(|d| d.len()).unwrap_or(0);
                reply.serial_data.push((*serial_channel, data.clone(), len));
                true
            }
            _ => false,
        };
        if !fits {
            back.push(raw);
        }
    }
    back
}

impl Lpr {
    pub async fn queue_command(&self, serial: &str, cmd: &Command) -> Result<(), LprError> {
        let encoded = serde_json::to_string(cmd).map_err(|e| cluster::store::StoreError::Encode {
            table: cmd_queue(serial),
            id: cmd.id().to_owned(),
            error: e.to_string(),
        })?;
        self.store.queue_push(&cmd_queue(serial), &encoded).await?;
        if let Command::Snapshot { id } = cmd {
            self.snapshot_requested(id, serial).await?;
        }
        self.wake(serial).await;
        Ok(())
    }

    /// Tells whichever node holds this camera's comet poll (maybe this one) to answer it now.
    pub async fn wake(&self, serial: &str) {
        if let Err(e) = self.store.publish(WAKE, serial).await {
            tracing::warn!(error = %e, "publishing a wake-up failed");
        }
    }

    /// A wake-up arrived (from any node): release the poll held here, if any.
    pub fn woken(&self, serial: &str) {
        if let Some(n) = lock(&self.waiters).get(serial) {
            n.notify_one();
        }
    }

    /// Whether this heartbeat is a comet poll: the camera polled again right after our reply.
    pub fn is_comet(&self, serial: &str) -> bool {
        self.cfg.comet_detect_ms > 0
            && lock(&self.last_reply).get(serial).is_some_and(|t| t.elapsed() <= std::time::Duration::from_millis(self.cfg.comet_detect_ms))
    }

    pub fn replied(&self, serial: &str) {
        let mut g = lock(&self.last_reply);
        if g.len() > 100_000 {
            g.clear();
        }
        g.insert(serial.to_owned(), std::time::Instant::now());
    }

    /// The notifier a held poll waits on (registered before the queue is checked, so a wake-up
    /// in between is not lost).
    pub fn waiter(&self, serial: &str) -> Arc<Notify> {
        lock(&self.waiters).entry(serial.to_owned()).or_default().clone()
    }

    pub fn unwait(&self, serial: &str, n: &Arc<Notify>) {
        let mut g = lock(&self.waiters);
        if g.get(serial).is_some_and(|cur| Arc::ptr_eq(cur, n)) && Arc::strong_count(n) <= 2 {
            g.remove(serial);
        }
    }

    /// Fills `reply` with what is waiting for the camera: queued commands (as many as fit one
    /// reply: one snapshot, serial writes in order) and the next whitelist operation. Returns
    /// the whitelist operation put in, to be marked sent once the reply is out.
    /// `popped`: commands already taken from the queue (in the same round trip as the store),
    /// else they are taken here.
    pub async fn fill_reply(
        &self,
        cam: &Camera,
        group: &Group,
        reply: &mut Reply,
        popped: Option<Vec<String>>,
    ) -> Result<Option<(u8, Vec<WhiteListEntry>)>, LprError> {
        let q = cmd_queue(&cam.serialno);
        let items = match popped {
            Some(items) => items,
            None => self.store.queue_pop(&q, COMMANDS_PER_REPLY).await?,
        };
        let port = self.cfg.listen.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(80);
        let back =
            pack_commands(items, cam.gate_io, reply, |id| (port, format!("{}?req={id}&serialno={}", self.cfg.snapshot_path, cam.serialno)));
        self.store.queue_unpop(&q, &back).await?;
        let sync = self.next_sync(cam, group).await?;
        if let Some((op, entries)) = &sync {
            reply.white_list = Some((*op, entries.clone()));
        }
        Ok(sync)
    }

    /// Whether anything waits for the camera (commands or whitelist work).
    pub async fn has_work(&self, cam: &Camera, group: &Group) -> Result<bool, LprError> {
        Ok(self.store.queue_len(&cmd_queue(&cam.serialno)).await? > 0 || self.next_sync(cam, group).await?.is_some())
    }

    pub fn new_command_id() -> String {
        new_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(cmds: &[Command]) -> Vec<String> {
        cmds.iter().map(|c| serde_json::to_string(c).unwrap()).collect()
    }

    fn url(id: &str) -> (u16, String) {
        (80, format!("/snap?req={id}"))
    }

    #[test]
    fn gate_and_trigger_always_fit_one_snapshot_per_reply() {
        let cmds = [
            Command::OpenGate { id: "1".into(), io: None },
            Command::Snapshot { id: "s1".into() },
            Command::Trigger { id: "2".into() },
            Command::Snapshot { id: "s2".into() },
            Command::OpenGate { id: "3".into(), io: Some(1) },
        ];
        let mut reply = Reply::default();
        let back = pack_commands(queued(&cmds), 2, &mut reply, url);
        assert_eq!(reply.trigger_image, Some((80, "/snap?req=s1".into())));
        assert!(reply.manual_trigger);
        assert_eq!(reply.open_gate, Some(1), "the last gate command's IO");
        assert_eq!(back, queued(&cmds[3..4]), "the second snapshot waits for the next reply");
    }

    #[test]
    fn serial_writes_keep_their_order_and_stop_at_eight() {
        let cmds: Vec<Command> = (0..10).map(|i| Command::Serial { id: i.to_string(), serial_channel: 0, data: "QQ==".into() }).collect();
        let mut reply = Reply::default();
        let back = pack_commands(queued(&cmds), 0, &mut reply, url);
        assert_eq!(reply.serial_data.len(), 8);
        assert_eq!(back, queued(&cmds[8..]), "the rest, in order");
        // Once one waits, a later serial write waits too (order kept across replies).
        let mixed = [
            Command::Snapshot { id: "a".into() },
            Command::Snapshot { id: "b".into() },
            Command::Serial { id: "c".into(), serial_channel: 0, data: "QQ==".into() },
        ];
        let mut reply = Reply::default();
        assert_eq!(pack_commands(queued(&mixed), 0, &mut reply, url).len(), 2);
        assert!(reply.serial_data.is_empty());
    }

    #[test]
    fn an_unreadable_command_is_dropped() {
        let mut reply = Reply::default();
        assert!(pack_commands(vec!["{\"type\":\"launch\"}".into()], 0, &mut reply, url).is_empty());
        assert_eq!(reply, Reply::default());
    }
}
