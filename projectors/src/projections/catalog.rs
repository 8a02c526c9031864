//! The product catalog: by id, with its images; by category, sorted by
//! name; and a name token index for the text filter.
//!
//! Every input is a `Product` event keyed by the SKU, and every row is
//! written with that Product's version. The by-category and token rows are
//! keyed by the name (and category), so a rename or a move deletes the old
//! rows — which needs the previous name and the category on the event
//! itself (`ProductDetailsUpdated.previous_name`/`category`,
//! `ProductCategoryChanged.name`, `ProductDiscontinued.name`/`category`),
//! never a read of the current row. Images arrive one event at a time, so
//! each is a row of [`PRODUCT_IMAGES`]: a list in [`PRODUCTS_BY_ID`] would
//! have to be read to be appended to.
//!
//! Events written before those fields existed hold nulls: they set the
//! cells they can, and leave the index rows they cannot name.

use std::collections::BTreeSet;

use platform::readstore::{column, ColumnType as T, Mutation, Order, Row, TableDef, Value};
use schemas::catalog::CatalogEvent;
use schemas::{AnyEvent, Context};

use super::cells::delete;
use crate::projection::{
    opt_text, row, text, upsert, Input, Projected, Projection, ProjectionError,
};

pub const PRODUCTS_BY_ID: TableDef = TableDef {
    name: "products_by_id",
    partition_key: &[column("sku", T::Text)],
    clustering: &[],
    columns: &[
        column("name", T::Text),
        column("description", T::Text),
        column("category", T::Text),
        column("price_minor", T::BigInt),
        column("currency", T::Text),
        column("discontinued", T::Boolean),
        column("discontinued_reason", T::Text),
        column("created_at", T::Timestamp),
        column("updated_at", T::Timestamp),
        column("product_version", T::BigInt),
    ],
};

/// A product's images, one row each (never removed: there is no event
/// that detaches one). `product_version` is the version that attached the
/// image: sorted by it, the images come in the order they were attached.
pub const PRODUCT_IMAGES: TableDef = TableDef {
    name: "product_images",
    partition_key: &[column("sku", T::Text)],
    clustering: &[(column("image_key", T::Text), Order::Asc)],
    columns: &[
        column("url", T::Text),
        column("alt_text", T::Text),
        column("attached_at", T::Timestamp),
        column("product_version", T::BigInt),
    ],
};

/// Listed products of a category, in name order (`name_key` is the
/// lowercased name, [`name_key`]); price and the rest are read from
/// [`PRODUCTS_BY_ID`]. A discontinued product leaves its category listing.
pub const PRODUCTS_BY_CATEGORY: TableDef = TableDef {
    name: "products_by_category",
    partition_key: &[column("category", T::Text)],
    clustering: &[
        (column("name_key", T::Text), Order::Asc),
        (column("sku", T::Text), Order::Asc),
    ],
    columns: &[column("name", T::Text)],
};

/// The text filter on names: one row per (token, SKU), where the tokens of
/// a name are its lowercased words and their prefixes of 2..=12 characters
/// ([`name_tokens`]). A query looks up its first word (truncated to 12,
/// [`words`]) and filters the candidates by every word. A discontinued
/// product leaves the index.
pub const PRODUCT_NAME_TOKENS: TableDef = TableDef {
    name: "product_name_tokens",
    partition_key: &[column("name_token", T::Text)],
    clustering: &[(column("sku", T::Text), Order::Asc)],
    columns: &[column("name", T::Text), column("category", T::Text)],
};

const TABLES: &[TableDef] = &[
    PRODUCTS_BY_ID,
    PRODUCT_IMAGES,
    PRODUCTS_BY_CATEGORY,
    PRODUCT_NAME_TOKENS,
];

/// The longest token: a word is indexed by its first 12 characters.
pub const MAX_TOKEN_CHARS: usize = 12;

/// The words of a name or of a query, as the index knows them: lowercased,
/// split on every character that is not alphanumeric, each cut to
/// [`MAX_TOKEN_CHARS`] characters.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_TOKEN_CHARS).collect())
        .collect()
}

/// Where a name sorts in its category: the lowercased name.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// The index tokens of a name: each of its [`words`], and every prefix of
/// a word of 2 characters or more (so a one-letter word is found by
/// itself, and `mu` finds `Mug`).
pub fn name_tokens(name: &str) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    for word in words(name) {
        let chars: Vec<char> = word.chars().collect();
        for len in 2..chars.len() {
            tokens.insert(chars[..len].iter().collect());
        }
        tokens.insert(word);
    }
    tokens
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogProjection;

impl Projection for CatalogProjection {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Catalog)]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        // Only catalog events are on its topic.
        let AnyEvent::Catalog(event) = event else {
            return Ok(Vec::new());
        };
        let mut w = Writes {
            sku: &envelope.aggregate_id,
            v: envelope.version,
            at: envelope.occurred_at,
            out: Vec::new(),
        };
        match event {
            CatalogEvent::ProductCreated(e) => {
                w.product(row([
                    ("name", text(&e.name)),
                    ("description", opt_text(e.description.as_deref())),
                    ("category", text(&e.category)),
                    ("price_minor", Value::BigInt(e.price_minor)),
                    ("currency", text(&e.currency)),
                    ("discontinued", Value::Boolean(false)),
                    ("created_at", Value::Timestamp(w.at)),
                ]));
                w.list(&e.category, &e.name);
                w.index(&e.name, Some(&e.category), &name_tokens(&e.name));
            }
            CatalogEvent::ProductDetailsUpdated(e) => {
                w.product(row([
                    ("name", text(&e.name)),
                    ("description", opt_text(e.description.as_deref())),
                ]));
                let tokens = name_tokens(&e.name);
                if let Some(previous) = &e.previous_name {
                    // Only rows the new name does not write again: a delete
                    // wins a tie with an upsert at the same version.
                    if let Some(category) = &e.category {
                        if name_key(previous) != name_key(&e.name) {
                            w.unlist(category, previous);
                        }
                    }
                    w.unindex(name_tokens(previous).difference(&tokens));
                }
                if let Some(category) = &e.category {
                    w.list(category, &e.name);
                }
                w.index(&e.name, e.category.as_deref(), &tokens);
            }
            CatalogEvent::ProductRepriced(e) => w.product(row([
                ("price_minor", Value::BigInt(e.price_minor)),
                ("currency", text(&e.currency)),
            ])),
            CatalogEvent::ProductCategoryChanged(e) => {
                w.product(row([("category", text(&e.category))]));
                if let Some(name) = &e.name {
                    if e.previous_category != e.category {
                        w.unlist(&e.previous_category, name);
                    }
                    w.list(&e.category, name);
                    w.index(name, Some(&e.category), &name_tokens(name));
                }
            }
            CatalogEvent::ProductImageAttached(e) => {
                w.product(Row::new());
                w.out.push(upsert(
                    PRODUCT_IMAGES,
                    w.v,
                    row([
                        ("sku", text(w.sku)),
                        ("image_key", text(&e.image_key)),
                        ("url", text(&e.url)),
                        ("alt_text", opt_text(e.alt_text.as_deref())),
                        ("attached_at", Value::Timestamp(w.at)),
                        ("product_version", Value::BigInt(w.v)),
                    ]),
                ));
            }
            CatalogEvent::ProductDiscontinued(e) => {
                w.product(row([
                    ("discontinued", Value::Boolean(true)),
                    ("discontinued_reason", opt_text(e.reason.as_deref())),
                ]));
                if let Some(name) = &e.name {
                    if let Some(category) = &e.category {
                        w.unlist(category, name);
                    }
                    w.unindex(&name_tokens(name));
                }
            }
        }
        Ok(w.out)
    }
}

/// The writes of one Product event, all stamped with its version.
struct Writes<'a> {
    sku: &'a str,
    v: i64,
    at: i64,
    out: Vec<Mutation>,
}

impl Writes<'_> {
    /// `cells` of the product's row, and when and at which version it
    /// last changed.
    fn product(&mut self, mut cells: Row) {
        cells.insert("sku".into(), text(self.sku));
        cells.insert("updated_at".into(), Value::Timestamp(self.at));
        cells.insert("product_version".into(), Value::BigInt(self.v));
        self.out.push(upsert(PRODUCTS_BY_ID, self.v, cells));
    }

    fn category_key(&self, category: &str, name: &str) -> Row {
        row([
            ("category", text(category)),
            ("name_key", text(name_key(name))),
            ("sku", text(self.sku)),
        ])
    }

    /// Lists the product under `name` in `category`.
    fn list(&mut self, category: &str, name: &str) {
        let mut cells = self.category_key(category, name);
        cells.insert("name".into(), text(name));
        self.out.push(upsert(PRODUCTS_BY_CATEGORY, self.v, cells));
    }

    /// Removes the listing under `name` in `category`.
    fn unlist(&mut self, category: &str, name: &str) {
        let key = self.category_key(category, name);
        self.out.push(delete(PRODUCTS_BY_CATEGORY, self.v, key));
    }

    /// Indexes the product under `tokens`, with its name and (when known)
    /// category.
    fn index(&mut self, name: &str, category: Option<&str>, tokens: &BTreeSet<String>) {
        for token in tokens {
            let mut cells = row([
                ("name_token", text(token)),
                ("sku", text(self.sku)),
                ("name", text(name)),
            ]);
            if let Some(category) = category {
                cells.insert("category".into(), text(category));
            }
            self.out.push(upsert(PRODUCT_NAME_TOKENS, self.v, cells));
        }
    }

    /// Removes the product from the index under `tokens`.
    fn unindex<'t>(&mut self, tokens: impl IntoIterator<Item = &'t String>) {
        for token in tokens {
            let key = row([("name_token", text(token)), ("sku", text(self.sku))]);
            self.out.push(delete(PRODUCT_NAME_TOKENS, self.v, key));
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
mod tests {
    use schemas::catalog::{
        ProductCategoryChanged, ProductCreated, ProductDetailsUpdated, ProductDiscontinued,
        ProductImageAttached, ProductRepriced,
    };

    use super::*;
    use crate::testkit::{assert_replay_safe, ProjectionTest, Stream, START_MS};

    fn created(sku: &str, name: &str, category: &str) -> CatalogEvent {
        CatalogEvent::ProductCreated(ProductCreated {
            sku: sku.into(),
            name: name.into(),
            description: Some("Stoneware".into()),
            category: category.into(),
            price_minor: 1299,
            currency: "EUR".into(),
        })
    }

    fn renamed(previous: &str, name: &str, category: &str) -> CatalogEvent {
        CatalogEvent::ProductDetailsUpdated(ProductDetailsUpdated {
            name: name.into(),
            description: None,
            previous_name: Some(previous.into()),
            category: Some(category.into()),
        })
    }

    fn moved(from: &str, to: &str, name: &str) -> CatalogEvent {
        CatalogEvent::ProductCategoryChanged(ProductCategoryChanged {
            category: to.into(),
            previous_category: from.into(),
            name: Some(name.into()),
        })
    }

    fn discontinued(name: &str, category: &str) -> CatalogEvent {
        CatalogEvent::ProductDiscontinued(ProductDiscontinued {
            reason: Some("end of line".into()),
            name: Some(name.into()),
            category: Some(category.into()),
        })
    }

    fn image(key: &str) -> CatalogEvent {
        CatalogEvent::ProductImageAttached(ProductImageAttached {
            image_key: key.into(),
            url: format!("https://img.example/{key}.jpg"),
            alt_text: None,
        })
    }

    fn sku(sku: &str) -> Row {
        row([("sku", text(sku))])
    }

    fn token(t: &str) -> Row {
        row([("name_token", text(t))])
    }

    fn category(c: &str) -> Row {
        row([("category", text(c))])
    }

    /// `(name_key, sku, name)` of each listed product of `rows`.
    fn listing(rows: &[Row]) -> Vec<(Value, Value, Value)> {
        rows.iter()
            .map(|r| (r["name_key"].clone(), r["sku"].clone(), r["name"].clone()))
            .collect()
    }

    async fn skus_under(test: &ProjectionTest<CatalogProjection>, t: &str) -> Vec<Value> {
        let rows = test.rows(PRODUCT_NAME_TOKENS, token(t)).await;
        rows.iter().map(|r| r["sku"].clone()).collect()
    }

    #[test]
    fn tokens_are_words_and_their_prefixes() {
        let tokens: Vec<String> = name_tokens("Blue MUG, 2-pack").into_iter().collect();
        assert_eq!(
            tokens,
            ["2", "bl", "blu", "blue", "mu", "mug", "pa", "pac", "pack"]
        );
        // Long words are indexed by their first 12 characters, and the
        // query side cuts its words the same way.
        let long = name_tokens("Supercalifragilistic");
        assert!(long.contains("supercalifra"));
        assert!(!long.contains("supercalifrag"));
        assert_eq!(long.len(), 11);
        assert_eq!(words("SUPERCALIFRAGILISTIC mug"), ["supercalifra", "mug"]);
        assert!(name_tokens("-- !").is_empty());
        assert_eq!(name_key("Blue MUG"), "blue mug");
    }

    #[tokio::test]
    async fn a_created_product_is_listed_and_indexed() {
        let mut mug = Stream::new("Product", "MUG-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [mug.next(created("MUG-1", "Blue Mug", "kitchen"))],
        )
        .await;
        let product = test.expect_row(PRODUCTS_BY_ID, sku("MUG-1")).await;
        assert_eq!(product["name"], text("Blue Mug"));
        assert_eq!(product["description"], text("Stoneware"));
        assert_eq!(product["category"], text("kitchen"));
        assert_eq!(product["price_minor"], Value::BigInt(1299));
        assert_eq!(product["currency"], text("EUR"));
        assert_eq!(product["discontinued"], Value::Boolean(false));
        assert_eq!(product["created_at"], Value::Timestamp(START_MS + 1_000));
        assert_eq!(product["updated_at"], Value::Timestamp(START_MS + 1_000));
        assert_eq!(product["product_version"], Value::BigInt(1));
        assert_eq!(
            listing(&test.rows(PRODUCTS_BY_CATEGORY, category("kitchen")).await),
            [(text("blue mug"), text("MUG-1"), text("Blue Mug"))]
        );
        for t in ["bl", "blu", "blue", "mu", "mug"] {
            let rows = test.rows(PRODUCT_NAME_TOKENS, token(t)).await;
            assert_eq!(rows.len(), 1, "{t}");
            assert_eq!(rows[0]["name"], text("Blue Mug"));
            assert_eq!(rows[0]["category"], text("kitchen"));
        }
    }

    #[tokio::test]
    async fn a_rename_deletes_the_old_listing_and_the_tokens_only_it_had() {
        let mut mug = Stream::new("Product", "MUG-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [
                mug.next(created("MUG-1", "Blue Mug", "kitchen")),
                mug.next(renamed("Blue Mug", "Red Mug", "kitchen")),
            ],
        )
        .await;
        let product = test.expect_row(PRODUCTS_BY_ID, sku("MUG-1")).await;
        assert_eq!(product["name"], text("Red Mug"));
        assert_eq!(product["description"], Value::Null);
        assert_eq!(product["product_version"], Value::BigInt(2));
        assert_eq!(
            listing(&test.rows(PRODUCTS_BY_CATEGORY, category("kitchen")).await),
            [(text("red mug"), text("MUG-1"), text("Red Mug"))]
        );
        for gone in ["bl", "blu", "blue"] {
            assert!(skus_under(&test, gone).await.is_empty(), "{gone}");
        }
        for kept in ["mu", "mug", "re", "red"] {
            let rows = test.rows(PRODUCT_NAME_TOKENS, token(kept)).await;
            assert_eq!(rows.len(), 1, "{kept}");
            assert_eq!(rows[0]["name"], text("Red Mug"));
            assert_eq!(rows[0]["category"], text("kitchen"));
        }
    }

    #[tokio::test]
    async fn a_rename_to_the_same_name_key_keeps_the_listing() {
        let mut mug = Stream::new("Product", "MUG-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [
                mug.next(created("MUG-1", "Blue Mug", "kitchen")),
                mug.next(renamed("Blue Mug", "BLUE MUG", "kitchen")),
                // A description-only change restates the same name.
                mug.next(renamed("BLUE MUG", "BLUE MUG", "kitchen")),
            ],
        )
        .await;
        assert_eq!(
            listing(&test.rows(PRODUCTS_BY_CATEGORY, category("kitchen")).await),
            [(text("blue mug"), text("MUG-1"), text("BLUE MUG"))]
        );
        let rows = test.rows(PRODUCT_NAME_TOKENS, token("blue")).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["name"], text("BLUE MUG"));
    }

    #[tokio::test]
    async fn a_move_changes_the_listing_and_the_tokens_category() {
        let mut mug = Stream::new("Product", "MUG-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [
                mug.next(created("MUG-1", "Blue Mug", "kitchen")),
                mug.next(moved("kitchen", "office", "Blue Mug")),
            ],
        )
        .await;
        assert!(test
            .rows(PRODUCTS_BY_CATEGORY, category("kitchen"))
            .await
            .is_empty());
        assert_eq!(
            listing(&test.rows(PRODUCTS_BY_CATEGORY, category("office")).await),
            [(text("blue mug"), text("MUG-1"), text("Blue Mug"))]
        );
        let product = test.expect_row(PRODUCTS_BY_ID, sku("MUG-1")).await;
        assert_eq!(product["category"], text("office"));
        let rows = test.rows(PRODUCT_NAME_TOKENS, token("mug")).await;
        assert_eq!(rows[0]["category"], text("office"));
    }

    #[tokio::test]
    async fn a_discontinued_product_leaves_the_listing_and_the_index() {
        let mut mug = Stream::new("Product", "MUG-1");
        let mut cup = Stream::new("Product", "CUP-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [
                mug.next(created("MUG-1", "Blue Mug", "kitchen")),
                cup.next(created("CUP-1", "Blue Cup", "kitchen")),
                mug.next(discontinued("Blue Mug", "kitchen")),
            ],
        )
        .await;
        let product = test.expect_row(PRODUCTS_BY_ID, sku("MUG-1")).await;
        assert_eq!(product["discontinued"], Value::Boolean(true));
        assert_eq!(product["discontinued_reason"], text("end of line"));
        assert_eq!(product["name"], text("Blue Mug"), "still readable by id");
        assert_eq!(
            listing(&test.rows(PRODUCTS_BY_CATEGORY, category("kitchen")).await),
            [(text("blue cup"), text("CUP-1"), text("Blue Cup"))]
        );
        assert_eq!(skus_under(&test, "blue").await, [text("CUP-1")]);
        assert!(skus_under(&test, "mug").await.is_empty());
    }

    #[tokio::test]
    async fn images_and_prices_are_cells_of_their_own() {
        let mut mug = Stream::new("Product", "MUG-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [
                mug.next(created("MUG-1", "Mug", "kitchen")),
                mug.next(image("side")),
                mug.next(image("front")),
                mug.next(CatalogEvent::ProductRepriced(ProductRepriced {
                    price_minor: 999,
                    currency: "EUR".into(),
                    previous_price_minor: 1299,
                    previous_currency: "EUR".into(),
                })),
            ],
        )
        .await;
        let images = test.rows(PRODUCT_IMAGES, sku("MUG-1")).await;
        let got: Vec<(Value, Value, Value)> = images
            .iter()
            .map(|r| {
                (
                    r["image_key"].clone(),
                    r["url"].clone(),
                    r["product_version"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    text("front"),
                    text("https://img.example/front.jpg"),
                    Value::BigInt(3)
                ),
                (
                    text("side"),
                    text("https://img.example/side.jpg"),
                    Value::BigInt(2)
                ),
            ]
        );
        let product = test.expect_row(PRODUCTS_BY_ID, sku("MUG-1")).await;
        assert_eq!(product["price_minor"], Value::BigInt(999));
        assert_eq!(product["product_version"], Value::BigInt(4));
        assert_eq!(product["name"], text("Mug"));
    }

    #[tokio::test]
    async fn events_without_the_new_fields_set_what_they_can() {
        let mut mug = Stream::new("Product", "MUG-1");
        let test = ProjectionTest::given(
            CatalogProjection,
            [
                mug.next(created("MUG-1", "Blue Mug", "kitchen")),
                mug.next(CatalogEvent::ProductDetailsUpdated(ProductDetailsUpdated {
                    name: "Red Mug".into(),
                    description: None,
                    previous_name: None,
                    category: None,
                })),
                mug.next(CatalogEvent::ProductCategoryChanged(
                    ProductCategoryChanged {
                        category: "office".into(),
                        previous_category: "kitchen".into(),
                        name: None,
                    },
                )),
            ],
        )
        .await;
        let product = test.expect_row(PRODUCTS_BY_ID, sku("MUG-1")).await;
        assert_eq!(product["name"], text("Red Mug"));
        assert_eq!(product["category"], text("office"));
        let red = test.rows(PRODUCT_NAME_TOKENS, token("red")).await;
        assert_eq!(red[0]["name"], text("Red Mug"));
        assert_eq!(red[0]["category"], Value::Null);
        // What the events do not name stays as it was.
        assert_eq!(skus_under(&test, "blue").await, [text("MUG-1")]);
        assert_eq!(
            test.rows(PRODUCTS_BY_CATEGORY, category("kitchen"))
                .await
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn redelivery_and_interleaving_change_nothing() {
        let mut mug = Stream::new("Product", "MUG-1");
        let mut cup = Stream::new("Product", "CUP-1");
        let inputs = [
            mug.next(created("MUG-1", "Blue Mug", "kitchen")),
            cup.next(created("CUP-1", "Blue Cup", "kitchen")),
            mug.next(renamed("Blue Mug", "Red Mug", "kitchen")),
            mug.next(image("front")),
            cup.next(moved("kitchen", "office", "Blue Cup")),
            // Back to the old name and category: the rows deleted before
            // come back.
            mug.next(renamed("Red Mug", "Blue Mug", "kitchen")),
            cup.next(moved("office", "kitchen", "Blue Cup")),
            cup.next(renamed("Blue Cup", "Blue Cup XL", "kitchen")),
            mug.next(discontinued("Blue Mug", "kitchen")),
        ];
        assert_replay_safe(CatalogProjection, &inputs).await;
        let test = ProjectionTest::given(CatalogProjection, inputs).await;
        assert_eq!(
            listing(&test.rows(PRODUCTS_BY_CATEGORY, category("kitchen")).await),
            [(text("blue cup xl"), text("CUP-1"), text("Blue Cup XL"))]
        );
        assert!(test
            .rows(PRODUCTS_BY_CATEGORY, category("office"))
            .await
            .is_empty());
        assert_eq!(skus_under(&test, "blue").await, [text("CUP-1")]);
        assert_eq!(skus_under(&test, "xl").await, [text("CUP-1")]);
        assert!(skus_under(&test, "red").await.is_empty());
    }
}
