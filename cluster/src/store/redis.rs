//! The Redis Store. Every key carries the `{gbc}` hash tag so that the multi-key scripts below
//! stay on one slot under Redis Cluster. Key schema: `docs/redis.md`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{AsyncCommands, RedisFuture, Script, Value};
use tokio::sync::{mpsc, RwLock};

use super::{DeviceFilter, LoadCandidate, OfflineReason, Store, StoreError, StoreResult, Subscription, Touch};
use crate::registry::{Device, StoredChannel};
use gb::ids::DeviceId;
use gb::model::{DeviceInfo, DeviceStatus};

const DEVICES: &str = "{gbc}:devices";
const ONLINE: &str = "{gbc}:devices:online";
const OFFLINE: &str = "{gbc}:devices:offline";
const PRESENCE: &str = "{gbc}:presence";
const PASSWORDS: &str = "{gbc}:passwords";
const DEV_PREFIX: &str = "{gbc}:dev:";

fn node_key(kind: &str, id: &str) -> String {
    format!("{{gbc}}:node:{kind}:{id}")
}

/// Index of a kind's nodes, scored by expiry (ms); the per-node key's TTL is what counts.
fn nodes_key(kind: &str) -> String {
    format!("{{gbc}}:nodes:{kind}")
}

fn dev_key(id: &DeviceId) -> String {
    format!("{DEV_PREFIX}{id}")
}
fn channels_key(id: &DeviceId) -> String {
    format!("{{gbc}}:channels:{id}")
}

/// Keepalive: refresh last-seen and the presence deadline, only for a live registration.
const TOUCH_LUA: &str = r#"
local exp = redis.call('HGET', KEYS[1], 'reg_expiry')
if not exp then return -1 end
exp = tonumber(exp)
local now = tonumber(ARGV[2])
if exp <= now then return -1 end
local was = redis.call('HGET', KEYS[1], 'online')
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2], 'online', '1')
local dl = now + tonumber(ARGV[3])
if dl > exp then dl = exp end
redis.call('ZADD', KEYS[2], dl, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if was == '1' then return 1 else return 0 end
"#;

/// Takes due devices offline; each id is returned to exactly one caller.
const EXPIRE_LUA: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local now = tonumber(ARGV[1])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local k = ARGV[3] .. id
  if redis.call('EXISTS', k) == 1 then
    local exp = tonumber(redis.call('HGET', k, 'reg_expiry') or '0')
    redis.call('HSET', k, 'online', '0')
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], 0, id)
    table.insert(out, id)
    if exp <= now then table.insert(out, 'r') else table.insert(out, 'k') end
  end
end
return out
"#;

const SET_IF_EXISTS_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return -1
"#;

/// SSRC allocation: the next free 4-digit sequence under a prefix, held in one hash.
const ALLOC_SSRC_LUA: &str = r#"
for i = 1, 10000 do
  local seq = redis.call('INCR', KEYS[2]) % 10000
  local ssrc = ARGV[1] .. string.format('%04d', seq)
  if redis.call('HSETNX', KEYS[1], ssrc, ARGV[2]) == 1 then return ssrc end
end
return false
"#;

/// Compare-and-delete: only the holder releases an SSRC.
const RELEASE_SSRC_LUA: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"#;

/// Compare-and-set of one table record.
const TABLE_SWAP_LUA: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end
return 0
"#;

/// Get-and-delete of one table record.
const TABLE_TAKE_LUA: &str = r#"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v
"#;

/// Least-loaded choice plus reservation in one step. ARGV: n, then per candidate id, capacity,
/// reported, busy. Same score as `store::load_score`.
const RESERVE_LUA: &str = r#"
local n = tonumber(ARGV[1])
local best, best_score = false, nil
for i = 0, n - 1 do
  local id = ARGV[2 + i * 4]
  local cap = tonumber(ARGV[3 + i * 4])
  local reported = tonumber(ARGV[4 + i * 4])
  local busy = tonumber(ARGV[5 + i * 4])
  local load = tonumber(redis.call('HGET', KEYS[1], id) or '0')
  if reported > load then load = reported end
  if load < cap then
    if busy < 0 then busy = 0 elseif busy > 1 then busy = 1 end
    local c = cap
    if c < 1 then c = 1 end
    local score = (load + 1) / c + busy * 0.001
    if best_score == nil or score < best_score then best, best_score = id, score end
  end
end
if best then redis.call('HINCRBY', KEYS[1], best, 1) end
return best
"#;

const RELEASE_LOAD_LUA: &str = r#"
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if v > 0 then return redis.call('HINCRBY', KEYS[1], ARGV[1], -1) end
return 0
"#;

fn table_key(table: &str) -> String {
    format!("{{gbc}}:t:{table}")
}

fn index_key(index: &str) -> String {
    format!("{{gbc}}:ix:{index}")
}

fn queue_key(queue: &str) -> String {
    format!("{{gbc}}:q:{queue}")
}

fn log_key(log: &str) -> String {
    format!("{{gbc}}:log:{log}")
}

fn load_key(pool: &str) -> String {
    format!("{{gbc}}:load:{pool}")
}

const SSRCS: &str = "{gbc}:ssrcs";
const SSRC_NEXT: &str = "{gbc}:ssrc:next";

/// How long one command may wait for its answer. redis-rs defaults to 500 ms, which a
/// registration storm of tens of thousands of multiplexed commands exceeds while Redis itself
/// is fine; a dead Redis is still noticed within seconds.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// One connection handle whatever the deployment: single node (or Sentinel's current master,
/// behind a manager that reconnects by itself) or Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(&'a mut self, cmd: &'a redis::Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub struct RedisStore {
    conn: Arc<RwLock<Conn>>,
    /// A plain client for pub/sub (a node of the cluster, or the current master).
    pubsub_client: Arc<RwLock<redis::Client>>,
    touch: Script,
    expire: Script,
    set_if_exists: Script,
}

struct ParsedUrl {
    scheme: &'static str,
    userinfo: String,
    hosts: Vec<String>,
    path: String,
}

fn split_url(url: &str) -> StoreResult<ParsedUrl> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("redis+sentinel://") {
        ("sentinel", r)
    } else if let Some(r) = url.strip_prefix("redis+cluster://") {
        ("cluster", r)
    } else {
        return Err(StoreError::BadUrl(url.to_owned()));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let hosts: Vec<String> = hosts.split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect();
    if hosts.is_empty() {
        return Err(StoreError::BadUrl(url.to_owned()));
    }
    Ok(ParsedUrl { scheme, userinfo, hosts, path: path.to_owned() })
}

async fn sentinel_master(sentinels: &[String], service: &str, userinfo: &str) -> StoreResult<redis::Client> {
    let urls: Vec<String> = sentinels.iter().map(|h| format!("redis://{h}")).collect();
    let node_info = if userinfo.is_empty() {
        None
    } else {
        let u = redis::Client::open(format!("redis://{userinfo}{}", sentinels[0]))?;
        Some(
            redis::sentinel::SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(u.get_connection_info().redis_settings().clone()),
        )
    };
    let mut sc = redis::sentinel::SentinelClient::build(urls, service.to_owned(), node_info, redis::sentinel::SentinelServerType::Master)?;
    Ok(sc.async_get_client().await?)
}

impl RedisStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let touch = Script::new(TOUCH_LUA);
        let expire = Script::new(EXPIRE_LUA);
        let set_if_exists = Script::new(SET_IF_EXISTS_LUA);
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            let client = redis::Client::open(url)?;
            let mgr = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
            return Ok(Self {
                conn: Arc::new(RwLock::new(Conn::Single(mgr))),
                pubsub_client: Arc::new(RwLock::new(client)),
                touch,
                expire,
                set_if_exists,
            });
        }
        let p = split_url(url)?;
        match p.scheme {
            "cluster" => {
                let nodes: Vec<String> = p.hosts.iter().map(|h| format!("redis://{}{h}", p.userinfo)).collect();
                let cc = redis::cluster::ClusterClient::builder(nodes.clone()).response_timeout(RESPONSE_TIMEOUT).build()?;
                let conn = cc.get_async_connection().await?;
                Ok(Self {
                    conn: Arc::new(RwLock::new(Conn::Cluster(conn))),
                    pubsub_client: Arc::new(RwLock::new(redis::Client::open(nodes[0].as_str())?)),
                    touch,
                    expire,
                    set_if_exists,
                })
            }
            _ => {
                let service = if p.path.is_empty() { "mymaster".to_owned() } else { p.path.clone() };
                let client = sentinel_master(&p.hosts, &service, &p.userinfo).await?;
                let mgr = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
                let store = Self {
                    conn: Arc::new(RwLock::new(Conn::Single(mgr))),
                    pubsub_client: Arc::new(RwLock::new(client)),
                    touch,
                    expire,
                    set_if_exists,
                };
                store.watch_sentinel(p.hosts, service, p.userinfo);
                Ok(store)
            }
        }
    }

    /// After a Sentinel failover the master moves: ask the sentinels every few seconds and
    /// swap the connection when the answer changes.
    fn watch_sentinel(&self, sentinels: Vec<String>, service: String, userinfo: String) {
        let conn = Arc::downgrade(&self.conn);
        let pubsub = Arc::downgrade(&self.pubsub_client);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let (Some(conn), Some(pubsub)) = (conn.upgrade(), pubsub.upgrade()) else { break };
                let Ok(client) = sentinel_master(&sentinels, &service, &userinfo).await else { continue };
                let current = pubsub.read().await.get_connection_info().addr().to_string();
                if client.get_connection_info().addr().to_string() != current {
                    if let Ok(mgr) = ConnectionManager::new_with_config(client.clone(), manager_config()).await {
                        tracing::warn!(master = %client.get_connection_info().addr(), "redis sentinel failover: switching master");
                        *conn.write().await = Conn::Single(mgr);
                        *pubsub.write().await = client;
                    }
                }
            }
        });
    }

    async fn conn(&self) -> Conn {
        self.conn.read().await.clone()
    }

    /// Sets one field of a device hash, only for a device that exists: never resurrect a
    /// deleted one as a half record. Atomic (HSET only if EXISTS) via a tiny script.
    async fn set_field_if_exists(&self, id: &DeviceId, field: &str, value: String) -> StoreResult<()> {
        let _: i64 = self.set_if_exists.key(dev_key(id)).arg(field).arg(value).invoke_async(&mut self.conn().await).await?;
        Ok(())
    }
}

/// Device rows name themselves in errors as rows of table `devices`.
fn corrupt_device(id: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptRow { table: "devices".into(), id: id.to_owned(), error: e.to_string() }
}

fn encode_device_field<T: serde::Serialize>(id: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode { table: "devices".into(), id: id.to_owned(), error: e.to_string() })
}

fn decode_device(id: &str, fields: Vec<Option<String>>) -> StoreResult<Option<Device>> {
    let mut it = fields.into_iter();
    let Some(Some(rec)) = it.next() else { return Ok(None) };
    let mut dev: Device = serde_json::from_str(&rec).map_err(|e| corrupt_device(id, e))?;
    if let Some(Some(v)) = it.next() {
        dev.last_seen_ms = v.parse().unwrap_or(dev.last_seen_ms);
    }
    if let Some(Some(v)) = it.next() {
        dev.online = v == "1";
    }
    if let Some(Some(v)) = it.next() {
        dev.expires_secs = v.parse().unwrap_or(dev.expires_secs);
    }
    if let Some(Some(v)) = it.next() {
        // What a query learnt: unreadable, it is asked again, not fatal to the device.
        dev.info = serde_json::from_str(&v).unwrap_or_else(|e| {
            tracing::warn!(device = id, error = %e, "unreadable device info ignored");
            Default::default()
        });
    }
    if let Some(Some(v)) = it.next() {
        dev.channel_count = v.parse().unwrap_or(0);
    }
    if let Some(Some(v)) = it.next() {
        dev.status = serde_json::from_str(&v).map_err(|e| tracing::warn!(device = id, error = %e, "unreadable device status ignored")).ok();
    }
    Ok(Some(dev))
}

const DEVICE_FIELDS: [&str; 7] = ["rec", "last_seen", "online", "expires", "info", "channel_count", "status"];

#[async_trait]
impl Store for RedisStore {
    async fn upsert_device(&self, dev: &Device, presence_deadline_ms: u64) -> StoreResult<()> {
        let id = dev.id.as_str();
        let key = dev_key(&dev.id);
        let rec = encode_device_field(id, dev)?;
        let reg_expiry = dev.registered_at_ms + u64::from(dev.expires_secs) * 1000;
        let mut p = redis::pipe();
        p.atomic()
            .hset_multiple(
                &key,
                &[
                    ("rec", rec),
                    ("last_seen", dev.last_seen_ms.to_string()),
                    ("online", if dev.online { "1" } else { "0" }.to_owned()),
                    ("expires", dev.expires_secs.to_string()),
                    ("reg_expiry", reg_expiry.to_string()),
                ],
            )
            .ignore()
            .zadd(DEVICES, id, 0)
            .ignore();
        if dev.online {
            p.zadd(ONLINE, id, 0).ignore().zrem(OFFLINE, id).ignore().zadd(PRESENCE, id, presence_deadline_ms).ignore();
        } else {
            p.zadd(OFFLINE, id, 0).ignore().zrem(ONLINE, id).ignore().zrem(PRESENCE, id).ignore();
        }
        p.query_async::<()>(&mut self.conn().await).await?;
        Ok(())
    }

    async fn get_device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        let fields: Vec<Option<String>> =
            redis::cmd("HMGET").arg(dev_key(id)).arg(&DEVICE_FIELDS[..]).query_async(&mut self.conn().await).await?;
        decode_device(id.as_str(), fields)
    }

    async fn list_devices(&self, filter: DeviceFilter, offset: usize, limit: usize) -> StoreResult<(Vec<Device>, usize)> {
        let set = match filter.online {
            None => DEVICES,
            Some(true) => ONLINE,
            Some(false) => OFFLINE,
        };
        let mut c = self.conn().await;
        // Every member has score 0, so the sets are in id order and a prefix is a lexical range.
        let prefix = filter.id_prefix.as_deref().filter(|p| !p.is_empty());
        let range = prefix.map(|p| (format!("[{p}"), format!("({p}\u{ff}")));
        let total: usize = match &range {
            Some((min, max)) => c.zlexcount(set, min, max).await?,
            None => c.zcard(set).await?,
        };
        if limit == 0 || offset >= total {
            return Ok((Vec::new(), total));
        }
        let ids: Vec<String> = match &range {
            Some((min, max)) => c.zrangebylex_limit(set, min, max, offset as isize, limit as isize).await?,
            None => c.zrange(set, offset as isize, (offset + limit - 1) as isize).await?,
        };
        let mut p = redis::pipe();
        for id in &ids {
            p.cmd("HMGET").arg(format!("{DEV_PREFIX}{id}")).arg(&DEVICE_FIELDS[..]);
        }
        let rows: Vec<Vec<Option<String>>> = p.query_async(&mut c).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, row) in ids.iter().zip(rows) {
            // One corrupt row must not hide every other device: it is logged by name and left
            // for an operator (`get_device` reports it).
            match decode_device(id, row) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "unreadable device skipped in a listing"),
            }
        }
        Ok((out, total))
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<bool> {
        let (n,): (u32,) = redis::pipe()
            .atomic()
            .del(dev_key(id))
            .del(channels_key(id))
            .ignore()
            .zrem(DEVICES, id.as_str())
            .ignore()
            .zrem(ONLINE, id.as_str())
            .ignore()
            .zrem(OFFLINE, id.as_str())
            .ignore()
            .zrem(PRESENCE, id.as_str())
            .ignore()
            .query_async(&mut self.conn().await)
            .await?;
        Ok(n > 0)
    }

    async fn unregister_device(&self, id: &DeviceId) -> StoreResult<bool> {
        let key = dev_key(id);
        let mut c = self.conn().await;
        let (exists, online): (bool, Option<String>) = redis::pipe().exists(&key).hget(&key, "online").query_async(&mut c).await?;
        if !exists {
            return Ok(false);
        }
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("online", "0"), ("expires", "0"), ("reg_expiry", "0")])
            .ignore()
            .zrem(PRESENCE, id.as_str())
            .ignore()
            .zrem(ONLINE, id.as_str())
            .ignore()
            .zadd(OFFLINE, id.as_str(), 0)
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        Ok(online.as_deref() == Some("1"))
    }

    async fn touch_device(&self, id: &DeviceId, now_ms: u64, keepalive_timeout_ms: u64) -> StoreResult<Touch> {
        let r: i64 = self
            .touch
            .key(dev_key(id))
            .key(PRESENCE)
            .key(ONLINE)
            .key(OFFLINE)
            .arg(id.as_str())
            .arg(now_ms)
            .arg(keepalive_timeout_ms)
            .invoke_async(&mut self.conn().await)
            .await?;
        Ok(match r {
            -1 => Touch::NotRegistered,
            n => Touch::Refreshed { was_online: n == 1 },
        })
    }

    async fn expire_due(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<(DeviceId, OfflineReason)>> {
        let flat: Vec<String> = self
            .expire
            .key(PRESENCE)
            .key(ONLINE)
            .key(OFFLINE)
            .arg(now_ms)
            .arg(limit)
            .arg(DEV_PREFIX)
            .invoke_async(&mut self.conn().await)
            .await?;
        Ok(flat
            .chunks(2)
            .filter_map(|c| match c {
                [id, r] => {
                    Some((id.parse().ok()?, if r == "r" { OfflineReason::RegistrationExpired } else { OfflineReason::KeepaliveTimeout }))
                }
                _ => None,
            })
            .collect())
    }

    async fn set_device_info(&self, id: &DeviceId, info: &DeviceInfo) -> StoreResult<()> {
        let json = encode_device_field(id.as_str(), info)?;
        self.set_field_if_exists(id, "info", json).await
    }

    async fn set_device_status(&self, id: &DeviceId, status: &DeviceStatus) -> StoreResult<()> {
        let json = encode_device_field(id.as_str(), status)?;
        self.set_field_if_exists(id, "status", json).await
    }

    async fn replace_channels(&self, id: &DeviceId, channels: &[StoredChannel]) -> StoreResult<()> {
        let key = channels_key(id);
        let dkey = dev_key(id);
        let mut c = self.conn().await;
        let exists: bool = c.exists(&dkey).await?;
        let mut p = redis::pipe();
        p.atomic().del(&key).ignore();
        let mut distinct = std::collections::HashSet::new();
        for chunk in channels.chunks(500) {
            let mut pairs = Vec::with_capacity(chunk.len());
            for ch in chunk {
                distinct.insert(ch.id());
                let json = serde_json::to_string(ch).map_err(|e| StoreError::Encode {
                    table: format!("channels:{id}"),
                    id: ch.id().to_owned(),
                    error: e.to_string(),
                })?;
                pairs.push((ch.id(), json));
            }
            if !pairs.is_empty() {
                p.hset_multiple(&key, &pairs).ignore();
            }
        }
        if exists {
            p.hset(&dkey, "channel_count", distinct.len()).ignore();
        }
        p.query_async::<()>(&mut c).await?;
        Ok(())
    }

    async fn list_channels(&self, id: &DeviceId) -> StoreResult<Vec<StoredChannel>> {
        let all: Vec<(String, String)> = self.conn().await.hgetall(channels_key(id)).await?;
        let mut out = Vec::with_capacity(all.len());
        for (channel, json) in all {
            let row = serde_json::from_str::<StoredChannel>(&json).map_err(|e| StoreError::CorruptRow {
                table: format!("channels:{id}"),
                id: channel,
                error: e.to_string(),
            })?;
            out.push(row);
        }
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }

    async fn device_password(&self, id: &DeviceId) -> StoreResult<Option<String>> {
        Ok(self.conn().await.hget(PASSWORDS, id.as_str()).await?)
    }

    async fn set_device_password(&self, id: &DeviceId, password: Option<&str>) -> StoreResult<()> {
        let mut c = self.conn().await;
        match password {
            Some(p) => c.hset::<_, _, _, ()>(PASSWORDS, id.as_str(), p).await?,
            None => c.hdel::<_, _, ()>(PASSWORDS, id.as_str()).await?,
        }
        Ok(())
    }

    async fn record_auth_failure(&self, key: &str, window_secs: u64) -> StoreResult<u32> {
        let k = format!("{{gbc}}:authfail:{key}");
        let (n,): (u32,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&k)
            .arg(0)
            .arg("EX")
            .arg(window_secs.max(1))
            .arg("NX")
            .ignore()
            .incr(&k, 1)
            .query_async(&mut self.conn().await)
            .await?;
        Ok(n)
    }

    async fn auth_failures(&self, key: &str) -> StoreResult<u32> {
        let n: Option<u32> = self.conn().await.get(format!("{{gbc}}:authfail:{key}")).await?;
        Ok(n.unwrap_or(0))
    }

    async fn clear_auth_failures(&self, key: &str) -> StoreResult<()> {
        let _: () = self.conn().await.del(format!("{{gbc}}:authfail:{key}")).await?;
        Ok(())
    }

    async fn shared_secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let k = format!("{{gbc}}:secret:{name}");
        let fresh: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        let mut c = self.conn().await;
        let _: Option<String> = redis::cmd("SET").arg(&k).arg(hex::encode(&fresh)).arg("NX").query_async(&mut c).await?;
        let v: String = c.get(&k).await?;
        hex::decode(v).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn put_node(&self, kind: &str, id: &str, record: &str, ttl_ms: u64) -> StoreResult<()> {
        let expiry = clock::now_ms() + ttl_ms;
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(node_key(kind, id))
            .arg(record)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .zadd(nodes_key(kind), id, expiry)
            .ignore()
            .query_async(&mut self.conn().await)
            .await?;
        Ok(())
    }

    async fn list_nodes(&self, kind: &str) -> StoreResult<Vec<(String, String)>> {
        let mut c = self.conn().await;
        let index = nodes_key(kind);
        // Prune entries long dead (a minute of slack for clock skew between nodes).
        let _: i64 = c.zrembyscore(&index, "-inf", clock::now_ms().saturating_sub(60_000)).await?;
        let mut ids: Vec<String> = c.zrange(&index, 0, -1).await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| node_key(kind, id)).collect();
        let recs: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await?;
        Ok(ids.into_iter().zip(recs).filter_map(|(id, r)| r.map(|r| (id, r))).collect())
    }

    async fn remove_node(&self, kind: &str, id: &str) -> StoreResult<()> {
        let _: () = redis::pipe()
            .atomic()
            .del(node_key(kind, id))
            .ignore()
            .zrem(nodes_key(kind), id)
            .ignore()
            .query_async(&mut self.conn().await)
            .await?;
        Ok(())
    }

    async fn allocate_ssrc(&self, prefix: &str, owner: &str) -> StoreResult<Option<String>> {
        Ok(Script::new(ALLOC_SSRC_LUA).key(SSRCS).key(SSRC_NEXT).arg(prefix).arg(owner).invoke_async(&mut self.conn().await).await?)
    }

    async fn release_ssrc(&self, ssrc: &str, owner: &str) -> StoreResult<bool> {
        let n: i64 = Script::new(RELEASE_SSRC_LUA).key(SSRCS).arg(ssrc).arg(owner).invoke_async(&mut self.conn().await).await?;
        Ok(n == 1)
    }

    async fn table_insert(&self, table: &str, id: &str, record: &str) -> StoreResult<bool> {
        Ok(self.conn().await.hset_nx(table_key(table), id, record).await?)
    }

    async fn table_put(&self, table: &str, id: &str, record: &str) -> StoreResult<()> {
        let _: i64 = self.conn().await.hset(table_key(table), id, record).await?;
        Ok(())
    }

    async fn table_get(&self, table: &str, id: &str) -> StoreResult<Option<String>> {
        Ok(self.conn().await.hget(table_key(table), id).await?)
    }

    async fn table_list(&self, table: &str) -> StoreResult<Vec<(String, String)>> {
        let mut v: Vec<(String, String)> = self.conn().await.hgetall(table_key(table)).await?;
        v.sort();
        Ok(v)
    }

    async fn table_swap(&self, table: &str, id: &str, expected: &str, record: &str) -> StoreResult<bool> {
        let n: i64 = Script::new(TABLE_SWAP_LUA)
            .key(table_key(table))
            .arg(id)
            .arg(expected)
            .arg(record)
            .invoke_async(&mut self.conn().await)
            .await?;
        Ok(n == 1)
    }

    async fn table_take(&self, table: &str, id: &str) -> StoreResult<Option<String>> {
        Ok(Script::new(TABLE_TAKE_LUA).key(table_key(table)).arg(id).invoke_async(&mut self.conn().await).await?)
    }

    async fn index_add(&self, index: &str, score: f64, member: &str) -> StoreResult<()> {
        let _: i64 = self.conn().await.zadd(index_key(index), member, score).await?;
        Ok(())
    }

    async fn pipeline(&self, ops: &[super::Op]) -> StoreResult<Vec<super::OpOut>> {
        use super::{Op, OpOut};
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for op in ops {
            match op {
                Op::TableInsert { table, id, record } => {
                    pipe.hset_nx(table_key(table), id, record);
                }
                Op::IndexAdd { index, score, member } => {
                    pipe.zadd(index_key(index), member, *score);
                }
                Op::QueuePop { queue, max } => {
                    pipe.cmd("LPOP").arg(queue_key(queue)).arg((*max).max(1));
                }
            }
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.conn().await).await?;
        let mut out = Vec::with_capacity(ops.len());
        for (op, v) in ops.iter().zip(replies) {
            out.push(match op {
                Op::TableInsert { .. } => {
                    OpOut::Inserted(redis::from_redis_value::<i64>(v).map_err(|e| StoreError::Corrupt(e.to_string()))? == 1)
                }
                Op::IndexAdd { .. } => OpOut::Done,
                Op::QueuePop { .. } => OpOut::Items(
                    redis::from_redis_value::<Option<Vec<String>>>(v).map_err(|e| StoreError::Corrupt(e.to_string()))?.unwrap_or_default(),
                ),
            });
        }
        Ok(out)
    }

    async fn index_range(&self, index: &str, min: f64, max: f64, rev: bool, offset: usize, limit: usize) -> StoreResult<Vec<String>> {
        let mut cmd = redis::cmd(if rev { "ZREVRANGEBYSCORE" } else { "ZRANGEBYSCORE" });
        cmd.arg(index_key(index));
        if rev {
            cmd.arg(max).arg(min);
        } else {
            cmd.arg(min).arg(max);
        }
        cmd.arg("LIMIT").arg(offset).arg(limit);
        Ok(cmd.query_async(&mut self.conn().await).await?)
    }

    async fn index_count(&self, index: &str, min: f64, max: f64) -> StoreResult<usize> {
        Ok(self.conn().await.zcount(index_key(index), min, max).await?)
    }

    async fn queue_push(&self, queue: &str, item: &str) -> StoreResult<()> {
        let _: i64 = self.conn().await.rpush(queue_key(queue), item).await?;
        Ok(())
    }

    async fn queue_pop(&self, queue: &str, max: usize) -> StoreResult<Vec<String>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let v: Option<Vec<String>> = redis::cmd("LPOP").arg(queue_key(queue)).arg(max).query_async(&mut self.conn().await).await?;
        Ok(v.unwrap_or_default())
    }

    async fn queue_unpop(&self, queue: &str, items: &[String]) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        // LPUSH puts each at the head in turn: push in reverse to keep their order.
        let rev: Vec<&String> = items.iter().rev().collect();
        let _: i64 = self.conn().await.lpush(queue_key(queue), rev).await?;
        Ok(())
    }

    async fn queue_len(&self, queue: &str) -> StoreResult<usize> {
        Ok(self.conn().await.llen(queue_key(queue)).await?)
    }

    async fn log_push(&self, log: &str, item: &str, max: usize) -> StoreResult<()> {
        let key = log_key(log);
        let _: () = redis::pipe()
            .atomic()
            .lpush(&key, item)
            .ignore()
            .ltrim(&key, 0, max.max(1) as isize - 1)
            .ignore()
            .query_async(&mut self.conn().await)
            .await?;
        Ok(())
    }

    async fn log_range(&self, log: &str, offset: usize, limit: usize) -> StoreResult<(Vec<String>, usize)> {
        if limit == 0 {
            return Ok((Vec::new(), self.conn().await.llen(log_key(log)).await?));
        }
        let key = log_key(log);
        let (items, len): (Vec<String>, usize) = redis::pipe()
            .lrange(&key, offset as isize, (offset + limit) as isize - 1)
            .llen(&key)
            .query_async(&mut self.conn().await)
            .await?;
        Ok((items, len))
    }

    async fn reserve_least_loaded(&self, pool: &str, candidates: &[LoadCandidate]) -> StoreResult<Option<String>> {
        if candidates.is_empty() {
            return Ok(None);
        }
        let script = Script::new(RESERVE_LUA);
        let mut inv = script.key(load_key(pool));
        inv.arg(candidates.len());
        for c in candidates {
            inv.arg(&c.id).arg(c.capacity).arg(c.reported).arg(c.busy);
        }
        Ok(inv.invoke_async(&mut self.conn().await).await?)
    }

    async fn release_load(&self, pool: &str, id: &str) -> StoreResult<()> {
        let _: i64 = Script::new(RELEASE_LOAD_LUA).key(load_key(pool)).arg(id).invoke_async(&mut self.conn().await).await?;
        Ok(())
    }

    async fn clear_load(&self, pool: &str, id: &str) -> StoreResult<()> {
        let _: i64 = self.conn().await.hdel(load_key(pool), id).await?;
        Ok(())
    }

    async fn load_counts(&self, pool: &str) -> StoreResult<Vec<(String, u64)>> {
        let mut v: Vec<(String, u64)> = self.conn().await.hgetall(load_key(pool)).await?;
        v.sort();
        Ok(v)
    }

    async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        let _: i64 = self.conn().await.publish(channel, payload).await?;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> StoreResult<Subscription> {
        let (tx, rx) = mpsc::channel(1024);
        let client = self.pubsub_client.clone();
        let channel = channel.to_owned();
        // Subscribe once before returning so that nothing published after this call is missed.
        let first = client.read().await.get_async_pubsub().await?;
        let mut ps = first;
        ps.subscribe(&channel).await?;
        tokio::spawn(async move {
            use futures::StreamExt;
            loop {
                {
                    let mut stream = ps.on_message();
                    while let Some(msg) = stream.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else { continue };
                        if tx.send(payload).await.is_err() {
                            return;
                        }
                    }
                }
                // Connection lost: resubscribe with a short backoff until it comes back.
                loop {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let c = client.read().await.clone();
                    if let Ok(mut p) = c.get_async_pubsub().await {
                        if p.subscribe(&channel).await.is_ok() {
                            ps = p;
                            break;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }
}
