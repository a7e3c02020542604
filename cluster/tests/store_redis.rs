//! The Store conformance suite against a real redis-server.

use std::sync::Arc;

use cluster::store::{conformance, RedisStore, Store};
use testkit::RedisServer;

#[tokio::test]
async fn redis_store_passes_conformance() {
    let redis = RedisServer::start().expect("redis-server on PATH");
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&redis.url()).await.expect("connect"));
    conformance::run_all(store).await;
}

#[tokio::test]
async fn redis_store_data_outlives_a_connection() {
    let redis = RedisServer::start().expect("redis-server on PATH");
    let a = RedisStore::connect(&redis.url()).await.expect("connect");
    let id = "34020000001320000077".parse().unwrap();
    a.set_device_password(&id, Some("pw")).await.unwrap();
    drop(a);
    let b = RedisStore::connect(&redis.url()).await.expect("connect again");
    assert_eq!(b.device_password(&id).await.unwrap().as_deref(), Some("pw"));
}

#[tokio::test]
async fn bad_store_urls_are_refused() {
    assert!(cluster::store::open(Some("memcached://x")).await.is_err());
    assert!(cluster::store::open(Some("redis+cluster://")).await.is_err());
    assert!(cluster::store::open(None).await.is_ok());
}

#[tokio::test]
async fn redis_sentinel_url_passes_conformance() {
    let master = RedisServer::start().expect("redis-server");
    let dir = std::env::temp_dir().join(format!("gbc-sentinel-{}", master.port));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "sentinel monitor mymaster 127.0.0.1 {} 1\nsentinel down-after-milliseconds mymaster 2000\ndir {}\n",
            master.port,
            dir.display()
        ),
    )
    .unwrap();
    let sport = testkit::free_port();
    let _sentinel = RedisServer::start_with(sport, &[conf.to_str().unwrap(), "--sentinel"]).expect("sentinel");
    let store: Arc<dyn Store> =
        Arc::new(RedisStore::connect(&format!("redis+sentinel://127.0.0.1:{sport}/mymaster")).await.expect("via sentinel"));
    conformance::run_all(store).await;
}

#[tokio::test]
async fn redis_cluster_url_passes_conformance() {
    let dir = std::env::temp_dir().join(format!("gbc-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let port = testkit::free_port();
        let cfg = dir.join(format!("nodes-{port}.conf"));
        let _ = std::fs::remove_file(&cfg);
        let cfg_arg = cfg.to_str().unwrap().replace(".conf", ".cfg");
        nodes.push(RedisServer::start_with(port, &["--cluster-enabled", "yes", "--cluster-config-file", &cfg_arg]).expect("cluster node"));
    }
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let out = std::process::Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // Wait until every node agrees the cluster is up (on a busy machine this takes seconds).
    let all_ok = || {
        nodes.iter().all(|n| {
            std::process::Command::new("redis-cli")
                .args(["-p", &n.port.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !all_ok() {
        assert!(std::time::Instant::now() < deadline, "redis cluster did not converge in 30 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&format!("redis+cluster://{}", addrs.join(","))).await.expect("cluster"));
    conformance::run_all(store).await;
}

#[tokio::test]
async fn redis_restart_is_survived_commands_and_subscriptions_recover() {
    let redis = RedisServer::start().expect("redis-server");
    let port = redis.port;
    let store = RedisStore::connect(&redis.url()).await.expect("connect");
    let mut sub = store.subscribe("gbc:test:restart").await.expect("subscribe");
    drop(redis); // Redis goes away under a live store.
    let id = "34020000001320000088".parse().unwrap();
    assert!(store.set_device_password(&id, Some("x")).await.is_err(), "no Redis: an error, not a hang");
    let _back = RedisServer::start_with(port, &[]).expect("redis-server again on the same port");
    // Commands recover by themselves (the connection manager reconnects)...
    let mut ok = false;
    for _ in 0..50 {
        if store.set_device_password(&id, Some("x")).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "store did not reconnect");
    // ...and so does the subscription.
    let mut got = None;
    for _ in 0..50 {
        store.publish("gbc:test:restart", "after").await.expect("publish");
        if let Ok(Some(m)) = tokio::time::timeout(std::time::Duration::from_millis(200), sub.recv()).await {
            got = Some(m);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some("after"), "subscription did not come back");
}

#[tokio::test]
async fn a_corrupt_device_row_is_reported_by_name_and_does_not_hide_the_others() {
    let redis = RedisServer::start().expect("redis-server on PATH");
    let store = RedisStore::connect(&redis.url()).await.expect("connect");
    let now = clock::now_ms();
    let (good, bad): (cluster::registry::Device, cluster::registry::Device) = (
        conformance::dev(&"34020000001320000101".parse().unwrap(), now, 3600),
        conformance::dev(&"34020000001320000102".parse().unwrap(), now, 3600),
    );
    store.upsert_device(&good, now + 180_000).await.unwrap();
    store.upsert_device(&bad, now + 180_000).await.unwrap();
    // Someone (a bad migration, a hand edit) breaks one row.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("HSET").arg(format!("{{gbc}}:dev:{}", bad.id)).arg("rec").arg("{not json").query_async(&mut c).await.unwrap();
    match store.get_device(&bad.id).await {
        Err(cluster::store::StoreError::CorruptRow { table, id, .. }) => {
            assert_eq!((table.as_str(), id.as_str()), ("devices", bad.id.as_str()))
        }
        other => panic!("{other:?}"),
    }
    let (listed, total) = store.list_devices(Default::default(), 0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [good.id.as_str()], "the readable one still listed");
}
