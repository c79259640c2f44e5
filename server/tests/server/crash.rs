//! A server killed in the middle of applying a push leaves no partial apply; SIGTERM is graceful.

use std::process::Command;
use std::time::Duration;

use crate::support::{token, Device, Server, TestDb};

fn sigkill_during_a_push_leaves_nothing_of_it(db: &TestDb) {
    let dir = db.dir();
    let mut device = Device::new(&token("alice"));
    for i in 0..5 {
        device.put("notes", &format!("before-{i}"), "1");
    }
    {
        let server = Server::with_tokens(db);
        assert_eq!(device.sync(&server, 100).pushed, 5);
    }

    // Ten more records, pushed to a server that stops half-way through writing them.
    for i in 0..10 {
        device.put("notes", &format!("during-{i}"), "2");
    }
    let tokens = crate::support::tokens_file(dir);
    let args = ["--database", db.arg(), "--tokens", tokens.to_str().unwrap()];
    let mut server = Server::start(dir, &args, &[("CLIENTDATA_TEST_APPLY_DELAY_MS", "60000")]);
    let out = device
        .client
        .request(&mut device.store, &device.clock, None, 100)
        .unwrap();
    assert_eq!(out.request.push.len(), 10);
    let (url, body) = (
        format!("{}/sync/exchange", server.base),
        serde_json::to_vec(&out.request).unwrap(),
    );
    let auth = format!("Bearer {}", device.token);
    let push = std::thread::spawn(move || {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        agent
            .post(url)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .send(body)
            .map(|r| r.status().as_u16())
    });
    let line = server.wait_for_log("test apply delay: sleeping", Duration::from_secs(30));
    assert!(line.contains("written=5"), "{line}");
    drop(server.log_and_kill());
    assert!(
        push.join().unwrap().is_err(),
        "the killed push got an answer"
    );

    // Nothing of the push is visible: not its records, not its coverage.
    server = Server::with_tokens(db);
    let mut observer = Device::new(&token("alice"));
    observer.sync(&server, 100);
    let keys: Vec<String> = observer.contents().into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        keys,
        (0..5).map(|i| format!("before-{i}")).collect::<Vec<_>>()
    );
    // The device's own view did not move either, so its next sync pushes the ten again.
    assert_eq!(device.sync(&server, 100).pushed, 10);
    observer.sync(&server, 100);
    assert_eq!(observer.contents().len(), 15);
}

fn sigterm_stops_gracefully_and_keeps_the_data(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut device = Device::new(&token("bob"));
    device.put("p", "k", "1");
    device.sync(&server, 10);
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server.wait_for_log("SIGTERM", Duration::from_secs(10));
    server.wait_for_log("stopped", Duration::from_secs(10));
    assert!(server.wait(Duration::from_secs(10)).success());
    let server = Server::with_tokens(db);
    let mut fresh = Device::new(&token("bob"));
    fresh.sync(&server, 10);
    assert_eq!(fresh.contents().len(), 1);
}

on_both!(sigkill_during_a_push_leaves_nothing_of_it);
on_both!(sigterm_stops_gracefully_and_keeps_the_data);
