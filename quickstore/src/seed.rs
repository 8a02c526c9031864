//! Users, products and stock that `quickstore dev` creates on first start
//! (and tests use to get an admin): through the same command bus as the
//! HTTP API, so every one of them is in the event log like any other.

use std::time::Duration;

use anyhow::{bail, Result};
use command_api::bus::Submitted;
use command_api::http::state::SharedState;
use command_api::http::submit::{self, Outgoing};
use platform::auth::Role;
use platform::config::Secret;
use schemas::catalog::{CatalogCommand, CreateProduct};
use schemas::customers::{CustomersCommand, GrantRole, RegisterCustomer};
use schemas::inventory::{InventoryCommand, RestockItem, SetLowStockThreshold};
use schemas::{AnyCommand, Context};

const SEED_ACTOR: &str = "system:seed";

/// Sends and waits; `false` when it already existed (an earlier start).
async fn decided(state: &SharedState, outgoing: Outgoing) -> Result<bool> {
    let outcome = match submit::send(state, None, None, &outgoing).await {
        Ok(Submitted::Decided(outcome)) => outcome,
        // After an unclean stop the processors wait out the old members'
        // sessions before they own their partitions again.
        Ok(Submitted::Pending { command_id }) => {
            match state
                .bus
                .await_outcome(&command_id, Duration::from_secs(90))
                .await
            {
                Some(outcome) => outcome,
                None => bail!("seeding {}: no outcome within 90 s", outgoing.aggregate_id),
            }
        }
        Err(e) => bail!("seeding {}: {e}", outgoing.aggregate_id),
    };
    match submit::outcome_result(&outcome) {
        Ok(_) => Ok(true),
        Err(e) if e.status == axum::http::StatusCode::CONFLICT => Ok(false),
        Err(e) => bail!("seeding {}: {e}", outgoing.aggregate_id),
    }
}

/// A login with `roles` and its Customer aggregate; the existing one if
/// the e-mail is taken. Returns the customer id.
pub async fn user(
    state: &SharedState,
    email: &str,
    password: &str,
    display_name: &str,
    roles: &[Role],
) -> Result<String> {
    let store = std::sync::Arc::clone(state.issuer.store());
    let existing = {
        let (store, email) = (std::sync::Arc::clone(&store), email.to_owned());
        tokio::task::spawn_blocking(move || store.by_email(&email)).await??
    };
    if let Some(credential) = existing {
        return Ok(credential.customer_id);
    }
    let customer_id = uuid::Uuid::now_v7().to_string();
    let phc = state.hasher.hash(&Secret::new(password))?;
    {
        let (store, email, id, roles) =
            (store, email.to_owned(), customer_id.clone(), roles.to_vec());
        tokio::task::spawn_blocking(move || store.register(&email, &id, &phc, &roles)).await??;
    }
    // Sealed like the HTTP API's registrations (ADR 0014).
    let data_key = state
        .keys
        .get_or_create(&customer_id, state.now_ms())
        .await?;
    let seal =
        |field: &str, clear: &str| platform::pii::seal(&data_key, &customer_id, field, clear);
    use command_api::http::pii::field;
    decided(
        state,
        Outgoing {
            context: Context::Customers,
            aggregate_type: "Customer",
            aggregate_id: customer_id.clone(),
            command: AnyCommand::Customers(CustomersCommand::RegisterCustomer(RegisterCustomer {
                email: seal(field::EMAIL, &platform::auth::normalize_email(email))?,
                display_name: seal(field::DISPLAY_NAME, display_name)?,
                phone: None,
            })),
            actor: SEED_ACTOR.into(),
            creates: true,
        },
    )
    .await?;
    for role in roles.iter().filter(|r| **r != Role::Customer) {
        let role = match role {
            Role::Admin => schemas::customers::Role::Admin,
            Role::Courier => schemas::customers::Role::Courier,
            Role::Auditor => schemas::customers::Role::Auditor,
            Role::Customer => schemas::customers::Role::Customer,
        };
        decided(
            state,
            Outgoing {
                context: Context::Customers,
                aggregate_type: "Customer",
                aggregate_id: customer_id.clone(),
                command: AnyCommand::Customers(CustomersCommand::GrantRole(GrantRole { role })),
                actor: SEED_ACTOR.into(),
                creates: false,
            },
        )
        .await?;
    }
    Ok(customer_id)
}

/// A product with `stock` units on hand.
pub async fn product(
    state: &SharedState,
    sku: &str,
    name: &str,
    category: &str,
    price_minor: i64,
    stock: i32,
) -> Result<()> {
    let created = decided(
        state,
        Outgoing {
            context: Context::Catalog,
            aggregate_type: "Product",
            aggregate_id: sku.to_owned(),
            command: AnyCommand::Catalog(CatalogCommand::CreateProduct(CreateProduct {
                sku: sku.to_owned(),
                name: name.to_owned(),
                description: None,
                category: category.to_owned(),
                price_minor,
                currency: "EUR".into(),
            })),
            actor: SEED_ACTOR.into(),
            creates: true,
        },
    )
    .await?;
    // Stock only with a new product: a restart must not restock again.
    if created && stock > 0 {
        decided(
            state,
            Outgoing {
                context: Context::Inventory,
                aggregate_type: "StockItem",
                aggregate_id: sku.to_owned(),
                command: AnyCommand::Inventory(InventoryCommand::RestockItem(RestockItem {
                    quantity: stock,
                    reference: Some("seed".into()),
                })),
                actor: SEED_ACTOR.into(),
                creates: false,
            },
        )
        .await?;
        decided(
            state,
            Outgoing {
                context: Context::Inventory,
                aggregate_type: "StockItem",
                aggregate_id: sku.to_owned(),
                command: AnyCommand::Inventory(InventoryCommand::SetLowStockThreshold(
                    SetLowStockThreshold { threshold: 5 },
                )),
                actor: SEED_ACTOR.into(),
                creates: false,
            },
        )
        .await?;
    }
    // The price book must know it before anyone orders it.
    if state
        .prices
        .price(sku, Duration::from_secs(10))
        .await
        .is_none()
    {
        bail!("product {sku} did not reach the price book");
    }
    Ok(())
}

/// The demo shop: one user per role and a small catalog with stock.
#[derive(Debug, Clone)]
pub struct DemoShop {
    pub admin_id: String,
    pub courier_id: String,
    pub customer_id: String,
}

pub const DEMO_PASSWORD: &str = "quickstore-demo";
pub const DEMO_ADMIN: &str = "admin@quickstore.local";
pub const DEMO_COURIER: &str = "courier@quickstore.local";
pub const DEMO_CUSTOMER: &str = "customer@quickstore.local";
pub const DEMO_PRODUCTS: [(&str, &str, &str, i64, i32); 5] = [
    ("MUG-1", "Enamel mug", "kitchen", 1299, 100),
    ("TEA-1", "Sencha, 100 g", "tea", 899, 250),
    ("PAN-1", "Cast-iron pan", "kitchen", 4599, 20),
    ("KETTLE-1", "Gooseneck kettle", "kitchen", 6900, 8),
    ("CUP-1", "Tasting cup", "tea", 450, 3),
];

pub async fn demo_shop(state: &SharedState) -> Result<DemoShop> {
    let admin_id = user(
        state,
        DEMO_ADMIN,
        DEMO_PASSWORD,
        "Ada Admin",
        &[Role::Customer, Role::Admin],
    )
    .await?;
    let courier_id = user(
        state,
        DEMO_COURIER,
        DEMO_PASSWORD,
        "Cora Courier",
        &[Role::Customer, Role::Courier],
    )
    .await?;
    let customer_id = user(
        state,
        DEMO_CUSTOMER,
        DEMO_PASSWORD,
        "Carl Customer",
        &[Role::Customer],
    )
    .await?;
    for (sku, name, category, price, stock) in DEMO_PRODUCTS {
        product(state, sku, name, category, price, stock).await?;
    }
    Ok(DemoShop {
        admin_id,
        courier_id,
        customer_id,
    })
}
