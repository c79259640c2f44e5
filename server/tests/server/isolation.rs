//! Users never see each other's data, even with equal node ids, plugins and keys.

use clientdata::core::{NodeId, Value};

use crate::support::{token, Device, Server, TestDb};

fn a_hundred_random_user_pairs_read_nothing_of_each_other(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut rng = fastrand::Rng::with_seed(2024);
    let mut users: Vec<usize> = (0..200).collect();
    rng.shuffle(&mut users);
    let (mut reads, mut cross_reads) = (0, 0);
    for pair in users.chunks(2) {
        let names = [format!("user-{}", pair[0]), format!("user-{}", pair[1])];
        // Half the pairs use the same node id, plugin and keys on both sides: only the user
        // separates their rows.
        let same_node = rng.bool();
        let node = NodeId::random().unwrap();
        let mut writers: Vec<Device> = names
            .iter()
            .map(|n| {
                if same_node {
                    Device::with_node(&token(n), node)
                } else {
                    Device::new(&token(n))
                }
            })
            .collect();
        for (writer, name) in writers.iter_mut().zip(&names) {
            for i in 0..rng.usize(1..4) {
                writer.put("shared", &format!("k{i}"), &format!("\"owner:{name}\""));
            }
            writer.put(
                &format!("only-{}", rng.u8(0..3)),
                "k0",
                &format!("\"owner:{name}\""),
            );
            writer.sync(&server, 2);
        }
        for (writer, name) in writers.iter().zip(&names) {
            let mut reader = Device::new(&token(name));
            reader.sync(&server, 3);
            let owner = format!("\"owner:{name}\"");
            for (_, _, value) in reader.contents() {
                reads += 1;
                if value != Value::Json(owner.clone()) {
                    cross_reads += 1;
                }
            }
            assert_eq!(
                reader.contents(),
                writer.contents(),
                "{name} reads exactly what it wrote"
            );
        }
    }
    assert_eq!(cross_reads, 0, "cross-user reads out of {reads}");
    assert!(reads >= 400);
}

on_both!(a_hundred_random_user_pairs_read_nothing_of_each_other);

/// Datasets of one user (`dataset` in the request) are as far apart as users: same node ids,
/// plugins and keys, and each reads only its own; requests without `dataset` keep using the
/// user's default dataset, which is none of the named ones. `delete-user` removes them all.
fn datasets_of_one_user_read_nothing_of_each_other(db: &TestDb) {
    let server = Server::with_tokens(db);
    let alice = token("alice");
    let node = NodeId::random().unwrap();
    let mut writers: Vec<(Option<&str>, Device)> = [None, Some("a"), Some("b"), Some("a/b")]
        .into_iter()
        .map(|dataset| {
            let mut d = Device::with_node(&alice, node);
            d.client.dataset = dataset.map(str::to_owned);
            (dataset, d)
        })
        .collect();
    for (dataset, writer) in &mut writers {
        writer.put(
            "shared",
            "k",
            &format!("\"{}\"", dataset.unwrap_or("default")),
        );
        writer.put(&format!("only-{}", dataset.map_or(0, str::len)), "k", "1");
        writer.sync(&server, 10);
    }
    for (dataset, writer) in &writers {
        let mut reader = Device::new(&alice);
        reader.client.dataset = dataset.map(str::to_owned);
        reader.sync(&server, 10);
        assert_eq!(reader.contents(), writer.contents(), "dataset {dataset:?}");
        assert_eq!(reader.contents().len(), 2, "dataset {dataset:?}");
    }
    // A bad dataset name is refused before it names anything.
    let mut bad = Device::new(&alice);
    bad.client.dataset = Some(String::new());
    let out = bad
        .client
        .request(&mut bad.store, &bad.clock, None, 10)
        .unwrap();
    let reply = server.post(&alice, serde_json::to_vec(&out.request).unwrap());
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "invalid_request")
    );
    drop(server);

    let ops = |args: &[&str]| crate::ops::ops(db, args);
    let exported = ops(&["export", "alice", "--dataset", "a/b"]);
    let text = String::from_utf8_lossy(&exported.stdout);
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(
        text.lines().count(),
        4,
        "header, two records, coverage: {text}"
    );
    let deleted = ops(&["delete-user", "alice"]);
    let text = String::from_utf8_lossy(&deleted.stdout);
    assert!(text.contains("deleted alice and 8 records"), "{deleted:?}");
    let users = ops(&["users"]);
    assert!(
        !String::from_utf8_lossy(&users.stdout).contains("alice"),
        "{users:?}"
    );
}

on_both!(datasets_of_one_user_read_nothing_of_each_other);
