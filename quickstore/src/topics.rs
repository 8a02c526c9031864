//! `quickstore topics`: every topic with its partitions and record count.

use anyhow::Result;
use platform::config::Settings;
use platform::eventlog::{EventLog, TopicPartition};

pub async fn run(settings: Settings) -> Result<()> {
    let log = crate::system::connect_log(&settings)?;
    print_topics(log.as_ref()).await
}

/// Prints a table of topics: name, partitions, committed records.
pub async fn print_topics(log: &dyn EventLog) -> Result<()> {
    let mut names = log.list_topics().await?;
    names.sort();
    let width = names.iter().map(String::len).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:>10}  {:>10}",
        "topic", "partitions", "records"
    );
    for name in names {
        let partitions = log.partition_count(&name).await?;
        let mut records = 0i64;
        for p in 0..partitions {
            let tp = TopicPartition::new(name.clone(), p);
            // End minus start counts offsets; on Kafka transaction markers
            // take offsets too, so this is an upper bound there.
            records += log.end_offset(&tp).await? - log.start_offset(&tp).await?;
        }
        println!("{name:<width$}  {partitions:>10}  {records:>10}");
    }
    Ok(())
}
