//! Per-client rate limiting of the order API: a token bucket (GCRA, `governor`) per
//! client, where the client is the token's name when authenticated and otherwise the
//! peer's IP address (an IPv6 peer by its /64, the block one host usually holds).
//! Over the limit the answer is 429 with `Retry-After`.
//!
//! Behind a reverse proxy every unauthenticated request shares the proxy's address:
//! `X-Forwarded-For` is not trusted, because any client can send it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::IntCounterVec;
use tokio_util::sync::CancellationToken;

use crate::order_service::http::api_error::ApiError;
use crate::order_service::http::api_tokens::ClientName;

/// How often clients whose bucket is full again are dropped from the limiter's map, so
/// the map holds only clients seen within about this long plus their refill time.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// `client` label of the rate-limited counter for clients known only by address
/// (addresses would make the label's cardinality unbounded).
pub const ANONYMOUS_CLIENT: &str = "anonymous";

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated client, by its token's name.
    Named(ClientName),
    /// An unauthenticated client, by address.
    Address(IpAddr),
}

impl ClientKey {
    /// The key of a request known only by its peer address (an IPv6 address reduced to
    /// its /64); unspecified when the connection's address is unknown.
    pub fn of_peer(request: &Request) -> Self {
        let ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Self::Address(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
            },
            v4 => v4,
        })
    }

    /// The `client` label of the rate-limited counter.
    pub fn label(&self) -> &str {
        match self {
            Self::Named(name) => name,
            Self::Address(_) => ANONYMOUS_CLIENT,
        }
    }
}

/// The per-client limiter; clones share the buckets.
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<ClientKey>>,
    limited: IntCounterVec,
}

impl std::fmt::Debug for ClientRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRateLimit")
            .field("clients", &self.limiter.len())
            .finish()
    }
}

impl ClientRateLimit {
    /// A limiter refilling `per_second` requests a second (fractions allowed) up to
    /// `burst`; `None` when either is 0 (rate limiting off). Rejections are counted in
    /// `limited` by client name.
    pub fn new(per_second: f64, burst: u32, limited: IntCounterVec) -> Option<Self> {
        let burst = NonZeroU32::new(burst)?;
        if per_second <= 0.0 || !per_second.is_finite() {
            return None;
        }
        let quota =
            Quota::with_period(Duration::from_secs_f64(1.0 / per_second))?.allow_burst(burst);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            limited,
        })
    }

    /// `Ok` when `key` may send a request now, else how long until it may (counted).
    pub fn check(&self, key: &ClientKey) -> Result<(), Duration> {
        self.limiter.check_key(key).map_err(|not_until| {
            self.limited.with_label_values(&[key.label()]).inc();
            not_until.wait_time_from(self.limiter.clock().now())
        })
    }

    #[cfg(test)]
    /// Clients tracked now.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }

    /// Drops clients whose bucket refilled, every [`PRUNE_INTERVAL`], until `token` is
    /// cancelled.
    pub async fn prune(self, token: CancellationToken) {
        let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    self.limiter.retain_recent();
                    self.limiter.shrink_to_fit();
                }
                () = token.cancelled() => return,
            }
        }
    }
}

/// The 429 answer to a client that may send again after `wait`: `Retry-After` in whole
/// seconds, at least 1.
pub fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("rate limit exceeded; retry in {seconds} s"),
        None,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("limited", "test"), &["client"]).unwrap()
    }

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        // One request per 1000 s: nothing refills while the test runs.
        let limit = ClientRateLimit::new(0.001, 2, counter()).unwrap();
        let alice = ClientKey::Named("alice".into());
        let bob = ClientKey::Named("bob".into());
        assert!(limit.check(&alice).is_ok());
        assert!(limit.check(&alice).is_ok());
        let wait = limit.check(&alice).unwrap_err();
        assert!(wait > Duration::from_secs(900), "{wait:?}");
        assert!(limit.check(&bob).is_ok());
        assert_eq!(limit.tracked_clients(), 2);
    }

    #[test]
    fn zero_disables_and_retry_after_is_whole_seconds() {
        assert!(ClientRateLimit::new(0.0, 10, counter()).is_none());
        assert!(ClientRateLimit::new(10.0, 0, counter()).is_none());
        let response = too_many_requests(Duration::from_millis(20));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            too_many_requests(Duration::from_millis(2001)).headers()[header::RETRY_AFTER],
            "3"
        );
    }

    #[test]
    fn ipv6_peers_count_by_their_64_block() {
        let key = |address: &str| {
            let mut request = Request::new(axum::body::Body::empty());
            request
                .extensions_mut()
                .insert(ConnectInfo(address.parse::<SocketAddr>().unwrap()));
            ClientKey::of_peer(&request)
        };
        assert_eq!(key("[2001:db8::1]:1"), key("[2001:db8::ffff]:2"));
        assert_ne!(key("[2001:db8::1]:1"), key("[2001:db8:0:1::1]:1"));
        assert_eq!(key("[::ffff:10.0.0.1]:1"), key("10.0.0.1:9"));
    }
}
