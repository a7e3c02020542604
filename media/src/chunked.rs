//! HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), decoded as the bytes arrive: a camera's
//! MJPEG stream sent chunked never ends, so the body cannot be collected first. Sans I/O; the
//! only thing buffered is the line being read (a chunk-size line or a trailer line), bounded.

/// Longest chunk-size or trailer line (extensions included).
const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("a chunk-size line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("a chunk size that is not hexadecimal: {0:?}")]
    BadSize(String),
    #[error("a chunk not followed by CRLF")]
    Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the chunk-size line.
    Size,
    /// This many data bytes of the chunk to come.
    Data(u64),
    /// The CRLF after a chunk's data (`true` once its CR was seen).
    DataEnd(bool),
    /// Trailer lines after the last chunk, up to the empty line.
    Trailer,
    Done,
}

#[derive(Debug)]
pub struct Dechunker {
    state: State,
    line: Vec<u8>,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    pub fn new() -> Self {
        Self { state: State::Size, line: Vec::new() }
    }

    /// The last chunk and the trailer have been read: the body is complete.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The last (empty) chunk has been read: all the data is in, whatever trailer follows.
    pub fn last_chunk_read(&self) -> bool {
        matches!(self.state, State::Trailer | State::Done)
    }

    /// Takes more of the body; hands each run of data bytes to `data` (slices of `input`, no
    /// copy). After an error the decoder stays failed: the connection has lost its framing.
    pub fn push(&mut self, mut input: &[u8], data: &mut impl FnMut(&[u8])) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Size | State::Trailer => {
                    let Some(eol) = input.iter().position(|&b| b == b'\n') else {
                        self.take_line(input)?;
                        return Ok(());
                    };
                    self.take_line(&input[..eol])?;
                    input = &input[eol + 1..];
                    let line = std::mem::take(&mut self.line);
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches('\r');
                    self.state = match self.state {
                        State::Size => match parse_size(text)? {
                            0 => State::Trailer,
                            n => State::Data(n),
                        },
                        _ if text.is_empty() => State::Done,
                        s => s,
                    };
                    self.line = line;
                    self.line.clear();
                }
                State::Data(left) => {
                    let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    data(&input[..n]);
                    input = &input[n..];
                    self.state = match left - n as u64 {
                        0 => State::DataEnd(false),
                        rest => State::Data(rest),
                    };
                }
                State::DataEnd(cr) => {
                    self.state = match (input[0], cr) {
                        (b'\r', false) => State::DataEnd(true),
                        (b'\n', _) => State::Size,
                        _ => return Err(ChunkError::Framing),
                    };
                    input = &input[1..];
                }
                State::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn take_line(&mut self, part: &[u8]) -> Result<(), ChunkError> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(ChunkError::LineTooLong);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }
}

/// The size on a chunk-size line (before any `;extension`).
fn parse_size(line: &str) -> Result<u64, ChunkError> {
    let hex = line.split(';').next().unwrap_or("").trim();
    if hex.is_empty() || hex.len() > 15 {
        return Err(ChunkError::BadSize(hex.chars().take(20).collect()));
    }
    u64::from_str_radix(hex, 16).map_err(|_| ChunkError::BadSize(hex.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut d = Dechunker::new();
        let mut out = Vec::new();
        for p in wire.chunks(piece) {
            d.push(p, &mut |b| out.extend_from_slice(b))?;
        }
        Ok((out, d.done()))
    }

    #[test]
    fn decodes_whatever_the_reads_cut() {
        let wire = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for piece in 1..wire.len() {
            let (out, done) = decode_in_pieces(wire, piece).unwrap();
            assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.", "pieces of {piece}");
            assert!(done);
        }
        let mut d = Dechunker::new();
        d.push(b"1\r\na\r\n0\r\n", &mut |_| {}).unwrap();
        assert!(d.last_chunk_read() && !d.done(), "the data is all in; the trailer is still to come");
    }

    #[test]
    fn a_stream_that_never_ends_gives_its_data_as_it_comes() {
        let mut d = Dechunker::new();
        let mut out = Vec::new();
        d.push(b"a\r\n01234", &mut |b| out.extend_from_slice(b)).unwrap();
        assert_eq!(out, b"01234");
        d.push(b"56789\r\n", &mut |b| out.extend_from_slice(b)).unwrap();
        assert_eq!(out, b"0123456789");
        assert!(!d.done());
    }

    #[test]
    fn bad_framing_is_an_error_not_a_panic() {
        assert!(matches!(decode_in_pieces(b"zz\r\n", 3), Err(ChunkError::BadSize(_))));
        assert!(matches!(decode_in_pieces(b"ffffffffffffffffff\r\n", 3), Err(ChunkError::BadSize(_))));
        assert_eq!(decode_in_pieces(b"2\r\nabXY", 3), Err(ChunkError::Framing));
        assert_eq!(decode_in_pieces(&vec![b'1'; 5000], 100), Err(ChunkError::LineTooLong));
        // LF alone after the data is taken (lenient, as servers are).
        assert_eq!(decode_in_pieces(b"2\nab\n0\n\n", 1).unwrap(), (b"ab".to_vec(), true));
    }
}
