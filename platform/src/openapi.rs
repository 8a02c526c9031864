//! What both APIs' OpenAPI documents share.

use utoipa::openapi::path::Operation;
use utoipa::openapi::RefOr;

/// Problem bodies are served as `application/problem+json` (RFC 9457):
/// utoipa writes every JSON body as `application/json`, so the 4xx and 5xx
/// answers of `op` are moved to the media type the APIs really send.
pub fn problem_media_type(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::T(response) = response {
            if let Some(content) = response.content.shift_remove("application/json") {
                response
                    .content
                    .insert("application/problem+json".into(), content);
            }
        }
    }
}
