//! `quickstore customers forget|key`: crypto-shredding of a customer's
//! personal data (ADR 0014, docs/privacy.md).
//!
//! `forget` deletes the customer's data key from the key store on the
//! configured read store. Nothing in the log changes — every event's hash
//! still verifies — but every sealed personal field of theirs (in events,
//! commands, read-model rows, backups) can no longer be opened: readers
//! show `[erased]`, and the command API refuses new personal data for them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use platform::config::Settings;
use platform::pii::keystore::DEFAULT_TTL;
use platform::pii::{KeyState, KeyStore};
use platform::readstore::ReadStore;

use crate::cli::CustomerIdArgs;
use crate::system::connect_read_store;

/// A key store over `store` with the default cache, its table ensured.
pub async fn key_store(store: &Arc<dyn ReadStore>) -> Result<Arc<KeyStore>> {
    let keys = KeyStore::new(Arc::clone(store), DEFAULT_TTL);
    keys.ensure().await?;
    Ok(Arc::new(keys))
}

fn check_id(id: &str) -> Result<()> {
    if id.trim().is_empty() || id.contains(':') || id.chars().any(char::is_control) {
        bail!(
            "`{id}` is not a customer id: pass the id the command API returned at registration \
             (`customer_id`, e.g. 0193…-…)"
        );
    }
    Ok(())
}

/// Uncached: the CLI must see what the store holds now.
async fn uncached(settings: &Settings) -> Result<KeyStore> {
    let store = connect_read_store(settings).await?;
    let keys = KeyStore::new(store, Duration::ZERO);
    keys.ensure().await?;
    Ok(keys)
}

/// `quickstore customers forget ID`.
pub async fn forget(settings: Settings, args: CustomerIdArgs) -> Result<()> {
    check_id(&args.customer_id)?;
    let keys = uncached(&settings).await?;
    let now = crate::write_side::system_clock()();
    let id = &args.customer_id;
    match keys.forget(id, now).await? {
        KeyState::Active(_) => println!(
            "customer {id}: data key deleted. Their personal fields now read `[erased]` everywhere \
             (query APIs within {} s, their key cache); new personal data for them is refused.",
            DEFAULT_TTL.as_secs()
        ),
        KeyState::Forgotten { at_ms } => println!(
            "customer {id}: already forgotten at {} (nothing to do)",
            crate::projections_cmd::utc(at_ms)
        ),
        KeyState::Absent => println!(
            "customer {id}: had no data key (unknown id, or registered before personal data was \
             sealed); marked forgotten, so no new personal data is accepted for them"
        ),
    }
    Ok(())
}

/// `quickstore customers key ID`: whether the customer has a data key.
pub async fn key(settings: Settings, args: CustomerIdArgs) -> Result<()> {
    check_id(&args.customer_id)?;
    let keys = uncached(&settings).await?;
    let id = &args.customer_id;
    match keys.get(id).await? {
        KeyState::Active(_) => println!("customer {id}: active (has a data key)"),
        KeyState::Forgotten { at_ms } => println!(
            "customer {id}: forgotten at {} (no key material left)",
            crate::projections_cmd::utc(at_ms)
        ),
        KeyState::Absent => println!("customer {id}: no data key"),
    }
    Ok(())
}
