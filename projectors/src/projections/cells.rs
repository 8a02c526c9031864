//! Small builders the projections share, beyond [`crate::projection`]'s.

use platform::readstore::{Mutation, MutationKind, Row, TableDef, Value};

use crate::projection::ProjectionError;

/// A delete of the row `key` names in `table`: a row tombstone at
/// `timestamp`, which hides every write of that row up to and including
/// `timestamp` (so never pair it with an upsert of the same row at the same
/// timestamp: the delete would win).
pub(crate) fn delete(table: TableDef, timestamp: i64, key: Row) -> Mutation {
    Mutation {
        table,
        generation: 0,
        kind: MutationKind::Delete(key),
        timestamp,
    }
}

/// `value` as a JSON text cell.
pub(crate) fn json(value: &impl serde::Serialize) -> Result<Value, ProjectionError> {
    serde_json::to_string(value)
        .map(Value::Text)
        .map_err(|e| ProjectionError(e.to_string()))
}

/// `value` as a JSON text cell, or null.
pub(crate) fn opt_json(value: Option<&impl serde::Serialize>) -> Result<Value, ProjectionError> {
    value.map_or(Ok(Value::Null), json)
}
