//! The Confluent wire format: byte 0 = magic 0x00, bytes 1..5 = the schema
//! id (big-endian u32), then the Avro binary body.

use crate::CodecError;

/// The Confluent magic byte.
pub const MAGIC_BYTE: u8 = 0;

/// Magic byte + schema id.
pub const HEADER_LEN: usize = 5;

/// Splits a record value into its schema id and Avro body.
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    match bytes {
        [] => Err(CodecError::EmptyOrTooShort { len: 0 }),
        [magic, ..] if *magic != MAGIC_BYTE => Err(CodecError::WrongMagicByte(*magic)),
        [_, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        short => Err(CodecError::EmptyOrTooShort { len: short.len() }),
    }
}

/// The schema id of a record value, without decoding the body.
pub fn schema_id(bytes: &[u8]) -> Result<u32, CodecError> {
    split(bytes).map(|(id, _)| id)
}

/// Starts a record value: magic byte and schema id.
pub fn write_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_bad_headers_are_typed() {
        let mut out = Vec::new();
        write_header(0x0102_0304, &mut out);
        out.extend_from_slice(b"body");
        assert_eq!(out[..5], [0, 1, 2, 3, 4]);
        assert_eq!(split(&out), Ok((0x0102_0304, &b"body"[..])));
        assert_eq!(split(&out[..5]), Ok((0x0102_0304, &b""[..])));
        assert_eq!(split(&[]), Err(CodecError::EmptyOrTooShort { len: 0 }));
        assert_eq!(
            split(&[0, 0, 1]),
            Err(CodecError::EmptyOrTooShort { len: 3 })
        );
        assert_eq!(
            split(b"{\"json\":1}"),
            Err(CodecError::WrongMagicByte(b'{'))
        );
        assert_eq!(schema_id(&out), Ok(0x0102_0304));
    }
}
