//! Pipelined pulls (`core::pipeline`): the request planned ahead of a commit is exactly the
//! request planned from the store after it, page after page of a cold pull, with paging by
//! record count and by coverage; and nothing is planned ahead of a round that pushes.
#![cfg(not(target_arch = "wasm32"))]

use clientdata::core::pipeline::{next_pull, After};
use clientdata::core::replica::{serve, Batch, Client, MemoryStore, Store};
use clientdata::core::{ClockState, HlcClock, Key, Limits, NodeId, PluginId, Record, Value};

const NOW: u64 = 1_700_000_000_000;

thread_local! {
    /// Replies of this test's pulls that named `coverageNext`.
    static COVERAGE_PAGED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn node(n: u64) -> NodeId {
    NodeId::new(n).unwrap()
}
fn plugin(p: &str) -> PluginId {
    PluginId::new(p).unwrap()
}

/// A server holding `per_plugin` records in each of `plugins` plugins, written by two nodes.
fn server_with(plugins: usize, per_plugin: usize, limits: &Limits) -> MemoryStore {
    let mut server = MemoryStore::new();
    for w in [7, 8] {
        let mut writer = Client::new(node(w));
        writer.limits = *limits;
        let mut store = MemoryStore::new();
        let mut clock = HlcClock::new(node(w), ClockState::default(), 60_000);
        for p in 0..plugins {
            for k in 0..per_plugin / 2 {
                let hlc = clock.tick(NOW).unwrap();
                let r = Record::put(
                    plugin(&format!("p{p}")),
                    Key::new(format!("k{w}-{k}")).unwrap(),
                    Value::Json(format!("{k}")),
                    hlc,
                );
                store
                    .commit(Batch {
                        records: vec![r],
                        vectors: vec![],
                    })
                    .unwrap();
            }
        }
        // Push everything of this writer (following coverage pages to their end).
        let mut coverage_from = None;
        loop {
            let out = writer
                .request_from(&mut store, &clock, None, 1_000, coverage_from.take())
                .unwrap();
            let (reply, _) = serve(&mut server, &out.request, limits, NOW).unwrap();
            let plan = writer
                .plan(&mut store, &out.request, &reply, &clock, NOW)
                .unwrap();
            coverage_from = plan.coverage_next.clone();
            store.commit(plan.batch).unwrap();
            clock = plan.clock;
            if !out.more_to_push && !reply.has_more && coverage_from.is_none() {
                break;
            }
        }
    }
    server
}

/// Pulls everything into a fresh device, checking at every page that the request planned
/// ahead equals the one planned after the commit. Returns (rounds, rounds planned ahead).
fn cold_pull(
    server: &mut MemoryStore,
    limits: &Limits,
    scope: Option<&[PluginId]>,
    limit: u32,
) -> (usize, usize) {
    let mut client = Client::new(node(1));
    client.limits = *limits;
    let mut store = MemoryStore::new();
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    let mut coverage_from = None;
    let mut ahead = None;
    let (mut rounds, mut planned_ahead) = (0, 0);
    loop {
        rounds += 1;
        assert!(rounds < 1_000, "the pull does not end");
        let out = client
            .request_from(&mut store, &clock, scope, limit, coverage_from.take())
            .unwrap();
        if let Some(ahead) = ahead.take() {
            assert_eq!(
                ahead, out.request,
                "round {rounds}: planned ahead != planned after"
            );
            planned_ahead += 1;
        }
        let (reply, _) = serve(server, &out.request, limits, NOW).unwrap();
        let plan = client
            .plan(&mut store, &out.request, &reply, &clock, NOW)
            .unwrap();
        ahead = next_pull(&client, &mut store, &out.request, out.more_to_push, &plan);
        let more = plan.has_more || plan.coverage_next.is_some();
        assert_eq!(
            ahead.is_some(),
            more,
            "round {rounds}: a pure pull with more is planned ahead"
        );
        coverage_from = plan.coverage_next.clone();
        if coverage_from.is_some() {
            COVERAGE_PAGED.with(|c| c.set(c.get() + 1));
        }
        store.commit(plan.batch).unwrap();
        clock = plan.clock;
        if !more {
            break;
        }
    }
    assert_eq!(store.records().count(), server.records().count());
    (rounds, planned_ahead)
}

#[test]
fn a_cold_pull_planned_ahead_asks_exactly_what_it_would_after_each_commit() {
    let limits = Limits::default();
    let mut server = server_with(3, 500, &limits);
    let (rounds, ahead) = cold_pull(&mut server, &limits, None, 100);
    assert!(rounds >= 15, "{rounds} rounds");
    assert_eq!(ahead, rounds - 1);
    let scope = [plugin("p0"), plugin("p2")];
    let (rounds, ahead) = cold_pull_scoped(&mut server, &limits, &scope);
    assert!(rounds >= 10, "{rounds} rounds");
    assert_eq!(ahead, rounds - 1);
}

fn cold_pull_scoped(
    server: &mut MemoryStore,
    limits: &Limits,
    scope: &[PluginId],
) -> (usize, usize) {
    // Only the scope's records come: compare with a server holding just those.
    let mut client = Client::new(node(2));
    client.limits = *limits;
    let mut store = MemoryStore::new();
    let mut clock = HlcClock::new(node(2), ClockState::default(), 60_000);
    let (mut rounds, mut planned_ahead, mut ahead, mut coverage_from) = (0, 0, None, None);
    loop {
        rounds += 1;
        let out = client
            .request_from(&mut store, &clock, Some(scope), 100, coverage_from.take())
            .unwrap();
        if let Some(ahead) = ahead.take() {
            assert_eq!(ahead, out.request);
            planned_ahead += 1;
        }
        let (reply, _) = serve(server, &out.request, limits, NOW).unwrap();
        let plan = client
            .plan(&mut store, &out.request, &reply, &clock, NOW)
            .unwrap();
        ahead = next_pull(&client, &mut store, &out.request, out.more_to_push, &plan);
        coverage_from = plan.coverage_next.clone();
        let more = plan.has_more || plan.coverage_next.is_some();
        store.commit(plan.batch).unwrap();
        clock = plan.clock;
        if !more {
            break;
        }
    }
    let wanted = server
        .records()
        .filter(|r| scope.contains(&r.plugin))
        .count();
    assert_eq!(store.records().count(), wanted);
    (rounds, planned_ahead)
}

#[test]
fn coverage_paging_is_planned_ahead_too() {
    // A byte budget of about one plugin's coverage: replies name where coverage continues.
    let limits = Limits {
        page_bytes: 200,
        ..Limits::default()
    };
    let mut server = server_with(5, 10, &limits);
    let (rounds, ahead) = cold_pull(&mut server, &limits, None, 1_000);
    assert!(rounds >= 5, "{rounds} rounds: coverage paged");
    assert!(
        COVERAGE_PAGED.with(|c| c.get()) > 0,
        "no reply named coverageNext"
    );
    assert_eq!(ahead, rounds - 1);
}

#[test]
fn nothing_is_planned_ahead_of_a_round_that_pushes() {
    let limits = Limits::default();
    let mut server = server_with(1, 40, &limits);
    let client = Client::new(node(3));
    let mut store = MemoryStore::new();
    let mut clock = HlcClock::new(node(3), ClockState::default(), 60_000);
    for k in 0..5 {
        let hlc = clock.tick(NOW).unwrap();
        let r = Record::put(
            plugin("p0"),
            Key::new(format!("mine{k}")).unwrap(),
            Value::Json("1".into()),
            hlc,
        );
        store
            .commit(Batch {
                records: vec![r],
                vectors: vec![],
            })
            .unwrap();
    }
    // Pushes 3 of 5 and pulls 10 of 40: more either way, yet nothing goes out ahead.
    let out = client.request(&mut store, &clock, None, 3).unwrap();
    assert_eq!(out.request.push.len(), 3);
    let (reply, _) = serve(&mut server, &out.request, &limits, NOW).unwrap();
    let plan = client
        .plan(&mut store, &out.request, &reply, &clock, NOW)
        .unwrap();
    assert!(plan.has_more);
    assert_eq!(
        next_pull(&client, &mut store, &out.request, out.more_to_push, &plan),
        None
    );
    // The last push (2 left, nothing more to push after it) is not followed ahead either.
    store.commit(plan.batch).unwrap();
    clock = plan.clock;
    let out = client.request(&mut store, &clock, None, 3).unwrap();
    assert_eq!((out.request.push.len(), out.more_to_push), (2, false));
    let (reply, _) = serve(&mut server, &out.request, &limits, NOW).unwrap();
    let plan = client
        .plan(&mut store, &out.request, &reply, &clock, NOW)
        .unwrap();
    assert!(plan.has_more);
    assert_eq!(
        next_pull(&client, &mut store, &out.request, out.more_to_push, &plan),
        None
    );
}

#[test]
fn the_view_after_a_batch_reads_as_the_store_after_its_commit() {
    let limits = Limits::default();
    let mut server = server_with(2, 30, &limits);
    let client = Client::new(node(4));
    let mut store = MemoryStore::new();
    let clock = HlcClock::new(node(4), ClockState::default(), 60_000);
    let out = client.request(&mut store, &clock, None, 10).unwrap();
    let (reply, _) = serve(&mut server, &out.request, &limits, NOW).unwrap();
    let plan = client
        .plan(&mut store, &out.request, &reply, &clock, NOW)
        .unwrap();
    let mut committed = store.clone();
    committed.commit(plan.batch.clone()).unwrap();
    let mut after = After::new(&mut store, &plan.batch);
    let plugins = committed.plugins().unwrap();
    assert_eq!(after.plugins().unwrap(), plugins);
    let floor = clientdata::core::Watermarks::new();
    for limit in [0, 1, 5, 10, 100] {
        assert_eq!(
            after.records_above(&plugins, &floor, limit).unwrap(),
            committed.records_above(&plugins, &floor, limit).unwrap()
        );
    }
    for r in committed.records() {
        assert_eq!(after.version(&r.plugin, &r.key).unwrap(), Some(r.hlc));
    }
    assert!(
        after.commit(Batch::default()).is_err(),
        "the view is read-only"
    );
}
