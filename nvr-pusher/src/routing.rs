//! A call reaches the node that holds its play: a new play goes to the least-loaded node, a
//! call on a handle to the node named by the handle's row (`nvr_sessions`), forwarded over
//! HTTP with `X-Gbc-Nvr-Forwarded` so the receiving node serves it.

use std::sync::Arc;
use std::time::Duration;

use cluster::store::LoadCandidate;
use kit::http_client::{self, Request};
use serde_json::Value;

use crate::calls::Call;
use crate::metrics;
use crate::request;
use crate::service::{reply, Pusher, Reply, FORWARDED, POOL, SESSIONS};
use crate::status::{Failure, Status};

impl Pusher {
    async fn forward(&self, api_url: &str, method: &str, path: &str, body: &[u8]) -> Result<Reply, Failure> {
        metrics::FORWARDED.inc();
        let url = format!("{api_url}{path}");
        let headers = [(FORWARDED, self.node.as_str())];
        // A play waits for its first frame on the other node (and a playback for its record
        // search before that): allow for it.
        let c = &self.cfg;
        let timeout = Duration::from_secs(c.connect_timeout_secs * 4 + c.first_frame_secs + c.http_timeout_secs * 4 + 5);
        let r = http_client::send(&Request { method, url: &url, headers: &headers, content_type: "application/json", body, timeout })
            .await
            .map_err(|e| Failure::new(Status::LivePlay, format!("{url}: {e}")))?;
        r.json().ok_or_else(|| Failure::new(Status::LivePlay, format!("{url}: HTTP {} without a JSON body", r.status)))
    }

    /// Where the handle is: here (`Ok(None)`), another node's API (`Ok(Some(url))`), or nowhere.
    async fn locate(&self, handle: u64) -> Result<Option<String>, Reply> {
        if self.session(handle).is_some() {
            return Ok(None);
        }
        if let Some(r) = self.ended_reply(handle) {
            return Err(r);
        }
        let none = || reply(Status::NoPlayHandle, &format!("no play handle {handle}"));
        let row = match SESSIONS.get(self.store.as_ref(), &handle.to_string()).await {
            Ok(Some(read)) => read.row,
            Ok(None) => return Err(none()),
            Err(e) => {
                tracing::warn!(handle, error = %e, "reading a play handle's row failed");
                return Err(none());
            }
        };
        if row.node == self.node {
            return Err(none());
        }
        match self.nodes().await.into_iter().find(|n| n.id == row.node) {
            Some(n) if n.instance == row.instance => Ok(Some(n.api_url)),
            _ => Err(reply(Status::NoPlayHandle, &format!("play handle {handle}: its pusher node {} is gone", row.node))),
        }
    }

    /// `/STREAM/{handle}/{call}`: here, or forwarded to the node holding the handle.
    pub async fn on_handle(self: &Arc<Self>, handle: &str, call: &str, method: &str, body: &[u8], forwarded: bool) -> Reply {
        let Some(h) = request::play_handle(handle) else {
            return reply(Status::NoPlayHandle, &format!("no play handle {handle:?}"));
        };
        let Some(call) = Call::on_handle(call) else {
            return reply(Status::Parameter, &format!("unknown call {call:?}"));
        };
        if !forwarded {
            match self.locate(h).await {
                Err(r) => return r,
                Ok(Some(api)) => {
                    return self
                        .forward(&api, method, &call.path(Some(h)), body)
                        .await
                        .unwrap_or_else(|e| reply(Status::NoPlayHandle, &format!("play handle {h}: its node did not answer: {e}")));
                }
                Ok(None) => {}
            }
        }
        let Some(s) = self.session(h) else {
            return self.ended_reply(h).unwrap_or_else(|| reply(Status::NoPlayHandle, &format!("no play handle {h}")));
        };
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return reply(Status::Parameter, &format!("the body is not JSON: {e}")),
            }
        };
        self.call_here(&s, call, &v).await
    }

    /// A new play (`REAL_STREAM` or `BACK_STREAM`): taken by the least-loaded node, here or
    /// forwarded. `Err` carries the reply of a refusal; `Ok` says to serve it here (its load
    /// unit reserved on this node).
    pub(crate) async fn route_play(&self, call: Call, body: &[u8], playback: bool) -> Result<(), Reply> {
        let full = Failure::new(if playback { Status::Playback } else { Status::LivePlay }, "every pusher node is full");
        match self.choose_node().await {
            Err(e) => Err(e.reply()),
            Ok(None) => Err(full.reply()),
            Ok(Some(n)) if n.id != self.node => match self.forward(&n.api_url, "POST", &call.path(None), body).await {
                Ok(r) => Err(r),
                Err(e) => {
                    // The chosen node is unreachable: serve here instead, moving the unit.
                    tracing::warn!(node = %n.id, error = %e, "forwarding a play failed; serving it here");
                    let _ = self.store.release_load(POOL, &n.id).await;
                    let candidates = [LoadCandidate { id: self.node.clone(), capacity: self.cfg.max_sessions, reported: 0, busy: 0.0 }];
                    if !matches!(self.store.reserve_least_loaded(POOL, &candidates).await, Ok(Some(_))) {
                        return Err(Failure::new(Status::LivePlay, "every pusher node is full").reply());
                    }
                    Ok(())
                }
            },
            Ok(Some(_)) => Ok(()),
        }
    }
}
