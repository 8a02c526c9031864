//! Plain-text tables for the terminal (aligned columns, a header row).

use query_api::audit_log::{ChainFinding, LoggedEvent};

use super::check::short_hex;

/// Rows under `headers`, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            let width = widths.get(i).copied().unwrap_or_default();
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// The findings table of `audit verify` (and of `audit stream`'s check).
pub fn findings(findings: &[ChainFinding]) -> String {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.topic.clone(),
                f.partition.to_string(),
                f.offset.to_string(),
                match (&f.aggregate_type, &f.aggregate_id) {
                    (Some(t), Some(id)) => format!("{t} {id}"),
                    _ => "?".into(),
                },
                f.version.map_or("?".into(), |v| v.to_string()),
                f.event_id.clone().unwrap_or_else(|| "?".into()),
                f.kind.clone(),
                f.detail.clone(),
            ]
        })
        .collect();
    table(
        &[
            "TOPIC",
            "PARTITION",
            "OFFSET",
            "AGGREGATE",
            "VERSION",
            "EVENT ID",
            "FINDING",
            "DETAIL",
        ],
        &rows,
    )
}

/// The history table of `audit stream`.
pub fn history(events: &[LoggedEvent]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.version.to_string(),
                e.occurred_at.clone(),
                e.event_type.clone(),
                e.actor.clone(),
                e.command_id.clone(),
                e.correlation_id.clone(),
                e.causation_id.clone(),
                format!("{}/{}@{}", e.topic, e.partition, e.offset),
                short_hex(&hex::decode(&e.hash).unwrap_or_default()),
            ]
        })
        .collect();
    table(
        &[
            "VERSION",
            "OCCURRED AT",
            "EVENT",
            "ACTOR",
            "COMMAND",
            "CORRELATION",
            "CAUSATION",
            "TOPIC/PARTITION@OFFSET",
            "HASH",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let t = super::table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz    w\n");
    }
}
