//! Character sets of MANSCDP bodies. Cameras declare `encoding="GB2312"` and usually mean it,
//! but some send UTF-8 under the same declaration. GBK double-byte text is almost never valid
//! UTF-8, so: valid UTF-8 is taken as such, anything else is decoded as GB18030 (a superset of
//! GB2312 and GBK). Outgoing bodies are encoded as GBK, matching their GB2312 declaration.

use std::borrow::Cow;

pub fn decode_body(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let (text, _, _) = encoding_rs::GB18030.decode(bytes);
            text
        }
    }
}

/// GBK bytes for `text`; characters GBK cannot hold become numeric character references.
pub fn encode_gbk(text: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::GBK.encode(text);
    bytes.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb2312_bytes_decode_to_utf8() {
        let gbk = encode_gbk("大门口");
        assert_eq!(gbk, [0xB4, 0xF3, 0xC3, 0xC5, 0xBF, 0xDA]);
        assert_eq!(decode_body(&gbk), "大门口");
    }

    #[test]
    fn utf8_under_a_gb2312_declaration_is_kept() {
        assert_eq!(decode_body("东门".as_bytes()), "东门");
    }

    #[test]
    fn garbage_never_panics() {
        let s = decode_body(&[0xFF, 0xFE, 0x81]);
        assert!(!s.is_empty());
    }
}
