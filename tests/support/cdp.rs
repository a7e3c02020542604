//! Debian's headless Chromium driven over the DevTools protocol: a page is opened, JavaScript
//! evaluated in it, screenshots taken. The WebSocket client is the minimum CDP needs (text
//! frames, client masking, fragmented server messages), over loopback only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A headless Chromium, killed (with its profile directory removed) on drop.
pub struct Chromium {
    child: Child,
    profile: PathBuf,
    port: u16,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Chromium {
    pub fn start() -> Chromium {
        let profile = std::env::temp_dir().join(format!("gbc-chromium-{}-{}", std::process::id(), rand_suffix()));
        let port = testkit::free_port();
        let child = Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--mute-audio", "--autoplay-policy=no-user-gesture-required"])
            .args(["--allow-file-access-from-files", "--no-first-run", "--window-size=1280,720"])
            .arg(format!("--remote-debugging-port={port}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium (Debian's package) on PATH");
        Chromium { child, profile, port }
    }

    /// A new page at `url`.
    pub async fn open(&self, url: &str) -> Page {
        let mut targets = Value::Null;
        for _ in 0..100 {
            if let Ok(r) = reqwest::Client::new().put(format!("http://127.0.0.1:{}/json/new?{url}", self.port)).send().await {
                targets = r.json().await.unwrap_or(Value::Null);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ws = targets["webSocketDebuggerUrl"].as_str().unwrap_or_else(|| panic!("no DevTools target: {targets}")).to_owned();
        Page { ws: WebSocket::connect(&ws).await, next_id: 0 }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

pub struct Page {
    ws: WebSocket,
    next_id: u64,
}

impl Page {
    /// Calls a CDP method and returns its `result` (events in between are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.ws.send(&json!({"id": id, "method": method, "params": params}).to_string()).await;
        loop {
            let msg: Value = serde_json::from_str(&self.ws.recv().await).expect("CDP JSON");
            if msg["id"] == id {
                assert!(msg.get("error").is_none(), "{method}: {msg}");
                return msg["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true})).await;
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy or `within` passes; returns its last value.
    pub async fn wait_for(&mut self, expr: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.eval(expr).await;
            let truthy = !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy || tokio::time::Instant::now() >= deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page under `target/screenshots/` (tests keep them to be looked at).
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap_or_default()).expect("base64 PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// RFC 6455, client side, text only.
struct WebSocket {
    io: BufReader<TcpStream>,
}

impl WebSocket {
    async fn connect(url: &str) -> WebSocket {
        let rest = url.strip_prefix("ws://").expect("ws:// URL");
        let (host, path) = rest.split_once('/').expect("a path");
        let tcp = TcpStream::connect(host).await.expect("DevTools socket");
        let mut io = BufReader::new(tcp);
        let req = format!(
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        io.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut status = String::new();
        io.read_line(&mut status).await.unwrap();
        assert!(status.contains(" 101 "), "WebSocket upgrade refused: {status}");
        loop {
            let mut line = String::new();
            io.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        WebSocket { io }
    }

    async fn send(&mut self, text: &str) {
        let data = text.as_bytes();
        let mut frame = vec![0x81u8];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.io.get_mut().write_all(&frame).await.unwrap();
    }

    /// The next whole text message (continuation frames joined, pings skipped).
    async fn recv(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.io.read_exact(&mut head).await.expect("DevTools closed the socket");
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.io.read_exact(&mut b).await.unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.io.read_exact(&mut b).await.unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.io.read_exact(&mut payload).await.unwrap();
            match head[0] & 0x0f {
                0x1 | 0x0 => message.extend_from_slice(&payload),
                _ => continue, // ping, pong, binary: not CDP's
            }
            if head[0] & 0x80 != 0 {
                return String::from_utf8(message).expect("UTF-8 message");
            }
        }
    }
}
