//! One behaviour suite for every `Store` implementation. `run_all` asserts; call it from a test
//! with a fresh store (the in-memory one, or Redis started on a free port).

use std::sync::Arc;
use std::time::Duration;

use super::{DeviceFilter, LoadCandidate, OfflineReason, Op, OpOut, Store, Touch};
use crate::registry::{Device, StoredChannel};
use gb::ids::{ChannelId, DeviceId, NodeId};
use gb::model::{Channel, DeviceInfo, DeviceStatus, SipTransport};

/// A registered device as a test writes it.
pub fn dev(id: &DeviceId, now: u64, expires: u32) -> Device {
    Device {
        id: id.clone(),
        transport: SipTransport::Udp,
        source_addr: "203.0.113.7:40001".into(),
        contact: "<sip:x@192.168.1.10:5060>".into(),
        node: "sip-a".parse::<NodeId>().unwrap_or_else(|_| NodeId::random("n")),
        local_addr: "0.0.0.0:5060".into(),
        expires_secs: expires,
        registered_at_ms: now,
        last_seen_ms: now,
        online: true,
        keepalive_interval_secs: 60,
        gb_version: Some("3.0".into()),
        user_agent: None,
        info: DeviceInfo::default(),
        status: None,
        channel_count: 0,
    }
}

fn ids(base: u64, n: u64) -> Vec<DeviceId> {
    (0..n).map(|i| format!("34020000001320{:06}", base + i).parse().expect("20 digits")).collect()
}

async fn nodes(store: &Arc<dyn Store>, base: u64) {
    let kind = format!("test{base}");
    store.put_node(&kind, "b", r#"{"n":2}"#, 60_000).await.unwrap();
    store.put_node(&kind, "a", r#"{"n":1}"#, 300).await.unwrap();
    store.put_node(&kind, "a", r#"{"n":1.5}"#, 300).await.unwrap();
    assert_eq!(store.list_nodes(&kind).await.unwrap(), vec![("a".into(), r#"{"n":1.5}"#.into()), ("b".into(), r#"{"n":2}"#.into())]);
    assert!(store.list_nodes("nothing-here").await.unwrap().is_empty());
    // A node that stops refreshing drops out by itself.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(store.list_nodes(&kind).await.unwrap(), vec![("b".into(), r#"{"n":2}"#.into())]);
    store.remove_node(&kind, "b").await.unwrap();
    assert!(store.list_nodes(&kind).await.unwrap().is_empty());
}

async fn ssrcs(store: &Arc<dyn Store>, base: u64) {
    let prefix = format!("0{:05}", base % 100_000);
    let a = store.allocate_ssrc(&prefix, "sess-a").await.unwrap().expect("free ssrc");
    let b = store.allocate_ssrc(&prefix, "sess-b").await.unwrap().expect("free ssrc");
    assert_eq!((a.len(), &a[..6]), (10, prefix.as_str()));
    assert_ne!(a, b);
    assert!(!store.release_ssrc(&a, "sess-b").await.unwrap(), "only the holder releases");
    assert!(store.release_ssrc(&a, "sess-a").await.unwrap());
    assert!(!store.release_ssrc(&a, "sess-a").await.unwrap());
    // Many concurrent allocations never hand one SSRC out twice.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (s, p) = (store.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move { s.allocate_ssrc(&p, &format!("s{i}")).await.unwrap().unwrap() }));
    }
    let mut got = std::collections::HashSet::new();
    for t in tasks {
        let ssrc = t.await.unwrap();
        assert!(got.insert(ssrc.clone()) && ssrc != b, "duplicate {ssrc}");
    }
}

async fn tables(store: &Arc<dyn Store>, base: u64) {
    let t = format!("test{base}");
    assert!(store.table_insert(&t, "b", "1").await.unwrap());
    assert!(!store.table_insert(&t, "b", "2").await.unwrap(), "insert never overwrites");
    store.table_put(&t, "a", "x").await.unwrap();
    assert_eq!(store.table_get(&t, "b").await.unwrap().as_deref(), Some("1"));
    assert_eq!(store.table_list(&t).await.unwrap(), vec![("a".into(), "x".into()), ("b".into(), "1".into())]);
    assert!(!store.table_swap(&t, "a", "stale", "y").await.unwrap(), "swap needs the current value");
    assert!(store.table_swap(&t, "a", "x", "y").await.unwrap());
    assert!(!store.table_swap(&t, "missing", "", "z").await.unwrap());
    assert_eq!(store.table_get(&t, "a").await.unwrap().as_deref(), Some("y"));
    // Racing takers: exactly one gets the record.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move { s.table_take(&t, "b").await.unwrap() }));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.extend(task.await.unwrap());
    }
    assert_eq!(got, vec!["1".to_string()]);
    assert_eq!(store.table_take(&t, "a").await.unwrap().as_deref(), Some("y"));
    assert!(store.table_list(&t).await.unwrap().is_empty());
    assert!(store.table_list("no-such-table").await.unwrap().is_empty());
}

async fn loads(store: &Arc<dyn Store>, base: u64) {
    let pool = format!("test{base}");
    let cand = |id: &str, capacity: u64, reported: u64| LoadCandidate { id: id.into(), capacity, reported, busy: 0.0 };
    // A burst of 30 concurrent reservations over two nodes, one twice the other's capacity,
    // both reporting no load yet: spread 20/10, not piled on one.
    let both = vec![cand("big", 100, 0), cand("small", 50, 0)];
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (s, p, c) = (store.clone(), pool.clone(), both.clone());
        tasks.push(tokio::spawn(async move { s.reserve_least_loaded(&p, &c).await.unwrap().unwrap() }));
    }
    let mut big = 0;
    for task in tasks {
        big += usize::from(task.await.unwrap() == "big");
    }
    assert_eq!(big, 20, "weighted by capacity");
    assert_eq!(store.load_counts(&pool).await.unwrap(), vec![("big".into(), 20), ("small".into(), 10)]);
    // A node's own report counts when it is higher (work that came another way).
    let got = store.reserve_least_loaded(&pool, &[cand("big", 100, 90), cand("small", 50, 0)]).await.unwrap();
    assert_eq!(got.as_deref(), Some("small"));
    // Full nodes are skipped; none with room → None.
    assert_eq!(store.reserve_least_loaded(&pool, &[cand("big", 20, 0)]).await.unwrap(), None);
    assert_eq!(store.reserve_least_loaded(&pool, &[]).await.unwrap(), None);
    for _ in 0..12 {
        store.release_load(&pool, "small").await.unwrap();
    }
    store.clear_load(&pool, "big").await.unwrap();
    assert_eq!(store.load_counts(&pool).await.unwrap(), vec![("small".into(), 0)], "release stops at zero");
    // Busy breaks ties.
    let busy = vec![LoadCandidate { busy: 0.9, ..cand("x", 10, 0) }, LoadCandidate { busy: 0.1, ..cand("y", 10, 0) }];
    assert_eq!(store.reserve_least_loaded(&pool, &busy).await.unwrap().as_deref(), Some("y"));
}

async fn indexes_and_queues(store: &Arc<dyn Store>, base: u64) {
    let ix = format!("test{base}");
    for (m, s) in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("d", 4.5)] {
        store.index_add(&ix, s, m).await.unwrap();
    }
    store.index_add(&ix, 0.5, "d").await.unwrap(); // moved, not duplicated
    let other = format!("{ix}-b");
    let adds = [("y", 2.0), ("x", 1.0)].map(|(m, score)| Op::IndexAdd { index: other.clone(), score, member: m.into() });
    assert_eq!(store.pipeline(&adds).await.unwrap(), vec![OpOut::Done, OpOut::Done]);
    assert_eq!(store.index_range(&other, 0.0, 9.0, false, 0, 9).await.unwrap(), ["x", "y"]);
    assert_eq!(store.index_range(&ix, 0.0, 10.0, false, 0, 10).await.unwrap(), ["d", "a", "b", "c"]);
    assert_eq!(store.index_range(&ix, 1.0, 3.0, true, 0, 10).await.unwrap(), ["c", "b", "a"]);
    assert_eq!(store.index_range(&ix, 1.0, 3.0, true, 1, 1).await.unwrap(), ["b"]);
    assert_eq!(store.index_count(&ix, 1.0, 2.0).await.unwrap(), 2);
    assert!(store.index_range("no-such-index", 0.0, 1.0, false, 0, 10).await.unwrap().is_empty());

    // Capped logs: newest first, the oldest dropped past the cap, paged, counted.
    let log = format!("test{base}-log");
    for i in 0..7 {
        store.log_push(&log, &format!("e{i}"), 5).await.unwrap();
    }
    assert_eq!(store.log_range(&log, 0, 10).await.unwrap(), (vec!["e6".into(), "e5".into(), "e4".into(), "e3".into(), "e2".into()], 5));
    assert_eq!(store.log_range(&log, 1, 2).await.unwrap(), (vec!["e5".into(), "e4".into()], 5));
    assert_eq!(store.log_range(&log, 9, 2).await.unwrap(), (vec![], 5));
    assert_eq!(store.log_range(&log, 0, 0).await.unwrap(), (vec![], 5));
    assert_eq!(store.log_range("no-such-log", 0, 3).await.unwrap(), (vec![], 0));

    // A pipeline: results in order, and the same effects as the single calls.
    let (t, q2) = (format!("test{base}-p"), format!("test{base}-pq"));
    store.queue_push(&q2, "c1").await.unwrap();
    let ops = vec![
        Op::TableInsert { table: t.clone(), id: "k".into(), record: "v1".into() },
        Op::TableInsert { table: t.clone(), id: "k".into(), record: "v2".into() },
        Op::IndexAdd { index: t.clone(), score: 3.0, member: "k".into() },
        Op::QueuePop { queue: q2.clone(), max: 8 },
        Op::QueuePop { queue: q2.clone(), max: 8 },
    ];
    let out = store.pipeline(&ops).await.unwrap();
    assert_eq!(
        out,
        vec![OpOut::Inserted(true), OpOut::Inserted(false), OpOut::Done, OpOut::Items(vec!["c1".into()]), OpOut::Items(vec![])]
    );
    assert_eq!(store.table_get(&t, "k").await.unwrap().as_deref(), Some("v1"));
    assert_eq!(store.index_range(&t, 0.0, 9.0, false, 0, 9).await.unwrap(), ["k"]);

    let q = format!("test{base}");
    assert!(store.queue_pop(&q, 5).await.unwrap().is_empty());
    for i in 0..7 {
        store.queue_push(&q, &format!("i{i}")).await.unwrap();
    }
    assert_eq!(store.queue_len(&q).await.unwrap(), 7);
    let first = store.queue_pop(&q, 3).await.unwrap();
    assert_eq!(first, ["i0", "i1", "i2"]);
    store.queue_unpop(&q, &first[1..]).await.unwrap();
    assert_eq!(store.queue_pop(&q, 100).await.unwrap(), ["i1", "i2", "i3", "i4", "i5", "i6"]);
    assert_eq!(store.queue_len(&q).await.unwrap(), 0);
}

pub async fn run_all(store: Arc<dyn Store>) {
    // Ids unique to this run so a shared Redis can host several runs.
    let base = u64::from(rand::random::<u16>() % 900) * 1000;
    let now = 1_700_000_000_000u64;
    nodes(&store, base).await;
    ssrcs(&store, base).await;
    tables(&store, base).await;
    loads(&store, base).await;
    indexes_and_queues(&store, base).await;
    let d = ids(base, 5);

    // Registration, read-back, listing with paging and the online filter.
    for (i, id) in d.iter().enumerate() {
        let mut rec = dev(id, now, 3600);
        rec.online = i != 4;
        store.upsert_device(&rec, now + 180_000).await.expect("upsert");
    }
    let got = store.get_device(&d[0]).await.expect("get").expect("present");
    assert_eq!(got, dev(&d[0], now, 3600));
    assert!(store.get_device(&ids(base + 900, 1)[0]).await.expect("get").is_none());
    let (page, total) = store.list_devices(DeviceFilter::default(), 0, 1000).await.expect("list");
    let mine: Vec<_> = page.iter().filter(|x| d.contains(&x.id)).map(|x| x.id.clone()).collect();
    assert_eq!(mine, d, "sorted by id");
    assert!(total >= 5);
    let (online, _) = store.list_devices(DeviceFilter::online(true), 0, 10_000).await.expect("list");
    assert_eq!(online.iter().filter(|x| d.contains(&x.id)).count(), 4);
    let (offline, _) = store.list_devices(DeviceFilter::online(false), 0, 10_000).await.expect("list");
    assert!(offline.iter().any(|x| x.id == d[4]));
    // Search by id prefix: exactly the ids that start with it, paged, counted.
    let prefix = &d[0].as_str()[..19];
    let want: Vec<_> = d.iter().filter(|x| x.as_str().starts_with(prefix)).cloned().collect();
    let by_prefix = DeviceFilter { online: None, id_prefix: Some(prefix.to_owned()) };
    let (found, n) = store.list_devices(by_prefix.clone(), 0, 1000).await.expect("search");
    assert_eq!(found.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), want, "prefix {prefix}");
    assert_eq!(n, want.len());
    let (second, _) = store.list_devices(by_prefix, 1, 1).await.expect("search page");
    assert_eq!(second.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), want[1..2.min(want.len())].to_vec());
    let online_prefix = DeviceFilter { online: Some(false), id_prefix: Some(d[4].as_str().to_owned()) };
    assert_eq!(store.list_devices(online_prefix, 0, 10).await.expect("search").1, 1);
    let (none, zero) = store.list_devices(DeviceFilter { online: None, id_prefix: Some("9".repeat(20)) }, 0, 10).await.expect("search");
    assert!(none.is_empty() && zero == 0);
    let (p1, t1) = store.list_devices(DeviceFilter::default(), 1, 2).await.expect("page");
    assert_eq!(p1.len(), 2);
    assert_eq!(t1, total);

    // Keepalive and presence expiry: each transition is handed out once.
    let unknown = ids(base + 950, 1).remove(0);
    assert_eq!(store.touch_device(&unknown, now, 180_000).await.expect("touch"), Touch::NotRegistered);
    assert_eq!(store.touch_device(&d[0], now + 10_000, 180_000).await.expect("touch"), Touch::Refreshed { was_online: true });
    let due = store.expire_due(now + 185_000, 100).await.expect("expire");
    let due_mine: Vec<_> = due.iter().filter(|(i, _)| d.contains(i)).cloned().collect();
    assert_eq!(due_mine.len(), 3, "d1..d3 missed their keepalives, d0 was refreshed: {due_mine:?}");
    assert!(due_mine.iter().all(|(_, r)| *r == OfflineReason::KeepaliveTimeout));
    assert!(store.expire_due(now + 185_000, 100).await.expect("expire").iter().all(|(i, _)| !d.contains(i)));
    assert!(!store.get_device(&d[1]).await.expect("get").expect("kept").online);
    let due = store.expire_due(now + 190_001, 100).await.expect("expire");
    assert!(due.contains(&(d[0].clone(), OfflineReason::KeepaliveTimeout)));
    // A keepalive brings an offline-but-registered device back.
    assert_eq!(store.touch_device(&d[1], now + 200_000, 180_000).await.expect("touch"), Touch::Refreshed { was_online: false });
    assert!(store.get_device(&d[1]).await.expect("get").expect("kept").online);

    // Registration expiry beats the keepalive deadline.
    let short = ids(base + 500, 1).remove(0);
    store.upsert_device(&dev(&short, now, 10), now + 10_000).await.expect("upsert");
    assert_eq!(store.touch_device(&short, now + 5_000, 180_000).await.expect("touch"), Touch::Refreshed { was_online: true });
    let due = store.expire_due(now + 10_000, 100).await.expect("expire");
    assert!(due.contains(&(short.clone(), OfflineReason::RegistrationExpired)), "{due:?}");
    assert_eq!(store.touch_device(&short, now + 11_000, 180_000).await.expect("touch"), Touch::NotRegistered);

    // Unregister.
    assert!(store.unregister_device(&d[2]).await.is_ok());
    let un = store.get_device(&d[2]).await.expect("get").expect("kept");
    assert!(!un.online);
    assert_eq!(un.expires_secs, 0);
    assert_eq!(store.touch_device(&d[2], now + 1, 180_000).await.expect("touch"), Touch::NotRegistered);
    assert!(store.unregister_device(&d[1]).await.expect("unreg"), "d1 was online");

    // Device info and channels (replaced whole, sorted, counted).
    let info =
        DeviceInfo { name: Some("东门 NVR".into()), manufacturer: Some("Hikvision".into()), channels: Some(3), ..Default::default() };
    store.set_device_info(&d[0], &info).await.expect("info");
    store.set_device_info(&unknown, &info).await.expect("info on unknown is a no-op");
    assert!(store.get_device(&unknown).await.expect("get").is_none());
    let chans: Vec<StoredChannel> = (0..3u64)
        .rev()
        .map(|i| {
            let id: ChannelId = format!("34020000001310{:06}", i).parse().expect("20 digits");
            StoredChannel::new(d[0].clone(), Channel { id: Some(id), name: Some(format!("大门口{i}")), ..Default::default() })
                .expect("has id")
        })
        .collect();
    store.replace_channels(&d[0], &chans).await.expect("channels");
    let listed = store.list_channels(&d[0]).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].item.name.as_deref(), Some("大门口0"));
    let status = DeviceStatus { online: Some("ONLINE".into()), status: Some("OK".into()), ..Default::default() };
    store.set_device_status(&d[0], &status).await.expect("status");
    store.set_device_status(&unknown, &status).await.expect("status on unknown is a no-op");
    assert!(store.get_device(&unknown).await.expect("get").is_none());
    // A re-registration keeps the answers (they live apart from the registration record).
    let mut again = store.get_device(&d[0]).await.expect("get").expect("present");
    again.last_seen_ms += 1;
    store.upsert_device(&again, now + 180_000).await.expect("re-register");
    let got = store.get_device(&d[0]).await.expect("get").expect("present");
    assert_eq!(got.info, info);
    assert_eq!(got.status.as_ref(), Some(&status));
    assert_eq!(got.channel_count, 3);
    store.replace_channels(&d[0], &chans[..1]).await.expect("channels");
    assert_eq!(store.list_channels(&d[0]).await.expect("list").len(), 1);

    // Delete removes the device and its channels.
    assert!(store.delete_device(&d[0]).await.expect("delete"));
    assert!(!store.delete_device(&d[0]).await.expect("delete"));
    assert!(store.get_device(&d[0]).await.expect("get").is_none());
    assert!(store.list_channels(&d[0]).await.expect("list").is_empty());

    // Passwords, failure counters, shared secrets.
    assert_eq!(store.device_password(&d[3]).await.expect("pwd"), None);
    store.set_device_password(&d[3], Some("s3cret")).await.expect("pwd");
    assert_eq!(store.device_password(&d[3]).await.expect("pwd").as_deref(), Some("s3cret"));
    store.set_device_password(&d[3], None).await.expect("pwd");
    assert_eq!(store.device_password(&d[3]).await.expect("pwd"), None);
    let key = format!("dev:{}", d[3]);
    assert_eq!(store.record_auth_failure(&key, 60).await.expect("fail"), 1);
    assert_eq!(store.record_auth_failure(&key, 60).await.expect("fail"), 2);
    assert_eq!(store.auth_failures(&key).await.expect("fails"), 2);
    store.clear_auth_failures(&key).await.expect("clear");
    assert_eq!(store.auth_failures(&key).await.expect("fails"), 0);
    let s1 = store.shared_secret("nonce").await.expect("secret");
    assert_eq!(s1.len(), 32);
    assert_eq!(store.shared_secret("nonce").await.expect("secret"), s1);

    // Pub/sub.
    let topic = format!("gbc:test:{base}");
    let mut sub = store.subscribe(&topic).await.expect("subscribe");
    store.publish(&topic, "hello").await.expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("in time");
    assert_eq!(got.as_deref(), Some("hello"));
}
