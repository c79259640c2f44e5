//! The content endpoint (protocol v2): values synced by reference. Content is authenticated,
//! kept per user and dataset like records, checked against its digest, bounded in size, and a
//! pushed reference must name content the dataset holds.

use clientdata::core::content::{ContentKind, ContentRef, Digest, MAX_CONTENT_BYTES};
use clientdata::core::{ExchangeRequest, Value, PROTOCOL_VERSION};
use sha2::Digest as _;

use crate::support::{token, Device, Reply, Server, TestDb};

fn sha(data: &[u8]) -> Digest {
    Digest(sha2::Sha256::digest(data).into())
}

fn put(server: &Server, token: &str, digest: &str, query: &str, data: Vec<u8>) -> Reply {
    let auth = format!("Bearer {token}");
    server.send(
        "PUT",
        &format!("/sync/content/{digest}{query}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        data,
    )
}

fn get(server: &Server, token: &str, digest: &str, query: &str) -> Reply {
    let auth = format!("Bearer {token}");
    server.send(
        "GET",
        &format!("/sync/content/{digest}{query}"),
        &[("authorization", &auth)],
        vec![],
    )
}

/// A 1 MiB JSON text: a string of `fill`.
fn big_json(fill: char) -> String {
    format!("\"{}\"", fill.to_string().repeat(1 << 20))
}

fn content_is_authenticated_hash_checked_bounded_and_kept_per_user_and_dataset(db: &TestDb) {
    let server = Server::with_tokens(db);
    let (alice, bob) = (token("alice"), token("bob"));
    let data = big_json('a').into_bytes();
    let digest = sha(&data).to_hex();

    // Unauthenticated: refused, nothing stored.
    // (An empty body: the server answers before reading one and may close mid-write.)
    let r = put(&server, "nope", &digest, "", Vec::new());
    assert_eq!((r.status, r.code().as_str()), (401, "unauthorized"));
    // A body that does not hash to the path's digest: refused, nothing stored.
    let forged = sha(b"something else").to_hex();
    let r = put(&server, &alice, &forged, "", data.clone());
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "content_hash_mismatch")
    );
    let r = get(&server, &alice, &forged, "");
    assert_eq!((r.status, r.code().as_str()), (404, "content_not_found"));
    // Not a digest.
    let r = get(&server, &alice, "abc", "");
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_request"));
    // Over 8 MiB: refused before it is stored.
    // (Declared: the server answers before the body and closes, so it is written raw.)
    let head = format!(
        "PUT /sync/content/{digest} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {alice}\r\ncontent-length: {}\r\n\r\n",
        MAX_CONTENT_BYTES + 1
    );
    let (status, body) = server.raw(head.as_bytes());
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large"))
    );
    // Exactly 8 MiB is accepted and comes back whole.
    let max = vec![9u8; MAX_CONTENT_BYTES];
    let max_digest = sha(&max).to_hex();
    assert_eq!(
        put(&server, &alice, &max_digest, "", max.clone()).status,
        204
    );
    let back = get(&server, &alice, &max_digest, "");
    assert_eq!(back.status, 200);
    assert_eq!(back.body.len(), MAX_CONTENT_BYTES);
    assert!(back.body == max);

    // Stored for alice's dataset "notes" (twice: idempotent).
    for _ in 0..2 {
        assert_eq!(
            put(&server, &alice, &digest, "?dataset=notes", data.clone()).status,
            204
        );
    }
    let r = get(&server, &alice, &digest, "?dataset=notes");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body == data);
    // Not in alice's other datasets, nor for bob, even knowing the digest.
    for (who, query) in [
        (&alice, ""),
        (&alice, "?dataset=other"),
        (&bob, "?dataset=notes"),
        (&bob, ""),
    ] {
        let r = get(&server, who, &digest, query);
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "content_not_found"),
            "{query}"
        );
    }
    // A dataset name is percent-encoded and checked.
    assert_eq!(
        put(
            &server,
            &alice,
            &digest,
            "?dataset=a%2Fb%20%C3%A9",
            data.clone()
        )
        .status,
        204
    );
    assert_eq!(
        get(&server, &alice, &digest, "?dataset=a%2Fb%20%C3%A9").status,
        200
    );
    let r = get(&server, &alice, &digest, "?dataset=");
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_request"));
}

on_both!(content_is_authenticated_hash_checked_bounded_and_kept_per_user_and_dataset);

/// A hostile client uploading content nobody references cannot fill the disk: content counts
/// against `--max-content-bytes-per-user` over all the user's datasets, an upload past it is
/// 413 `user_quota_exceeded` and stores nothing, content already held is accepted again at the
/// cap, and other users are unaffected.
fn content_past_the_users_byte_cap_is_refused_and_stores_nothing(db: &TestDb) {
    let tokens = crate::support::tokens_file(db.dir());
    let server = Server::start(
        db.dir(),
        &[
            "--database",
            db.arg(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--max-content-bytes-per-user",
            "250000",
        ],
        &[],
    );
    let (alice, bob) = (token("alice"), token("bob"));
    let blob = |fill: u8| vec![fill; 100_000];
    let (one, two, three) = (blob(1), blob(2), blob(3));
    assert_eq!(
        put(&server, &alice, &sha(&one).to_hex(), "", one.clone()).status,
        204
    );
    // The second in another dataset of the same user: the cap spans datasets.
    let r = put(
        &server,
        &alice,
        &sha(&two).to_hex(),
        "?dataset=other",
        two.clone(),
    );
    assert_eq!(r.status, 204, "{}", r.text());

    let r = put(&server, &alice, &sha(&three).to_hex(), "", three.clone());
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "user_quota_exceeded"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("content bytes"), "{}", r.text());
    let r = get(&server, &alice, &sha(&three).to_hex(), "");
    assert_eq!((r.status, r.code().as_str()), (404, "content_not_found"));

    // Content already held is accepted again (idempotent), and is still there.
    assert_eq!(
        put(&server, &alice, &sha(&one).to_hex(), "", one.clone()).status,
        204
    );
    assert_eq!(get(&server, &alice, &sha(&one).to_hex(), "").body, one);
    // Another user has a cap of its own.
    assert_eq!(
        put(&server, &bob, &sha(&three).to_hex(), "", three).status,
        204
    );
}

on_both!(content_past_the_users_byte_cap_is_refused_and_stores_nothing);

/// A pushed reference must name content its dataset holds (`content_missing`, nothing of the
/// round applied); once uploaded, another device of the user pulls the reference (metadata
/// only) and fetches the content by it. A version 1 request is refused with a typed code.
fn references_sync_as_metadata_and_need_their_content_first(db: &TestDb) {
    let server = Server::with_tokens(db);
    let alice = token("alice");
    let data = big_json('b').into_bytes();
    let reference = ContentRef {
        kind: ContentKind::Json,
        size: data.len() as u64,
        sha256: sha(&data),
    };
    let mut writer = Device::new(&alice);
    writer.client.dataset = Some("notes".into());
    writer.put("small", "k", "1");
    writer.write("files", "big", Some(Value::Ref(reference.clone())));
    let request = writer
        .client
        .request_from(&mut writer.store, &writer.clock, None, 100, None)
        .unwrap()
        .request;
    let reply = server.post(&alice, serde_json::to_vec(&request).unwrap());
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "content_missing")
    );
    let mut reader = Device::new(&alice);
    reader.client.dataset = Some("notes".into());
    reader.sync(&server, 100);
    assert!(
        reader.contents().is_empty(),
        "a refused round applies nothing"
    );

    // Uploaded to another dataset: still missing in this one.
    let hex = reference.sha256.to_hex();
    assert_eq!(
        put(&server, &alice, &hex, "?dataset=elsewhere", data.clone()).status,
        204
    );
    let reply = server.post(&alice, serde_json::to_vec(&request).unwrap());
    assert_eq!(reply.code(), "content_missing");
    // Uploaded here: the round goes through.
    assert_eq!(
        put(&server, &alice, &hex, "?dataset=notes", data.clone()).status,
        204
    );
    writer.sync(&server, 100);
    reader.sync(&server, 100);
    let pulled = reader.contents();
    assert_eq!(pulled.len(), 2);
    let (_, _, value) = pulled.iter().find(|(p, _, _)| p == "files").unwrap();
    assert_eq!(
        value,
        &Value::Ref(reference.clone()),
        "the reply carries the reference only"
    );
    let fetched = get(&server, &alice, &hex, "?dataset=notes");
    let value = reference
        .value_from(fetched.body.clone(), &sha(&fetched.body))
        .unwrap();
    assert_eq!(value, Value::Json(String::from_utf8(data).unwrap()));

    // An old client: typed refusal, not a reply it would misread.
    let old = ExchangeRequest {
        version: PROTOCOL_VERSION - 1,
        ..request
    };
    let reply = server.post(&alice, serde_json::to_vec(&old).unwrap());
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "unsupported_version")
    );
}

on_both!(references_sync_as_metadata_and_need_their_content_first);
