//! The three output formats. Every format has the same columns
//! ([`COLUMNS`]); only the payload's shape differs: nested JSON (jsonl), a
//! JSON text column (csv, parquet — one event topic holds many event types,
//! so one flat schema cannot fit them all).

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value as Json;

use super::row::{Row, COLUMNS};

/// Where rows go.
pub trait Sink {
    fn write(&mut self, row: &Row) -> Result<()>;
    /// Flushes and closes (parquet writes its footer here).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// One JSON object per line.
pub struct Jsonl<W: Write>(pub W);

impl<W: Write> Sink for Jsonl<W> {
    fn write(&mut self, row: &Row) -> Result<()> {
        serde_json::to_writer(&mut self.0, &row.to_json())?;
        self.0.write_all(b"\n")?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.0.flush()?;
        Ok(())
    }
}

/// RFC 4180 CSV with a header; the payload is a JSON text column.
pub struct Csv<W: Write> {
    out: W,
    header_written: bool,
}

impl<W: Write> Csv<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            header_written: false,
        }
    }

    fn line(&mut self, cells: &[String]) -> Result<()> {
        let quoted: Vec<String> = cells.iter().map(|c| quote(c)).collect();
        self.out.write_all(quoted.join(",").as_bytes())?;
        self.out.write_all(b"\r\n")?;
        Ok(())
    }
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

impl<W: Write> Sink for Csv<W> {
    fn write(&mut self, row: &Row) -> Result<()> {
        if !self.header_written {
            let header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            self.line(&header)?;
            self.header_written = true;
        }
        let cells: Vec<String> = row
            .cells()
            .into_iter()
            .map(|cell| match cell {
                Json::String(s) => s,
                other => other.to_string(),
            })
            .collect();
        self.line(&cells)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        if !self.header_written {
            let header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            self.line(&header)?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// The parquet schema: the envelope as typed columns, `occurred_at` and
/// `timestamp` as UTC millisecond timestamps, the payload as JSON text.
pub const PARQUET_SCHEMA: &str = "
message quickstore_event {
  required binary topic (STRING);
  required int32 partition;
  required int64 offset;
  required binary event_type (STRING);
  required binary event_id (STRING);
  required binary aggregate_type (STRING);
  required binary aggregate_id (STRING);
  required int64 version;
  required int64 occurred_at (TIMESTAMP(MILLIS,true));
  required binary actor (STRING);
  required binary command_id (STRING);
  required binary correlation_id (STRING);
  required binary causation_id (STRING);
  required binary prev_hash (STRING);
  required binary hash (STRING);
  required int64 timestamp (TIMESTAMP(MILLIS,true));
  required binary payload (JSON);
}";

/// Rows per row group: bounds the memory the buffer holds.
const ROW_GROUP: usize = 16_384;

/// Parquet, Snappy-compressed, row groups of [`ROW_GROUP`] rows.
pub struct Parquet<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    rows: Vec<Row>,
}

impl<W: Write + Send> Parquet<W> {
    pub fn new(out: W) -> Result<Self> {
        let schema = Arc::new(parse_message_type(PARQUET_SCHEMA).context("the parquet schema")?);
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by("quickstore events export".to_owned())
                .build(),
        );
        Ok(Self {
            writer: SerializedFileWriter::new(out, schema, props)?,
            rows: Vec::with_capacity(ROW_GROUP),
        })
    }

    fn flush_group(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let table: Vec<Vec<Json>> = rows.iter().map(Row::cells).collect();
        let mut group = self.writer.next_row_group()?;
        let mut index = 0usize;
        while let Some(mut column) = group.next_column()? {
            match COLUMNS.get(index).copied().unwrap_or_default() {
                "partition" => {
                    let values: Vec<i32> = rows.iter().map(|r| r.partition).collect();
                    column
                        .typed::<Int32Type>()
                        .write_batch(&values, None, None)?;
                }
                name @ ("offset" | "version" | "occurred_at" | "timestamp") => {
                    let values: Vec<i64> = rows
                        .iter()
                        .map(|r| match name {
                            "offset" => r.offset,
                            "version" => r.version,
                            "occurred_at" => r.occurred_at,
                            _ => r.timestamp,
                        })
                        .collect();
                    column
                        .typed::<Int64Type>()
                        .write_batch(&values, None, None)?;
                }
                _ => {
                    let values: Vec<ByteArray> = table
                        .iter()
                        .map(|cells| {
                            ByteArray::from(
                                match cells.get(index) {
                                    Some(Json::String(s)) => s.clone(),
                                    Some(other) => other.to_string(),
                                    None => String::new(),
                                }
                                .into_bytes(),
                            )
                        })
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, None, None)?;
                }
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
        Ok(())
    }
}

impl<W: Write + Send> Sink for Parquet<W> {
    fn write(&mut self, row: &Row) -> Result<()> {
        self.rows.push(row.clone());
        if self.rows.len() >= ROW_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush_group()?;
        self.writer.close()?;
        Ok(())
    }
}

// The writers wrap any `Write` (stdout, a file): their debug form names the
// format only.
impl<W: Write> std::fmt::Debug for Jsonl<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jsonl")
    }
}

impl<W: Write> std::fmt::Debug for Csv<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csv")
    }
}

impl<W: Write + Send> std::fmt::Debug for Parquet<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parquet")
            .field("buffered_rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_as_rfc_4180_says() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn the_parquet_schema_has_one_column_per_csv_column() {
        let schema = parse_message_type(PARQUET_SCHEMA).unwrap();
        let names: Vec<&str> = schema.get_fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, COLUMNS.to_vec());
    }
}
