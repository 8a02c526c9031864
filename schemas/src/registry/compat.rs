//! Avro compatibility under Confluent's levels, on top of apache-avro's
//! [`SchemaCompatibility::can_read`].
//!
//! "Backward" means the NEW schema, as reader, can read data written with an
//! OLD one (consumers upgrade first); "forward" the reverse. Transitive
//! levels check every earlier version, the others only the latest.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use super::CompatibilityLevel;

/// Whether data written with `writer` can be read with `reader`.
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    SchemaCompatibility::can_read(writer, reader).map_err(|e| e.to_string())
}

/// Checks `candidate` against the earlier versions of a subject (`previous`,
/// oldest first) under `level`. The error lists every violation, each with
/// the (1-based) version it breaks.
pub fn check(
    level: CompatibilityLevel,
    candidate: &Schema,
    previous: &[Schema],
) -> Result<(), String> {
    if level == CompatibilityLevel::None || previous.is_empty() {
        return Ok(());
    }
    let first = if level.is_transitive() {
        0
    } else {
        previous.len() - 1
    };
    let mut problems = Vec::new();
    for (index, old) in previous.iter().enumerate().skip(first) {
        let version = index + 1;
        if level.is_backward() {
            if let Err(e) = can_read(old, candidate) {
                problems.push(format!(
                    "cannot read data written with version {version}: {e}"
                ));
            }
        }
        if level.is_forward() {
            if let Err(e) = can_read(candidate, old) {
                problems.push(format!(
                    "version {version} cannot read data written with the new schema: {e}"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","namespace":"t","fields":[{fields}]}}"#
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn levels_behave_like_confluent() {
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        // v2 adds a field WITH a default: backward and forward compatible.
        let v2 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"long","default":0}"#);
        // v3 drops `a` (no default in v1/v2): backward ok, forward broken.
        let v3 = schema(r#"{"name":"b","type":"long","default":0}"#);
        // v4 adds `c` WITHOUT a default: not backward.
        let v4 = schema(r#"{"name":"b","type":"long","default":0},{"name":"c","type":"int"}"#);

        use CompatibilityLevel::*;
        assert!(check(Backward, &v2, std::slice::from_ref(&v1)).is_ok());
        assert!(check(Full, &v2, std::slice::from_ref(&v1)).is_ok());
        assert!(check(Backward, &v3, &[v1.clone(), v2.clone()]).is_ok());
        assert!(check(Forward, &v3, &[v1.clone(), v2.clone()]).is_err());
        assert!(check(Backward, &v4, std::slice::from_ref(&v3)).is_err());
        assert!(check(None, &v4, std::slice::from_ref(&v3)).is_ok());
        assert!(check(BackwardTransitive, &v4, &[]).is_ok());

        // Non-transitive checks only the latest; transitive checks all.
        let v5 = schema(
            r#"{"name":"b","type":"long","default":0},{"name":"c","type":"int","default":1}"#,
        );
        let history = [v1.clone(), v2.clone(), v3.clone()];
        assert!(check(Backward, &v5, &history).is_ok());
        assert!(check(BackwardTransitive, &v5, &history).is_ok());
        let a_is_int = schema(
            r#"{"name":"a","type":"int","default":0},{"name":"b","type":"long","default":0}"#,
        );
        assert!(check(Backward, &a_is_int, &[v1.clone(), v3.clone()]).is_ok());
        let err = check(BackwardTransitive, &a_is_int, &[v1, v3]).unwrap_err();
        assert!(err.contains("version 1"), "{err}");
    }

    #[test]
    fn level_names_parse() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse::<CompatibilityLevel>(), Ok(level));
        }
        assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
    }
}
