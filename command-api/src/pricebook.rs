//! The command API's view of the catalog: what each SKU costs now and
//! whether it can be sold. Carts and orders take prices from here, never
//! from the client, and an unknown or discontinued SKU is refused at the
//! edge (422) before any command is sent.
//!
//! Built from `catalog.events` (every partition from the start, then live);
//! each product's events are applied in version order and a version already
//! applied is skipped, so the overlap between the initial read and the live
//! follow changes nothing.
//!
//! Delivery guarantee: at-least-once into an idempotent in-memory map.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use platform::eventlog::{EventLog, LogError, LogRecord, TopicPartition};
use schemas::catalog::CatalogEvent;
use schemas::{AvroCodec, Context, TopicNames};
use tokio::sync::Notify;

/// A sellable product as the price book knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub sku: String,
    pub name: String,
    pub unit_price_minor: i64,
    pub currency: String,
    pub discontinued: bool,
    version: i64,
}

#[derive(Debug, Default)]
struct Book {
    products: HashMap<String, Price>,
}

/// Shared, live catalog prices.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    book: Arc<RwLock<Book>>,
    changed: Arc<Notify>,
}

impl PriceBook {
    /// Loads every product and keeps following the catalog.
    pub async fn start(
        log: Arc<dyn EventLog>,
        codec: Arc<AvroCodec>,
        topics: &TopicNames,
    ) -> Result<Self, LogError> {
        let book = PriceBook::default();
        let topic = topics.events(Context::Catalog);
        // Follow first, then read the past: nothing falls between the two.
        let mut live = log.follow(&topic).await?;
        let partitions = log.partition_count(&topic).await?;
        for p in 0..partitions {
            let tp = TopicPartition::new(topic.clone(), p);
            let end = log.end_offset(&tp).await?;
            let start = log.start_offset(&tp).await?;
            let mut past = log.read_range(tp, start, end);
            while let Some(record) = past.next().await {
                book.apply(&codec, &record?).await;
            }
        }
        let follower = book.clone();
        tokio::spawn(async move {
            while let Some(record) = live.next().await {
                match record {
                    Ok(record) => follower.apply(&codec, &record).await,
                    Err(e) => {
                        tracing::error!(error = %e, "the price book stopped following the catalog");
                        break;
                    }
                }
            }
        });
        Ok(book)
    }

    async fn apply(&self, codec: &AvroCodec, record: &LogRecord) {
        let Some(bytes) = record.value.as_deref() else {
            return;
        };
        let (envelope, event) = match codec.decode_event::<CatalogEvent>(bytes).await {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!(error = %e, offset = record.offset, "undecodable catalog event");
                return;
            }
        };
        {
            let Ok(mut book) = self.book.write() else {
                return;
            };
            let sku = envelope.aggregate_id.clone();
            if book
                .products
                .get(&sku)
                .is_some_and(|p| p.version >= envelope.version)
            {
                return;
            }
            let entry = book.products.entry(sku.clone()).or_insert_with(|| Price {
                sku,
                name: String::new(),
                unit_price_minor: 0,
                currency: String::new(),
                discontinued: false,
                version: 0,
            });
            entry.version = envelope.version;
            match event {
                CatalogEvent::ProductCreated(e) => {
                    entry.name = e.name;
                    entry.unit_price_minor = e.price_minor;
                    entry.currency = e.currency;
                }
                CatalogEvent::ProductDetailsUpdated(e) => entry.name = e.name,
                CatalogEvent::ProductRepriced(e) => {
                    entry.unit_price_minor = e.price_minor;
                    entry.currency = e.currency;
                }
                CatalogEvent::ProductDiscontinued(_) => entry.discontinued = true,
                _ => {}
            }
        }
        self.changed.notify_waiters();
    }

    /// The price of `sku`, waiting up to `wait` for a product the catalog
    /// just created (the command API answered its creation before this
    /// follower saw the event).
    pub async fn price(&self, sku: &str, wait: Duration) -> Option<Price> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            if let Some(p) = self.book.read().ok()?.products.get(sku) {
                return Some(p.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// How many products are known (for readiness and demos).
    pub fn len(&self) -> usize {
        self.book.read().map(|b| b.products.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
