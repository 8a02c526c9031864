//! Test support (feature `testing`): a sample value for any Avro schema, so
//! every record of the contract can be exercised without writing samples
//! by hand. Used by this crate's tests and the event-log conformance suite.
//! A sample for a schema it cannot handle is a bug in the test: it panics.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: failing loudly is the point"
)]

use std::collections::HashMap;

use apache_avro::types::Value;
use apache_avro::Schema;

/// Every named type of `schema`, by full name.
pub fn named_types(schema: &Schema) -> HashMap<String, Schema> {
    fn walk(s: &Schema, out: &mut HashMap<String, Schema>) {
        match s {
            Schema::Record(r) => {
                out.insert(r.name.fullname(None), s.clone());
                for f in &r.fields {
                    walk(&f.schema, out);
                }
            }
            Schema::Enum(e) => {
                out.insert(e.name.fullname(None), s.clone());
            }
            Schema::Array(a) => walk(&a.items, out),
            Schema::Map(m) => walk(&m.types, out),
            Schema::Union(u) => u.variants().iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    walk(schema, &mut out);
    out
}

/// A value of `schema`. With `fill_optionals`, every `["null", T]` holds a
/// T; otherwise null. `salt` varies strings and numbers between fields.
pub fn sample(
    schema: &Schema,
    named: &HashMap<String, Schema>,
    fill_optionals: bool,
    salt: &mut i64,
) -> Value {
    *salt += 1;
    let n = *salt;
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(n % 2 == 0),
        Schema::Int => Value::Int(i32::try_from(n).unwrap() * 7),
        Schema::Long => Value::Long(n * 1_000_003),
        Schema::Float => Value::Float(n as f32),
        Schema::Double => Value::Double(n as f64),
        Schema::String => Value::String(format!("s{n}-é✓")),
        Schema::Bytes => Value::Bytes((0..32).map(|i| (i * n) as u8).collect()),
        Schema::TimestampMillis => Value::TimestampMillis(1_700_000_000_000 + n),
        Schema::Array(a) => Value::Array(vec![
            sample(&a.items, named, fill_optionals, salt),
            sample(&a.items, named, fill_optionals, salt),
        ]),
        Schema::Map(m) => Value::Map(
            [(
                "k".to_owned(),
                sample(&m.types, named, fill_optionals, salt),
            )]
            .into(),
        ),
        Schema::Union(u) => {
            let index = if fill_optionals {
                u.variants().len() - 1
            } else {
                0
            };
            let inner = sample(&u.variants()[index], named, fill_optionals, salt);
            Value::Union(index as u32, Box::new(inner))
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        sample(&f.schema, named, fill_optionals, salt),
                    )
                })
                .collect(),
        ),
        Schema::Enum(e) => {
            let index = (n as usize) % e.symbols.len();
            Value::Enum(index as u32, e.symbols[index].clone())
        }
        Schema::Ref { name } => {
            let resolved = named
                .get(&name.fullname(None))
                .unwrap_or_else(|| panic!("unresolved {name:?}"));
            sample(resolved, named, fill_optionals, salt)
        }
        other => panic!("no sample for {other:?}"),
    }
}

/// The Avro body of a sample of `schema`.
pub fn sample_body(schema: &Schema, fill_optionals: bool) -> Vec<u8> {
    let named = named_types(schema);
    let mut salt = 0;
    let value = sample(schema, &named, fill_optionals, &mut salt);
    apache_avro::to_avro_datum(schema, value).unwrap()
}

/// `0x00 + id + body`.
pub fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}
