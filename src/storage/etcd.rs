//! etcd v3 storage backend (`--etcd-servers`), as upstream's `storage/etcd3` store.
//!
//! Creates, updates and deletes are transactions comparing the key's mod revision (and its
//! existence) so they are atomic on the server; a failed comparison reads the key in the
//! same transaction to tell NotFound from Conflict. Watches ask for previous values and
//! report a compacted start revision as `Compacted`. Compaction is etcd's own.
//!
//! With several endpoints, as upstream's clientv3: requests go round-robin to the members
//! not known to be down; a request that could not reach its member is sent to the next one
//! (any request if the connection could not even be made, reads also if it broke), and a
//! watch whose member goes away resumes on another from the last revision it delivered.
//! etcd-client's own balancer keeps routing to a dead member and never resumes a watch.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions,
    EventType, GetOptions, Identity, KvClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchClient, WatchOptions, WatchResponse,
};
use futures::StreamExt;

use super::{
    ContinueToken, ErrorCode, EventKind, KeyValue, ListOptions, ListResult, ListStart,
    ProgressRequests, Result, Storage, StorageError, WatchEvent, WatchStream,
};

/// How to reach etcd (`--etcd-servers`, `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`).
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// Client URLs, e.g. `https://10.0.0.1:2379`; requests are balanced across those up.
    pub endpoints: Vec<String>,
    /// CA bundle that signed the servers' certificates.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (needs `key_file`).
    pub cert_file: Option<PathBuf>,
    /// Key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Timeout of the initial connection; `None` keeps the client's default.
    pub connect_timeout: Option<Duration>,
}

/// Largest etcd reply accepted, as upstream's `MaxCallRecvMsgSize` (`math.MaxInt32`).
const MAX_REPLY_BYTES: usize = i32::MAX as usize;

/// How long a member whose connection failed is tried only after the others.
const DOWN_FOR: Duration = Duration::from_secs(5);

/// Rounds over all endpoints a broken watch makes to resume before it ends with the error.
const WATCH_RESUME_ROUNDS: u32 = 5;

/// The etcd-backed [`Storage`].
pub struct EtcdStorage {
    pool: Arc<Pool>,
    lease: tokio::sync::Mutex<SharedLease>,
    /// Every member answers progress requests correctly (see [`answers_progress_requests`]).
    progress_requests: bool,
}

/// Longest a lease is reused for, and the share of the TTL it is reused for when that is
/// shorter; at most this many keys share one lease (upstream's `leaseManager` defaults).
const LEASE_REUSE: Duration = Duration::from_secs(60);
const LEASE_REUSE_SHARE: f64 = 0.05;
const LEASE_MAX_KEYS: u32 = 1000;

/// The lease expiring writes share, as upstream's `leaseManager`: rather than a lease per
/// write, one is granted for a TTL plus a reuse window and attached to the writes of that
/// window whose own TTL it covers, so a burst of Events costs one grant, and each of them
/// lives at least its TTL and at most the window longer.
#[derive(Default)]
struct SharedLease {
    id: i64,
    expires: Option<Instant>,
    keys: u32,
}

impl SharedLease {
    /// The current lease when it outlives `now + ttl` by no more than the reuse window and has
    /// room for another key.
    fn reusable(&mut self, now: Instant, ttl: i64) -> Option<i64> {
        let expires = self.expires?;
        let reuse = reuse_seconds(ttl);
        self.keys += 1;
        let valid = now + Duration::from_secs(ttl as u64) < expires;
        let sufficient = now + Duration::from_secs((ttl + reuse) as u64) > expires;
        (valid && sufficient && self.keys <= LEASE_MAX_KEYS).then_some(self.id)
    }
}

/// Seconds a lease of `ttl` seconds is reused for, and granted for beyond `ttl`.
fn reuse_seconds(ttl: i64) -> i64 {
    ((LEASE_REUSE_SHARE * ttl as f64) as i64).min(LEASE_REUSE.as_secs() as i64)
}

/// A TTL in etcd's whole seconds, rounded up so a key never goes early.
fn ttl_seconds(ttl: Duration) -> i64 {
    (ttl.as_secs_f64().ceil() as i64).max(1)
}

/// One client per endpoint, picked round-robin with members that recently failed last.
struct Pool {
    clients: Vec<Client>,
    next: AtomicUsize,
    down_since: Mutex<Vec<Option<Instant>>>,
}

impl Pool {
    /// Endpoint indexes in the order to try them.
    fn order(&self) -> Vec<usize> {
        let n = self.clients.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = Instant::now();
        let down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        let mut order: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        // Stable: members up keep their round-robin order ahead of those down.
        order.sort_by_key(|&i| down[i].is_some_and(|t| now < t + DOWN_FOR));
        order
    }

    fn mark(&self, i: usize, up: bool) {
        let mut down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        down[i] = if up { None } else { Some(Instant::now()) };
    }

    /// Runs `f` against the members in [`Pool::order`] until one answers, moving on after a
    /// connection failure when that is safe: for any request if the connection could not be
    /// made (it never left), for `idempotent` ones (reads, watches) on any connection failure.
    /// A write whose connection broke under it may have been applied, so its error is returned,
    /// as clientv3 does.
    async fn call<T, F, Fut>(&self, key: &str, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut last = None;
        for i in self.order() {
            match f(self.clients[i].clone()).await {
                Ok(v) => {
                    self.mark(i, true);
                    return Ok(v);
                }
                Err(e) if connection_failed(&e) => {
                    self.mark(i, false);
                    if !(idempotent || never_sent(&e)) {
                        return Err(map_err(key, e));
                    }
                    last = Some(e);
                }
                Err(e) => return Err(map_err(key, e)),
            }
        }
        Err(map_err(key, last.expect("at least one endpoint")))
    }
}

/// A put attaching the key to `lease`; `None` for no lease.
fn put_options(lease: i64) -> Option<PutOptions> {
    (lease != 0).then(|| PutOptions::new().with_lease(lease))
}

/// The request failed because its member could not be reached (not an answer from etcd).
fn connection_failed(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            (i32::from(s.code()) == grpc_code::UNAVAILABLE
                && !s.message().starts_with("etcdserver"))
                || s.message() == "transport error"
                // A connection that died under an open call (hyper's wording via tonic).
                || s.message().starts_with("h2 protocol error")
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// The connection could not be made, so the request never reached any member.
fn never_sent(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if i32::from(s.code()) == grpc_code::UNAVAILABLE && s.message().contains("connect error"))
}

/// A KV client that accepts replies of any size etcd sends: tonic stops at 4 MiB by
/// default, less than an unpaginated list of a few thousand objects (upstream's client
/// raises the limit to `MaxInt32` for the same reason).
fn kv(client: &Client) -> KvClient {
    client
        .kv_client()
        .max_decoding_message_size(MAX_REPLY_BYTES)
}

/// A watch client with the same reply limit: one watch reply can batch many events, each
/// with its previous value.
fn watcher(client: &Client) -> WatchClient {
    client
        .watch_client()
        .max_decoding_message_size(MAX_REPLY_BYTES)
}

impl EtcdStorage {
    /// Connects to `options.endpoints`, with TLS when any of the TLS files is given.
    pub async fn connect(options: EtcdOptions) -> Result<Self> {
        if options.endpoints.is_empty() {
            return Err(StorageError::invalid("", "no etcd endpoints given"));
        }
        let mut connect = ConnectOptions::new();
        if let Some(t) = options.connect_timeout {
            connect = connect.with_connect_timeout(t);
        }
        if let Some(tls) = tls_options(&options)? {
            connect = connect.with_tls(tls);
        }
        let mut clients = Vec::new();
        for endpoint in &options.endpoints {
            let client = Client::connect([endpoint], Some(connect.clone()))
                .await
                .map_err(|e| map_err("", e))?;
            clients.push(client);
        }
        let mut progress_requests = true;
        for (client, endpoint) in clients.iter().zip(&options.endpoints) {
            let version = match client.clone().maintenance_client().status().await {
                Ok(status) => status.version().to_owned(),
                Err(e) => {
                    tracing::warn!(endpoint, error = %e, "cannot read the etcd member's version");
                    String::new()
                }
            };
            if !answers_progress_requests(&version) {
                tracing::info!(
                    endpoint,
                    version,
                    "etcd member cannot answer watch progress requests reliably (needs 3.4.31+ \
                     or 3.5.13+): consistent lists go to etcd instead of the watch cache"
                );
                progress_requests = false;
            }
        }
        let pool = Pool {
            down_since: Mutex::new(vec![None; clients.len()]),
            clients,
            next: AtomicUsize::new(0),
        };
        Ok(Self {
            pool: Arc::new(pool),
            lease: Default::default(),
            progress_requests,
        })
    }

    /// A lease for a key written now to expire `ttl` from now: the shared one, or a new one.
    async fn lease_for(&self, key: &str, ttl: Duration) -> Result<i64> {
        let ttl = ttl_seconds(ttl);
        // Held across the grant, as upstream's, so a burst waits for one grant, not many.
        let mut lease = self.lease.lock().await;
        let now = Instant::now();
        if let Some(id) = lease.reusable(now, ttl) {
            return Ok(id);
        }
        let granted_ttl = ttl + reuse_seconds(ttl);
        // A grant whose connection broke may have been made: the unused lease just expires.
        let granted = self
            .pool
            .call(key, true, |mut c| async move {
                c.lease_grant(granted_ttl, None).await
            })
            .await?;
        *lease = SharedLease {
            id: granted.id(),
            expires: Some(now + Duration::from_secs(granted_ttl as u64)),
            keys: 1,
        };
        Ok(granted.id())
    }

    /// `create` with the key attached to `lease` (0: none).
    async fn create_leased(&self, key: &str, value: Bytes, lease: i64) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), put_options(lease))])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(key, txn).await?;
        if !resp.succeeded() {
            let rev = failed_read(&resp)?.map(|kv| kv.mod_revision).unwrap_or(0);
            return Err(StorageError::already_exists(key, rev));
        }
        header_revision(key, &resp)
    }

    /// `guaranteed_update` with the key attached to `lease` (0: none, which also detaches the
    /// key from a lease it had, as a put without one does in etcd).
    async fn update_leased(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
        lease: i64,
    ) -> Result<KeyValue> {
        let txn = Txn::new()
            .when(preconditions(key, expected_mod_revision))
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(put_options(lease).unwrap_or_default().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(key, txn).await?;
        if !resp.succeeded() {
            return Err(precondition_error(key, expected_mod_revision, &resp));
        }
        let revision = header_revision(key, &resp)?;
        let create_revision = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
                _ => None,
            })
            .unwrap_or(revision);
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision,
            mod_revision: revision,
            layout: Default::default(),
        })
    }

    async fn txn(&self, key: &str, txn: Txn) -> Result<TxnResponse> {
        self.pool
            .call(key, false, |c| {
                let txn = txn.clone();
                async move { kv(&c).txn(txn).await }
            })
            .await
    }

    async fn range(&self, key: &str, options: GetOptions) -> Result<etcd_client::GetResponse> {
        self.pool
            .call(key, true, |c| {
                let options = options.clone();
                async move { kv(&c).get(key, Some(options)).await }
            })
            .await
    }
}

fn tls_options(options: &EtcdOptions) -> Result<Option<TlsOptions>> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| {
            let mut err = StorageError::with_source(ErrorCode::InvalidArgument, "", e);
            err.message = format!("reading {}: {}", p.display(), err.message);
            err
        })
    };
    let mut tls = None::<TlsOptions>;
    if let Some(ca) = &options.ca_file {
        tls = Some(TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca)?)));
    }
    match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(read(cert)?, read(key)?);
            tls = Some(tls.unwrap_or_default().identity(identity));
        }
        (None, None) => {}
        _ => {
            return Err(StorageError::invalid(
                "",
                "etcd client certificate and key must be given together",
            ));
        }
    }
    Ok(tls)
}

/// Maps an etcd client error, recognising etcd's compaction and future-revision errors.
fn map_err(key: &str, e: etcd_client::Error) -> StorageError {
    let code = match &e {
        etcd_client::Error::GRpcStatus(s) if s.message().contains("has been compacted") => {
            ErrorCode::Compacted
        }
        etcd_client::Error::GRpcStatus(s) if s.message().contains("future revision") => {
            ErrorCode::Unavailable
        }
        // tonic reports connection and TLS handshake failures as Unknown "transport error",
        // and a connection lost under a call as Unknown "h2 protocol error".
        e if connection_failed(e) => ErrorCode::Unavailable,
        etcd_client::Error::GRpcStatus(s) => match i32::from(s.code()) {
            grpc_code::CANCELLED | grpc_code::DEADLINE_EXCEEDED | grpc_code::UNAVAILABLE => {
                ErrorCode::Unavailable
            }
            grpc_code::INVALID_ARGUMENT | grpc_code::OUT_OF_RANGE => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        },
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            ErrorCode::Unavailable
        }
        etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => {
            ErrorCode::InvalidArgument
        }
        _ => ErrorCode::Internal,
    };
    StorageError::with_source(code, key, e)
}

/// gRPC status codes (fixed by the gRPC spec), so tonic need not be a direct dependency.
mod grpc_code {
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNAVAILABLE: i32 = 14;
}

/// First key after every key starting with `prefix` (etcd's `GetPrefixRangeEnd`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix is empty): the range is open-ended.
    vec![0]
}

fn to_kv(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: key_of(kv)?.into(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        layout: Default::default(),
    })
}

fn key_of(kv: &etcd_client::KeyValue) -> Result<&str> {
    std::str::from_utf8(kv.key())
        .map_err(|_| StorageError::new(ErrorCode::Internal, "", 0, "non-UTF-8 key in etcd"))
}

fn header_revision(key: &str, resp: &TxnResponse) -> Result<i64> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| StorageError::new(ErrorCode::Internal, key, 0, "etcd reply without header"))
}

/// The key as read by the `or_else` branch of a failed transaction.
fn failed_read(resp: &TxnResponse) -> Result<Option<KeyValue>> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(to_kv).transpose();
        }
    }
    Ok(None)
}

/// Comparisons guarding an update or delete: the key exists and, if asked, is at `expected`.
fn preconditions(key: &str, expected: Option<i64>) -> Vec<Compare> {
    let mut cmp = vec![Compare::version(key, CompareOp::Greater, 0)];
    if let Some(rev) = expected {
        cmp.push(Compare::mod_revision(key, CompareOp::Equal, rev));
    }
    cmp
}

/// Turns a failed guarded transaction into NotFound or Conflict.
fn precondition_error(key: &str, expected: Option<i64>, resp: &TxnResponse) -> StorageError {
    match failed_read(resp) {
        Err(e) => e,
        Ok(None) => StorageError::not_found(key),
        Ok(Some(kv)) => StorageError::conflict(key, expected.unwrap_or(0), kv.mod_revision),
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn create(&self, key: &str, value: Bytes) -> Result<i64> {
        self.create_leased(key, value, 0).await
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self.range(key, GetOptions::new()).await?;
        resp.kvs().first().map(to_kv).transpose()
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let start = ListStart::resolve(prefix, &options)?;
        let mut get = GetOptions::new().with_range(prefix_end(prefix));
        if options.limit > 0 {
            get = get.with_limit(options.limit);
        }
        if let Some(rev) = start.revision {
            get = get.with_revision(rev);
        }
        let resp = self.range(start.start_key.as_str(), get).await?;
        let revision = match start.revision {
            Some(r) => r,
            None => resp.header().map(|h| h.revision()).unwrap_or(0),
        };
        if revision < start.min_revision {
            return Err(StorageError::new(
                ErrorCode::Unavailable,
                prefix,
                revision,
                format!(
                    "revision {} is in the future (current {revision})",
                    start.min_revision
                ),
            ));
        }
        let items = resp.kvs().iter().map(to_kv).collect::<Result<Vec<_>>>()?;
        let (continue_token, remaining) = match (resp.more(), items.last()) {
            (true, Some(last)) => {
                // The smallest key after `last`, so the next page starts right after it.
                let next = format!("{}\0", last.key);
                (
                    Some(ContinueToken::encode(prefix, revision, &next)),
                    Some(resp.count() - items.len() as i64),
                )
            }
            _ => (None, None),
        };
        Ok(ListResult {
            items,
            revision,
            continue_token,
            remaining,
        })
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
    ) -> Result<KeyValue> {
        self.update_leased(key, expected_mod_revision, value, 0)
            .await
    }

    fn expires_keys(&self) -> bool {
        true
    }

    async fn create_expiring(&self, key: &str, value: Bytes, ttl: Duration) -> Result<i64> {
        let lease = self.lease_for(key, ttl).await?;
        self.create_leased(key, value, lease).await
    }

    async fn update_expiring(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
        value: Bytes,
        ttl: Duration,
    ) -> Result<KeyValue> {
        let lease = self.lease_for(key, ttl).await?;
        self.update_leased(key, expected_mod_revision, value, lease)
            .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<i64>) -> Result<KeyValue> {
        let txn = Txn::new()
            .when(preconditions(key, expected_mod_revision))
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(key, txn).await?;
        if !resp.succeeded() {
            return Err(precondition_error(key, expected_mod_revision, &resp));
        }
        let revision = header_revision(key, &resp)?;
        let prev = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_kv),
                _ => None,
            })
            .transpose()?
            .ok_or_else(|| StorageError::not_found(key))?;
        Ok(KeyValue {
            mod_revision: revision,
            ..prev
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let opts = GetOptions::new()
            .with_range(prefix_end(prefix))
            .with_count_only();
        let resp = self.range(prefix, opts).await?;
        Ok(resp.count())
    }

    async fn current_revision(&self) -> Result<i64> {
        // Any read returns the store's revision in its header; a count of one key is cheapest.
        let resp = self
            .range("\0", GetOptions::new().with_count_only())
            .await?;
        resp.header().map(|h| h.revision()).ok_or_else(|| {
            StorageError::new(ErrorCode::Internal, "", 0, "etcd reply without header")
        })
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        self.open_watch_stream(prefix, from_revision, None).await
    }

    fn reports_progress(&self) -> bool {
        self.progress_requests
    }

    async fn watch_with_progress(
        &self,
        prefix: &str,
        from_revision: i64,
        requests: ProgressRequests,
    ) -> Result<WatchStream> {
        let progress = self.progress_requests.then(|| requests.listen());
        self.open_watch_stream(prefix, from_revision, progress)
            .await
    }

    async fn size(&self) -> Result<Option<(String, i64)>> {
        let status = self
            .pool
            .call("", true, |c| async move {
                c.maintenance_client().status().await
            })
            .await?;
        let cluster = status
            .header()
            .map(|h| h.cluster_id().to_string())
            .unwrap_or_default();
        Ok(Some((cluster, status.db_size())))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let res = self
            .pool
            .call("", true, |c| async move {
                kv(&c)
                    .compact(revision, Some(CompactionOptions::new().with_physical()))
                    .await
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            // Compacting at or below the compacted revision is a no-op by contract.
            Err(e) if e.code == ErrorCode::Compacted => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Whether an etcd member of `version` answers a progress request only once its watches have
/// sent every event up to the revision it reports: etcd before 3.4.31 and 3.5.13 could answer
/// ahead of events still on their way (etcd issue 15220), so upstream's feature support checker
/// requires those versions for `RequestWatchProgress`, and so does kubeboot.
fn answers_progress_requests(version: &str) -> bool {
    let mut parts = version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, m) => m > 5,
        (m, _) => m > 3,
    }
}

impl EtcdStorage {
    /// The watch behind [`Storage::watch`] and [`Storage::watch_with_progress`].
    async fn open_watch_stream(
        &self,
        prefix: &str,
        from_revision: i64,
        progress: Option<tokio::sync::watch::Receiver<u64>>,
    ) -> Result<WatchStream> {
        // "From now" is pinned to a linearizable read's revision first: a watch opened at
        // revision 0 starts at whatever its member has applied, and a lagging member of a
        // cluster would replay writes the caller has already seen acknowledged.
        let start = match from_revision {
            0 => self.current_revision().await?,
            r => r,
        };
        let (stream, pending, after) = open_watch(&self.pool, prefix, start).await?;
        let state = EtcdWatch {
            pool: self.pool.clone(),
            stream,
            prefix: prefix.to_owned(),
            from_revision,
            after,
            pending,
            done: false,
            progress,
        };
        Ok(super::into_watch_stream(state))
    }
}

/// Opens a watch of `prefix` for the events after revision `after` on the first member that
/// takes it, and waits until the server has registered it. Returns the stream, the events that
/// came with the registration, and the revision the watch delivers events after.
async fn open_watch(
    pool: &Pool,
    prefix: &str,
    after: i64,
) -> Result<(etcd_client::WatchStream, VecDeque<Result<WatchEvent>>, i64)> {
    let opts = WatchOptions::new()
        .with_range(prefix_end(prefix))
        .with_prev_key()
        .with_start_revision(after + 1);
    pool.call(prefix, true, |c| {
        let opts = opts.clone();
        async move {
            let mut stream = watcher(&c).watch(prefix, Some(opts)).await?;
            let mut responses = Vec::new();
            loop {
                let Some(resp) = stream.message().await? else {
                    break;
                };
                let created = resp.created();
                responses.push(resp);
                if created || responses.last().is_some_and(|r| r.canceled()) {
                    break;
                }
            }
            Ok((stream, responses))
        }
    })
    .await
    .and_then(|(stream, responses)| {
        let mut pending = VecDeque::new();
        let mut start = after;
        for resp in &responses {
            if let Some(err) = canceled(prefix, after, resp) {
                return Err(err);
            }
            for ev in resp.events().iter().filter_map(|e| e.kv()) {
                start = start.max(ev.mod_revision());
            }
            pending.extend(convert_events(prefix, resp));
        }
        if !responses.last().is_some_and(|r| r.created()) {
            return Err(StorageError::new(
                ErrorCode::Unavailable,
                prefix,
                0,
                "watch closed by etcd",
            ));
        }
        Ok((stream, pending, start))
    })
}

/// The error a canceled watch response carries, if it is one.
fn canceled(prefix: &str, from: i64, resp: &WatchResponse) -> Option<StorageError> {
    if resp.compact_revision() > 0 {
        return Some(StorageError::compacted(
            prefix,
            from,
            resp.compact_revision(),
        ));
    }
    if resp.canceled() {
        return Some(StorageError::new(
            ErrorCode::Unavailable,
            prefix,
            from,
            format!("watch canceled by etcd: {}", resp.cancel_reason()),
        ));
    }
    None
}

fn convert_events(prefix: &str, resp: &WatchResponse) -> Vec<Result<WatchEvent>> {
    resp.events()
        .iter()
        .map(|ev| {
            let kv = ev.kv().ok_or_else(|| {
                StorageError::new(ErrorCode::Internal, prefix, 0, "watch event without kv")
            })?;
            let key = key_of(kv)?.to_owned();
            let prev = ev.prev_kv().map(|p| Bytes::copy_from_slice(p.value()));
            Ok(match ev.event_type() {
                EventType::Put => WatchEvent {
                    // As upstream: a put whose create and mod revisions match created the key.
                    kind: if kv.create_revision() == kv.mod_revision() {
                        EventKind::Added
                    } else {
                        EventKind::Modified
                    },
                    key,
                    value: Bytes::copy_from_slice(kv.value()),
                    prev_value: prev,
                    revision: kv.mod_revision(),
                },
                EventType::Delete => WatchEvent {
                    kind: EventKind::Deleted,
                    key,
                    value: prev.clone().unwrap_or_default(),
                    prev_value: prev,
                    revision: kv.mod_revision(),
                },
            })
        })
        .collect()
}

/// One etcd watch turned into a stream of events that ends after its first error; a watch
/// broken by a lost connection resumes on another member after the last revision received.
struct EtcdWatch {
    pool: Arc<Pool>,
    stream: etcd_client::WatchStream,
    prefix: String,
    from_revision: i64,
    /// The revision of the last event received (or where the watch started).
    after: i64,
    pending: VecDeque<Result<WatchEvent>>,
    done: bool,
    /// Progress requests, passed on to etcd as its `WatchProgressRequest`.
    progress: Option<tokio::sync::watch::Receiver<u64>>,
}

impl super::WatchCursor for EtcdWatch {
    fn next(&mut self) -> impl std::future::Future<Output = Option<Result<WatchEvent>>> + Send {
        EtcdWatch::next(self)
    }
}

impl EtcdWatch {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            let received = match self.progress.as_mut() {
                Some(requests) => tokio::select! {
                    resp = self.stream.next() => Some(resp),
                    changed = requests.changed() => {
                        if changed.is_err() {
                            self.progress = None;
                        }
                        None
                    }
                },
                None => Some(self.stream.next().await),
            };
            let Some(received) = received else {
                if self.progress.is_some()
                    && let Err(e) = self.stream.request_progress().await
                {
                    // The stream is broken; reading it next says so and resumes it.
                    tracing::debug!(prefix = self.prefix, error = %e, "progress request failed");
                }
                continue;
            };
            let broken = match received {
                Some(Ok(resp)) => {
                    if let Some(err) = canceled(&self.prefix, self.from_revision, &resp) {
                        self.done = true;
                        return Some(Err(err));
                    }
                    self.queue(&resp);
                    continue;
                }
                Some(Err(e)) if !connection_failed(&e) => {
                    self.done = true;
                    return Some(Err(map_err(&self.prefix, e)));
                }
                // The member went away (killed, or stopped and closed the stream).
                Some(Err(e)) => map_err(&self.prefix, e).message,
                None => "watch stream closed by etcd".to_owned(),
            };
            tracing::debug!(prefix = self.prefix, error = broken, "resuming etcd watch");
            if let Err(err) = self.resume().await {
                self.done = true;
                return Some(Err(err));
            }
        }
    }

    fn queue(&mut self, resp: &WatchResponse) {
        // An answer to a progress request carries no events, only the revision every event
        // of the watch has been sent up to.
        if resp.events().is_empty() && !resp.created() {
            if self.progress.is_some()
                && let Some(h) = resp.header()
            {
                self.after = self.after.max(h.revision());
                self.pending
                    .push_back(Ok(WatchEvent::progress(h.revision())));
            }
            return;
        }
        if let Some(rev) = resp
            .events()
            .iter()
            .filter_map(|e| e.kv())
            .map(|kv| kv.mod_revision())
            .max()
        {
            self.after = self.after.max(rev);
        }
        self.pending.extend(convert_events(&self.prefix, resp));
    }

    /// Re-opens the watch after `self.after`, as clientv3 does when a watch's connection
    /// breaks: a few rounds over the members with a growing pause, then the last error.
    async fn resume(&mut self) -> Result<()> {
        let mut pause = Duration::from_millis(100);
        let mut round = 0;
        loop {
            match open_watch(&self.pool, &self.prefix, self.after).await {
                Ok((stream, pending, after)) => {
                    self.stream = stream;
                    self.after = after;
                    self.pending.extend(pending);
                    return Ok(());
                }
                Err(e) if e.code == ErrorCode::Unavailable && round + 1 < WATCH_RESUME_ROUNDS => {
                    round += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        LEASE_MAX_KEYS, SharedLease, answers_progress_requests, prefix_end, reuse_seconds,
        ttl_seconds,
    };

    #[test]
    fn progress_requests_are_trusted_from_the_versions_upstream_trusts() {
        for good in ["3.4.31", "3.5.13", "3.5.21", "3.6.0", "3.6.0-rc.1", "4.0.0"] {
            assert!(answers_progress_requests(good), "{good}");
        }
        for bad in [
            "3.4.23", "3.4.30", "3.5.0", "3.5.12", "3.3.27", "", "3.5", "x.y.z",
        ] {
            assert!(!answers_progress_requests(bad), "{bad}");
        }
    }
    use std::time::{Duration, Instant};

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn a_lease_is_shared_within_its_reuse_window_and_key_count_as_upstreams() {
        assert_eq!(reuse_seconds(3600), 60, "at most a minute");
        assert_eq!(reuse_seconds(600), 30, "5 % of shorter TTLs");
        assert_eq!(reuse_seconds(2), 0);
        assert_eq!(ttl_seconds(Duration::from_millis(1500)), 2, "rounded up");
        assert_eq!(ttl_seconds(Duration::ZERO), 1);

        let granted = Instant::now();
        let fresh = || SharedLease {
            id: 7,
            expires: Some(granted + Duration::from_secs(3600 + 60)),
            keys: 1,
        };
        let s = Duration::from_secs;
        assert_eq!(fresh().reusable(granted + s(30), 3600), Some(7));
        assert_eq!(
            fresh().reusable(granted + s(61), 3600),
            None,
            "a key written now would outlive the lease"
        );
        assert_eq!(
            fresh().reusable(granted, 60),
            None,
            "a shorter TTL than the lease's plus its window"
        );
        assert_eq!(SharedLease::default().reusable(granted, 3600), None);
        let mut full = fresh();
        full.keys = LEASE_MAX_KEYS - 1;
        assert_eq!(full.reusable(granted + s(1), 3600), Some(7));
        assert_eq!(full.reusable(granted + s(1), 3600), None, "a full lease");
    }
}
