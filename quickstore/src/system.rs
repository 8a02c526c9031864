//! Builds the adapters the settings ask for.

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use command_api::topology::CommandTopology;
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::kafka::KafkaLog;
use platform::eventlog::{EventLog, TopicSpec};
use platform::readstore::{CqlStore, EmbeddedStore, ReadStore};
use schemas::registry::{
    ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};
use schemas::{AvroCodec, Context, TopicNames};

/// The event log the settings name (all a command like `topics` needs).
pub fn connect_log(settings: &Settings) -> Result<Arc<dyn EventLog>> {
    Ok(match settings.event_log {
        EventLogBackend::Embedded => {
            let dir = settings.data_dir.join("log");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Arc::new(EmbeddedLog::open(&dir, EmbeddedOptions::default())?)
        }
        EventLogBackend::Kafka => Arc::new(KafkaLog::connect(settings.kafka())?),
    })
}

/// The read store the settings name (`QS_READ_STORE`). The embedded one
/// is a file in the data directory that one process at a time may open.
pub async fn connect_read_store(settings: &Settings) -> Result<Arc<dyn ReadStore>> {
    Ok(match settings.read_store {
        ReadStoreBackend::Embedded => {
            let dir = settings.data_dir.join("readstore");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Arc::new(EmbeddedStore::open(&dir).with_context(|| {
                format!(
                    "opening the embedded read store in {} (is another quickstore process using this QS_DATA_DIR?)",
                    dir.display()
                )
            })?)
        }
        ReadStoreBackend::Cql => {
            let config = settings.cql()?;
            Arc::new(CqlStore::connect(config).await.with_context(|| {
                format!(
                    "connecting to the CQL node(s) at {} (QS_CQL_CONTACT_POINTS)",
                    settings.cql_contact_points
                )
            })?)
        }
    })
}

/// The log, the registry and the codec of one QuickStore installation.
#[derive(Debug, Clone)]
pub struct System {
    pub settings: Settings,
    pub log: Arc<dyn EventLog>,
    pub registry: Arc<dyn SchemaRegistry>,
    pub codec: Arc<AvroCodec>,
    pub topics: TopicNames,
}

impl System {
    pub async fn connect(settings: Settings) -> Result<Self> {
        let log = connect_log(&settings)?;
        let registry: Arc<dyn SchemaRegistry> = match (&settings.schema_registry_url, settings.event_log) {
            (Some(url), _) => Arc::new(ConfluentRegistry::new(ConfluentRegistryConfig::new(url.clone()))?),
            (None, EventLogBackend::Embedded) => Arc::new(EmbeddedRegistry::open(settings.data_dir.join("registry"))?),
            (None, EventLogBackend::Kafka) => bail!(
                "QS_EVENT_LOG=kafka needs QS_SCHEMA_REGISTRY_URL: records on a shared broker must carry \
                 schema ids every reader can resolve (run `quickstore registry serve` for a local one)"
            ),
        };
        let codec = Arc::new(AvroCodec::new(Arc::clone(&registry)));
        let topics = TopicNames::new(settings.topic_prefix.clone());
        Ok(Self {
            settings,
            log,
            registry,
            codec,
            topics,
        })
    }

    /// Like [`System::connect`], but a Kafka log without a registry URL
    /// gets an in-memory registry: a benchmark is one process.
    pub async fn connect_for_bench(settings: Settings) -> Result<Self> {
        if settings.event_log == EventLogBackend::Kafka && settings.schema_registry_url.is_none() {
            let log = connect_log(&settings)?;
            let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
            let codec = Arc::new(AvroCodec::new(Arc::clone(&registry)));
            let topics = TopicNames::new(settings.topic_prefix.clone());
            return Ok(Self {
                settings,
                log,
                registry,
                codec,
                topics,
            });
        }
        Self::connect(settings).await
    }

    /// The command-side topology of one context.
    pub fn topology(&self, context: &str) -> CommandTopology {
        let mut topology = CommandTopology::new(&self.topics, context, self.settings.partitions);
        topology.replication_factor = self.settings.replication_factor;
        topology
    }

    /// Every topic of the six contexts (deduplicated: the outcomes topic is shared).
    pub fn contract_topics(&self) -> Vec<TopicSpec> {
        let mut specs: Vec<TopicSpec> = Vec::new();
        for context in Context::ALL {
            for mut spec in self.topology(context.as_str()).specs() {
                spec.min_insync_replicas = Some(self.settings.min_insync_replicas);
                if !specs.iter().any(|s| s.name == spec.name) {
                    specs.push(spec);
                }
            }
        }
        specs
    }

    /// The revocation topic (ADR 0022) with this deployment's replication.
    pub fn revocation_topic(&self) -> TopicSpec {
        let mut spec = platform::auth::revocations::topic_spec(self.topics.auth_revocations());
        spec.replication_factor = self.settings.replication_factor;
        spec.min_insync_replicas = Some(self.settings.min_insync_replicas);
        spec
    }

    /// Follows the revocation topic into a new view (created if missing:
    /// either side may start first).
    pub async fn follow_revocations(
        &self,
    ) -> Result<(
        Arc<platform::auth::revocations::RevocationView>,
        platform::auth::revocations::Following,
    )> {
        use platform::auth::revocations as r;
        self.log.create_topics(&[self.revocation_topic()]).await?;
        let view = Arc::new(r::RevocationView::new(r::DEFAULT_MAX_STALENESS));
        let now_s: r::NowS = Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        });
        let following = r::follow(
            Arc::clone(&self.log),
            self.topics.auth_revocations(),
            Arc::clone(&view),
            r::DEFAULT_POLL,
            now_s,
        );
        Ok((view, following))
    }

    /// Creates the contract's topics and registers its schemas.
    pub async fn ensure_contract(&self) -> Result<()> {
        self.log.create_topics(&self.contract_topics()).await?;
        self.codec.register_contract(&self.topics).await?;
        Ok(())
    }
}
