//! What every command endpoint shares, written once over the generated
//! document so it cannot drift from the handlers' own annotations: problem
//! bodies typed `application/problem+json` as they are served, and the
//! answers any endpoint can give whatever its handler says — a malformed
//! request (400), a missing or bad token (401) or role (403) where a bearer
//! is needed, a body too large (413), not JSON (415) or of the wrong shape
//! (422), a reused `Idempotency-Key` (409/422), and our own failure (500) or
//! an unreachable log (503). The API fuzz run (quickstore/tests/api_fuzz.rs)
//! checks every answer against this document.

use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Required};

/// Applies the shared answers to every operation of `api`.
pub fn finish(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for (method, op) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ] {
            if let Some(op) = op {
                shared_answers(op, &method);
                platform::openapi::problem_media_type(op);
                describe_responses(op);
            }
        }
    }
    document_rate_limits(api);
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

fn shared_answers(op: &mut Operation, method: &HttpMethod) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let changes_state = matches!(
        method,
        HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch | HttpMethod::Delete
    );
    if changes_state {
        op.parameters.get_or_insert_with(Vec::new).push(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Retry safely: the same key (1 to 255 visible ASCII characters) with the same request replays the first final answer; with a different request it is refused (422). A 202 is not final: the same request again under its key asks for the outcome again (the same command, never a second one).",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).build()))
                .build(),
        );
    }
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.into())
            .or_insert_with(|| problem(description));
    };
    add(
        "400",
        "A malformed request: a path id, a header (the problem's `field` names it) or a body that is not JSON",
    );
    if secured || changes_state {
        // The idempotency layer checks a bearer it is given on any
        // state-changing request, even on an endpoint open to anyone.
        add(
            "401",
            "No bearer token, or one that is expired, revoked, malformed or not for this API",
        );
    }
    if secured {
        add("403", "The caller's roles do not allow this");
    }
    if changes_state {
        add(
            "409",
            "The same `Idempotency-Key` is still being answered; or the command was refused in the aggregate's current state",
        );
        add(
            "422",
            "`idempotency-key-reused`: the key was used for a different request; or a field at fault (the problem's `field` names it)",
        );
    }
    if has_body || changes_state {
        add("413", "The request body is larger than the limit");
    }
    if has_body {
        add(
            "415",
            "The body is not sent as `Content-Type: application/json`",
        );
        add(
            "422",
            "A field of the body is missing, of the wrong type or not acceptable (the problem's `field` names it)",
        );
    }
    add("500", "Our failure: the body holds only an incident id");
    add(
        "503",
        "The event log or a processor did not answer: retry after `Retry-After`",
    );
}

/// What each status means, where the handler's doc did not say, and the
/// 401's challenge header.
fn describe_responses(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status == "401" {
            response.headers.insert(
                "WWW-Authenticate".into(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String).build())
                    .description(Some("`Bearer realm=\"quickstore\"`"))
                    .build(),
            );
        }
        if !response.description.is_empty() {
            continue;
        }
        response.description = match status.as_str() {
            "200" => "OK: the command was accepted",
            "201" => "Created",
            "202" => "Accepted, outcome pending: poll the status URL",
            "204" => "Done",
            "400" => "A malformed request (the problem's `field` names the part at fault)",
            "401" => "No bearer token, or one that is expired, revoked or malformed",
            "403" => "The caller's roles do not allow this",
            "404" => "Not found, or not the caller's",
            "409" => "Refused in the aggregate's current state, or a version conflict",
            "410" => "The customer was forgotten",
            "422" => "A field at fault (the problem's `field` names it)",
            "503" => "A dependency did not answer: retry after `Retry-After`",
            _ => "",
        }
        .to_owned();
    }
}

/// Adds the 429 answer to every rate-limited operation (every
/// state-changing one but the gateway's webhook), so the document cannot
/// forget one ([`super::limits`] decides which at run time by the same rule).
fn document_rate_limits(api: &mut utoipa::openapi::OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        if path.starts_with("/webhooks/") {
            continue;
        }
        let why = if path.starts_with("/auth/") {
            "Too many sign-in requests from this address (or logins for this account): retry after `Retry-After` seconds"
        } else {
            "Too many commands from this account (per token subject): retry after `Retry-After` seconds"
        };
        for method in [
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Patch,
            HttpMethod::Delete,
        ] {
            let operation = match method {
                HttpMethod::Post => item.post.as_mut(),
                HttpMethod::Put => item.put.as_mut(),
                HttpMethod::Patch => item.patch.as_mut(),
                _ => item.delete.as_mut(),
            };
            if let Some(operation) = operation {
                operation
                    .responses
                    .responses
                    .entry("429".to_owned())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(why)
                            .content(
                                "application/problem+json",
                                utoipa::openapi::ContentBuilder::new()
                                    .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                                    .build(),
                            )
                            .header(
                                "Retry-After",
                                utoipa::openapi::HeaderBuilder::new()
                                    .schema(
                                        utoipa::openapi::ObjectBuilder::new()
                                            .schema_type(utoipa::openapi::schema::Type::Integer),
                                    )
                                    .description(Some("Seconds until a retry can succeed"))
                                    .build(),
                            )
                            .build()
                            .into()
                    });
            }
        }
    }
}
