//! The NVR's own HTTP API (Hikvision ISAPI, Dahua CGI), with HTTP digest authentication
//! (RFC 7616; both vendors answer a request without credentials with a `Digest` challenge,
//! older firmware with `Basic`). One connection per request, bounded in time and size by
//! `kit::http_client`.

use std::time::Duration;

use kit::http_client::{self, HttpClientError, HttpResponse, Request};
use pull::http_auth::HttpAuth;

#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// The NVR could not be reached, or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// Credentials refused (401/403 after answering the challenge).
    #[error("{0}")]
    Auth(String),
    /// The NVR answered with an error status or a body we cannot read.
    #[error("{0}")]
    Refused(String),
}

impl From<HttpClientError> for VendorError {
    fn from(e: HttpClientError) -> Self {
        match e {
            HttpClientError::Malformed(_) | HttpClientError::BadUrl(_) => VendorError::Refused(e.to_string()),
            _ => VendorError::Unreachable(e.to_string()),
        }
    }
}

/// Where the NVR's HTTP API is and how to log in.
pub struct VendorHttp {
    /// `http://host:port`
    base: String,
    auth: HttpAuth,
    timeout: Duration,
}

impl VendorHttp {
    pub fn new(host: &str, port: u16, user: &str, password: &str, timeout: Duration) -> Self {
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        Self { base: format!("http://{host}:{port}"), auth: HttpAuth::new(user, password), timeout }
    }

    /// Sends `method path` (path with its query), answering an authentication challenge, and
    /// returns a 2xx response; any other status is an error naming it.
    pub async fn call(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Result<HttpResponse, VendorError> {
        let r = self.call_any(method, path, content_type, body).await?;
        if !r.ok() {
            return Err(VendorError::Refused(format!("{method} {path}: HTTP {} {}", r.status, r.error_message())));
        }
        Ok(r)
    }

    /// [`VendorHttp::call`] that returns the answer whatever its status (a SOAP fault comes
    /// with a 400 or 500), except a refused login.
    pub async fn call_any(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Result<HttpResponse, VendorError> {
        let url = format!("{}{path}", self.base);
        let req = Request { method, url: &url, headers: &[], content_type, body, timeout: self.timeout };
        let mut r = http_client::send(&req).await?;
        if r.status == 401 {
            let challenges = r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate")).map(|(_, v)| v.as_str());
            let auth = self.auth.answer(challenges, method, path).map_err(|e| VendorError::Auth(format!("{method} {path}: {e}")))?;
            let headers = [("Authorization", auth.as_str())];
            r = http_client::send(&Request { headers: &headers, ..req }).await?;
            if r.status == 401 || r.status == 403 {
                return Err(VendorError::Auth(format!("{method} {path}: the NVR refused user {:?} ({})", self.auth.user(), r.status)));
            }
        }
        Ok(r)
    }
}
