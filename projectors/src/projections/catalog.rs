//! The product catalog: by id; by category, sorted by name; and a name
//! token index for the text filter.
//!
//! Every input is a `Product` event keyed by the SKU. The by-category and
//! token rows are keyed by the name (and category), so a rename or a move
//! deletes the old rows — which needs the previous name and the category on
//! the event itself (`ProductDetailsUpdated.previous_name`/`category`,
//! `ProductCategoryChanged.name`), never a read of the current row.

use platform::readstore::{column, ColumnType as T, Mutation, Order, TableDef};
use schemas::Context;

use crate::projection::{Projected, Projection, ProjectionError};

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
        column("images_json", T::Text),
        column("created_at", T::Timestamp),
        column("updated_at", T::Timestamp),
        column("product_version", T::BigInt),
    ],
};

/// Listed products of a category, in name order (`name_key` is the
/// lowercased name); price and the rest are read from [`PRODUCTS_BY_ID`].
/// A discontinued product leaves its category listing.
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
/// a name are its lowercased words and their prefixes of 2..=12 characters.
/// A query looks up its first word (truncated to 12) and filters the
/// candidates by every word.
pub const PRODUCT_NAME_TOKENS: TableDef = TableDef {
    name: "product_name_tokens",
    partition_key: &[column("token", T::Text)],
    clustering: &[(column("sku", T::Text), Order::Asc)],
    columns: &[column("name", T::Text), column("category", T::Text)],
};

const TABLES: &[TableDef] = &[PRODUCTS_BY_ID, PRODUCTS_BY_CATEGORY, PRODUCT_NAME_TOKENS];

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

    fn project(&self, _input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        Ok(Vec::new())
    }
}
