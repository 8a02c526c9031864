//! The read store's schema as versioned CQL files (`deploy/cql/schema/`),
//! applied idempotently by `quickstore schema apply`.
//!
//! The files are the reviewable, auditable record of what QuickStore
//! creates on a cluster (an operator can run them with `cqlsh -f` after
//! substituting `${keyspace}` and `${replication_factor}`). They are
//! compiled into the binary, so `schema apply` needs no checkout. A test
//! checks that, together, they hold exactly the statements the code's
//! [`TableDef`]s generate — so files and code cannot drift.
//!
//! Applying: each file in version order, each statement `IF NOT EXISTS`,
//! then a row in `schema_migrations` with the file's checksum. A file
//! that changed after it was applied is an error (publish a new version
//! instead). Later generations of a table (a rebuild's) are created by the
//! projector itself from the same [`TableDef`].

use anyhow::{bail, Context as _, Result};
use platform::readstore::{column, ColumnType as T, CqlStore, ReadStore, Row, TableDef, Value};
use projectors::generations::{FIRST_GENERATION, META_GENERATION};
use sha2::{Digest, Sha256};

/// One versioned file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub file: &'static str,
    pub text: &'static str,
}

/// Every file of `deploy/cql/schema/`, in version order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        file: "V001__read_models.cql",
        text: include_str!("../../deploy/cql/schema/V001__read_models.cql"),
    },
    Migration {
        version: 2,
        file: "V002__customer_keys.cql",
        text: include_str!("../../deploy/cql/schema/V002__customer_keys.cql"),
    },
];

/// What was applied, per version (generation 0, like the other metadata).
pub const SCHEMA_MIGRATIONS: TableDef = TableDef {
    name: "schema_migrations",
    partition_key: &[column("version", T::Int)],
    clustering: &[],
    columns: &[
        column("file", T::Text),
        column("checksum", T::Text),
        column("applied_at", T::Timestamp),
    ],
};

const KEYSPACE: &str = "${keyspace}";

/// The metadata tables (generation 0), the customers' data keys among
/// them (not derived from the log: never rebuilt, ADR 0014).
pub fn meta_tables() -> Vec<TableDef> {
    let mut tables = vec![SCHEMA_MIGRATIONS];
    tables.extend_from_slice(projectors::meta_tables());
    tables.push(platform::pii::CUSTOMER_KEYS);
    tables
}

/// The statements the code defines: the keyspace, the metadata tables,
/// and the first generation of every read model.
pub fn generated_statements() -> Vec<String> {
    let mut out = vec![format!(
        "CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = \
         {{'class': 'SimpleStrategy', 'replication_factor': ${{replication_factor}}}};"
    )];
    for table in meta_tables() {
        out.push(table.create_cql(KEYSPACE, META_GENERATION));
    }
    for projection in projectors::projections::all() {
        for table in projection.tables() {
            out.push(table.create_cql(KEYSPACE, FIRST_GENERATION));
        }
    }
    out.into_iter().map(|s| normalize(&s)).collect()
}

/// The statements of a file: `--` comments dropped, split on `;`,
/// whitespace normalized, each ending in `;`.
pub fn statements(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(normalize)
        .filter(|s| s != ";")
        .collect()
}

fn normalize(statement: &str) -> String {
    let words: Vec<&str> = statement
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    format!("{};", words.join(" "))
}

/// The file text for `statements` (what the bless step writes).
pub fn render(version: u32, statements: &[String]) -> String {
    let mut text = format!(
        "-- QuickStore read store, schema version {version}.\n\
         -- Applied by `quickstore schema apply` (substitutes ${{keyspace}} and\n\
         -- ${{replication_factor}}); generated from the code's table definitions.\n\
         -- Published files never change: add a new version instead.\n"
    );
    for s in statements {
        text.push('\n');
        text.push_str(&pretty(s));
        text.push('\n');
    }
    text
}

/// Puts each column of a `CREATE TABLE` on its own line, for review.
fn pretty(statement: &str) -> String {
    let Some(open) = statement.find(" ( ") else {
        return statement.to_owned();
    };
    let Some(close) = statement.rfind(" )") else {
        return statement.to_owned();
    };
    let head = &statement[..open];
    let body = &statement[open + 3..close];
    let tail = &statement[close + 2..];
    let mut columns = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for ch in body.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                columns.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    columns.push(current.trim().to_owned());
    format!("{head} (\n    {}\n){tail}", columns.join(",\n    "))
}

fn checksum(text: &str) -> String {
    hex::encode(Sha256::digest(statements(text).join("\n").as_bytes()))
}

/// What `apply` did.
#[derive(Debug, Default)]
pub struct Applied {
    pub applied: Vec<&'static str>,
    pub already: Vec<&'static str>,
}

/// Applies every migration not yet applied to the CQL keyspace.
pub async fn apply_cql(store: &CqlStore, replication_factor: u32) -> Result<Applied> {
    let keyspace = store.keyspace().to_owned();
    let substitute = |s: &str| {
        s.replace(KEYSPACE, &keyspace)
            .replace("${replication_factor}", &replication_factor.to_string())
    };
    // The bookkeeping table first (it is also in V001; IF NOT EXISTS).
    store
        .execute_ddl(&substitute(&statements(MIGRATIONS[0].text)[0]))
        .await
        .context("creating the keyspace")?;
    store
        .ensure_tables(&[SCHEMA_MIGRATIONS], META_GENERATION)
        .await?;
    let mut done = Applied::default();
    for m in MIGRATIONS {
        let key: Row = [(
            "version".to_owned(),
            Value::Int(i32::try_from(m.version).unwrap_or(i32::MAX)),
        )]
        .into();
        let sum = checksum(m.text);
        if let Some(row) = store.get(&SCHEMA_MIGRATIONS, META_GENERATION, &key).await? {
            match row.get("checksum") {
                Some(Value::Text(applied)) if *applied == sum => {
                    done.already.push(m.file);
                    continue;
                }
                _ => bail!(
                    "{} changed after it was applied to keyspace {keyspace}: published schema files \
                     never change — restore it and add a new version",
                    m.file
                ),
            }
        }
        for statement in statements(m.text) {
            store
                .execute_ddl(&substitute(&statement))
                .await
                .with_context(|| format!("{}: {statement}", m.file))?;
        }
        let mut row = key.clone();
        row.insert("file".into(), Value::Text(m.file.into()));
        row.insert("checksum".into(), Value::Text(sum));
        row.insert(
            "applied_at".into(),
            Value::Timestamp(crate::write_side::system_clock()()),
        );
        let mut mutation =
            projectors::projection::upsert(SCHEMA_MIGRATIONS, i64::from(m.version), row);
        mutation.generation = META_GENERATION;
        store.write(&[mutation]).await?;
        done.applied.push(m.file);
    }
    Ok(done)
}

/// The embedded store has no DDL: creating the same tables is the whole
/// of "applying".
pub async fn apply_embedded(store: &dyn ReadStore) -> Result<()> {
    store.ensure_tables(&meta_tables(), META_GENERATION).await?;
    for projection in projectors::projections::all() {
        store
            .ensure_tables(projection.tables(), FIRST_GENERATION)
            .await?;
    }
    Ok(())
}

/// `quickstore schema apply`: applies the versioned files to the
/// configured read store and says what it did.
pub async fn apply(settings: &platform::config::Settings) -> Result<()> {
    use platform::config::ReadStoreBackend;
    match settings.read_store {
        ReadStoreBackend::Cql => {
            let store = CqlStore::connect(settings.cql()?).await.with_context(|| {
                format!(
                    "connecting to {} (QS_CQL_CONTACT_POINTS); is the CQL node up? \
                     (`deploy/test-env.sh up` starts a local one)",
                    settings.cql_contact_points
                )
            })?;
            let done = apply_cql(&store, settings.cql_replication_factor).await?;
            for file in &done.applied {
                println!("applied   {file} to keyspace {}", store.keyspace());
            }
            for file in &done.already {
                println!("up to date {file} (keyspace {})", store.keyspace());
            }
        }
        ReadStoreBackend::Embedded => {
            let store = crate::system::connect_read_store(settings).await?;
            apply_embedded(store.as_ref()).await?;
            println!(
                "embedded read store in {}: every table exists",
                settings.data_dir.join("readstore").display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code"
    )]

    use std::collections::BTreeSet;

    use super::*;

    /// The files hold exactly what the code defines. After a table change:
    /// `QS_CQL_BLESS=1 cargo test -p quickstore --lib schema` writes the
    /// missing statements as a new version (a removed or changed statement
    /// is for a human to resolve).
    #[test]
    fn versioned_files_match_the_table_definitions() {
        let in_files: BTreeSet<String> =
            MIGRATIONS.iter().flat_map(|m| statements(m.text)).collect();
        let generated = generated_statements();
        let wanted: BTreeSet<String> = generated.iter().cloned().collect();
        let missing: Vec<String> = generated
            .iter()
            .filter(|s| !in_files.contains(*s))
            .cloned()
            .collect();
        let stale: Vec<&String> = in_files.difference(&wanted).collect();
        let bless = std::env::var("QS_CQL_BLESS").unwrap_or_default();
        // `QS_CQL_BLESS=V001` rewrites a version that was never released
        // (while the read side is being built); `1` appends a new version.
        if let Some(version) = bless.strip_prefix('V').and_then(|v| v.parse::<u32>().ok()) {
            let path = format!(
                "{}/../deploy/cql/schema/V{version:03}__read_models.cql",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::write(&path, render(version, &generated)).unwrap();
            return;
        }
        if bless == "1" && !missing.is_empty() && stale.is_empty() {
            let version = MIGRATIONS.last().map_or(1, |m| m.version + 1);
            let path = format!(
                "{}/../deploy/cql/schema/V{version:03}__read_models.cql",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::write(&path, render(version, &missing)).unwrap();
            panic!("wrote {path}: add it to MIGRATIONS and run again");
        }
        assert!(
            missing.is_empty() && stale.is_empty(),
            "deploy/cql/schema/ is out of date.\nmissing: {missing:#?}\nin the files but not in the code: {stale:#?}\n\
             bless with QS_CQL_BLESS=1 cargo test -p quickstore --lib schema (appends a version)"
        );
    }

    /// CQL's reserved words cannot name a column unquoted (Cassandra
    /// refuses `token`, for one), and the adapter does not quote.
    #[test]
    fn no_column_is_a_reserved_word() {
        const RESERVED: &[&str] = &[
            "add",
            "allow",
            "alter",
            "and",
            "apply",
            "asc",
            "authorize",
            "batch",
            "begin",
            "by",
            "columnfamily",
            "create",
            "delete",
            "desc",
            "describe",
            "drop",
            "entries",
            "execute",
            "from",
            "full",
            "grant",
            "if",
            "in",
            "index",
            "infinity",
            "insert",
            "into",
            "is",
            "keyspace",
            "limit",
            "materialized",
            "mbean",
            "mbeans",
            "modify",
            "nan",
            "norecursive",
            "not",
            "null",
            "of",
            "on",
            "or",
            "order",
            "primary",
            "rename",
            "replace",
            "revoke",
            "schema",
            "select",
            "set",
            "table",
            "to",
            "token",
            "truncate",
            "unlogged",
            "unset",
            "update",
            "use",
            "using",
            "view",
            "where",
            "with",
        ];
        let mut tables = meta_tables();
        for p in projectors::projections::all() {
            tables.extend_from_slice(p.tables());
        }
        for table in tables {
            for column in table.all_columns() {
                assert!(
                    !RESERVED.contains(&column.name),
                    "{}.{} is a reserved word in CQL",
                    table.name,
                    column.name
                );
            }
        }
    }

    #[test]
    fn statements_are_normalized() {
        assert_eq!(
            statements("-- c\nCREATE TABLE x (\n  a int,\n  PRIMARY KEY (a)\n);\n\n"),
            vec!["CREATE TABLE x ( a int, PRIMARY KEY (a) );".to_owned()]
        );
        let s = generated_statements();
        assert_eq!(statements(&render(1, &s)), s);
    }
}
