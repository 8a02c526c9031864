//! The on-disk encoding of one record's payload (everything but its
//! topic/partition/offset, which are the table key).
//!
//! Layout, all integers little-endian:
//!
//! ```text
//! u8   format (= 1)
//! i64  timestamp_ms
//! u32  key length, key bytes
//! u8   0 = tombstone | 1 = value; if 1: u32 value length, value bytes
//! u32  header count; per header: u32 name length, name (UTF-8), u32 length, bytes
//! ```
//!
//! Why hand-rolled instead of serde: it is a dozen lines, has no schema
//! evolution needs beyond the leading format byte, and sits on the hottest
//! path (every append and every poll), where a serde_json round trip of byte
//! arrays would cost more than the fsync amortised over a batch.

use crate::eventlog::{Header, LogError};

/// The leading byte of every stored record. Bump it (and keep decoding the
/// old one) when the layout changes.
const FORMAT_V1: u8 = 1;

/// A decoded record payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp_ms: i64,
}

/// Encodes a record payload; fails only for fields longer than 4 GiB.
pub(crate) fn encode(
    key: &[u8],
    value: Option<&[u8]>,
    headers: &[Header],
    timestamp_ms: i64,
) -> Result<Vec<u8>, LogError> {
    let size = 1
        + 8
        + 4
        + key.len()
        + 1
        + value.map_or(0, |v| 4 + v.len())
        + 4
        + headers
            .iter()
            .map(|h| 8 + h.key.len() + h.value.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(FORMAT_V1);
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    put_bytes(&mut out, key)?;
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_bytes(&mut out, v)?;
        }
    }
    put_len(&mut out, headers.len())?;
    for h in headers {
        put_bytes(&mut out, h.key.as_bytes())?;
        put_bytes(&mut out, &h.value)?;
    }
    Ok(out)
}

/// Decodes what [`encode`] wrote.
pub(crate) fn decode(bytes: &[u8]) -> Result<Payload, LogError> {
    let mut r = Reader { bytes, pos: 0 };
    match r.u8()? {
        FORMAT_V1 => {}
        other => return Err(corrupt(&format!("unknown record format {other}"))),
    }
    let timestamp_ms = i64::from_le_bytes(r.array()?);
    let key = r.bytes()?.to_vec();
    let value = match r.u8()? {
        0 => None,
        1 => Some(r.bytes()?.to_vec()),
        other => return Err(corrupt(&format!("bad value tag {other}"))),
    };
    let count = r.len()?;
    // Cap the pre-allocation by what the input could possibly hold, so a
    // corrupt count cannot make us allocate gigabytes.
    let mut headers = Vec::with_capacity(count.min(bytes.len() / 8));
    for _ in 0..count {
        let name = std::str::from_utf8(r.bytes()?)
            .map_err(|_| corrupt("header name is not UTF-8"))?
            .to_owned();
        let value = r.bytes()?.to_vec();
        headers.push(Header { key: name, value });
    }
    if r.pos != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(Payload {
        key,
        value,
        headers,
        timestamp_ms,
    })
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), LogError> {
    let len = u32::try_from(len)
        .map_err(|_| LogError::Invalid(format!("record field of {len} bytes is too large")))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), LogError> {
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

fn corrupt(what: &str) -> LogError {
    LogError::Storage(format!("corrupt record: {what}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LogError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt("truncated"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LogError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, LogError> {
        Ok(self.array::<1>()?[0])
    }

    fn len(&mut self) -> Result<usize, LogError> {
        let len = u32::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| corrupt("length overflows usize"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], LogError> {
        let len = self.len()?;
        self.take(len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values_tombstones_and_headers() {
        let headers = vec![
            Header {
                key: "type".into(),
                value: b"OrderPlaced".to_vec(),
            },
            Header {
                key: "empty".into(),
                value: Vec::new(),
            },
        ];
        for value in [Some(&b"body"[..]), Some(&b""[..]), None] {
            let bytes = encode(b"order-1", value, &headers, -42).unwrap();
            let back = decode(&bytes).unwrap();
            assert_eq!(back.key, b"order-1");
            assert_eq!(back.value.as_deref(), value);
            assert_eq!(back.headers, headers);
            assert_eq!(back.timestamp_ms, -42);
        }
    }

    #[test]
    fn rejects_truncated_and_unknown_formats() {
        let bytes = encode(b"k", Some(b"v"), &[], 1).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode(&other).is_err());
    }
}
