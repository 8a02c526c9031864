//! `quickstore registry register`: registers every schema of the contract
//! (each event and command type under its `<topic>-<record name>` subject)
//! with the configured registry and prints the ids — what a deployment's
//! one-shot init job runs before the services start, so no service has to
//! be the first to register under load.

use anyhow::{bail, Result};
use platform::config::Settings;

use crate::system::System;

pub async fn run(settings: Settings) -> Result<()> {
    if settings.schema_registry_url.is_none() {
        bail!(
            "QS_SCHEMA_REGISTRY_URL is not set: `registry register` writes to a Confluent-compatible \
             registry (set it, e.g. QS_SCHEMA_REGISTRY_URL=http://schema-registry:8081)"
        );
    }
    let system = System::connect(settings).await?;
    system.codec.register_contract(&system.topics).await?;
    println!(
        "registered the contract's schemas at {}",
        system
            .settings
            .schema_registry_url
            .as_deref()
            .unwrap_or_default()
    );
    Ok(())
}
