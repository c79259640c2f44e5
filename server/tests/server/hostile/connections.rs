//! Slow, idle and stalled connections: none of them can keep others out or the server up.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{connect, exchange_head, read_answer};
use crate::support::{tokens_file, Server};

/// Raises this process's open-file limit as far as allowed and returns it.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit read and write one `rlimit` through valid pointers.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

fn start(dir: &std::path::Path, wrapper: &[&str], extra: &[&str]) -> Server {
    let tokens = tokens_file(dir);
    let args = [
        &[
            "--database",
            "db.sqlite",
            "--tokens",
            tokens.to_str().unwrap(),
        ],
        extra,
    ]
    .concat();
    Server::start_wrapped(dir, wrapper, &args, &[])
}

/// Sends a POST head and 13 of its 100 body bytes, then stalls.
fn slow_body(server: &Server) -> TcpStream {
    let mut stream = connect(server);
    stream
        .write_all(format!("{}{{\"version\":1,", exchange_head(100)).as_bytes())
        .unwrap();
    stream
}

#[test]
fn idle_and_slowloris_connections_under_a_low_fd_limit_leave_health_answering() {
    // The server gets 1,024 descriptors; this process needs more than 1,100 for its side.
    let own = raise_fd_limit();
    assert!(
        own >= 1_300,
        "this test needs `ulimit -n` of at least 1300, got {own}"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["prlimit", "--nofile=1024:1024", "--"], &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..1_100 {
        let Ok(mut stream) =
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
        else {
            continue;
        };
        if i % 2 == 0 {
            // Slowloris: a head that never ends.
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ");
        }
        held.push(stream);
    }
    assert!(held.len() >= 1_050, "only {} connections made", held.len());
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .count();
    assert!(
        fds < 1_000,
        "the server holds {fds} descriptors of its 1,024"
    );
    let asked = Instant::now();
    let health = server.send("GET", "/health", &[], Vec::new());
    let took = asked.elapsed();
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(took < Duration::from_secs(2), "/health took {took:?}");
    println!(
        "{} connections open ({} ms to make them), server holds {fds} fds, /health in {} ms",
        held.len(),
        started.elapsed().as_millis(),
        took.as_millis()
    );
}

#[test]
fn a_stalled_head_gets_408_and_silent_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[],
        &["--header-timeout-secs", "0.5", "--idle-timeout-secs", "0.5"],
    );
    // A head that stalls: 408 with the JSON body, then closed.
    let mut stalled = connect(&server);
    stalled
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut stalled, Duration::from_secs(5)).expect("an answer");
    assert_eq!(answer.status, 408);
    assert_eq!(answer.code().as_deref(), Some("request_timeout"));
    answer.assert_documented_error("stalled head");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A connection that never sends anything is closed without an answer.
    let mut silent = connect(&server);
    let started = Instant::now();
    assert!(read_answer(&mut silent, Duration::from_secs(5)).is_none());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A keep-alive connection is closed once idle for the idle timeout.
    let mut keep = connect(&server);
    keep.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_answer(&mut keep, Duration::from_secs(5))
            .unwrap()
            .status,
        200
    );
    keep.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_answer(&mut keep, Duration::from_secs(5))
            .unwrap()
            .status,
        200,
        "a second request on the same connection is served"
    );
    let idle = Instant::now();
    assert!(read_answer(&mut keep, Duration::from_secs(5)).is_none());
    assert!(
        idle.elapsed() < Duration::from_secs(2),
        "{:?}",
        idle.elapsed()
    );
}

#[test]
fn a_stalled_body_is_answered_within_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], &["--body-timeout-secs", "1"]);
    let mut stream = slow_body(&server);
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(10)).expect("an answer");
    let took = started.elapsed();
    assert_eq!(
        (answer.status, answer.code().as_deref()),
        (408, Some("request_timeout")),
        "{answer:?}"
    );
    answer.assert_documented_error("stalled body");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[test]
fn at_the_cap_with_every_connection_busy_a_newcomer_gets_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], &["--max-connections", "2"]);
    // Two connections busy with a request (their bodies stall).
    let _busy: Vec<TcpStream> = (0..2).map(|_| slow_body(&server)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut newcomer = connect(&server);
    let _ = newcomer.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n");
    let answer = read_answer(&mut newcomer, Duration::from_secs(5)).expect("an answer");
    assert_eq!(
        (answer.status, answer.code().as_deref()),
        (503, Some("overloaded")),
        "{answer:?}"
    );
    assert!(answer.head.contains("retry-after: 1"), "{}", answer.head);
    answer.assert_documented_error("connection cap");
}

#[test]
fn sigterm_exits_within_the_grace_with_slow_clients_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], &["--shutdown-grace-secs", "1"]);
    let mut slow: Vec<TcpStream> = (0..10).map(|_| slow_body(&server)).collect();
    for _ in 0..5 {
        let mut idle = connect(&server);
        let _ = idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n");
        slow.push(idle);
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    // SAFETY: kill sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) }, 0);
    let status = server.wait(Duration::from_secs(10));
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    println!(
        "SIGTERM with 10 slow clients: exit after {} ms",
        took.as_millis()
    );
}

#[test]
fn a_client_that_never_reads_is_dropped_at_the_write_timeout() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    let size = 64 << 20;
    std::fs::write(dir.path().join("www/big.bin"), vec![7u8; size]).unwrap();
    let server = start(
        dir.path(),
        &[],
        &["--static", "www", "--write-timeout-secs", "0.5"],
    );
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    // Read nothing while the server's writes stall, well past the write timeout.
    std::thread::sleep(Duration::from_secs(3));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = 0;
    let mut buf = vec![0; 1 << 20];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(
        got < size,
        "the whole {size} bytes arrived: the stalled write was not dropped"
    );
    // The server is fine.
    assert_eq!(server.send("GET", "/health", &[], Vec::new()).status, 200);
}
