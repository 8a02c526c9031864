//! The mixed load: browse, carts and checkout, direct orders, customer
//! cancels, declined cards, and the courier's side (assign, pick up,
//! deliver, fail) — over the HTTP APIs with real tokens, from a seeded
//! RNG, with bounded concurrency. Every order the client placed is
//! remembered with what the client did to it, so quiescence can check
//! that each one ended, and ended the way the client's actions imply.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::client::{Client, Session};

/// Approved by the simulated gateway (docs/payments.md).
const APPROVE: &str = "4242 4242 4242 4242";
/// Declined `card_declined` and `insufficient_funds`.
const DECLINE: [&str; 2] = ["4000 0000 0000 0002", "4000 0000 0000 9995"];

/// How an order should end, from what the client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Expect {
    Completed,
    Cancelled,
    /// The client's last action did not get through (or raced the saga):
    /// any terminal state will do.
    Terminal,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlacedOrder {
    pub order_id: String,
    pub scenario: &'static str,
    pub expect: Expect,
}

/// The counts of what the load did.
#[derive(Debug, Default)]
pub struct LoadStats {
    pub placed: AtomicU64,
    pub direct: AtomicU64,
    pub checkout: AtomicU64,
    pub declined_cards: AtomicU64,
    pub cancels_requested: AtomicU64,
    pub refused: AtomicU64,
    pub browses: AtomicU64,
    pub assigned: AtomicU64,
    pub picked_up: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_deliveries: AtomicU64,
    pub courier_stuck: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadFigures {
    pub orders_placed: u64,
    pub direct_orders: u64,
    pub checkout_orders: u64,
    pub declined_cards: u64,
    pub cancels_requested: u64,
    pub orders_refused: u64,
    pub browses: u64,
    pub courier_assigned: u64,
    pub courier_picked_up: u64,
    pub courier_delivered: u64,
    pub courier_failed: u64,
    pub courier_flows_stuck: u64,
}

impl LoadStats {
    pub fn figures(&self) -> LoadFigures {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LoadFigures {
            orders_placed: get(&self.placed),
            direct_orders: get(&self.direct),
            checkout_orders: get(&self.checkout),
            declined_cards: get(&self.declined_cards),
            cancels_requested: get(&self.cancels_requested),
            orders_refused: get(&self.refused),
            browses: get(&self.browses),
            courier_assigned: get(&self.assigned),
            courier_picked_up: get(&self.picked_up),
            courier_delivered: get(&self.delivered),
            courier_failed: get(&self.failed_deliveries),
            courier_flows_stuck: get(&self.courier_stuck),
        }
    }
}

/// The load's shared state.
#[derive(Debug)]
pub struct Load {
    pub client: Arc<Client>,
    pub admin: Session,
    pub courier: Session,
    pub skus: Vec<String>,
    pub stats: LoadStats,
    pub orders: Mutex<Vec<PlacedOrder>>,
    /// Why courier flows gave up (the first 20): their orders wait for a
    /// courier for good, so quiescence cannot be reached.
    pub stuck_flows: Mutex<Vec<String>>,
    pub stop: AtomicBool,
    pub seed: u64,
    /// Tells keys of different runs apart (keys are scoped per user, and
    /// the users are per run, but a rerun on kept data must not collide).
    pub run_id: String,
}

impl Load {
    pub fn placed(&self) -> u64 {
        self.stats.placed.load(Ordering::Relaxed)
    }

    /// One worker: its own customer (one cart each), its own RNG stream.
    pub async fn worker(self: Arc<Self>, worker: u64, customer: Session) {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_add(worker.wrapping_mul(7919)));
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let key = format!("chaos-{}-w{worker}-{n}", self.run_id);
            let roll = rng.random_range(0..100);
            match roll {
                0..10 => self.browse(&customer, &mut rng).await,
                10..45 => self.direct_order(&customer, &key, &mut rng).await,
                45..60 => self.checkout(&customer, &key, &mut rng).await,
                60..75 => self.declined(&customer, &key, &mut rng).await,
                _ => self.cancelled(&customer, &key, &mut rng).await,
            }
        }
    }

    fn lines(&self, rng: &mut StdRng) -> Vec<Value> {
        let count = rng.random_range(1..=2);
        let mut skus = self.skus.clone();
        (0..count)
            .filter_map(|_| {
                if skus.is_empty() {
                    return None;
                }
                let sku = skus.remove(rng.random_range(0..skus.len()));
                Some(json!({"sku": sku, "quantity": rng.random_range(1..=3)}))
            })
            .collect()
    }

    fn address() -> Value {
        json!({"recipient": "Chaos Monkey", "line1": "1 Loopback Road", "city": "Berlin",
               "postal_code": "10115", "country": "DE"})
    }

    async fn browse(&self, customer: &Session, rng: &mut StdRng) {
        let sku = &self.skus[rng.random_range(0..self.skus.len())];
        for path in [
            "/products".to_owned(),
            format!("/products/{sku}"),
            format!("/stock/{sku}"),
            format!("/customers/{}/orders", customer.customer_id),
        ] {
            let _ = self
                .client
                .query(customer, &path, Duration::from_secs(30))
                .await;
        }
        self.stats.browses.fetch_add(1, Ordering::Relaxed);
    }

    /// POST /orders; the order id when it was accepted.
    async fn place(
        &self,
        customer: &Session,
        key: &str,
        card: &str,
        rng: &mut StdRng,
    ) -> Option<String> {
        let body = json!({"lines": self.lines(rng), "payment": {"card_number": card},
                          "shipping_address": Self::address()});
        let reply = self
            .client
            .command(
                customer,
                Method::POST,
                "/orders",
                Some(body),
                key,
                "place order",
            )
            .await?;
        if !reply.ok() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.stats.placed.fetch_add(1, Ordering::Relaxed);
        reply.body["order_id"].as_str().map(str::to_owned)
    }

    fn remember(&self, order_id: String, scenario: &'static str, expect: Expect) -> usize {
        match self.orders.lock() {
            Ok(mut orders) => {
                orders.push(PlacedOrder {
                    order_id,
                    scenario,
                    expect,
                });
                orders.len() - 1
            }
            Err(_) => 0,
        }
    }

    fn expect(&self, index: usize, expect: Expect) {
        if let Ok(mut orders) = self.orders.lock() {
            if let Some(o) = orders.get_mut(index) {
                o.expect = expect;
            }
        }
    }

    async fn direct_order(&self, customer: &Session, key: &str, rng: &mut StdRng) {
        if let Some(order_id) = self.place(customer, key, APPROVE, rng).await {
            self.stats.direct.fetch_add(1, Ordering::Relaxed);
            let index = self.remember(order_id.clone(), "direct", Expect::Terminal);
            self.courier_flow(&order_id, key, index, rng).await;
        }
    }

    async fn checkout(&self, customer: &Session, key: &str, rng: &mut StdRng) {
        let cart = format!("/carts/{}", customer.customer_id);
        for (i, line) in self.lines(rng).into_iter().enumerate() {
            let reply = self
                .client
                .command(
                    customer,
                    Method::POST,
                    &format!("{cart}/lines"),
                    Some(line),
                    &format!("{key}-line{i}"),
                    "add cart line",
                )
                .await;
            if !reply.is_some_and(|r| r.ok()) {
                return;
            }
        }
        let body =
            json!({"payment": {"card_number": APPROVE}, "shipping_address": Self::address()});
        let Some(reply) = self
            .client
            .command(
                customer,
                Method::POST,
                &format!("{cart}/checkout"),
                Some(body),
                key,
                "checkout",
            )
            .await
        else {
            return;
        };
        let Some(order_id) = reply.body["order_id"].as_str().filter(|_| reply.ok()) else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.stats.placed.fetch_add(1, Ordering::Relaxed);
        self.stats.checkout.fetch_add(1, Ordering::Relaxed);
        let index = self.remember(order_id.to_owned(), "checkout", Expect::Terminal);
        self.courier_flow(order_id, key, index, rng).await;
    }

    async fn declined(&self, customer: &Session, key: &str, rng: &mut StdRng) {
        let card = DECLINE[rng.random_range(0..DECLINE.len())];
        if let Some(order_id) = self.place(customer, key, card, rng).await {
            self.stats.declined_cards.fetch_add(1, Ordering::Relaxed);
            self.remember(order_id, "declined", Expect::Cancelled);
        }
    }

    async fn cancelled(&self, customer: &Session, key: &str, rng: &mut StdRng) {
        let Some(order_id) = self.place(customer, key, APPROVE, rng).await else {
            return;
        };
        self.stats.direct.fetch_add(1, Ordering::Relaxed);
        let index = self.remember(order_id.clone(), "customer-cancel", Expect::Terminal);
        let reply = self
            .client
            .command(
                customer,
                Method::POST,
                &format!("/orders/{order_id}/cancellation"),
                Some(json!({"reason": "changed my mind"})),
                &format!("{key}-cancel"),
                "request cancellation",
            )
            .await;
        if reply.is_some_and(|r| r.ok()) {
            self.stats.cancels_requested.fetch_add(1, Ordering::Relaxed);
            // Honoured until pickup, and no courier comes for this one.
            self.expect(index, Expect::Cancelled);
        }
    }

    /// The courier's side: the admin assigns the demo courier once the
    /// saga scheduled the shipment, the courier picks it up and delivers
    /// it — or fails it, before or after pickup.
    async fn courier_flow(&self, order_id: &str, key: &str, index: usize, rng: &mut StdRng) {
        let roll = rng.random_range(0..100);
        let base = format!("/shipments/{order_id}");
        let assign = json!({"courier_id": self.courier.customer_id});
        // Watch the read side for the shipment first: a read is cheap, a
        // command that answers 404 is a transaction through the log.
        self.until_shipment_is_visible(order_id).await;
        if !self
            .until_ok(
                &self.admin,
                Method::PUT,
                &format!("{base}/courier"),
                Some(assign),
                &format!("{key}-assign"),
                "assign courier",
            )
            .await
        {
            self.stats.courier_stuck.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.assigned.fetch_add(1, Ordering::Relaxed);
        let fail = json!({"reason": "recipient_absent"});
        if roll < 5 {
            if self
                .until_ok(
                    &self.courier,
                    Method::POST,
                    &format!("{base}/failure"),
                    Some(fail),
                    &format!("{key}-fail"),
                    "fail delivery",
                )
                .await
            {
                self.stats.failed_deliveries.fetch_add(1, Ordering::Relaxed);
                self.expect(index, Expect::Cancelled);
            }
            return;
        }
        if !self
            .until_ok(
                &self.courier,
                Method::POST,
                &format!("{base}/pickup"),
                None,
                &format!("{key}-pickup"),
                "pick up",
            )
            .await
        {
            self.stats.courier_stuck.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.picked_up.fetch_add(1, Ordering::Relaxed);
        if roll < 15 {
            if self
                .until_ok(
                    &self.courier,
                    Method::POST,
                    &format!("{base}/failure"),
                    Some(fail),
                    &format!("{key}-fail"),
                    "fail delivery",
                )
                .await
            {
                self.stats.failed_deliveries.fetch_add(1, Ordering::Relaxed);
                self.expect(index, Expect::Cancelled);
            }
            return;
        }
        let delivered = json!({"received_by": "Chaos Monkey"});
        if self
            .until_ok(
                &self.courier,
                Method::POST,
                &format!("{base}/delivery"),
                Some(delivered),
                &format!("{key}-deliver"),
                "deliver",
            )
            .await
        {
            self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            self.expect(index, Expect::Completed);
        }
    }

    /// Polls the query API (as the admin) until the saga's shipment for
    /// `order_id` is there, for as long as one command may take. Giving up
    /// is not decided here: the command that follows says.
    async fn until_shipment_is_visible(&self, order_id: &str) {
        let deadline = Instant::now() + self.client.command_deadline;
        let path = format!("/shipments/{order_id}");
        while Instant::now() < deadline && !self.stop.load(Ordering::Relaxed) {
            let seen = self
                .client
                .query(&self.admin, &path, Duration::from_secs(10))
                .await
                .is_some_and(|r| r.status == 200);
            if seen {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// A step that may come too early (404/409 until the saga got there):
    /// tried again under a fresh key — each try is a new request, not a
    /// retry of the same one — for as long as one command may take (the
    /// saga it waits on waits out the same outages).
    async fn until_ok(
        &self,
        who: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: &str,
        what: &str,
    ) -> bool {
        let deadline = Instant::now() + self.client.command_deadline;
        let mut attempt: u32 = 0;
        let give_up = |tries: u32, last: String| {
            if let Ok(mut stuck) = self.stuck_flows.lock() {
                if stuck.len() < 20 {
                    stuck.push(format!(
                        "{path}: {what} gave up after {tries} tries, last {last}"
                    ));
                }
            }
            false
        };
        loop {
            attempt += 1;
            let reply = self
                .client
                .command(
                    who,
                    method.clone(),
                    path,
                    body.clone(),
                    &format!("{key}-{attempt}"),
                    what,
                )
                .await;
            let last = match reply {
                Some(r) if r.ok() => return true,
                Some(r) if r.status == 404 || r.status == 409 => r.status.to_string(),
                Some(r) => return give_up(attempt, format!("{} {}", r.status, r.body["type"])),
                None => return give_up(attempt, "no answer within the client's deadline".into()),
            };
            if Instant::now() > deadline {
                return give_up(attempt, last);
            }
            // Each try is a command through the log: 0.5 s growing to 3 s
            // keeps the polling from being most of the load.
            tokio::time::sleep(Duration::from_millis((500 * u64::from(attempt)).min(3000))).await;
        }
    }

    /// The orders by id.
    pub fn placed_orders(&self) -> HashMap<String, PlacedOrder> {
        self.orders
            .lock()
            .map(|o| o.iter().map(|p| (p.order_id.clone(), p.clone())).collect())
            .unwrap_or_default()
    }
}
