//! The Store conformance suite against a real redis-server.

use std::sync::Arc;

use common::store::{conformance, RedisStore, Store};
use common::testutil::RedisServer;

#[tokio::test]
async fn redis_store_passes_conformance() {
    let redis = RedisServer::start().expect("redis-server on PATH");
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&redis.url()).await.expect("connect"));
    conformance::run_all(store).await;
}

#[tokio::test]
async fn redis_store_keeps_devices_across_reconnects_and_restarts_pubsub() {
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
    assert!(common::store::open(Some("memcached://x")).await.is_err());
    assert!(common::store::open(Some("redis+cluster://")).await.is_err());
    assert!(common::store::open(None).await.is_ok());
}
