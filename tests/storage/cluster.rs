//! The etcd backend against a 3-member cluster: the conformance suite through a client given
//! all three endpoints, and writes, reads, lists and open watches carrying on after a member
//! (one that holds some of the client's watches) is killed.

use std::sync::Arc;

use bytes::Bytes;
use kubeboot::storage::cacher::Cacher;
use kubeboot::storage::etcd::{EtcdOptions, EtcdStorage};
use kubeboot::storage::{EventKind, ListOptions, RevisionMatch, Storage, WatchStream};

use crate::conformance::{Fixture, next_event};
use crate::support::etcd_cluster::EtcdCluster;

/// Starts a cluster off the async threads (the helper blocks while it polls for health).
async fn start_cluster() -> EtcdCluster {
    tokio::task::spawn_blocking(EtcdCluster::start)
        .await
        .expect("cluster start")
}

async fn connect(cluster: &EtcdCluster) -> EtcdStorage {
    EtcdStorage::connect(EtcdOptions {
        endpoints: cluster.endpoints(),
        connect_timeout: Some(std::time::Duration::from_secs(2)),
        ..Default::default()
    })
    .await
    .expect("connect to the etcd cluster")
}

/// A fresh 3-member cluster per case, the client balancing over all three endpoints.
pub async fn cluster_fixture() -> Fixture {
    let cluster = start_cluster().await;
    let store = connect(&cluster).await;
    Fixture {
        store: Arc::new(store),
        prefix: "/registry/".into(),
        _guard: Box::new(cluster),
    }
}

mod conformance_against_three_members {
    conformance_tests!(super::cluster_fixture);
}

/// The watch cache in front of the same.
async fn cached_cluster_fixture() -> Fixture {
    let fx = cluster_fixture().await;
    Fixture {
        store: Arc::new(Cacher::new(fx.store, &fx.prefix, crate::cacher_options())),
        prefix: fx.prefix,
        _guard: fx._guard,
    }
}

mod cached_conformance_against_three_members {
    conformance_tests!(super::cached_cluster_fixture);
}

/// Watchers registered on member `i` (etcd's own gauge).
fn watchers_on(cluster: &EtcdCluster, i: usize) -> f64 {
    cluster
        .metric(i, "etcd_debugging_mvcc_watcher_total")
        .unwrap_or(0.0)
}

/// Kills (or, if `graceful`, stops) a follower holding at least one of the client's
/// watches: watches are spread over the endpoints by the client, so more are opened
/// (bounded) until a follower holds one. Returns the victim and the watchers it held.
async fn lose_a_follower_holding_watches(
    cluster: &mut EtcdCluster,
    store: &EtcdStorage,
    prefix: &str,
    from: i64,
    watches: &mut Vec<WatchStream>,
    graceful: bool,
) -> (usize, f64) {
    for _ in 0..64 {
        let followers = cluster.followers();
        if let Some(&victim) = followers.iter().find(|&&i| watchers_on(cluster, i) > 0.0) {
            let held = watchers_on(cluster, victim);
            if graceful {
                cluster.stop(victim);
            } else {
                cluster.kill(victim);
            }
            return (victim, held);
        }
        watches.push(store.watch(prefix, from).await.expect("watch"));
    }
    panic!("no follower got any of 64 watches:\n{}", cluster.logs());
}

/// A member holding some of the client's watches is killed (never the leader, so no election
/// is involved); writes, reads and lists keep working through the same client, and every
/// open watch, direct or through the watch cache, delivers every later event in order with
/// no error (etcd-client does not resume a broken watch; the backend must, as clientv3 does).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_member_leaves_writes_reads_lists_and_watches_going() {
    lose_a_member(false).await;
}

/// The same with a member stopped by SIGTERM, which closes its watch streams cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_member_leaves_writes_reads_lists_and_watches_going() {
    lose_a_member(true).await;
}

async fn lose_a_member(graceful: bool) {
    let mut cluster = start_cluster().await;
    let store = Arc::new(connect(&cluster).await);
    let cache = Cacher::new(store.clone(), "/registry/", crate::cacher_options());
    let mut before = Vec::new();
    for i in 0..5 {
        let key = format!("/registry/pods/ns/p{i}");
        before.push(store.create(&key, Bytes::from(key.clone())).await.unwrap());
    }
    let from = *before.last().unwrap();
    // The cache has listed and follows its backend watch from `from` on.
    let at_from = ListOptions {
        revision: Some(from),
        revision_match: RevisionMatch::NotOlderThan,
        ..Default::default()
    };
    assert_eq!(
        cache.list("/registry/", at_from).await.unwrap().items.len(),
        5
    );
    let mut cached = cache.watch("/registry/pods/", from).await.unwrap();
    let mut direct = Vec::new();
    for _ in 0..4 {
        direct.push(store.watch("/registry/pods/", from).await.unwrap());
    }
    let (victim, held) = lose_a_follower_holding_watches(
        &mut cluster,
        &store,
        "/registry/pods/",
        from,
        &mut direct,
        graceful,
    )
    .await;
    assert!(held > 0.0);
    assert!(!cluster.healthy(victim));

    // Writes of every kind, each through the same client, none retried by the test.
    let mut after = Vec::new();
    for i in 0..12 {
        let key = format!("/registry/pods/ns/q{i}");
        after.push((
            EventKind::Added,
            store.create(&key, Bytes::from(key.clone())).await.unwrap(),
        ));
    }
    for i in 0..5 {
        let key = format!("/registry/pods/ns/p{i}");
        let kv = store
            .guaranteed_update(&key, None, Bytes::from_static(b"updated"))
            .await
            .unwrap();
        after.push((EventKind::Modified, kv.mod_revision));
    }
    for i in 0..3 {
        let key = format!("/registry/pods/ns/q{i}");
        let kv = store.delete(&key, None).await.unwrap();
        after.push((EventKind::Deleted, kv.mod_revision));
    }
    let last = after.last().unwrap().1;

    // Reads and lists see all of it, directly and through the cache.
    for i in 0..5 {
        let kv = store
            .get(&format!("/registry/pods/ns/p{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kv.value, Bytes::from_static(b"updated"));
    }
    let list = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 14);
    assert!(list.revision >= last);
    assert_eq!(store.count("/registry/pods/").await.unwrap(), 14);
    let paged = store
        .list(
            "/registry/pods/",
            ListOptions {
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(paged.remaining, Some(9));
    let at_last = ListOptions {
        revision: Some(last),
        revision_match: RevisionMatch::NotOlderThan,
        ..Default::default()
    };
    assert_eq!(
        cache.list("/registry/pods/", at_last).await.unwrap().items,
        list.items
    );

    // Every watch delivers exactly the later events, in order, without an error.
    for w in direct.iter_mut().chain(std::iter::once(&mut cached)) {
        for (kind, rev) in &after {
            let ev = next_event(w).await.expect("watch survives the lost member");
            assert_eq!((ev.kind, ev.revision), (*kind, *rev));
        }
    }
    // And a new watch and a write after all that still work.
    let mut fresh = store.watch("/registry/pods/", 0).await.unwrap();
    let r = store
        .create("/registry/pods/ns/late", Bytes::new())
        .await
        .unwrap();
    assert_eq!(next_event(&mut fresh).await.unwrap().revision, r);
    assert_eq!(next_event(&mut cached).await.unwrap().revision, r);
}
