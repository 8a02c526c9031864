//! `Product`: a catalog entry — created once, then renamed, repriced,
//! recategorised, given images, and finally discontinued (kept in history,
//! never deleted: orders refer to it).

use schemas::catalog::{
    AttachProductImage, CatalogCommand, CatalogEvent, ChangeProductCategory, CreateProduct,
    DiscontinueProduct, ProductCategoryChanged, ProductCreated, ProductDetailsUpdated,
    ProductDiscontinued, ProductImageAttached, ProductRepriced, RepriceProduct,
    UpdateProductDetails,
};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::validate::{self, MAX_TEXT, MAX_URL};

/// Images per product at most: a listing, not a media library.
pub const MAX_IMAGES: usize = 20;

/// An image reference (the file lives in an object store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductImage {
    pub image_key: String,
    pub url: String,
    pub alt_text: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// False until `ProductCreated`.
    pub exists: bool,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub category: String,
    pub price_minor: i64,
    pub currency: String,
    pub images: Vec<ProductImage>,
    pub discontinued: bool,
}

/// Why a catalog command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("the product already exists")]
    AlreadyExists,
    #[error("no such product")]
    NotFound,
    #[error("the product is discontinued")]
    Discontinued,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("the product already has an image `{0}`")]
    ImageAlreadyAttached(String),
    #[error("a product has at most {MAX_IMAGES} images")]
    TooManyImages,
}

impl DomainError for ProductError {
    fn code(&self) -> &'static str {
        match self {
            ProductError::AlreadyExists => "already-exists",
            ProductError::NotFound => "not-found",
            ProductError::Discontinued => "discontinued",
            ProductError::InvalidField { .. } => "invalid-field",
            ProductError::ImageAlreadyAttached(_) => "image-already-attached",
            ProductError::TooManyImages => "too-many-images",
        }
    }
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), ProductError> {
    result.map_err(|reason| ProductError::InvalidField { field, reason })
}

fn check_description(description: Option<&String>) -> Result<(), ProductError> {
    match description {
        Some(d) if d.chars().count() > 10 * MAX_TEXT => Err(ProductError::InvalidField {
            field: "description",
            reason: "is too long",
        }),
        _ => Ok(()),
    }
}

impl Product {
    /// Every command but `CreateProduct` needs a product that exists and,
    /// except `DiscontinueProduct`, one still on sale.
    fn on_sale(&self) -> Result<(), ProductError> {
        if !self.exists {
            Err(ProductError::NotFound)
        } else if self.discontinued {
            Err(ProductError::Discontinued)
        } else {
            Ok(())
        }
    }

    fn create(&self, c: &CreateProduct) -> Result<Vec<CatalogEvent>, ProductError> {
        if self.exists {
            return Err(ProductError::AlreadyExists);
        }
        check("sku", validate::text(&c.sku, MAX_TEXT))?;
        check("name", validate::text(&c.name, MAX_TEXT))?;
        check_description(c.description.as_ref())?;
        check("category", validate::text(&c.category, MAX_TEXT))?;
        check("price_minor", validate::price(c.price_minor))?;
        check("currency", validate::currency(&c.currency))?;
        Ok(vec![CatalogEvent::ProductCreated(ProductCreated {
            sku: c.sku.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            category: c.category.clone(),
            price_minor: c.price_minor,
            currency: c.currency.clone(),
        })])
    }

    fn update_details(&self, c: &UpdateProductDetails) -> Result<Vec<CatalogEvent>, ProductError> {
        self.on_sale()?;
        check("name", validate::text(&c.name, MAX_TEXT))?;
        check_description(c.description.as_ref())?;
        if c.name == self.name && c.description == self.description {
            return Ok(Vec::new()); // nothing changes: nothing to record
        }
        Ok(vec![CatalogEvent::ProductDetailsUpdated(
            ProductDetailsUpdated {
                name: c.name.clone(),
                description: c.description.clone(),
                // Read models keyed by the name replace their entries
                // from the event alone.
                previous_name: Some(self.name.clone()),
                category: Some(self.category.clone()),
            },
        )])
    }

    fn reprice(&self, c: &RepriceProduct) -> Result<Vec<CatalogEvent>, ProductError> {
        self.on_sale()?;
        check("price_minor", validate::price(c.price_minor))?;
        check("currency", validate::currency(&c.currency))?;
        if c.price_minor == self.price_minor && c.currency == self.currency {
            return Ok(Vec::new());
        }
        Ok(vec![CatalogEvent::ProductRepriced(ProductRepriced {
            price_minor: c.price_minor,
            currency: c.currency.clone(),
            previous_price_minor: self.price_minor,
            previous_currency: self.currency.clone(),
        })])
    }

    fn change_category(
        &self,
        c: &ChangeProductCategory,
    ) -> Result<Vec<CatalogEvent>, ProductError> {
        self.on_sale()?;
        check("category", validate::text(&c.category, MAX_TEXT))?;
        if c.category == self.category {
            return Ok(Vec::new());
        }
        Ok(vec![CatalogEvent::ProductCategoryChanged(
            ProductCategoryChanged {
                category: c.category.clone(),
                previous_category: self.category.clone(),
                // Read models keyed by category and name move their entries
                // from the event alone.
                name: Some(self.name.clone()),
            },
        )])
    }

    fn attach_image(&self, c: &AttachProductImage) -> Result<Vec<CatalogEvent>, ProductError> {
        self.on_sale()?;
        check("image_key", validate::text(&c.image_key, MAX_URL))?;
        check("url", validate::text(&c.url, MAX_URL))?;
        if c.url.chars().any(char::is_whitespace) {
            return Err(ProductError::InvalidField {
                field: "url",
                reason: "must not contain spaces",
            });
        }
        if let Some(alt) = &c.alt_text {
            check("alt_text", validate::text(alt, MAX_TEXT))?;
        }
        if self.images.iter().any(|i| i.image_key == c.image_key) {
            return Err(ProductError::ImageAlreadyAttached(c.image_key.clone()));
        }
        if self.images.len() >= MAX_IMAGES {
            return Err(ProductError::TooManyImages);
        }
        Ok(vec![CatalogEvent::ProductImageAttached(
            ProductImageAttached {
                image_key: c.image_key.clone(),
                url: c.url.clone(),
                alt_text: c.alt_text.clone(),
            },
        )])
    }

    fn discontinue(&self, c: &DiscontinueProduct) -> Result<Vec<CatalogEvent>, ProductError> {
        if !self.exists {
            return Err(ProductError::NotFound);
        }
        if self.discontinued {
            return Ok(Vec::new()); // already off sale: the request is satisfied
        }
        if let Some(reason) = &c.reason {
            check("reason", validate::text(reason, MAX_TEXT))?;
        }
        Ok(vec![CatalogEvent::ProductDiscontinued(
            ProductDiscontinued {
                reason: c.reason.clone(),
                // What the listing and search entries are keyed by, so read
                // models remove them from the event alone.
                name: Some(self.name.clone()),
                category: Some(self.category.clone()),
            },
        )])
    }
}

impl Aggregate for Product {
    const TYPE: &'static str = "Product";
    type Facts = ();
    type Command = CatalogCommand;
    type Event = CatalogEvent;
    type Error = ProductError;

    fn decide(
        &self,
        command: &CatalogCommand,
        _: &DecisionContext,
    ) -> Result<Vec<CatalogEvent>, ProductError> {
        match command {
            CatalogCommand::CreateProduct(c) => self.create(c),
            CatalogCommand::UpdateProductDetails(c) => self.update_details(c),
            CatalogCommand::RepriceProduct(c) => self.reprice(c),
            CatalogCommand::ChangeProductCategory(c) => self.change_category(c),
            CatalogCommand::AttachProductImage(c) => self.attach_image(c),
            CatalogCommand::DiscontinueProduct(c) => self.discontinue(c),
        }
    }

    fn evolve(&mut self, event: &CatalogEvent) {
        match event {
            CatalogEvent::ProductCreated(e) => {
                *self = Product {
                    exists: true,
                    sku: e.sku.clone(),
                    name: e.name.clone(),
                    description: e.description.clone(),
                    category: e.category.clone(),
                    price_minor: e.price_minor,
                    currency: e.currency.clone(),
                    images: Vec::new(),
                    discontinued: false,
                }
            }
            CatalogEvent::ProductDetailsUpdated(e) => {
                self.name = e.name.clone();
                self.description = e.description.clone();
            }
            CatalogEvent::ProductRepriced(e) => {
                self.price_minor = e.price_minor;
                self.currency = e.currency.clone();
            }
            CatalogEvent::ProductCategoryChanged(e) => self.category = e.category.clone(),
            CatalogEvent::ProductImageAttached(e) => self.images.push(ProductImage {
                image_key: e.image_key.clone(),
                url: e.url.clone(),
                alt_text: e.alt_text.clone(),
            }),
            CatalogEvent::ProductDiscontinued(_) => self.discontinued = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::AggregateTest;

    fn created() -> CatalogEvent {
        CatalogEvent::ProductCreated(ProductCreated {
            sku: "MUG-1".into(),
            name: "Mug".into(),
            description: None,
            category: "kitchen".into(),
            price_minor: 1299,
            currency: "EUR".into(),
        })
    }

    fn create(price_minor: i64, currency: &str, name: &str) -> CatalogCommand {
        CatalogCommand::CreateProduct(CreateProduct {
            sku: "MUG-1".into(),
            name: name.into(),
            description: None,
            category: "kitchen".into(),
            price_minor,
            currency: currency.into(),
        })
    }

    fn discontinued() -> CatalogEvent {
        CatalogEvent::ProductDiscontinued(ProductDiscontinued {
            reason: None,
            name: Some("Mug".into()),
            category: Some("kitchen".into()),
        })
    }

    fn reprice(price_minor: i64, currency: &str) -> CatalogCommand {
        CatalogCommand::RepriceProduct(RepriceProduct {
            price_minor,
            currency: currency.into(),
        })
    }

    fn image(key: &str) -> CatalogCommand {
        CatalogCommand::AttachProductImage(AttachProductImage {
            image_key: key.into(),
            url: format!("https://img.example/{key}.jpg"),
            alt_text: Some("a mug".into()),
        })
    }

    #[test]
    fn create_records_the_product() {
        let state = AggregateTest::<Product>::given_no_history()
            .when(create(1299, "EUR", "Mug"))
            .then_expect_events(vec![created()]);
        assert!(state.exists && state.price_minor == 1299);
    }

    #[test]
    fn create_refusals() {
        AggregateTest::<Product>::given(vec![created()])
            .when(create(1299, "EUR", "Mug"))
            .then_expect_error("already-exists");
        for (price, currency, name) in [
            (-1, "EUR", "Mug"),
            (1, "eur", "Mug"),
            (1, "EUR", " "),
            (1, "EUR", "a\u{0}b"),
        ] {
            AggregateTest::<Product>::given_no_history()
                .when(create(price, currency, name))
                .then_expect_error("invalid-field");
        }
    }

    #[test]
    fn update_details_records_the_new_values_and_skips_no_ops() {
        let update = |name: &str| {
            CatalogCommand::UpdateProductDetails(UpdateProductDetails {
                name: name.into(),
                description: Some("Blue".into()),
            })
        };
        AggregateTest::<Product>::given(vec![created()])
            .when(update("Big mug"))
            .then_expect_events(vec![CatalogEvent::ProductDetailsUpdated(
                ProductDetailsUpdated {
                    name: "Big mug".into(),
                    description: Some("Blue".into()),
                    previous_name: Some("Mug".into()),
                    category: Some("kitchen".into()),
                },
            )]);
        let same = CatalogCommand::UpdateProductDetails(UpdateProductDetails {
            name: "Mug".into(),
            description: None,
        });
        AggregateTest::<Product>::given(vec![created()])
            .when(same)
            .then_expect_events(vec![]);
        AggregateTest::<Product>::given(vec![created()])
            .when(update(""))
            .then_expect_error("invalid-field");
        AggregateTest::<Product>::given_no_history()
            .when(update("X"))
            .then_expect_error("not-found");
        AggregateTest::<Product>::given(vec![created(), discontinued()])
            .when(update("X"))
            .then_expect_error("discontinued");
    }

    #[test]
    fn reprice_records_old_and_new_price() {
        AggregateTest::<Product>::given(vec![created()])
            .when(reprice(999, "EUR"))
            .then_expect_events(vec![CatalogEvent::ProductRepriced(ProductRepriced {
                price_minor: 999,
                currency: "EUR".into(),
                previous_price_minor: 1299,
                previous_currency: "EUR".into(),
            })]);
        AggregateTest::<Product>::given(vec![created()])
            .when(reprice(1299, "EUR"))
            .then_expect_events(vec![]);
        AggregateTest::<Product>::given(vec![created()])
            .when(reprice(-5, "EUR"))
            .then_expect_error("invalid-field");
        AggregateTest::<Product>::given(vec![created()])
            .when(reprice(5, "XX"))
            .then_expect_error("invalid-field");
        AggregateTest::<Product>::given_no_history()
            .when(reprice(5, "EUR"))
            .then_expect_error("not-found");
        AggregateTest::<Product>::given(vec![created(), discontinued()])
            .when(reprice(5, "EUR"))
            .then_expect_error("discontinued");
    }

    #[test]
    fn change_category() {
        let to = |c: &str| {
            CatalogCommand::ChangeProductCategory(ChangeProductCategory { category: c.into() })
        };
        AggregateTest::<Product>::given(vec![created()])
            .when(to("office"))
            .then_expect_events(vec![CatalogEvent::ProductCategoryChanged(
                ProductCategoryChanged {
                    category: "office".into(),
                    previous_category: "kitchen".into(),
                    name: Some("Mug".into()),
                },
            )]);
        AggregateTest::<Product>::given(vec![created()])
            .when(to("kitchen"))
            .then_expect_events(vec![]);
        AggregateTest::<Product>::given(vec![created()])
            .when(to(""))
            .then_expect_error("invalid-field");
        AggregateTest::<Product>::given_no_history()
            .when(to("office"))
            .then_expect_error("not-found");
        AggregateTest::<Product>::given(vec![created(), discontinued()])
            .when(to("office"))
            .then_expect_error("discontinued");
    }

    #[test]
    fn attach_image() {
        let state = AggregateTest::<Product>::given(vec![created()])
            .when(image("front"))
            .then_expect_events(vec![CatalogEvent::ProductImageAttached(
                ProductImageAttached {
                    image_key: "front".into(),
                    url: "https://img.example/front.jpg".into(),
                    alt_text: Some("a mug".into()),
                },
            )]);
        assert_eq!(state.images.len(), 1);
        let attached = |key: &str| {
            CatalogEvent::ProductImageAttached(ProductImageAttached {
                image_key: key.into(),
                url: format!("https://img.example/{key}.jpg"),
                alt_text: None,
            })
        };
        AggregateTest::<Product>::given(vec![created(), attached("front")])
            .when(image("front"))
            .then_expect_error("image-already-attached");
        let full: Vec<CatalogEvent> = std::iter::once(created())
            .chain((0..MAX_IMAGES).map(|i| attached(&format!("i{i}"))))
            .collect();
        AggregateTest::<Product>::given(full)
            .when(image("one-more"))
            .then_expect_error("too-many-images");
        let spaced = CatalogCommand::AttachProductImage(AttachProductImage {
            image_key: "k".into(),
            url: "https://img.example/a b.jpg".into(),
            alt_text: None,
        });
        AggregateTest::<Product>::given(vec![created()])
            .when(spaced)
            .then_expect_error("invalid-field");
        AggregateTest::<Product>::given_no_history()
            .when(image("front"))
            .then_expect_error("not-found");
        AggregateTest::<Product>::given(vec![created(), discontinued()])
            .when(image("front"))
            .then_expect_error("discontinued");
    }

    /// Read models keyed by name and category take the current ones from
    /// the events, so they must follow renames and moves.
    #[test]
    fn events_carry_the_current_name_and_category() {
        let renamed = CatalogEvent::ProductDetailsUpdated(ProductDetailsUpdated {
            name: "Big mug".into(),
            description: None,
            previous_name: Some("Mug".into()),
            category: Some("kitchen".into()),
        });
        let moved = CatalogEvent::ProductCategoryChanged(ProductCategoryChanged {
            category: "office".into(),
            previous_category: "kitchen".into(),
            name: Some("Big mug".into()),
        });
        AggregateTest::<Product>::given(vec![created(), renamed.clone()])
            .when(CatalogCommand::ChangeProductCategory(
                ChangeProductCategory {
                    category: "office".into(),
                },
            ))
            .then_expect_events(vec![moved.clone()]);
        AggregateTest::<Product>::given(vec![created(), renamed.clone(), moved.clone()])
            .when(CatalogCommand::UpdateProductDetails(UpdateProductDetails {
                name: "Huge mug".into(),
                description: None,
            }))
            .then_expect_events(vec![CatalogEvent::ProductDetailsUpdated(
                ProductDetailsUpdated {
                    name: "Huge mug".into(),
                    description: None,
                    previous_name: Some("Big mug".into()),
                    category: Some("office".into()),
                },
            )]);
        AggregateTest::<Product>::given(vec![created(), renamed, moved])
            .when(CatalogCommand::DiscontinueProduct(DiscontinueProduct {
                reason: None,
            }))
            .then_expect_events(vec![CatalogEvent::ProductDiscontinued(
                ProductDiscontinued {
                    reason: None,
                    name: Some("Big mug".into()),
                    category: Some("office".into()),
                },
            )]);
    }

    #[test]
    fn discontinue_once() {
        let stop = || {
            CatalogCommand::DiscontinueProduct(DiscontinueProduct {
                reason: Some("end of line".into()),
            })
        };
        let state = AggregateTest::<Product>::given(vec![created()])
            .when(stop())
            .then_expect_events(vec![CatalogEvent::ProductDiscontinued(
                ProductDiscontinued {
                    reason: Some("end of line".into()),
                    name: Some("Mug".into()),
                    category: Some("kitchen".into()),
                },
            )]);
        assert!(state.discontinued);
        AggregateTest::<Product>::given(vec![created(), discontinued()])
            .when(stop())
            .then_expect_events(vec![]);
        AggregateTest::<Product>::given_no_history()
            .when(stop())
            .then_expect_error("not-found");
    }
}
