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
