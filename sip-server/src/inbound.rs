//! MESSAGEs devices send: Keepalive, alarms and positions (`notices`), and the answers to our
//! queries (Catalog pages, DeviceInfo, DeviceStatus, and those a caller waits for). Unknown CmdTypes get 200 and a log line.

use std::sync::Arc;

use cluster::registry::StoredChannel;
use cluster::store::Touch;
use gb::catalog::CatalogDone;
use gb::ids::DeviceId;
use gb::manscdp::{self, Body};
use gb::model::CatalogEvent;
use rsipstack::sip::StatusCode;
use rsipstack::transaction::transaction::Transaction;

use crate::error::SipError;
use crate::handles::Delivery;
use crate::headers;
use crate::metrics;
use crate::registrar::observed_source;
use crate::server::Shared;

/// How a MANSCDP body came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Message,
    /// In a subscription's dialog (its 200 is the only answer an alarm gets).
    Notify,
}

pub async fn on_message(shared: &Arc<Shared>, tx: &mut Transaction) -> Result<(), SipError> {
    on_manscdp(shared, tx, Via::Message).await
}

/// A NOTIFY in one of our subscriptions: catalog changes, alarms, positions, handled as their
/// MESSAGE forms are. One saying the device ended the subscription makes it due again.
pub async fn on_notify(shared: &Arc<Shared>, tx: &mut Transaction) -> Result<(), SipError> {
    metrics::NOTIFIES.inc();
    let state = tx.original.headers.iter().find(|h| h.name().eq_ignore_ascii_case("Subscription-State")).map(|h| h.value().to_owned());
    if state.as_deref().is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated")) {
        if let Some(device_id) = headers::from_user(&tx.original).and_then(|u| u.parse::<DeviceId>().ok()) {
            tracing::info!(device_id = %device_id, state = ?state, "the device ended a subscription; renewing");
            crate::subscriptions::lapsed(shared, &device_id, &tx.original.body).await;
        }
        if tx.original.body.is_empty() {
            return tx.reply(StatusCode::OK).await.map_err(SipError::from);
        }
    }
    on_manscdp(shared, tx, Via::Notify).await
}

async fn on_manscdp(shared: &Arc<Shared>, tx: &mut Transaction, via: Via) -> Result<(), SipError> {
    let peer = observed_source(shared, tx).await;
    let msg = match manscdp::parse(&tx.original.body) {
        Ok(m) => m,
        Err(e) => {
            metrics::BAD_REQUESTS.inc();
            tracing::warn!(peer = ?peer, ?via, error = %e, "request with an unusable MANSCDP body");
            return tx.reply(StatusCode::BadRequest).await.map_err(SipError::from);
        }
    };
    // The sender is the From user; a platform may send on behalf of a sub-device, so fall back
    // on the body's DeviceID only when From carries none.
    let device_id: Option<DeviceId> =
        headers::from_user(&tx.original).and_then(|u| u.parse().ok()).or_else(|| msg.header.device_id.parse().ok());
    let Some(device_id) = device_id else {
        metrics::BAD_REQUESTS.inc();
        return tx.reply(StatusCode::BadRequest).await.map_err(SipError::from);
    };

    match msg.body {
        Body::Keepalive { .. } => {
            let code = on_keepalive(shared, &device_id, peer, tx.connection.clone()).await?;
            tx.reply(code).await?;
        }
        Body::Catalog { sum_num, items } => {
            tx.reply(StatusCode::OK).await?;
            metrics::CATALOG_ITEMS.add(items.len() as u64);
            if let Some(done) = shared.catalogs.push(device_id.as_str(), msg.header.sn, sum_num, items) {
                store_catalog(shared, done).await;
            }
        }
        Body::DeviceInfo(info) => {
            tx.reply(StatusCode::OK).await?;
            shared.store.set_device_info(&device_id, &info).await?;
        }
        Body::DeviceStatus(mut status) => {
            tx.reply(StatusCode::OK).await?;
            let now = (kit::clock::now_ms() / 1000) as i64;
            status.utc_offset_minutes = status.device_time.as_deref().and_then(|t| gb::records::clock_offset_minutes(t, now));
            shared.store.set_device_status(&device_id, &status).await?;
        }
        body @ (Body::PresetList { .. } | Body::ControlResult { .. } | Body::RecordInfo { .. } | Body::ConfigDownload { .. }) => {
            tx.reply(StatusCode::OK).await?;
            match shared.waiters.deliver(device_id.as_str(), msg.header.sn, body).await {
                Delivery::Delivered => {}
                // Debug: the rest of a RecordInfo flood past its bound lands here, page by page.
                Delivery::Unexpected => {
                    tracing::debug!(device_id = %device_id, sn = msg.header.sn, cmd = %msg.header.cmd_type, "an answer nobody waits for (late)")
                }
                Delivery::Dropped => {
                    metrics::ANSWERS_DROPPED.inc();
                    tracing::warn!(device_id = %device_id, sn = msg.header.sn, cmd = %msg.header.cmd_type, "an answer's MESSAGE dropped: its reader fell behind")
                }
            }
        }
        Body::Alarm(alarm) => {
            // Kept before the 200: a device sends its next alarm once this one is answered, so
            // its alarms are listed in the order it sent them (kept after, two could swap).
            let kept = crate::notices::keep_alarm(shared, &device_id, msg.header.device_id, alarm).await;
            tx.reply(StatusCode::OK).await?;
            // Answered off the handler: the Response is a request of ours, with its own transaction.
            if let Some((dev, source)) = kept.filter(|_| via == Via::Message) {
                let (shared, sn) = (shared.clone(), msg.header.sn);
                tokio::spawn(async move { crate::notices::answer_alarm(&shared, &dev, sn, &source).await });
            }
        }
        Body::MediaStatus { notify_type } => {
            tx.reply(StatusCode::OK).await?;
            if notify_type == Some(121) {
                // Devices send it with the playback's Call-ID; else it names the channel.
                use rsipstack::sip::HeadersExt;
                let call_id = tx.original.call_id_header().ok().map(|c| c.value().to_string());
                let ended = crate::play::playback::end_of_file(shared, call_id.as_deref(), device_id.as_str(), &msg.header.device_id).await;
                tracing::info!(device_id = %device_id, channel = %msg.header.device_id, ended, "MediaStatus 121: end of file");
            }
        }
        Body::CatalogChange { items } => {
            tx.reply(StatusCode::OK).await?;
            apply_catalog_change(shared, &device_id, items).await;
        }
        Body::MobilePosition(pos) => {
            // Kept before the 200, as alarms are: the track and the latest position follow the
            // order the device sent them in.
            crate::notices::on_position(shared, &device_id, msg.header.device_id, pos).await;
            tx.reply(StatusCode::OK).await?;
        }
        Body::Query
        | Body::RecordQuery { .. }
        | Body::DeviceControl { .. }
        | Body::DeviceConfig(_)
        | Body::ConfigQuery { .. }
        | Body::PositionQuery { .. }
        | Body::Other => {
            tracing::info!(device_id = %device_id, cmd = %msg.header.cmd_type, sn = msg.header.sn, "MESSAGE with a CmdType we do not handle; answered 200");
            tx.reply(StatusCode::OK).await?;
        }
    }
    Ok(())
}

/// A Keepalive (from a transaction, or the stateless UDP path): refresh presence, follow a NAT
/// rebinding, publish a return online. Returns the status to answer: 200, or 404 for a device
/// that is not registered (so the camera registers again).
pub async fn on_keepalive(
    shared: &Arc<Shared>,
    device_id: &DeviceId,
    peer: Option<(gb::model::SipTransport, String)>,
    tcp_conn: Option<rsipstack::transport::SipConnection>,
) -> Result<StatusCode, SipError> {
    let now = kit::clock::now_ms();
    match shared.store.touch_device(device_id, now, shared.keepalive_timeout_ms()).await? {
        Touch::NotRegistered => {
            metrics::KEEPALIVE_UNREGISTERED.inc();
            tracing::info!(device_id = %device_id, peer = ?peer, "keepalive from an unregistered device: 404 so it registers again");
            Ok(StatusCode::NotFound)
        }
        Touch::Refreshed { was_online } => {
            metrics::KEEPALIVES.inc();
            if let Some(peer) = peer {
                follow_rebinding(shared, device_id, peer, tcp_conn).await?;
            }
            if !was_online {
                shared.publish_presence(device_id, true, "keepalive").await;
            }
            Ok(StatusCode::OK)
        }
    }
}

/// A NAT may give a device a new public port between registrations; keep sending to where its
/// packets come from now.
async fn follow_rebinding(
    shared: &Arc<Shared>,
    device_id: &DeviceId,
    peer: (gb::model::SipTransport, String),
    tcp_conn: Option<rsipstack::transport::SipConnection>,
) -> Result<(), SipError> {
    let known = shared.links.seen(device_id);
    if known.as_ref() == Some(&peer) {
        return Ok(());
    }
    let Some(mut dev) = shared.store.get_device(device_id).await? else { return Ok(()) };
    if dev.transport != peer.0 || dev.source_addr != peer.1 || dev.node != shared.me.node {
        tracing::info!(device_id = %device_id, old = %dev.source_addr, new = %peer.1, "device source address changed; following it");
        dev.transport = peer.0;
        dev.source_addr = peer.1.clone();
        dev.node = shared.me.node.clone();
        let now = kit::clock::now_ms();
        let expiry = dev.registered_at_ms + u64::from(dev.expires_secs) * 1000;
        shared.store.upsert_device(&dev, (now + shared.keepalive_timeout_ms()).min(expiry)).await?;
    }
    // The connection it came on is the one to use from now on (TCP).
    shared.links.remember(device_id, peer, tcp_conn);
    Ok(())
}

/// A catalog subscription's changes applied to the stored catalog: ADD and UPDATE put the item
/// (an UPDATE without a status keeps the old one), DEL removes it, ON and OFF (VLOST and
/// DEFECT as OFF) set its status.
pub async fn apply_catalog_change(shared: &Shared, device_id: &DeviceId, items: Vec<(CatalogEvent, gb::model::Channel)>) {
    let mut channels = match shared.store.list_channels(device_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(device_id = %device_id, error = %e, "catalog change not applied: the catalog could not be read");
            return;
        }
    };
    let changes = items.len();
    for (event, mut item) in items {
        let Some(id) = item.id.clone() else { continue };
        let at = channels.iter().position(|c| c.item.id.as_ref() == Some(&id));
        match (event, at) {
            (CatalogEvent::Add | CatalogEvent::Update, Some(i)) => {
                if item.status.is_none() {
                    item.status = channels[i].item.status.take();
                }
                channels[i].item = item;
            }
            (CatalogEvent::Add | CatalogEvent::Update, None) => {
                if channels.len() < shared.cfg.catalog_max_items {
                    channels.extend(StoredChannel::new(device_id.clone(), item));
                }
            }
            (CatalogEvent::Del, Some(i)) => {
                channels.remove(i);
            }
            (CatalogEvent::On, Some(i)) => channels[i].item.status = Some("ON".into()),
            (CatalogEvent::Off | CatalogEvent::Vlost | CatalogEvent::Defect, Some(i)) => channels[i].item.status = Some("OFF".into()),
            (_, None) => tracing::debug!(device_id = %device_id, channel = %id, ?event, "catalog change for a channel we do not have"),
        }
    }
    match shared.store.replace_channels(device_id, &channels).await {
        Ok(()) => tracing::info!(device_id = %device_id, changes, channels = channels.len(), "catalog changes applied"),
        Err(e) => tracing::warn!(device_id = %device_id, error = %e, "catalog change not stored"),
    }
}

pub async fn store_catalog(shared: &Shared, done: CatalogDone) {
    let Ok(device_id) = done.device_id.parse::<DeviceId>() else { return };
    let total = done.items.len();
    let channels: Vec<StoredChannel> = done.items.into_iter().filter_map(|c| StoredChannel::new(device_id.clone(), c)).collect();
    let dropped = total - channels.len();
    metrics::CATALOGS_DONE.inc();
    if dropped > 0 {
        tracing::warn!(device_id = %device_id, dropped, "catalog items without a valid 20-digit id dropped");
    }
    match shared.store.replace_channels(&device_id, &channels).await {
        Ok(()) => {
            tracing::info!(device_id = %device_id, sn = done.sn, channels = channels.len(), sum_num = done.sum_num, complete = done.complete, "catalog stored")
        }
        Err(e) => tracing::warn!(device_id = %device_id, error = %e, "storing catalog failed"),
    }
}
