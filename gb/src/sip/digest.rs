//! SIP digest authentication (RFC 2617 / RFC 8760): MD5 and SHA-256, with and without
//! `qop=auth`, for both sides: the registrar verifies, the simulator answers.
//!
//! Nonces are stateless: `hex(issued_secs) . hex(random) . hex(hmac)`, so any sip-server node that
//! shares the secret (it lives in the Store) can verify a nonce another node issued, and an old
//! one is recognised as *stale* (the device retries at once without asking the user) rather than
//! wrong.

use std::fmt::Write as _;

use hmac::{KeyInit, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }
    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(input.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(input.as_bytes())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest credential")]
    NotDigest,
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm {0:?}")]
    Algorithm(String),
    #[error("malformed parameter list")]
    Malformed,
}

/// Parses `Digest k=v, k="v", ...` into (key lower-cased, value unquoted) pairs.
/// Bounded: at most 32 parameters; anything else is `Malformed`.
pub fn parse_params(header: &str) -> Result<Vec<(String, String)>, DigestError> {
    let rest = header.trim_start();
    let scheme_end = rest.find(|c: char| c.is_ascii_whitespace()).ok_or(DigestError::NotDigest)?;
    if !rest[..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let mut s = &rest.as_bytes()[scheme_end..];
    let mut out = Vec::new();
    loop {
        while let [b' ' | b'\t' | b',' | b'\r' | b'\n', tail @ ..] = s {
            s = tail;
        }
        if s.is_empty() {
            break;
        }
        if out.len() >= 32 {
            return Err(DigestError::Malformed);
        }
        let eq = s.iter().position(|&b| b == b'=').ok_or(DigestError::Malformed)?;
        let key = std::str::from_utf8(&s[..eq]).map_err(|_| DigestError::Malformed)?.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(|c: char| c.is_ascii_whitespace() || c == ',') {
            return Err(DigestError::Malformed);
        }
        s = &s[eq + 1..];
        while let [b' ' | b'\t', tail @ ..] = s {
            s = tail;
        }
        let mut value = Vec::new();
        if let [b'"', tail @ ..] = s {
            s = tail;
            loop {
                match s {
                    [b'\\', c, tail @ ..] => {
                        value.push(*c);
                        s = tail;
                    }
                    [b'"', tail @ ..] => {
                        s = tail;
                        break;
                    }
                    [c, tail @ ..] => {
                        value.push(*c);
                        s = tail;
                    }
                    [] => return Err(DigestError::Malformed),
                }
            }
        } else {
            let end = s.iter().position(|&b| b == b',').unwrap_or(s.len());
            value.extend_from_slice(s[..end].trim_ascii());
            s = &s[end..];
        }
        let value = String::from_utf8(value).map_err(|_| DigestError::Malformed)?;
        out.push((key, value));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// What a device sent in `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    /// `(qop, nc, cnonce)` when the device used `qop=auth`.
    pub qop: Option<(String, String, String)>,
}

impl Credentials {
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let p = parse_params(header)?;
        let algorithm = match param(&p, "algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or_else(|| DigestError::Algorithm(a.chars().take(32).collect()))?,
        };
        let get = |k: &'static str| param(&p, k).map(str::to_owned).ok_or(DigestError::Missing(k));
        let qop = match param(&p, "qop") {
            Some(q) if !q.is_empty() => Some((q.to_owned(), get("nc")?, get("cnonce")?)),
            _ => None,
        };
        Ok(Credentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm,
            qop,
        })
    }

    /// True when `response` matches what `password` gives for this request `method`.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let expected = compute_response(
            self.algorithm,
            &self.username,
            &self.realm,
            password,
            method,
            &self.uri,
            &self.nonce,
            self.qop.as_ref().map(|(q, nc, cn)| (q.as_str(), nc.as_str(), cn.as_str())),
        );
        constant_time_eq(expected.as_bytes(), self.response.to_ascii_lowercase().as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The digest `response` value (RFC 2617 §3.2.2.1; RFC 8760 for SHA-256).
#[allow(clippy::too_many_arguments)]
pub fn compute_response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha1 = alg.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// A challenge as sent in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: Algorithm,
    pub qop_auth: bool,
    pub stale: bool,
    pub opaque: Option<String>,
}

impl Challenge {
    pub fn to_header_value(&self) -> String {
        let mut s = format!("Digest realm=\"{}\", nonce=\"{}\", algorithm={}", self.realm, self.nonce, self.algorithm.name());
        if self.qop_auth {
            s.push_str(", qop=\"auth\"");
        }
        if let Some(o) = &self.opaque {
            let _ = write!(s, ", opaque=\"{o}\"");
        }
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }

    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let p = parse_params(header)?;
        let algorithm = match param(&p, "algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or_else(|| DigestError::Algorithm(a.chars().take(32).collect()))?,
        };
        Ok(Challenge {
            realm: param(&p, "realm").ok_or(DigestError::Missing("realm"))?.to_owned(),
            nonce: param(&p, "nonce").ok_or(DigestError::Missing("nonce"))?.to_owned(),
            algorithm,
            qop_auth: param(&p, "qop").is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth"))),
            stale: param(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            opaque: param(&p, "opaque").map(str::to_owned),
        })
    }

    /// The `Authorization` value a client sends in answer (used by the simulator).
    pub fn answer(&self, username: &str, password: &str, method: &str, uri: &str, nc: u32, cnonce: &str) -> String {
        let nc_s = format!("{nc:08x}");
        let qop = self.qop_auth.then_some(("auth", nc_s.as_str(), cnonce));
        let response = compute_response(self.algorithm, username, &self.realm, password, method, uri, &self.nonce, qop);
        let mut s = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            self.algorithm.name()
        );
        if self.qop_auth {
            let _ = write!(s, ", cnonce=\"{cnonce}\", qop=auth, nc={nc_s}");
        }
        if let Some(o) = &self.opaque {
            let _ = write!(s, ", opaque=\"{o}\"");
        }
        s
    }
}

/// Issues and checks stateless nonces with an HMAC-SHA256 over the issue time.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: Vec<u8>,
    ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Genuine but older than the TTL: challenge again with `stale=true`.
    Stale,
    /// Not one of ours.
    Invalid,
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl NonceIssuer {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        Self { secret: secret.to_vec(), ttl_secs }
    }

    fn mac(&self, stamp: &str) -> String {
        // A 32-byte key is always accepted by HMAC; new_from_slice cannot fail for any length.
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        m.update(stamp.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..12])
    }

    pub fn issue(&self, now_secs: u64) -> String {
        let r: u64 = rand::random();
        let stamp = format!("{now_secs:010x}{r:016x}");
        let mac = self.mac(&stamp);
        format!("{stamp}{mac}")
    }

    pub fn check(&self, nonce: &str, now_secs: u64) -> NonceCheck {
        if nonce.len() != 10 + 16 + 24 || !nonce.is_ascii() {
            return NonceCheck::Invalid;
        }
        let (stamp, mac) = nonce.split_at(26);
        if !constant_time_eq(self.mac(stamp).as_bytes(), mac.as_bytes()) {
            return NonceCheck::Invalid;
        }
        let Ok(issued) = u64::from_str_radix(&stamp[..10], 16) else {
            return NonceCheck::Invalid;
        };
        if now_secs.saturating_sub(issued) > self.ttl_secs || issued > now_secs + 60 {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 2617 §3.5 example (qop=auth, MD5).
    #[test]
    fn rfc2617_example_vector() {
        let r = compute_response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("auth", "00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    // RFC 7616 §3.9.1 SHA-256 example vector.
    #[test]
    fn rfc7616_sha256_vector() {
        let r = compute_response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(("auth", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        );
        assert_eq!(r, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    }

    #[test]
    fn hikvision_style_authorization_parses_and_verifies() {
        let ch = Challenge {
            realm: "3402000000".into(),
            nonce: "abc".into(),
            algorithm: Algorithm::Md5,
            qop_auth: false,
            stale: false,
            opaque: None,
        };
        let uri = "sip:34020000002000000001@3402000000";
        let hdr = ch.answer("34020000001320000001", "12345678", "REGISTER", uri, 1, "x");
        let c = Credentials::parse(&hdr).unwrap();
        assert!(c.qop.is_none());
        assert!(c.verify("REGISTER", "12345678"));
        assert!(!c.verify("REGISTER", "wrong"));
    }

    #[test]
    fn qop_and_sha256_round_trip() {
        let ch = Challenge::parse("Digest realm=\"3402000000\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth,auth-int\"").unwrap();
        assert!(ch.qop_auth);
        let hdr = ch.answer("u", "p", "REGISTER", "sip:x", 7, "cn");
        let c = Credentials::parse(&hdr).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop.as_ref().unwrap().1, "00000007");
        assert!(c.verify("REGISTER", "p"));
    }

    #[test]
    fn sloppy_params_parse() {
        let p = parse_params("digest  username = \"a\\\"b\" ,realm=r,  nonce=\"\",uri=\"sip:x\"").unwrap();
        assert_eq!(p[0], ("username".into(), "a\"b".into()));
        assert_eq!(p[1], ("realm".into(), "r".into()));
        assert_eq!(p[2], ("nonce".into(), "".into()));
        assert!(parse_params("Basic abc").is_err());
        assert!(parse_params("Digest a=\"unterminated").is_err());
        assert!(Credentials::parse("Digest username=\"a\"").is_err());
    }

    #[test]
    fn nonces_expire_as_stale_and_forgeries_are_invalid() {
        let n = NonceIssuer::new(b"secret", 30);
        let nonce = n.issue(1_000);
        assert_eq!(n.check(&nonce, 1_010), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 1_031), NonceCheck::Stale);
        let other = NonceIssuer::new(b"other", 30);
        assert_eq!(other.check(&nonce, 1_010), NonceCheck::Invalid);
        let mut forged = nonce.clone();
        forged.replace_range(0..1, "f");
        assert_eq!(n.check(&forged, 1_010), NonceCheck::Invalid);
        assert_eq!(n.check("short", 1_010), NonceCheck::Invalid);
        assert_eq!(n.check("中文中文中文中文中文中文中文中文中文中文中文中文中文中文中文中文", 0), NonceCheck::Invalid);
    }
}
