//! One conformance suite for every `Storage` backend, as upstream's `storage/testing/store_tests.go`.
//!
//! Each case takes a [`Fixture`]: a fresh store and a key prefix the case owns. Cases never
//! assume absolute revisions, so a backend may share one server between cases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kubeboot::storage::{
    ErrorCode, EventKind, KeyValue, ListOptions, ProgressRequests, RevisionMatch, Storage,
    StorageError, WatchEvent, WatchStream,
};

/// A store under test plus whatever keeps it alive (temp dir, server process).
pub struct Fixture {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// Key prefix (ending in `/`) this case owns.
    pub prefix: String,
    /// Dropped after `store`, so files and servers outlive the client.
    pub _guard: Box<dyn std::any::Any + Send>,
}

/// Generates one `#[tokio::test]` per conformance case for a fixture factory
/// `async fn() -> Fixture`.
macro_rules! conformance_tests {
    ($factory:path) => {
        conformance_tests!(@cases $factory;
            create_get_update_delete_follow_the_contract,
            list_pages_stay_on_one_revision_while_writes_continue,
            prefixes_ending_in_slash_isolate_siblings,
            eight_tasks_incrementing_with_retry_reach_exactly_800,
            watch_from_a_revision_replays_exactly_the_later_events,
            watch_from_now_and_from_the_future_wait_for_new_events,
            concurrent_writers_and_watchers_agree_with_a_fresh_list,
            compaction_makes_older_watches_and_lists_fail,
            not_older_than_lists_see_at_least_the_requested_revision,
            expiring_keys_go_after_their_ttl_or_are_refused,
            progress_requests_move_a_quiet_watch_to_the_current_revision,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                crate::conformance::$case($factory().await).await;
            }
        )*
    };
}

/// Upper bound for any single wait, so a bug fails the test instead of hanging CI; it is a
/// hang guard, never a performance assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn code(r: Result<impl std::fmt::Debug, StorageError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// Next item of `w`, failing the test if the stream ends or hangs.
pub async fn next_event(w: &mut WatchStream) -> Result<WatchEvent, StorageError> {
    tokio::time::timeout(HANG_GUARD, w.next())
        .await
        .expect("watch event within the hang guard")
        .expect("watch stream still open")
}

/// Asserts that watching `prefix` from `rev` fails with `Compacted`, either at once or as
/// the stream's first item.
pub async fn assert_watch_compacted(store: &dyn Storage, prefix: &str, rev: i64) {
    match store.watch(prefix, rev).await {
        Err(e) => assert_eq!(e.code, ErrorCode::Compacted, "{e}"),
        Ok(mut w) => {
            let e = next_event(&mut w).await.expect_err("compacted watch fails");
            assert_eq!(e.code, ErrorCode::Compacted, "{e}");
        }
    }
}

async fn list_all(
    store: &dyn Storage,
    prefix: &str,
    revision: Option<i64>,
) -> (Vec<KeyValue>, i64) {
    let r = store
        .list(
            prefix,
            ListOptions {
                revision,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert!(r.continue_token.is_none());
    (r.items, r.revision)
}

/// A backend that reports progress answers a request on a watch of a prefix nobody writes to
/// with a progress event at (or past) the revision of the last write elsewhere, and the watch
/// goes on with later changes; one that does not ignores the request.
pub async fn progress_requests_move_a_quiet_watch_to_the_current_revision(fx: Fixture) {
    let s = &*fx.store;
    let quiet = format!("{}quiet/", fx.prefix);
    let requests = ProgressRequests::default();
    let mut w = s
        .watch_with_progress(&quiet, 0, requests.clone())
        .await
        .unwrap();
    let mut last = 0;
    for i in 0..3 {
        last = s
            .create(&format!("{}busy/k{i}", fx.prefix), b("v"))
            .await
            .unwrap();
    }
    if s.reports_progress() {
        let ev = next_progress(&mut w, &requests).await;
        assert_eq!(ev.kind, EventKind::Progress, "{ev:?}");
        assert!(ev.revision >= last, "progress at {} < {last}", ev.revision);
        assert!(ev.key.is_empty() && ev.value.is_empty());
    } else {
        requests.request();
    }
    let r = s.create(&format!("{quiet}k"), b("v")).await.unwrap();
    let ev = next_event(&mut w).await.unwrap();
    assert_eq!((ev.kind, ev.revision), (EventKind::Added, r), "{ev:?}");

    // A watch replaying history answers once it has caught up with the request's revision.
    let mut replay = s
        .watch_with_progress(&quiet, last - 1, requests.clone())
        .await
        .unwrap();
    requests.request();
    let ev = next_event(&mut replay).await.unwrap();
    assert_eq!((ev.kind, ev.revision), (EventKind::Added, r), "{ev:?}");
    if s.reports_progress() {
        let ev = next_progress(&mut replay, &requests).await;
        assert_eq!(ev.kind, EventKind::Progress, "{ev:?}");
        assert!(ev.revision >= r, "progress at {} < {r}", ev.revision);
    }
}

/// The next item of `w`, asking for progress every 100 ms until one comes, as upstream's
/// progress requester does: etcd drops a request that reaches a watch still catching up.
async fn next_progress(w: &mut WatchStream, requests: &ProgressRequests) -> WatchEvent {
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            requests.request();
            if let Ok(item) = tokio::time::timeout(Duration::from_millis(100), w.next()).await {
                break item.expect("watch stream still open").unwrap();
            }
        }
    })
    .await
    .expect("an answer within the hang guard")
}

/// A backend that expires keys deletes an expiring key once its TTL has passed since its last
/// write (a `Deleted` event like any other) and leaves plain keys alone, an update detaching a
/// key from its lease; one that does not refuses expiring writes and writes nothing.
pub async fn expiring_keys_go_after_their_ttl_or_are_refused(fx: Fixture) {
    let s = &*fx.store;
    let created = format!("{}ns/created", fx.prefix);
    let updated = format!("{}ns/updated", fx.prefix);
    let detached = format!("{}ns/detached", fx.prefix);
    let plain = format!("{}ns/plain", fx.prefix);
    let ttl = Duration::from_secs(1);
    if !s.expires_keys() {
        let refused = s.create_expiring(&created, b("v"), ttl).await;
        assert_eq!(code(refused), ErrorCode::Internal);
        assert_eq!(s.get(&created).await.unwrap(), None, "nothing written");
        let r = s.create(&updated, b("v")).await.unwrap();
        let refused = s.update_expiring(&updated, Some(r), b("v2"), ttl).await;
        assert_eq!(code(refused), ErrorCode::Internal);
        assert_eq!(s.get(&updated).await.unwrap().unwrap().value, b("v"));
        return;
    }
    let start = s.current_revision().await.unwrap();
    // First, so that its lease, were it still attached, would expire first.
    let r = s.create_expiring(&detached, b("v"), ttl).await.unwrap();
    s.guaranteed_update(&detached, Some(r), b("v2"))
        .await
        .unwrap();
    s.create_expiring(&created, b("v"), ttl).await.unwrap();
    let r = s.create(&updated, b("v")).await.unwrap();
    s.update_expiring(&updated, Some(r), b("v2"), ttl)
        .await
        .unwrap();
    s.create(&plain, b("v")).await.unwrap();
    let mut w = s.watch(&fx.prefix, start).await.unwrap();
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        let e = next_event(&mut w).await.unwrap();
        if e.kind == EventKind::Deleted {
            deleted.push(e.key);
        }
    }
    deleted.sort();
    assert_eq!(deleted, [created, updated]);
    assert_eq!(s.get(&plain).await.unwrap().unwrap().value, b("v"));
    assert_eq!(s.get(&detached).await.unwrap().unwrap().value, b("v2"));
}

/// Create, get, update, delete and their error codes.
pub async fn create_get_update_delete_follow_the_contract(fx: Fixture) {
    let s = &*fx.store;
    let k = format!("{}ns/one", fx.prefix);
    let missing = format!("{}ns/missing", fx.prefix);

    let r1 = s.create(&k, b("v1")).await.unwrap();
    assert!(r1 > 0);
    assert!(s.current_revision().await.unwrap() >= r1);
    let e = s.create(&k, b("again")).await.unwrap_err();
    assert_eq!(
        (e.code, e.key.as_str()),
        (ErrorCode::AlreadyExists, k.as_str())
    );

    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!(
        kv,
        KeyValue {
            key: k.as_str().into(),
            value: b("v1"),
            create_revision: r1,
            mod_revision: r1,
            layout: Default::default(),
        }
    );
    assert_eq!(s.get(&missing).await.unwrap(), None);

    let up = s.guaranteed_update(&k, Some(r1), b("v2")).await.unwrap();
    assert_eq!((up.create_revision, up.value.clone()), (r1, b("v2")));
    assert!(up.mod_revision > r1);
    let e = s
        .guaranteed_update(&k, Some(r1), b("stale"))
        .await
        .unwrap_err();
    assert_eq!((e.code, e.revision), (ErrorCode::Conflict, up.mod_revision));
    assert_eq!(
        code(s.guaranteed_update(&missing, None, b("x")).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(s.guaranteed_update(&missing, Some(1), b("x")).await),
        ErrorCode::NotFound
    );
    let up2 = s.guaranteed_update(&k, None, b("v3")).await.unwrap();
    assert!(up2.mod_revision > up.mod_revision);
    assert_eq!(s.get(&k).await.unwrap().unwrap(), up2);

    assert_eq!(code(s.delete(&k, Some(r1)).await), ErrorCode::Conflict);
    assert_eq!(code(s.delete(&missing, None).await), ErrorCode::NotFound);
    assert_eq!(s.count(&fx.prefix).await.unwrap(), 1);
    let del = s.delete(&k, Some(up2.mod_revision)).await.unwrap();
    assert_eq!((&*del.key, del.value.clone()), (k.as_str(), b("v3")));
    assert_eq!(del.create_revision, r1);
    assert!(del.mod_revision > up2.mod_revision);
    assert!(s.current_revision().await.unwrap() >= del.mod_revision);
    assert_eq!(s.get(&k).await.unwrap(), None);
    assert_eq!(code(s.delete(&k, None).await), ErrorCode::NotFound);
    assert_eq!(s.count(&fx.prefix).await.unwrap(), 0);

    // A key re-created after deletion starts a new life.
    let r2 = s.create(&k, b("reborn")).await.unwrap();
    assert!(r2 > del.mod_revision);
    let kv = s.get(&k).await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r2, r2));
}

/// Paginated lists read one snapshot even while the keys change underneath.
pub async fn list_pages_stay_on_one_revision_while_writes_continue(fx: Fixture) {
    let s = &*fx.store;
    let key = |i: usize| format!("{}ns/k{i:03}", fx.prefix);
    for i in 0..20 {
        s.create(&key(i), b(&format!("v{i}"))).await.unwrap();
    }
    let (snapshot, snap_rev) = list_all(s, &fx.prefix, None).await;
    assert_eq!(snapshot.len(), 20);
    assert!(snapshot.windows(2).all(|w| w[0].key < w[1].key));

    let first = s
        .list(
            &fx.prefix,
            ListOptions {
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.revision, snap_rev);
    assert_eq!(first.items, snapshot[..5]);
    assert_eq!(first.remaining, Some(15));
    let mut token = first.continue_token.clone().expect("more pages");

    // Writes land between pages: updates, deletes and creates on both sides of the cursor.
    s.guaranteed_update(&key(2), None, b("changed"))
        .await
        .unwrap();
    s.guaranteed_update(&key(12), None, b("changed"))
        .await
        .unwrap();
    s.delete(&key(7), None).await.unwrap();
    s.delete(&key(19), None).await.unwrap();
    s.create(&key(25), b("new")).await.unwrap();
    s.create(&format!("{}ns/k010a", fx.prefix), b("new"))
        .await
        .unwrap();

    let mut paged = first.items.clone();
    loop {
        let page = s
            .list(
                &fx.prefix,
                ListOptions {
                    limit: 5,
                    continue_token: Some(token.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.revision, snap_rev,
            "every page is read at the first page's revision"
        );
        assert!(page.items.len() <= 5);
        paged.extend(page.items);
        match page.continue_token {
            Some(t) => {
                assert_eq!(page.remaining, Some(20 - paged.len() as i64));
                token = t;
            }
            None => break,
        }
    }
    assert_eq!(paged, snapshot);

    // An explicit past revision reads the same snapshot; the current one sees the writes.
    let (past, _) = list_all(s, &fx.prefix, Some(snap_rev)).await;
    assert_eq!(past, snapshot);
    let (now, now_rev) = list_all(s, &fx.prefix, None).await;
    assert!(now_rev > snap_rev);
    assert_eq!(now.len(), 20);
    assert_eq!(s.count(&fx.prefix).await.unwrap(), 20);
    let changed = now.iter().find(|kv| *kv.key == key(2)).unwrap();
    assert_eq!(changed.value, b("changed"));
    assert_eq!(changed.create_revision, snapshot[2].create_revision);

    let bad = s
        .list(
            &fx.prefix,
            ListOptions {
                continue_token: Some("garbage!".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(bad), ErrorCode::InvalidArgument);
}

/// `/x/a/` does not see `/x/ab/…`.
pub async fn prefixes_ending_in_slash_isolate_siblings(fx: Fixture) {
    let s = &*fx.store;
    let a = format!("{}pods/a/", fx.prefix);
    let ab = format!("{}pods/ab/", fx.prefix);
    let from = s.current_revision().await.unwrap();
    s.create(&format!("{ab}x"), b("ab")).await.unwrap();
    s.create(&format!("{a}x"), b("a")).await.unwrap();
    s.create(&format!("{ab}y"), b("ab")).await.unwrap();
    let (items, _) = list_all(s, &a, None).await;
    assert_eq!(items.len(), 1);
    assert_eq!(&*items[0].key, format!("{a}x"));
    assert_eq!(s.count(&a).await.unwrap(), 1);
    assert_eq!(s.count(&ab).await.unwrap(), 2);
    assert_eq!(s.count(&format!("{}pods/", fx.prefix)).await.unwrap(), 3);

    let mut w = s.watch(&a, from).await.unwrap();
    let ev = next_event(&mut w).await.unwrap();
    assert_eq!(ev.key, format!("{a}x"));
    // The next event under `a` must be this one, not the later `ab` write.
    s.create(&format!("{a}z"), b("a")).await.unwrap();
    assert_eq!(next_event(&mut w).await.unwrap().key, format!("{a}z"));
}

/// Optimistic concurrency: 8 × 100 read-modify-write with retry on Conflict gives 800.
pub async fn eight_tasks_incrementing_with_retry_reach_exactly_800(fx: Fixture) {
    let key = format!("{}counter", fx.prefix);
    fx.store.create(&key, b("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = fx.store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            for _ in 0..100 {
                loop {
                    let cur = store.get(&key).await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                    match store
                        .guaranteed_update(&key, Some(cur.mod_revision), b(&(n + 1).to_string()))
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.code == ErrorCode::Conflict => conflicts += 1,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = fx.store.get(&key).await.unwrap().unwrap();
    assert_eq!(kv.value, b("800"));
}

/// Watch from R replays exactly the events after R, with kinds and previous values.
pub async fn watch_from_a_revision_replays_exactly_the_later_events(fx: Fixture) {
    let s = &*fx.store;
    let k = |n: &str| format!("{}ns/{n}", fx.prefix);
    s.create(&k("a"), b("a1")).await.unwrap();
    let r = s.create(&k("b"), b("b1")).await.unwrap();
    let r_a2 = s
        .guaranteed_update(&k("a"), None, b("a2"))
        .await
        .unwrap()
        .mod_revision;
    let r_c = s.create(&k("c"), b("c1")).await.unwrap();
    let r_del = s.delete(&k("b"), None).await.unwrap().mod_revision;
    // A write outside the prefix must not show up.
    s.create(&format!("{}other", fx.prefix.trim_end_matches('/')), b("x"))
        .await
        .unwrap();

    let mut w = s.watch(&fx.prefix, r).await.unwrap();
    let want = [
        (EventKind::Modified, k("a"), b("a2"), Some(b("a1")), r_a2),
        (EventKind::Added, k("c"), b("c1"), None, r_c),
        (EventKind::Deleted, k("b"), b("b1"), Some(b("b1")), r_del),
    ];
    for (kind, key, value, prev_value, revision) in want {
        let ev = next_event(&mut w).await.unwrap();
        assert_eq!(
            ev,
            WatchEvent {
                kind,
                key,
                value,
                prev_value,
                revision
            }
        );
    }
    // Then the stream goes live without a gap.
    let r_d = s.create(&k("d"), b("d1")).await.unwrap();
    let ev = next_event(&mut w).await.unwrap();
    assert_eq!(
        (ev.kind, ev.key, ev.revision),
        (EventKind::Added, k("d"), r_d)
    );
}

/// `0` means from now; a future revision waits for events after it.
pub async fn watch_from_now_and_from_the_future_wait_for_new_events(fx: Fixture) {
    let s = &*fx.store;
    let k = |n: &str| format!("{}ns/{n}", fx.prefix);
    s.create(&k("old"), b("old")).await.unwrap();
    let now = s.current_revision().await.unwrap();
    let mut from_now = s.watch(&fx.prefix, 0).await.unwrap();
    let mut future = s.watch(&fx.prefix, now + 2).await.unwrap();
    let r1 = s.create(&k("n1"), b("1")).await.unwrap();
    let r2 = s.create(&k("n2"), b("2")).await.unwrap();
    let r3 = s.create(&k("n3"), b("3")).await.unwrap();
    for r in [r1, r2, r3] {
        assert_eq!(next_event(&mut from_now).await.unwrap().revision, r);
    }
    // Revisions are global: on a shared server other writes may take revisions in between,
    // so the future watcher's first event is the first one of ours after `now + 2`.
    let first_future = next_event(&mut future).await.unwrap();
    assert!(first_future.revision > now + 2);
    assert!([r2, r3].contains(&first_future.revision));
}

/// Concurrent writers, several watchers: each sees every event once, in order, and replaying
/// its events gives the same state as a fresh list.
pub async fn concurrent_writers_and_watchers_agree_with_a_fresh_list(fx: Fixture) {
    let start = fx.store.current_revision().await.unwrap();
    let mut watchers = Vec::new();
    for _ in 0..3 {
        watchers.push(fx.store.watch(&fx.prefix, start).await.unwrap());
    }
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = fx.store.clone();
        let prefix = fx.prefix.clone();
        writers.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..30 {
                let key = format!("{prefix}w{w}/k{}", i % 10);
                let r = match i / 10 {
                    0 => store.create(&key, b(&format!("{w}-{i}"))).await.unwrap(),
                    1 => {
                        store
                            .guaranteed_update(&key, None, b(&format!("{w}-{i}")))
                            .await
                            .unwrap()
                            .mod_revision
                    }
                    _ if i % 2 == 0 => store.delete(&key, None).await.unwrap().mod_revision,
                    _ => {
                        store
                            .guaranteed_update(&key, None, b(&format!("{w}-{i}")))
                            .await
                            .unwrap()
                            .mod_revision
                    }
                };
                revs.push(r);
            }
            revs
        }));
    }
    let mut all_revs = Vec::new();
    for w in writers {
        all_revs.extend(w.await.unwrap());
    }
    all_revs.sort_unstable();
    all_revs.dedup();
    assert_eq!(all_revs.len(), 120, "every write has its own revision");
    // A late watcher replays the whole history from disk or server.
    watchers.push(fx.store.watch(&fx.prefix, start).await.unwrap());

    let (fresh, _) = list_all(&*fx.store, &fx.prefix, None).await;
    let fresh: BTreeMap<String, Bytes> = fresh
        .into_iter()
        .map(|kv| (kv.key.to_string(), kv.value))
        .collect();
    assert_eq!(fresh.len(), 4 * 5);
    for mut w in watchers {
        let mut seen = Vec::new();
        let mut view = BTreeMap::new();
        while seen.len() < all_revs.len() {
            let ev = next_event(&mut w).await.unwrap();
            match ev.kind {
                EventKind::Added => assert!(view.insert(ev.key, ev.value).is_none()),
                EventKind::Modified => {
                    let prev = view.insert(ev.key, ev.value);
                    assert_eq!(prev, ev.prev_value);
                }
                EventKind::Deleted => assert_eq!(view.remove(&ev.key), ev.prev_value),
                EventKind::Progress => panic!("progress on a plain watch: {ev:?}"),
            }
            seen.push(ev.revision);
        }
        assert_eq!(seen, all_revs, "each event once, in revision order");
        assert_eq!(view, fresh);
    }
}

/// After compaction, watches and lists from older revisions fail with Compacted while newer
/// ones keep working with intact previous values.
pub async fn compaction_makes_older_watches_and_lists_fail(fx: Fixture) {
    let s = &*fx.store;
    let k = |n: &str| format!("{}ns/{n}", fx.prefix);
    let r_old = s.create(&k("a"), b("a1")).await.unwrap();
    s.guaranteed_update(&k("a"), None, b("a2")).await.unwrap();
    s.create(&k("gone"), b("g")).await.unwrap();
    s.delete(&k("gone"), None).await.unwrap();
    s.create(&k("b"), b("b1")).await.unwrap();
    let r_compact = s
        .guaranteed_update(&k("a"), None, b("a3"))
        .await
        .unwrap()
        .mod_revision;
    let (at_compact, _) = list_all(s, &fx.prefix, Some(r_compact)).await;
    let r_a4 = s
        .guaranteed_update(&k("a"), None, b("a4"))
        .await
        .unwrap()
        .mod_revision;
    let r_b_del = s.delete(&k("b"), None).await.unwrap().mod_revision;

    s.compact(r_compact).await.unwrap();
    assert_watch_compacted(s, &fx.prefix, r_old).await;
    let e = s
        .list(
            &fx.prefix,
            ListOptions {
                revision: Some(r_old),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Compacted, "{e}");

    // The compacted revision itself is still readable and watchable.
    let (still, _) = list_all(s, &fx.prefix, Some(r_compact)).await;
    assert_eq!(still, at_compact);
    let mut w = s.watch(&fx.prefix, r_compact).await.unwrap();
    let ev = next_event(&mut w).await.unwrap();
    assert_eq!(
        (ev.kind, ev.revision, ev.value, ev.prev_value),
        (EventKind::Modified, r_a4, b("a4"), Some(b("a3")))
    );
    let ev = next_event(&mut w).await.unwrap();
    assert_eq!(
        (ev.kind, ev.revision, ev.value, ev.prev_value),
        (EventKind::Deleted, r_b_del, b("b1"), Some(b("b1")))
    );
    assert_eq!(s.get(&k("a")).await.unwrap().unwrap().value, b("a4"));

    // Compacting again at or below the compacted revision is harmless.
    s.compact(r_compact).await.unwrap();
    s.compact(r_old).await.unwrap();
    let (now, _) = list_all(s, &fx.prefix, None).await;
    assert_eq!(now.len(), 1);
}

/// `NotOlderThan` reads (resourceVersion "0" or a lower bound) include every write up to
/// the bound, and their pages continue at the revision they were read at.
pub async fn not_older_than_lists_see_at_least_the_requested_revision(fx: Fixture) {
    let s = &*fx.store;
    let k = |n: &str| format!("{}ns/{n}", fx.prefix);
    let not_older_than = |revision: Option<i64>, limit: i64| ListOptions {
        revision,
        revision_match: RevisionMatch::NotOlderThan,
        limit,
        continue_token: None,
    };
    let r1 = s.create(&k("a"), b("a1")).await.unwrap();
    let page = s
        .list(&fx.prefix, not_older_than(Some(r1), 0))
        .await
        .unwrap();
    assert!(page.revision >= r1);
    assert_eq!(page.items.len(), 1);
    let r2 = s
        .guaranteed_update(&k("a"), None, b("a2"))
        .await
        .unwrap()
        .mod_revision;
    s.create(&k("b"), b("b1")).await.unwrap();
    let r3 = s.create(&k("c"), b("c1")).await.unwrap();
    let page = s
        .list(&fx.prefix, not_older_than(Some(r2), 0))
        .await
        .unwrap();
    assert!(page.revision >= r2);
    assert_eq!(page.items[0].value, b("a2"));

    // Paginate from a lower-bound read; later writes must not leak into later pages.
    let first = s
        .list(&fx.prefix, not_older_than(Some(r3), 2))
        .await
        .unwrap();
    assert!(first.revision >= r3);
    assert_eq!(first.items.len(), 2);
    s.create(&k("bb"), b("late")).await.unwrap();
    let rest = s
        .list(
            &fx.prefix,
            ListOptions {
                continue_token: first.continue_token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.revision, first.revision);
    let keys: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|kv| kv.key.to_string())
        .collect();
    assert_eq!(keys, vec![k("a"), k("b"), k("c")]);
    let any = s.list(&fx.prefix, not_older_than(None, 0)).await.unwrap();
    assert!(any.revision > 0);
}
