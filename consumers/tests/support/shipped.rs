//! Waiting for orders to reach the end of their lifecycle in the projection.

use std::time::Duration;

use super::{TestEnv, wait_until};

impl TestEnv {
    /// Waits up to `limit` until every order of `orders` reads `shipped`; fails with
    /// `what` otherwise.
    pub async fn wait_until_shipped<S: AsRef<str>>(
        &self,
        orders: &[S],
        limit: Duration,
        what: &str,
    ) {
        wait_until(limit, what, || async {
            let applied = self.orders().await;
            orders.iter().all(|order| {
                applied
                    .get(order.as_ref())
                    .is_some_and(|(status, _)| status == "shipped")
            })
        })
        .await;
    }
}
