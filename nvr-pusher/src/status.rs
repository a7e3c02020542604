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
