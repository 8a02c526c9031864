//! The public catalog, and stock levels for admins.

use platform::auth::Role;
use platform::readstore::Value;
use projectors::projection::row;
use projectors::projections::catalog::CatalogProjection;
use projectors::projections::stock::STOCK_LEVELS;
use schemas::catalog::{CatalogEvent, ProductCreated, ProductImageAttached};
use schemas::AnyEvent;

use crate::fixture::{envelope, t, Fixture};

async fn product(f: &Fixture, sku: &str, name: &str, category: &str, price: i64) {
    f.project_with(
        &CatalogProjection,
        envelope("Product", sku, 1, 10_000),
        AnyEvent::Catalog(CatalogEvent::ProductCreated(ProductCreated {
            sku: sku.into(),
            name: name.into(),
            description: Some(format!("The {name}")),
            category: category.into(),
            price_minor: price,
            currency: "EUR".into(),
        })),
    )
    .await;
}

async fn catalog(f: &Fixture) {
    product(f, "MUG-1", "Blue Coffee Mug", "kitchen", 1299).await;
    product(f, "MUG-2", "Red Coffee Mug", "kitchen", 1399).await;
    product(f, "PAN-1", "Frying Pan", "kitchen", 3999).await;
    product(f, "TEE-1", "Coffee T-Shirt", "clothing", 1999).await;
}

async fn stock(f: &Fixture, sku: &str, on_hand: i32, available: i32, threshold: Option<i32>) {
    let mut cells = row([
        ("sku", t(sku)),
        ("on_hand", Value::Int(on_hand)),
        ("available", Value::Int(available)),
        ("reserved", Value::Int(on_hand - available)),
        ("updated_at", Value::Timestamp(60_000)),
        ("stock_version", Value::BigInt(4)),
    ]);
    if let Some(threshold) = threshold {
        cells.insert("low_stock_threshold".into(), Value::Int(threshold));
    }
    f.put(STOCK_LEVELS, cells).await;
}

#[tokio::test]
async fn a_product_is_public_with_whether_it_is_in_stock_and_images() {
    let f = Fixture::new().await;
    catalog(&f).await;
    stock(&f, "MUG-1", 10, 7, Some(5)).await;
    f.project_with(
        &CatalogProjection,
        envelope("Product", "MUG-1", 2, 20_000),
        AnyEvent::Catalog(CatalogEvent::ProductImageAttached(ProductImageAttached {
            image_key: "img/mug-1-front.jpg".into(),
            url: "https://cdn.example/mug-1-front.jpg".into(),
            alt_text: Some("The mug from the front".into()),
        })),
    )
    .await;
    let answer = f.get("/products/MUG-1", None).await;
    let p = answer.ok();
    assert_eq!(p["sku"], "MUG-1");
    assert_eq!(p["name"], "Blue Coffee Mug");
    assert_eq!(p["description"], "The Blue Coffee Mug");
    assert_eq!(p["category"], "kitchen");
    assert_eq!(p["price_minor"], 1299);
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["discontinued"], false);
    // Whether it is in stock, not how many: stock levels are for admins.
    assert_eq!(p["availability"], serde_json::json!({"in_stock": true}));
    assert_eq!(p["images"][0]["url"], "https://cdn.example/mug-1-front.jpg");
    assert_eq!(p["images"][0]["alt_text"], "The mug from the front");
    assert_eq!(p["version"], 2);

    // Not tracked in stock yet: availability unknown, not zero.
    let answer = f.get("/products/PAN-1", None).await;
    assert_eq!(
        answer.ok()["availability"],
        serde_json::json!({"in_stock": null})
    );
    f.get("/products/NOPE", None)
        .await
        .problem(404, "not-found", None);
}

#[tokio::test]
async fn the_public_answer_says_in_stock_but_never_how_many() {
    let f = Fixture::new().await;
    catalog(&f).await;
    stock(&f, "MUG-1", 10, 0, Some(5)).await;
    stock(&f, "MUG-2", 10, 1, Some(5)).await;
    for (sku, in_stock) in [("MUG-1", false), ("MUG-2", true)] {
        let answer = f.get(&format!("/products/{sku}"), None).await;
        let text = serde_json::to_string(answer.ok()).unwrap();
        assert_eq!(answer.body["availability"]["in_stock"], in_stock, "{sku}");
        for secret in ["available", "on_hand", "reserved", "threshold"] {
            assert!(!text.contains(secret), "{sku} shows {secret}: {text}");
        }
    }
    // Admins see the count.
    let admin = f.get("/stock/MUG-2", Some(&f.admin())).await;
    assert_eq!(admin.ok()["available"], 1);
}

fn skus(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn products_are_listed_by_category_and_found_by_name() {
    let f = Fixture::new().await;
    catalog(&f).await;
    let kitchen = f.get("/products?category=kitchen", None).await;
    // Name order: Blue Coffee Mug, Frying Pan, Red Coffee Mug.
    assert_eq!(skus(kitchen.ok()), ["MUG-1", "PAN-1", "MUG-2"]);
    assert_eq!(kitchen.body["items"][0]["price_minor"], 1299);
    assert_eq!(kitchen.body["items"][0]["name"], "Blue Coffee Mug");

    let page = f.get("/products?category=kitchen&limit=2", None).await;
    assert_eq!(skus(page.ok()), ["MUG-1", "PAN-1"]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = f
        .get(
            &format!("/products?category=kitchen&limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(skus(next.ok()), ["MUG-2"]);

    let coffee = f.get("/products?q=coffee", None).await;
    assert_eq!(skus(coffee.ok()), ["MUG-1", "MUG-2", "TEE-1"]);
    let both = f.get("/products?q=COFFEE%20mug", None).await;
    assert_eq!(skus(both.ok()), ["MUG-1", "MUG-2"]);
    let prefix = f.get("/products?q=cof%20red", None).await;
    assert_eq!(skus(prefix.ok()), ["MUG-2"]);
    let in_category = f.get("/products?q=coffee&category=clothing", None).await;
    assert_eq!(skus(in_category.ok()), ["TEE-1"]);
    let none = f.get("/products?q=teapot", None).await;
    assert!(skus(none.ok()).is_empty());
}

#[tokio::test]
async fn a_listing_needs_a_category_or_a_query() {
    let f = Fixture::new().await;
    f.get("/products", None)
        .await
        .problem(400, "missing-filter", Some("category"));
    f.get("/products?q=%20-%20", None)
        .await
        .problem(400, "invalid-query", Some("q"));
    f.get("/products?category=kitchen&limit=500", None)
        .await
        .problem(400, "invalid-limit", Some("limit"));
}

#[tokio::test]
async fn stock_levels_are_for_admins_with_the_low_stock_flag() {
    let f = Fixture::new().await;
    stock(&f, "MUG-1", 10, 4, Some(5)).await;
    stock(&f, "PAN-1", 10, 9, Some(5)).await;
    stock(&f, "TEE-1", 10, 9, None).await;
    let admin = f.admin();
    let answer = f.get("/stock/MUG-1", Some(&admin)).await;
    let s = answer.ok();
    assert_eq!(s["on_hand"], 10);
    assert_eq!(s["available"], 4);
    assert_eq!(s["reserved"], 6);
    assert_eq!(s["threshold"], 5);
    assert_eq!(s["low_stock"], true);
    assert_eq!(s["version"], 4);
    assert_eq!(s["updated_at"], "1970-01-01T00:01:00.000Z");
    assert_eq!(
        f.get("/stock/PAN-1", Some(&admin)).await.ok()["low_stock"],
        false
    );
    assert!(f.get("/stock/TEE-1", Some(&admin)).await.ok()["low_stock"].is_null());
    f.get("/stock/NOPE", Some(&admin))
        .await
        .problem(404, "not-found", None);
    f.get("/stock/MUG-1", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
    f.get("/stock/MUG-1", Some(&f.token("k-1", &[Role::Courier])))
        .await
        .problem(403, "forbidden", None);
    f.get("/stock/MUG-1", None)
        .await
        .problem(401, "unauthorized", None);
}
