//! The input guard: walks an Avro body against its writer schema WITHOUT
//! decoding it, and refuses it unless every length, count and index fits the
//! bytes that are actually there.
//!
//! apache-avro trusts length prefixes: a corrupt string length makes it
//! allocate that many bytes, a corrupt array block count makes it reserve
//! that many `Value`s, and a self-referencing record schema can recurse
//! without consuming input. Running this cheap, allocation-free pass first
//! means a record that passes can only allocate in proportion to its size,
//! and one that fails never reaches the decoder. It also detects trailing
//! bytes, which apache-avro ignores.

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema};
use apache_avro::Schema;

/// Deeper nesting than this is refused (no QuickStore schema comes close).
const MAX_DEPTH: usize = 64;

/// Array/map blocks of items that may take zero bytes (e.g. `null`) are
/// limited to this many items per block.
const MAX_ZERO_SIZE_ITEMS: u64 = 1024;

/// A writer schema prepared for guarding: its named types by full name.
#[derive(Debug)]
pub(crate) struct Guard {
    named: HashMap<String, Schema>,
}

struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "needs {n} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.bytes[start..self.pos])
    }

    /// A zig-zag varint (Avro int/long), at most 10 bytes.
    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .take(1)?
                .first()
                .ok_or_else(|| "unexpected end of input".to_owned())?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(format!(
            "varint longer than 10 bytes at offset {}",
            self.pos
        ))
    }

    /// A length prefix: non-negative and no longer than the remaining input.
    fn len(&mut self) -> Result<usize, String> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
        if len > self.remaining() {
            return Err(format!(
                "length {len} at offset {} exceeds the {} bytes left",
                self.pos,
                self.remaining()
            ));
        }
        Ok(len)
    }
}

fn fullname(name: &Name) -> String {
    name.fullname(None)
}

impl Guard {
    /// Prepares `schema` (collects its named types).
    pub(crate) fn new(schema: &Schema) -> Self {
        let mut named = HashMap::new();
        collect(schema, &mut named, 0);
        Self { named }
    }

    /// `Ok` if `body` is exactly one datum of `schema` whose lengths, counts
    /// and indexes are all plausible; otherwise why not.
    pub(crate) fn check(&self, schema: &Schema, body: &[u8]) -> Result<(), String> {
        let mut input = Input {
            bytes: body,
            pos: 0,
        };
        self.skip(schema, &mut input, 0)?;
        if input.remaining() > 0 {
            return Err(format!(
                "{} trailing bytes after the datum",
                input.remaining()
            ));
        }
        Ok(())
    }

    fn resolve<'s>(&'s self, schema: &'s Schema, depth: usize) -> Result<&'s Schema, String> {
        if depth > MAX_DEPTH {
            return Err("schema nesting too deep".into());
        }
        match schema {
            Schema::Ref { name } => self
                .named
                .get(&fullname(name))
                .ok_or_else(|| format!("unresolved schema reference {}", fullname(name))),
            other => Ok(other),
        }
    }

    fn skip(&self, schema: &Schema, input: &mut Input<'_>, depth: usize) -> Result<(), String> {
        let schema = self.resolve(schema, depth)?;
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => match input.take(1)? {
                [0 | 1] => Ok(()),
                other => Err(format!("invalid boolean byte {other:?}")),
            },
            Schema::Int
            | Schema::Long
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => input.long().map(|_| ()),
            Schema::Float => input.take(4).map(|_| ()),
            Schema::Double => input.take(8).map(|_| ()),
            Schema::Bytes | Schema::String | Schema::BigDecimal | Schema::Uuid => {
                let len = input.len()?;
                input.take(len).map(|_| ())
            }
            Schema::Decimal(d) => self.skip(&d.inner, input, depth + 1),
            Schema::Fixed(f) => input.take(f.size).map(|_| ()),
            Schema::Duration => input.take(12).map(|_| ()),
            Schema::Enum(e) => {
                let index = input.long()?;
                if usize::try_from(index).is_ok_and(|i| i < e.symbols.len()) {
                    Ok(())
                } else {
                    Err(format!(
                        "enum index {index} out of range for {}",
                        fullname(&e.name)
                    ))
                }
            }
            Schema::Union(u) => {
                let index = input.long()?;
                let variant = usize::try_from(index)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| format!("union index {index} out of range"))?;
                self.skip(variant, input, depth + 1)
            }
            Schema::Array(a) => self.skip_blocks(input, depth, &[&a.items]),
            Schema::Map(m) => self.skip_blocks(input, depth, &[&Schema::String, &m.types]),
            Schema::Record(RecordSchema { fields, .. }) => {
                for field in fields {
                    self.skip(&field.schema, input, depth + 1)?;
                }
                Ok(())
            }
            Schema::Ref { .. } => Err("reference to a reference".into()),
        }
    }

    /// Array/map blocks: `count items…` until a zero count; a negative count
    /// is followed by the block's byte size.
    fn skip_blocks(
        &self,
        input: &mut Input<'_>,
        depth: usize,
        item: &[&Schema],
    ) -> Result<(), String> {
        let mut min_item = 0u64;
        for s in item {
            min_item += self.min_size(s, depth + 1)?;
        }
        loop {
            let raw = input.long()?;
            if raw == 0 {
                return Ok(());
            }
            let count = if raw < 0 {
                input.long()?; // block size in bytes: informational
                raw.checked_neg().ok_or("block count overflow")?
            } else {
                raw
            };
            let count = u64::try_from(count).map_err(|_| "negative block count".to_owned())?;
            let limit = match min_item {
                0 => MAX_ZERO_SIZE_ITEMS,
                min => input.remaining() as u64 / min,
            };
            if count > limit {
                return Err(format!(
                    "block of {count} items at offset {} cannot fit the {} bytes left",
                    input.pos,
                    input.remaining()
                ));
            }
            for _ in 0..count {
                for s in item {
                    self.skip(s, input, depth + 1)?;
                }
            }
        }
    }

    /// The fewest bytes one datum of `schema` can take.
    fn min_size(&self, schema: &Schema, depth: usize) -> Result<u64, String> {
        let schema = self.resolve(schema, depth)?;
        Ok(match schema {
            Schema::Null => 0,
            Schema::Float => 4,
            Schema::Double => 8,
            Schema::Duration => 12,
            Schema::Fixed(f) => f.size as u64,
            Schema::Decimal(d) => self.min_size(&d.inner, depth + 1)?,
            Schema::Record(r) => {
                let mut sum = 0u64;
                for field in &r.fields {
                    sum = sum.saturating_add(self.min_size(&field.schema, depth + 1)?);
                }
                sum
            }
            // Every other type takes at least one byte (a varint, a length, an index).
            _ => 1,
        })
    }
}

fn collect(schema: &Schema, named: &mut HashMap<String, Schema>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match schema {
        Schema::Record(r) => {
            named.insert(fullname(&r.name), schema.clone());
            for field in &r.fields {
                collect(&field.schema, named, depth + 1);
            }
        }
        Schema::Enum(e) => {
            named.insert(fullname(&e.name), schema.clone());
        }
        Schema::Fixed(f) => {
            named.insert(fullname(&f.name), schema.clone());
        }
        Schema::Decimal(d) => collect(&d.inner, named, depth + 1),
        Schema::Array(a) => collect(&a.items, named, depth + 1),
        Schema::Map(m) => collect(&m.types, named, depth + 1),
        Schema::Union(u) => {
            for v in u.variants() {
                collect(v, named, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn schema(json: &str) -> Schema {
        Schema::parse_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn zigzag(v: i64) -> Vec<u8> {
        // The codec's own zig-zag varint writer, tested against apache-avro.
        let mut out = Vec::new();
        crate::codec::fast::write_long(&mut out, v);
        out
    }

    #[test]
    fn accepts_valid_data_and_refuses_lies() {
        let s = schema(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"a","type":{"type":"array","items":"long"}}]}"#,
        );
        let guard = Guard::new(&s);
        let mut ok = zigzag(3);
        ok.extend_from_slice(b"abc");
        ok.extend(zigzag(2));
        ok.extend(zigzag(7));
        ok.extend(zigzag(-7));
        ok.extend(zigzag(0));
        assert_eq!(guard.check(&s, &ok), Ok(()));

        // A string claiming 2^40 bytes.
        let mut huge = zigzag(1 << 40);
        huge.extend_from_slice(b"abc");
        assert!(guard.check(&s, &huge).unwrap_err().contains("exceeds"));

        // An array claiming 10^12 items.
        let mut many = zigzag(0);
        many.extend(zigzag(1_000_000_000_000));
        assert!(guard.check(&s, &many).unwrap_err().contains("cannot fit"));

        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(guard.check(&s, &trailing).unwrap_err().contains("trailing"));
        assert!(guard.check(&s, &ok[..ok.len() - 1]).is_err());
        assert!(guard.check(&s, &[0xff; 11]).is_err());
    }

    #[test]
    fn zero_size_items_are_capped() {
        let s = schema(r#"{"type":"array","items":"null"}"#);
        let guard = Guard::new(&s);
        let mut few = zigzag(5);
        few.extend(zigzag(0));
        assert_eq!(guard.check(&s, &few), Ok(()));
        let mut lots = zigzag(i64::MAX);
        lots.extend(zigzag(0));
        assert!(guard.check(&s, &lots).is_err());
        let mut min = zigzag(i64::MIN);
        min.extend(zigzag(0));
        assert!(guard.check(&s, &min).is_err());
    }

    #[test]
    fn unions_enums_and_booleans_are_range_checked() {
        let s = schema(
            r#"{"type":"record","name":"R","fields":[
            {"name":"u","type":["null","long"]},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
            {"name":"b","type":"boolean"}]}"#,
        );
        let guard = Guard::new(&s);
        assert_eq!(guard.check(&s, &[2, 4, 2, 1]), Ok(()));
        assert!(guard.check(&s, &[4, 2, 1]).is_err(), "union index 2");
        assert!(guard.check(&s, &[0, 4, 1]).is_err(), "enum index 2");
        assert!(guard.check(&s, &[0, 2, 7]).is_err(), "boolean 7");
    }

    #[test]
    fn self_referencing_schemas_cannot_recurse_forever() {
        let s = schema(
            r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
        );
        let guard = Guard::new(&s);
        assert_eq!(guard.check(&s, &[2, 2, 0]), Ok(()));
        let deep = vec![2u8; 10_000];
        assert!(guard.check(&s, &deep).is_err());
    }
}
