//! (deliveries endpoints: being written.)

use utoipa_axum::router::OpenApiRouter;

use crate::http::state::SharedState;

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
}
