//! The traits the codec is generic over: an event payload and a command
//! payload, each "the fields after the envelope" of one or more records.
//!
//! Generated code implements them for every event/command struct
//! (`catalog::ProductCreated`), every context enum (`catalog::CatalogEvent`)
//! and [`crate::AnyEvent`]/[`crate::AnyCommand`]. Test aggregates outside the
//! contract implement them by hand, typically with [`record_to_fields`] and
//! [`record_from_fields`] over a serde struct and a schema from
//! [`crate::contract::event_record_schema`].

use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CodecError;

/// The payload (every field after `envelope`) of one or more event records.
pub trait EventPayload: Sized + Send + Sync {
    /// Full Avro name of this value's record, e.g. `com.quickstore.catalog.ProductCreated`.
    fn record_name(&self) -> &'static str;

    /// The reader schema (self-contained, envelope included) for a record
    /// this type can hold, `None` for any other record.
    fn schema(record_full_name: &str) -> Option<&'static Schema>;

    /// The payload fields as an Avro `Value::Record` (without the envelope).
    fn to_fields(&self) -> Result<Value, CodecError>;

    /// Rebuilds the value from the payload fields (a `Value::Record` shaped by
    /// [`Self::schema`]) of the record named `record_full_name`.
    fn from_fields(record_full_name: &str, fields: Value) -> Result<Self, CodecError>;

    /// The fast path: appends the Avro binary encoding of the payload fields
    /// (exactly what apache-avro writes for them with [`Self::schema`]) to
    /// `out` and returns `true`; or writes nothing and returns `false` when
    /// the type has no direct writer, and the codec uses apache-avro.
    /// Generated types implement it (see [`crate::codec::fast`]); a
    /// hand-written payload may, if it matches its schema byte for byte.
    fn write_fields(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// The fast path of decoding: reads the payload fields of the record
    /// named `record_full_name` from the front of `input`, written with
    /// exactly [`Self::schema`] (the codec checks that). `None` when the
    /// type has no direct reader for that record, and the codec uses
    /// apache-avro. Generated types implement it.
    fn read_fields(
        record_full_name: &str,
        input: &mut &[u8],
    ) -> Option<Result<Self, crate::codec::fast::ReadError>> {
        let _ = (record_full_name, input);
        None
    }
}

/// The payload (every field after `envelope`) of one or more command records.
/// Same shape as [`EventPayload`]; a separate trait so that a command can
/// never be encoded as an event or vice versa.
pub trait CommandPayload: Sized + Send + Sync {
    /// Full Avro name of this value's record.
    fn record_name(&self) -> &'static str;

    /// The reader schema for a record this type can hold.
    fn schema(record_full_name: &str) -> Option<&'static Schema>;

    /// The payload fields as an Avro `Value::Record`.
    fn to_fields(&self) -> Result<Value, CodecError>;

    /// Rebuilds the value from the payload fields of `record_full_name`.
    fn from_fields(record_full_name: &str, fields: Value) -> Result<Self, CodecError>;

    /// The fast path, as [`EventPayload::write_fields`].
    fn write_fields(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// The fast path of decoding, as [`EventPayload::read_fields`].
    fn read_fields(
        record_full_name: &str,
        input: &mut &[u8],
    ) -> Option<Result<Self, crate::codec::fast::ReadError>> {
        let _ = (record_full_name, input);
        None
    }
}

/// Serializes a payload struct into an Avro `Value::Record` of its fields.
pub fn record_to_fields<T: Serialize>(
    record_full_name: &str,
    payload: &T,
) -> Result<Value, CodecError> {
    match apache_avro::to_value(payload) {
        Ok(record @ Value::Record(_)) => Ok(record),
        Ok(other) => Err(CodecError::Encode {
            record: record_full_name.to_owned(),
            reason: format!(
                "the payload must serialize to a record, not {:?}",
                apache_avro::schema::SchemaKind::from(&other)
            ),
        }),
        Err(e) => Err(CodecError::Encode {
            record: record_full_name.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Deserializes a payload struct from the fields of the record `found`,
/// which must be `expected`.
pub fn record_from_fields<T: DeserializeOwned>(
    expected: &str,
    found: &str,
    fields: &Value,
) -> Result<T, CodecError> {
    if expected != found {
        return Err(CodecError::SchemaMismatch {
            expected: expected.to_owned(),
            found: found.to_owned(),
        });
    }
    apache_avro::from_value(fields).map_err(|e| CodecError::Payload {
        record: found.to_owned(),
        reason: e.to_string(),
    })
}

/// `impl EventPayload/CommandPayload` for one generated payload struct;
/// with `fast`, the struct has a generated `AvroWrite` for its fields.
macro_rules! impl_payload {
    ($trait:ident, $ty:ident, $full:literal) => {
        crate::payload::impl_payload!(@impl $trait, $ty, $full,);
    };
    ($trait:ident, $ty:ident, $full:literal, fast) => {
        crate::payload::impl_payload!(@impl $trait, $ty, $full,
            fn write_fields(&self, out: &mut Vec<u8>) -> bool {
                crate::codec::fast::AvroWrite::write_avro(self, out);
                true
            }

            fn read_fields(
                record_full_name: &str,
                input: &mut &[u8],
            ) -> Option<Result<Self, crate::codec::fast::ReadError>> {
                (record_full_name == $full)
                    .then(|| crate::codec::fast::AvroRead::read_avro(input))
            }
        );
    };
    (@impl $trait:ident, $ty:ident, $full:literal, $($write_fields:tt)*) => {
        impl crate::payload::$trait for $ty {
            $($write_fields)*

            fn record_name(&self) -> &'static str {
                $full
            }

            fn schema(record_full_name: &str) -> Option<&'static apache_avro::Schema> {
                if record_full_name == $full {
                    crate::contract::schema($full)
                } else {
                    None
                }
            }

            fn to_fields(&self) -> Result<apache_avro::types::Value, crate::CodecError> {
                crate::payload::record_to_fields($full, self)
            }

            fn from_fields(
                record_full_name: &str,
                fields: apache_avro::types::Value,
            ) -> Result<Self, crate::CodecError> {
                crate::payload::record_from_fields($full, record_full_name, &fields)
            }
        }
    };
}
pub(crate) use impl_payload;

/// Inherent helpers, `From` impls and the payload trait for a generated
/// per-context enum (`CatalogEvent`, `CatalogCommand`, …).
macro_rules! payload_enum {
    ($trait:ident, $name:ident, $context:path { $($variant:ident => ($full:literal, $aggregate:literal),)* }) => {
        impl $name {
            /// The context all these records belong to.
            pub const CONTEXT: crate::topics::Context = $context;

            /// Full Avro names of every record this enum holds.
            pub const RECORD_NAMES: &'static [&'static str] = &[$($full),*];

            /// Short record name, e.g. `ProductCreated` (for headers and logs).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)*
                }
            }

            /// The aggregate type the record belongs to, e.g. `Product`.
            pub fn aggregate_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $aggregate,)*
                }
            }
        }

        $(
            impl From<$variant> for $name {
                fn from(payload: $variant) -> Self {
                    Self::$variant(payload)
                }
            }
        )*

        impl crate::payload::$trait for $name {
            fn record_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $full,)*
                }
            }

            fn schema(record_full_name: &str) -> Option<&'static apache_avro::Schema> {
                if Self::RECORD_NAMES.contains(&record_full_name) {
                    crate::contract::schema(record_full_name)
                } else {
                    None
                }
            }

            fn to_fields(&self) -> Result<apache_avro::types::Value, crate::CodecError> {
                match self {
                    $(Self::$variant(p) => crate::payload::record_to_fields($full, p),)*
                }
            }

            fn write_fields(&self, out: &mut Vec<u8>) -> bool {
                match self {
                    $(Self::$variant(p) => crate::payload::$trait::write_fields(p, out),)*
                }
            }

            fn read_fields(
                record_full_name: &str,
                input: &mut &[u8],
            ) -> Option<Result<Self, crate::codec::fast::ReadError>> {
                match record_full_name {
                    $($full => <$variant as crate::payload::$trait>::read_fields(record_full_name, input)
                        .map(|r| r.map(Self::$variant)),)*
                    _ => None,
                }
            }

            fn from_fields(
                record_full_name: &str,
                fields: apache_avro::types::Value,
            ) -> Result<Self, crate::CodecError> {
                match record_full_name {
                    $($full => crate::payload::record_from_fields($full, record_full_name, &fields)
                        .map(Self::$variant),)*
                    _ => Err(crate::CodecError::SchemaMismatch {
                        expected: concat!("a record of ", stringify!($name)).to_owned(),
                        found: record_full_name.to_owned(),
                    }),
                }
            }
        }
    };
}
pub(crate) use payload_enum;

/// Helpers, `From` impls and the payload trait for [`crate::AnyEvent`] /
/// [`crate::AnyCommand`], delegating to the per-context enums.
macro_rules! any_enum {
    ($trait:ident, $name:ident { $($variant:ident($inner:path),)* }) => {
        impl $name {
            /// The context of the record.
            pub fn context(&self) -> crate::topics::Context {
                match self {
                    $(Self::$variant(_) => <$inner>::CONTEXT,)*
                }
            }

            /// Short record name, e.g. `ProductCreated`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(p) => p.name(),)*
                }
            }

            /// The aggregate type, e.g. `Product`.
            pub fn aggregate_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(p) => p.aggregate_type(),)*
                }
            }
        }

        $(
            impl From<$inner> for $name {
                fn from(inner: $inner) -> Self {
                    Self::$variant(inner)
                }
            }
        )*

        impl crate::payload::$trait for $name {
            fn record_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(p) => crate::payload::$trait::record_name(p),)*
                }
            }

            fn schema(record_full_name: &str) -> Option<&'static apache_avro::Schema> {
                $(
                    if let Some(schema) = <$inner as crate::payload::$trait>::schema(record_full_name) {
                        return Some(schema);
                    }
                )*
                None
            }

            fn to_fields(&self) -> Result<apache_avro::types::Value, crate::CodecError> {
                match self {
                    $(Self::$variant(p) => crate::payload::$trait::to_fields(p),)*
                }
            }

            fn write_fields(&self, out: &mut Vec<u8>) -> bool {
                match self {
                    $(Self::$variant(p) => crate::payload::$trait::write_fields(p, out),)*
                }
            }

            fn read_fields(
                record_full_name: &str,
                input: &mut &[u8],
            ) -> Option<Result<Self, crate::codec::fast::ReadError>> {
                $(
                    if <$inner>::RECORD_NAMES.contains(&record_full_name) {
                        return <$inner as crate::payload::$trait>::read_fields(record_full_name, input)
                            .map(|r| r.map(Self::$variant));
                    }
                )*
                None
            }

            fn from_fields(
                record_full_name: &str,
                fields: apache_avro::types::Value,
            ) -> Result<Self, crate::CodecError> {
                $(
                    if <$inner>::RECORD_NAMES.contains(&record_full_name) {
                        return <$inner as crate::payload::$trait>::from_fields(record_full_name, fields)
                            .map(Self::$variant);
                    }
                )*
                Err(crate::CodecError::SchemaMismatch {
                    expected: concat!("a record of ", stringify!($name)).to_owned(),
                    found: record_full_name.to_owned(),
                })
            }
        }
    };
}
pub(crate) use any_enum;
