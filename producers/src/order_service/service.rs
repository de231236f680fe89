//! Start-up of `order-producer serve`: database and migrations, broker, registry, then the
//! API, the relay and the operations endpoint, all stopped by one cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::order_service::outbox_wake::OutboxWake;
use orderflow_runtime::db;
use orderflow_runtime::db_migration::{self, MigrationTarget};
use orderflow_runtime::ops_server::{OpsServer, Readiness};
use orderflow_schemas::OrderEventSerializer;
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::OrderServiceMetrics;
use crate::order_service::http::admission::Admission;
use crate::order_service::http::client_rate_limit::ClientRateLimit;
use crate::order_service::http::order_api::{ApiAccess, ApiState};
use crate::order_service::http::router;
use crate::order_service::relay::{RELAY_BACKOFF, Relay, RelayConfig};
use crate::order_service::relay_guarantee::DeliveryGuarantee;
use crate::order_service::relay_health::{self, RelayHealth};
use crate::order_service::serve_args::ServeArgs;
use crate::order_service::service_error::{ServiceError, ServiceResult};
use crate::order_service::store::order_store::OrderStore;
use crate::order_service::{database_readiness, housekeeping};
use crate::topic_check;
use orderflow_outbox::schema as migrations;

/// A started service.
#[derive(Debug)]
pub struct RunningService {
    /// Where the order API listens (the real port when `--listen` used port 0).
    pub api_addr: SocketAddr,
    /// Where /metrics, /healthz and /readyz are served, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The service's database pool.
    pub pool: PgPool,
    readiness: Readiness,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningService {
    /// Waits until every task stopped (after the token was cancelled).
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "order service task failed");
            }
        }
        self.readiness.set_ready(false);
    }
}

/// Starts the service: connects and migrates the database, waits for the broker, checks
/// the topic, registers the schema, then serves the API, runs the relay and (when
/// enabled) the operations endpoint until `token` is cancelled.
pub async fn start(
    args: &ServeArgs,
    registry: &prometheus::Registry,
    token: CancellationToken,
) -> ServiceResult<RunningService> {
    args.validate()?;
    // The producer's effective settings, checked before anything is contacted.
    let guarantee =
        DeliveryGuarantee::of(&relay_producer_config(args)).map_err(ServiceError::Config)?;
    let metrics = OrderServiceMetrics::register(registry)
        .map_err(|error| ServiceError::Config(format!("metrics: {error}")))?;
    let access = api_access(args, &metrics)?;
    let readiness = Readiness::default();
    let relay_health = RelayHealth::default();
    let mut tasks = Vec::new();
    let metrics_addr = match args.ops.address()? {
        Some(address) => {
            let (bound, handle) = OpsServer::new(address, registry.clone())
                .with_readiness(readiness.clone())
                .with_routes(relay_health::routes(relay_health.clone()))
                .spawn(token.child_token())
                .await?;
            tasks.push(handle);
            Some(bound)
        }
        None => None,
    };

    let connected = tokio::select! {
        connected = connect(args) => connected?,
        () = token.cancelled() => return Err(ServiceError::Interrupted),
    };
    let Connected {
        pool,
        relay_pool,
        producer_config,
        producer,
        serializer,
        max_record_bytes,
        session_options,
    } = connected;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServiceError::Http {
            address: args.listen.to_string(),
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| ServiceError::Http {
        address: args.listen.to_string(),
        source,
    })?;
    let wake = Arc::new(OutboxWake::default());
    let state = ApiState {
        store: OrderStore::new(
            pool.clone(),
            serializer,
            &args.producer_name,
            max_record_bytes,
        ),
        outbox_written: wake.clone(),
        max_body_bytes: args.max_body_bytes,
    };
    if let Some(limit) = &access.admission.rate_limit {
        tasks.push(tokio::spawn(limit.clone().prune(token.child_token())));
    }
    let app = router::router(state, access, metrics.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let api_token = token.child_token();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { api_token.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "order API stopped");
        }
    }));

    // Ready from here on, while the database answers: the relay's health is its own.
    readiness.set_ready(true);
    tasks.push(tokio::spawn(database_readiness::run(
        pool.clone(),
        readiness.clone(),
        token.child_token(),
    )));
    // The topic checks are done: the relay publishes through one transactional
    // producer per slot, built from these settings.
    // Dropping a client waits for its threads to end: not on the runtime's workers.
    tokio::task::spawn_blocking(move || drop(producer));
    let mut producer_config = producer_config;
    producer_config.set(
        "transaction.timeout.ms",
        guarantee.transaction_timeout.as_millis().to_string(),
    );
    let relay = Relay::new(
        relay_pool,
        &session_options,
        producer_config,
        RelayConfig {
            topic: args.topic.clone(),
            batch_size: args.relay_batch_size,
            poll_interval: args.relay_poll_interval,
            backoff: RELAY_BACKOFF,
            max_attempts: args.relay_max_attempts,
            round_wait: args.relay_round_wait,
            transaction_timeout: guarantee.transaction_timeout,
            session_timeout: args.relay_session_timeout,
            transactional_id_prefix: args.relay_transactional_id_prefix.clone(),
        },
        metrics,
        wake,
        relay_health,
    );
    tasks.push(tokio::spawn(relay.run(token.child_token())));
    tasks.push(tokio::spawn(housekeeping::run(
        pool.clone(),
        args.outbox_retention,
        args.housekeeping_interval,
        token.child_token(),
    )));
    tracing::info!(%api_addr, topic = %args.topic, "order service ready");
    Ok(RunningService {
        api_addr,
        metrics_addr,
        pool,
        readiness,
        tasks,
    })
}

/// Pooled connections of the relay, shared by its slots (each holds one only for a
/// statement); its ownership session is a connection of its own.
const RELAY_CONNECTIONS: u32 = 4;

/// Authentication, rate limit and load limits from the flags; logs what is in force,
/// naming token clients but never a token.
fn api_access(args: &ServeArgs, metrics: &OrderServiceMetrics) -> ServiceResult<ApiAccess> {
    let tokens = args.api_tokens()?;
    if tokens.is_empty() {
        if args.listen.ip().is_loopback() {
            tracing::info!("order API authentication off (listening on loopback only)");
        } else {
            tracing::warn!(listen = %args.listen, "order API authentication off beyond loopback (--allow-unauthenticated)");
        }
    } else {
        tracing::info!(
            clients = %tokens.names().join(","),
            "order API requires bearer tokens"
        );
    }
    let rate_limit = ClientRateLimit::new(
        args.rate_limit_per_second,
        args.rate_limit_burst,
        metrics.api_rate_limited.clone(),
    );
    let load = args.load_limits();
    tracing::info!(
        rate_limit_per_second = args.rate_limit_per_second,
        rate_limit_burst = args.rate_limit_burst,
        rate_limited = rate_limit.is_some(),
        request_timeout = ?load.request_timeout,
        max_concurrent_requests = ?load.max_concurrent_requests,
        "order API limits"
    );
    Ok(ApiAccess {
        admission: Admission { tokens, rate_limit },
        load,
    })
}

/// What start-up connected.
struct Connected {
    /// The database, migrated: the API's connections.
    pool: PgPool,
    /// The relay's own connections, so that API traffic never makes it wait for one.
    relay_pool: PgPool,
    /// The relay's producer settings (to replace the producer after a fatal error).
    producer_config: ClientConfig,
    /// The relay's producer; the topic exists.
    producer: FutureProducer,
    /// The event serializer; the schema is registered.
    serializer: OrderEventSerializer,
    /// The largest record the producer may send to the topic.
    max_record_bytes: usize,
    /// How the relay opens its slot-ownership session.
    session_options: PgConnectOptions,
}

/// The relay producer's configuration: the producer settings, then the user's
/// `client.properties` and `--kafka-option`s.
fn relay_producer_config(args: &ServeArgs) -> ClientConfig {
    let mut config = args.producer.client_config(&args.kafka);
    config.set("client.id", "order-service-relay");
    args.kafka.apply_overrides(&mut config);
    config
}

async fn connect(args: &ServeArgs) -> ServiceResult<Connected> {
    let url = args.resolved_database_url()?;
    let pool = db::connect(
        &url,
        args.database_max_connections,
        args.database_connect_timeout,
    )
    .await?;
    db_migration::migrate(
        &migrations::migrator(),
        &pool,
        MigrationTarget {
            migration_url: args.database_migration_url.as_deref(),
            schema: migrations::SCHEMA,
            connect_deadline: args.database_connect_timeout,
        },
    )
    .await?;
    let relay_pool = db::connect(&url, RELAY_CONNECTIONS, args.database_connect_timeout).await?;
    let session_options = relay_pool.connect_options().as_ref().clone();

    args.kafka.wait_for_brokers().await?;
    let config = relay_producer_config(args);
    let producer: FutureProducer = config.create()?;
    if topic_check::partition_count(&producer, &args.topic)
        .await?
        .is_none()
    {
        return Err(ServiceError::Config(topic_check::missing_topic_message(
            &args.topic,
            args.kafka.brokers(),
        )));
    }

    let max_record_bytes = topic_check::max_record_bytes(&config, &args.topic).await?;

    let registry = args.registry.client(args.kafka.config_file.as_ref())?;
    let serializer = OrderEventSerializer::with_startup_timeout(
        &registry,
        &args.topic,
        args.registry_connect_timeout,
    )
    .await?;
    Ok(Connected {
        pool,
        relay_pool,
        producer_config: config,
        producer,
        serializer,
        max_record_bytes,
        session_options,
    })
}
