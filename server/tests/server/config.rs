//! Options from the command line and the environment; refusing bad configurations at startup.

use std::process::{Command, Output};

use crate::support::{token, Device, Server};

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clientdata-server"))
        .current_dir(dir)
        .args(args)
        .env_remove("CLIENTDATA_TOKENS")
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_option_and_its_variable() {
    let out = run(std::path::Path::new("."), &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--listen",
        "--database",
        "--tokens",
        "--allow-origin",
        "--static",
        "--log",
        "CLIENTDATA_LISTEN",
        "CLIENTDATA_DATABASE",
        "CLIENTDATA_TOKENS",
        "CLIENTDATA_ALLOW_ORIGIN",
        "CLIENTDATA_STATIC",
        "CLIENTDATA_LOG",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
    assert!(!help.contains("APPLY_DELAY"), "the test hook stays hidden");
}

#[test]
fn bad_configurations_fail_at_startup_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad-tokens"), "only-one-field\n").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--tokens", "missing-file"], "cannot read tokens file"),
        (&["--tokens", "bad-tokens"], "line 1"),
        (&["--static", "no-such-dir"], "static directory"),
        (&["--static", "/sync=."], "reserved"),
        (&["--allow-origin", "http://x.test/"], "scheme://host"),
        (&["--listen", "256.0.0.1:1"], "cannot listen"),
        (
            &["--max-devices-per-dataset", "0"],
            "--max-devices-per-dataset",
        ),
    ];
    for (args, message) in cases {
        let out = run(dir.path(), &[&["--database", "x.sqlite"], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a listening line");
        assert!(!stderr.contains("only-one-field"), "a token was printed");
    }
}

#[test]
fn every_option_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("site")).unwrap();
    std::fs::write(dir.path().join("site/hello.txt"), "hi").unwrap();
    let tokens = crate::support::tokens_file(dir.path());
    let env = [
        ("CLIENTDATA_DATABASE", "from-env.sqlite"),
        ("CLIENTDATA_TOKENS", tokens.to_str().unwrap()),
        ("CLIENTDATA_ALLOW_ORIGIN", "http://a.test,http://b.test"),
        ("CLIENTDATA_STATIC", "/files=site"),
        ("CLIENTDATA_LOG", "warn"),
    ];
    let server = Server::start(dir.path(), &[], &env);
    let mut device = Device::new(&token("bob"));
    device.put("p", "k", "1");
    device.sync(&server, 10);
    assert!(dir.path().join("from-env.sqlite").exists());
    assert_eq!(
        server
            .send("GET", "/files/hello.txt", &[], Vec::new())
            .text(),
        "hi"
    );
    let origin = |o: &str| {
        let reply = server.send(
            "OPTIONS",
            "/sync/exchange",
            &[("origin", o), ("access-control-request-method", "POST")],
            Vec::new(),
        );
        reply
            .header("access-control-allow-origin")
            .map(str::to_owned)
    };
    assert_eq!(origin("http://b.test").as_deref(), Some("http://b.test"));
    assert_eq!(origin("http://c.test"), None);
    let log = server.log_and_kill();
    assert!(
        log.iter().all(|l| !l.contains("INFO")),
        "CLIENTDATA_LOG=warn: {log:#?}"
    );
}

#[test]
fn bad_databases_fail_at_startup_without_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so connecting fails at once.
    let unreachable = "postgres://app:s3cret@127.0.0.1:1/clientdata?connect_timeout=2";
    let cases: [(&[&str], &str); 4] = [
        (&["--database", "mysql://u@h/db"], "only postgres:// URLs"),
        (
            &["--database", "postgres://app:s3cret@h:port/db"],
            "postgres://app:***@h:port/db",
        ),
        (
            &["--database", unreachable],
            "database postgres://app:***@127.0.0.1:1/clientdata",
        ),
        (&["--pool-size", "0"], "--pool-size"),
    ];
    for (args, message) in cases {
        let out = run(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("s3cret"),
            "{args:?} showed the password: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a listening line");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_clientdata-server"))
        .current_dir(dir.path())
        .env("CLIENTDATA_DATABASE", unreachable)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("postgres://app:***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
