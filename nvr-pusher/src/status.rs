//! The status codes of the original API (clients exist: the numbers and the reply shape stay).

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 200,
    /// Bad or missing parameter.
    Parameter = 600,
    /// The stream could not be analysed (no usable video).
    StreamAnalysis = 601,
    /// The RTMP server could not be reached.
    RtmpServer = 602,
    /// Live play failed.
    LivePlay = 603,
    /// Playback failed.
    Playback = 604,
    /// No such play handle.
    NoPlayHandle = 605,
    /// NVR login failed (wrong password, or the NVR refused).
    NvrLogin = 606,
    /// No recording in the range.
    NoRecording = 607,
    /// Playback control (POSITION) failed.
    PlayControl = 608,
    /// PTZ failed.
    Ptz = 609,
}

impl Status {
    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<Self> {
        use Status::*;
        [Ok, Parameter, StreamAnalysis, RtmpServer, LivePlay, Playback, NoPlayHandle, NvrLogin, NoRecording, PlayControl, Ptz]
            .into_iter()
            .find(|s| s.code() == code)
    }

    /// The reply body: `{"status_code", "status_message"}` plus any `extra` fields.
    pub fn reply(self, message: &str, extra: Value) -> Value {
        let mut v = json!({"status_code": self.code(), "status_message": if self == Status::Ok { "OK" } else { message }});
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        v
    }
}

/// Why a call failed: the status code its reply carries and a message for people. The one
/// error type of the pusher: record search, ONVIF, the Store, forwarding and the session
/// runner's start all fail with one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (status {})", status.code())]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// The reply that reports it.
    pub fn reply(&self) -> Value {
        self.status.reply(&self.message, Value::Null)
    }
}

/// A Store failure ends a play before it starts (the original's live-play code).
impl From<cluster::store::StoreError> for Failure {
    fn from(e: cluster::store::StoreError) -> Self {
        Failure::new(Status::LivePlay, format!("the Store: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_the_original_shape() {
        assert_eq!(
            Status::Ok.reply("ignored", json!({"play_handle": 12681})),
            json!({"status_code": 200, "status_message": "OK", "play_handle": 12681})
        );
        assert_eq!(
            Status::NoPlayHandle.reply("no play handle 7", Value::Null),
            json!({"status_code": 605, "status_message": "no play handle 7"})
        );
        assert_eq!((Status::Parameter.code(), Status::Ptz.code()), (600, 609));
        for c in [200, 600, 601, 602, 603, 604, 605, 606, 607, 608, 609] {
            assert_eq!(Status::from_code(c).map(Status::code), Some(c));
        }
        assert_eq!(Status::from_code(610), None);
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_with_its_status() {
        let f = Failure::new(Status::NoRecording, "no recording of channel 3");
        assert_eq!(f.reply(), json!({"status_code": 607, "status_message": "no recording of channel 3"}));
        let store: Failure = cluster::store::StoreError::Corrupt("x".into()).into();
        assert_eq!(store.status, Status::LivePlay);
        assert!(store.message.starts_with("the Store: "), "{}", store.message);
    }
}
