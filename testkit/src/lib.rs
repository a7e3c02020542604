//! Helpers for tests that need real parts (dev-dependency only): a `redis-server` on a free
//! port, free ports, and a seeded mutator for never-panic tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A `redis-server` child process, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` (must be on PATH) with persistence off, and waits until it answers.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(free_port(), &[])
    }

    /// Starts `redis-server` on `port` with extra arguments (a config file path first, if any,
    /// goes in `extra` too: it is placed before the options).
    pub fn start_with(port: u16, extra: &[&str]) -> std::io::Result<Self> {
        let (files, opts): (Vec<&str>, Vec<&str>) = extra.iter().partition(|a| a.ends_with(".conf"));
        let child = Command::new("redis-server")
            .args(files)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(opts)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 16];
                    if let Ok(n) = s.read(&mut buf) {
                        if buf.get(..n).is_some_and(|b| b.starts_with(b"+PONG")) {
                            return Ok(server);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other("redis-server did not answer PING"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny deterministic generator of mutated inputs (for "never panics" tests that must run in
/// CI without a fuzzer): random byte flips, truncations, duplications and splices of seeds.
pub struct Mutator {
    state: u64,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// One mutation of one of `seeds`.
    pub fn mutate(&mut self, seeds: &[&[u8]]) -> Vec<u8> {
        let mut v = seeds.get(self.below(seeds.len())).map_or_else(Vec::new, |s| s.to_vec());
        for _ in 0..=self.below(8) {
            match self.below(6) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next_u64() as u8;
                }
                1 => v.truncate(self.below(v.len() + 1)),
                2 if !v.is_empty() => {
                    let (a, b) = (self.below(v.len()), self.below(v.len()));
                    let (lo, hi) = (a.min(b), a.max(b));
                    let chunk = v[lo..hi].to_vec();
                    let at = self.below(v.len());
                    v.splice(at..at, chunk);
                }
                3 => {
                    let at = self.below(v.len() + 1);
                    let junk: &[u8] = [&b"\r\n"[..], b"<", b">", b"&", b":", b";", b"=", b"\"", b"\xff\xfe", b"Content-Length: 99999\r\n"]
                        [self.below(10)];
                    v.splice(at..at, junk.iter().copied());
                }
                4 if !v.is_empty() => {
                    let at = self.below(v.len());
                    let n = self.below(v.len() - at + 1);
                    v.drain(at..at + n);
                }
                _ => {
                    let n = self.below(64);
                    for _ in 0..n {
                        v.push(self.next_u64() as u8);
                    }
                }
            }
        }
        v
    }
}
