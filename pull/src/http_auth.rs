//! The `Authorization` header that answers an HTTP `401` challenge: digest (RFC 7616, MD5 and
//! SHA-256 with `qop=auth`, the way cameras and NVRs ask) or basic. A server may offer several
//! `WWW-Authenticate` headers; digest is preferred, as it does not send the password.

use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine as _;
use gb::sip::digest::Challenge;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the server asks for {0:?}, which is not supported (basic or digest)")]
    Unsupported(String),
    #[error("the server's digest challenge cannot be read: {0}")]
    BadChallenge(String),
}

/// A user's credentials and the nonce count of its digest answers.
#[derive(Debug)]
pub struct HttpAuth {
    user: String,
    password: String,
    nc: AtomicU32,
}

impl HttpAuth {
    pub fn new(user: &str, password: &str) -> Self {
        Self { user: user.to_owned(), password: password.to_owned(), nc: AtomicU32::new(0) }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `Authorization` value answering `challenges` (each `WWW-Authenticate` value) for
    /// `method uri` (the request target, with its query).
    pub fn answer<'a>(&self, challenges: impl IntoIterator<Item = &'a str>, method: &str, uri: &str) -> Result<String, AuthError> {
        let challenges: Vec<&str> = challenges.into_iter().map(str::trim).collect();
        let scheme = |c: &str| c.split_once(' ').map_or(c, |(s, _)| s).to_ascii_lowercase();
        if let Some(c) = challenges.iter().find(|c| scheme(c) == "digest") {
            let c = Challenge::parse(c).map_err(|e| AuthError::BadChallenge(e.to_string()))?;
            let nc = self.nc.fetch_add(1, Ordering::Relaxed) + 1;
            let cnonce = format!("{:016x}", rand::random::<u64>());
            return Ok(c.answer(&self.user, &self.password, method, uri, nc, &cnonce));
        }
        if challenges.iter().any(|c| scheme(c) == "basic") {
            return Ok(self.basic());
        }
        Err(AuthError::Unsupported(challenges.first().map_or(String::new(), |c| scheme(c))))
    }

    /// Basic credentials, for a server that asks for them up front.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The credentials to log in to `url` with: those given apart (`user` not empty), else those
/// written in the URL, percent-decoded (`rtsp://ad%40min:p%2Bw@cam/` is `ad@min`, `p+w`).
pub fn credentials(url: &url::Url, user: &str, password: &str) -> (String, String) {
    if !user.is_empty() {
        return (user.to_owned(), password.to_owned());
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    (decode(url.username()), url.password().map(decode).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_given_apart_win_over_the_urls_which_are_percent_decoded() {
        let u = url::Url::parse("rtsp://ad%40min:p%3Aw+x@10.0.0.2/live").unwrap();
        assert_eq!(credentials(&u, "", ""), ("ad@min".into(), "p:w+x".into()), "a + in a password stays a +");
        assert_eq!(credentials(&u, "root", "secret"), ("root".into(), "secret".into()));
        assert_eq!(credentials(&url::Url::parse("http://cam/").unwrap(), "", ""), (String::new(), String::new()));
    }

    #[test]
    fn digest_is_preferred_to_basic_and_counts_its_nonces() {
        let a = HttpAuth::new("admin", "pw");
        let offered = ["Basic realm=\"cam\"", "Digest realm=\"cam\", nonce=\"abc\", qop=\"auth\""];
        let first = a.answer(offered, "GET", "/video.mjpg").unwrap();
        assert!(first.starts_with("Digest ") && first.contains("uri=\"/video.mjpg\"") && first.contains("nc=00000001"), "{first}");
        assert!(a.answer(offered, "GET", "/video.mjpg").unwrap().contains("nc=00000002"));
        assert_eq!(a.answer(["Basic realm=\"cam\""], "GET", "/").unwrap(), "Basic YWRtaW46cHc=");
        assert!(matches!(a.answer(["Bearer x"], "GET", "/"), Err(AuthError::Unsupported(s)) if s == "bearer"));
        assert!(matches!(a.answer(["Digest nonce"], "GET", "/"), Err(AuthError::BadChallenge(_))));
    }
}
