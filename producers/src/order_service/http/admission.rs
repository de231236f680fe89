//! Admission of a `/orders` request: who it is, whether its client is within its rate
//! limit, then whether it may enter.
//!
//! The rate limit is checked before a missing or wrong token is refused, so a client
//! guessing tokens is limited by its address like any other unauthenticated caller. An
//! admitted request carries its [`Caller`] (the token's client, or the default client
//! without authentication) in its extensions: the handlers scope orders and idempotency
//! keys to it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::order_service::http::api_tokens::{ApiTokens, Caller, Identity, refusal};
use crate::order_service::http::client_rate_limit::{
    ClientKey, ClientRateLimit, too_many_requests,
};

/// The tokens and the rate limit a request must pass.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// Accepted bearer tokens; empty for no authentication.
    pub tokens: ApiTokens,
    /// The per-client rate limit, if any.
    pub rate_limit: Option<ClientRateLimit>,
}

/// Middleware: 429 with `Retry-After` for a client over its rate limit (a token's
/// client by its name, anyone else by address), then 401 with `WWW-Authenticate` for a
/// missing or unknown token when the service has tokens.
pub async fn admit(
    State(admission): State<Admission>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = admission.tokens.identify(request.headers());
    if let Some(limit) = &admission.rate_limit {
        let key = match &identity {
            Identity::Client(name) => ClientKey::Named(name.clone()),
            _ => ClientKey::of_peer(&request),
        };
        if let Err(wait) = limit.check(&key) {
            tracing::debug!(
                client = key.label(),
                "order API request over the rate limit"
            );
            return too_many_requests(wait);
        }
    }
    if let Some(refused) = refusal(&identity) {
        tracing::debug!(
            ?identity,
            "order API request refused: no valid bearer token"
        );
        return refused;
    }
    // Refused identities returned above: every request that gets here has a caller.
    if let Some(caller) = identity.caller() {
        request.extensions_mut().insert::<Caller>(caller);
    }
    next.run(request).await
}
