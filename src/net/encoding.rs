//! Streaming decoding of an HTTP body's `content-encoding` (`gzip`, `x-gzip`, `deflate`, `br`,
//! `zstd`), so cassettes hold the plain bytes.
//!
//! Redaction works on text: a compressed body would reach disk as base64 of the compressed
//! bytes, secrets included, and would not replay. So [`super::upstream`] decodes each body read
//! as it arrives and tees the decoded bytes, and the proxy decodes an encoded request body
//! before recording it. The decoded size is charged against [`crate::limits`] (a small
//! compressed body can expand enormously): input is fed in small slices and the budget is
//! checked after each, so a decompression bomb stops at the limit plus one slice's expansion.

use std::io::Write;

use crate::limits::{Budget, LimitError, Limits};

/// The response header under which a cassette keeps the `content-encoding` the upstream sent
/// (the stored body is decoded, so `content-encoding` itself is dropped from the stored head).
pub const ORIGINAL_ENCODING_HEADER: &str = "x-tapeloop-original-content-encoding";

/// Compressed bytes fed to a decoder at once, before the output is charged to the budget.
const SLICE: usize = 1024;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported content-encoding {0:?}")]
    Unsupported(String),
    #[error("corrupt {encoding} body: {source}")]
    Corrupt {
        encoding: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Limit(#[from] LimitError),
}

enum Inner {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
}

impl Inner {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Inner::Gzip(d) => d,
            Inner::Deflate(d) => d,
            Inner::Brotli(d) => d.as_mut(),
            Inner::Zstd(d) => d,
        }
    }

    /// The decoded bytes produced so far, taken out of the decoder's output buffer.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Inner::Gzip(d) => d.get_mut(),
            Inner::Deflate(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
        })
    }
}

/// Decodes one body of a given `content-encoding`, read by read.
pub struct BodyDecoder {
    encoding: String,
    inner: Inner,
    budget: Budget,
}

impl BodyDecoder {
    /// A decoder for the `content-encoding` value `value`; `Ok(None)` when the body is not
    /// encoded (absent, empty or `identity`). Stacked encodings (`gzip, br`) are refused as
    /// unsupported.
    pub fn for_encoding(value: &str, limits: &Limits) -> Result<Option<Self>, DecodeError> {
        let encoding = value.trim().to_ascii_lowercase();
        let corrupt = |source| DecodeError::Corrupt {
            encoding: encoding.clone(),
            source,
        };
        let inner = match encoding.as_str() {
            "" | "identity" => return Ok(None),
            "gzip" | "x-gzip" => Inner::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            "deflate" => Inner::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
            "br" => Inner::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                Vec::new(),
                4096,
            ))),
            "zstd" => Inner::Zstd(zstd::stream::write::Decoder::new(Vec::new()).map_err(corrupt)?),
            _ => return Err(DecodeError::Unsupported(value.trim().to_string())),
        };
        Ok(Some(BodyDecoder {
            encoding,
            inner,
            budget: limits.budget("decoded body"),
        }))
    }

    /// The encoding this decoder undoes, lowercase.
    pub fn encoding(&self) -> &str {
        &self.encoding
    }

    /// Decode one read; returns the plain bytes it completed (possibly none yet).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        for slice in bytes.chunks(SLICE) {
            let w = self.inner.writer();
            w.write_all(slice)
                .and_then(|()| w.flush())
                .map_err(|source| self.corrupt(source))?;
            let decoded = self.inner.take();
            self.budget.charge(decoded.len())?;
            out.extend_from_slice(&decoded);
        }
        Ok(out)
    }

    /// The body is over: the last plain bytes, or an error when the encoded stream is cut
    /// short.
    pub fn finish(mut self) -> Result<Vec<u8>, DecodeError> {
        let result = match &mut self.inner {
            Inner::Gzip(d) => d.try_finish(),
            Inner::Deflate(d) => d.try_finish(),
            Inner::Brotli(d) => d.close().and_then(|()| d.flush()),
            Inner::Zstd(d) => d.flush(),
        };
        result.map_err(|source| self.corrupt(source))?;
        let decoded = self.inner.take();
        self.budget.charge(decoded.len())?;
        Ok(decoded)
    }

    fn corrupt(&self, source: std::io::Error) -> DecodeError {
        DecodeError::Corrupt {
            encoding: self.encoding.clone(),
            source,
        }
    }
}

/// Decode a whole body (a request body the proxy records) of the given encoding.
pub fn decode_all(value: &str, bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, DecodeError> {
    match BodyDecoder::for_encoding(value, limits)? {
        None => Ok(bytes.to_vec()),
        Some(mut d) => {
            let mut out = d.push(bytes)?;
            out.extend(d.finish()?);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_decodes_read_by_read() {
        let plain = b"data: {\"x\": \"sk-abcdefghijklmnopqrstuvwxyz\"}\n\n".repeat(50);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let bodies = [
            ("gzip", gzip(&plain)),
            ("deflate", z.finish().unwrap()),
            ("zstd", zstd::encode_all(&plain[..], 3).unwrap()),
            ("br", brotli_uncompressed(&plain)),
        ];
        for (enc, body) in bodies {
            let mut d = BodyDecoder::for_encoding(enc, &Limits::default())
                .unwrap()
                .unwrap();
            let mut out = Vec::new();
            for read in body.chunks(7) {
                out.extend(d.push(read).unwrap());
            }
            out.extend(d.finish().unwrap());
            assert_eq!(out, plain, "{enc}");
        }
    }

    #[test]
    fn identity_is_no_decoder_and_unknown_is_an_error() {
        let lim = Limits::default();
        assert!(BodyDecoder::for_encoding("identity", &lim)
            .unwrap()
            .is_none());
        assert!(BodyDecoder::for_encoding("", &lim).unwrap().is_none());
        let err = BodyDecoder::for_encoding("gzip, br", &lim).err().unwrap();
        assert_eq!(err.to_string(), "unsupported content-encoding \"gzip, br\"");
        let err = decode_all("gzip", b"not gzip at all", &lim).unwrap_err();
        assert!(err.to_string().starts_with("corrupt gzip body"), "{err}");
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let lim = Limits {
            max_depth: 1,
            max_bytes: 1 << 20,
        };
        let bomb = gzip(&vec![b'a'; 8 << 20]);
        let err = decode_all("gzip", &bomb, &lim).unwrap_err();
        assert_eq!(
            err.to_string(),
            "decoded body exceeds the 1048576-byte limit"
        );
    }
}

/// An uncompressed brotli stream holding `data` (test helper: the brotli crate used here only
/// decodes).
#[cfg(test)]
fn brotli_uncompressed(data: &[u8]) -> Vec<u8> {
    // WBITS=16 (one bit 0), then per meta-block: ISLAST=0, MNIBBLES=4 (bits 00), MLEN-1 in 16
    // bits, ISUNCOMPRESSED=1, pad to a byte, the bytes; finally ISLAST=1, ISLASTEMPTY=1.
    let mut bits = BitWriter::default();
    bits.put(0, 1);
    for block in data.chunks(1 << 16) {
        bits.put(0, 1);
        bits.put(0, 2);
        bits.put((block.len() - 1) as u64, 16);
        bits.put(1, 1);
        bits.align();
        bits.out.extend_from_slice(block);
    }
    bits.put(1, 1);
    bits.put(1, 1);
    bits.align();
    bits.out
}

#[cfg(test)]
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

#[cfg(test)]
impl BitWriter {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn align(&mut self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
            self.acc = 0;
            self.n = 0;
        }
    }
}
