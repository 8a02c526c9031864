//! The Avro body of a record: composing envelope + payload into one record
//! value, encoding it against a schema, decoding it back (behind the guard).

use apache_avro::types::Value;
use apache_avro::Schema;
use serde::Serialize;

use super::guard::Guard;
use crate::CodecError;

/// Name of the envelope field, first in every event and command record.
pub(crate) const ENVELOPE_FIELD: &str = "envelope";

/// Name of the hash field inside the event envelope.
pub(crate) const HASH_FIELD: &str = "hash";

/// Serializes any serde value (an envelope, an outcome…) to an Avro value.
pub(crate) fn to_value<T: Serialize>(record: &str, value: &T) -> Result<Value, CodecError> {
    apache_avro::to_value(value).map_err(|e| CodecError::Encode {
        record: record.to_owned(),
        reason: e.to_string(),
    })
}

/// `{envelope, ...payload fields}` as one record value.
pub(crate) fn compose(record: &str, envelope: Value, payload: Value) -> Result<Value, CodecError> {
    let Value::Record(payload) = payload else {
        return Err(CodecError::Encode {
            record: record.to_owned(),
            reason: "the payload must be a record value".into(),
        });
    };
    let mut fields = Vec::with_capacity(payload.len() + 1);
    fields.push((ENVELOPE_FIELD.to_owned(), envelope));
    fields.extend(payload);
    Ok(Value::Record(fields))
}

/// Resolves `value` against `schema` (fills unions, logical types, enums)
/// and appends its Avro binary encoding to `out`.
pub(crate) fn encode(
    schema: &Schema,
    record: &str,
    value: Value,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let encode_error = |e: apache_avro::Error| CodecError::Encode {
        record: record.to_owned(),
        reason: e.to_string(),
    };
    let value = value.resolve(schema).map_err(encode_error)?;
    out.extend_from_slice(&apache_avro::to_avro_datum(schema, value).map_err(encode_error)?);
    Ok(())
}

/// Decodes `body` written with `writer` (guarded first), resolving it to
/// `reader` when given.
pub(crate) fn decode(
    schema_id: u32,
    record: &str,
    writer: &Schema,
    guard: &Guard,
    reader: Option<&Schema>,
    body: &[u8],
) -> Result<Value, CodecError> {
    let fail = |reason: String| CodecError::BodyDoesNotDecode {
        schema_id,
        record: record.to_owned(),
        reason,
    };
    guard.check(writer, body).map_err(fail)?;
    let mut input = body;
    let value = apache_avro::from_avro_datum(writer, &mut input, reader)
        .map_err(|e| fail(e.to_string()))?;
    if !input.is_empty() {
        return Err(fail(format!("{} trailing bytes", input.len())));
    }
    Ok(value)
}

/// Splits an event/command record value into (envelope, payload record).
pub(crate) fn split_envelope(record: &str, value: Value) -> Result<(Value, Value), CodecError> {
    let mismatch = || CodecError::SchemaMismatch {
        expected: "a record whose first field is `envelope`".into(),
        found: record.to_owned(),
    };
    let Value::Record(mut fields) = value else {
        return Err(mismatch());
    };
    if fields.first().map(|(name, _)| name.as_str()) != Some(ENVELOPE_FIELD) {
        return Err(mismatch());
    }
    let (_, envelope) = fields.remove(0);
    Ok((envelope, Value::Record(fields)))
}

/// The envelope record value's field `name`, mutably.
pub(crate) fn field_mut<'v>(record: &'v mut Value, name: &str) -> Option<&'v mut Value> {
    match record {
        Value::Record(fields) => fields.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v),
        _ => None,
    }
}
