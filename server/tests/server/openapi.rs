//! docs/openapi.json is kept in step with the server: its paths and methods are exactly the
//! routes the running server answers, and the codes it names are exactly the server's `ANSWERS`,
//! which in turn must hold every code the server's source hands to an `ApiError`.

use std::collections::BTreeSet;

use clientdata_server::error::ANSWERS;
use serde_json::{json, Value};

use crate::support::{now_ms, token, Server, TestDb};

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("docs/openapi.json")
}

/// Every `code` enum under `value`, with the status of the response it sits in.
fn codes_in(value: &Value, status: Option<u16>, out: &mut BTreeSet<(u16, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = k.parse::<u16>().ok().filter(|_| v.is_object()).or(status);
                if k == "code" {
                    if let Some(codes) = v.get("enum").and_then(Value::as_array) {
                        for c in codes {
                            out.insert((status.unwrap(), c.as_str().unwrap().to_owned()));
                        }
                    }
                }
                codes_in(v, here, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| codes_in(v, status, out)),
        _ => {}
    }
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn valid_request() -> Vec<u8> {
    let node = "00000000000000b7";
    let hlc = format!("{:012x}-0000-{node}", now_ms() - 1000);
    serde_json::to_vec(&json!({
        "version": 2, "node": node, "limit": 10,
        "push": [{ "plugin": "notes", "key": "k", "hlc": hlc, "value": { "json": "1" } }]
    }))
    .unwrap()
}

fn paths_and_methods_are_exactly_the_routes_the_server_answers(db: &TestDb) {
    let doc = document();
    let server = Server::with_tokens(db);
    let alice = token("alice");
    let auth = format!("Bearer {alice}");
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    // Path parameters name a real content, uploaded first, so every documented method
    // answers its 2xx.
    let content = b"\"some content\"".to_vec();
    let digest = {
        use sha2::Digest as _;
        let d: [u8; 32] = sha2::Sha256::digest(&content).into();
        clientdata::core::content::Digest(d).to_hex()
    };
    let upload = server.send(
        "PUT",
        &format!("/sync/content/{digest}"),
        &[("authorization", &auth)],
        content.clone(),
    );
    assert_eq!(upload.status, 204, "{}", upload.text());
    for (path, item) in paths {
        let target = path.replace("{sha256}", &digest);
        for method in METHODS {
            let documented = item.get(method.to_ascii_lowercase());
            let body = match method {
                // The walk's request has no push: a page after no cursor.
                "POST" if path == "/sync/resync" => serde_json::to_vec(
                    &json!({ "version": 2, "node": "00000000000000b7", "limit": 10 }),
                )
                .unwrap(),
                "POST" => valid_request(),
                "PUT" => content.clone(),
                _ => Vec::new(),
            };
            let reply = server.send(
                method,
                &target,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body,
            );
            match documented {
                Some(op) => {
                    assert!(
                        (200..300).contains(&reply.status),
                        "{method} {path}: {} {}",
                        reply.status,
                        reply.text()
                    );
                    let statuses = op["responses"].as_object().unwrap();
                    assert!(
                        statuses.contains_key(&reply.status.to_string()),
                        "{method} {path}"
                    );
                }
                None => {
                    assert_eq!(reply.status, 405, "{method} {path} is not documented");
                    assert_eq!(reply.json()["code"], "method_not_allowed");
                    let documented_405 = item
                        .as_object()
                        .unwrap()
                        .values()
                        .any(|op| op["responses"].get("405").is_some());
                    assert!(documented_405, "{path} must document its 405");
                }
            }
        }
    }
    // Nothing else is routed.
    for path in ["/sync", "/sync/exchange/x", "/healthz", "/openapi.json"] {
        let reply = server.send("GET", path, &[], Vec::new());
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["code"], "not_found");
    }
}
on_both!(paths_and_methods_are_exactly_the_routes_the_server_answers);

#[test]
fn the_document_names_exactly_the_codes_the_server_answers() {
    let doc = document();
    let mut documented = BTreeSet::new();
    codes_in(&doc["paths"], None, &mut documented);
    for other in doc["x-answers-outside-paths"].as_array().unwrap() {
        documented.insert((
            other["status"].as_u64().unwrap() as u16,
            other["code"].as_str().unwrap().to_owned(),
        ));
    }
    let answers: BTreeSet<(u16, String)> =
        ANSWERS.iter().map(|(s, c)| (*s, (*c).to_owned())).collect();
    let missing: Vec<_> = answers.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&answers).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/openapi.json lacks {missing:?} and names {extra:?} the server never answers"
    );
}

/// The literal codes the server's source gives `ApiError::new(StatusCode::X, "code", ..)` and
/// `status_code`'s arms: each must be in `ANSWERS` with that status.
#[test]
fn every_code_in_the_server_source_is_in_answers() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut files = vec![std::path::PathBuf::from(src)];
    let mut found = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices("StatusCode::") {
            let rest = &text[at + "StatusCode::".len()..];
            let name_len = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(0);
            let name = &rest[..name_len];
            let after = rest[name_len..].trim_start();
            let Some(after) = after
                .strip_prefix(',')
                .or_else(|| after.strip_prefix("=>"))
                .map(str::trim_start)
            else {
                continue;
            };
            let Some(quoted) = after.strip_prefix('"') else {
                continue;
            };
            let code = &quoted[..quoted.find('"').unwrap()];
            if code.is_empty() || !code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                continue;
            }
            if code == "http_error" {
                continue; // status_code's fallback for statuses the server never produces
            }
            let status = axum_status(name);
            found += 1;
            assert!(
                ANSWERS.contains(&(status, code)),
                "{}: StatusCode::{name} \"{code}\" is not in ANSWERS",
                path.display()
            );
        }
    }
    assert!(found >= 10, "the scan found only {found} codes");
}

fn axum_status(name: &str) -> u16 {
    match name {
        "BAD_REQUEST" => 400,
        "UNAUTHORIZED" => 401,
        "FORBIDDEN" => 403,
        "NOT_FOUND" => 404,
        "METHOD_NOT_ALLOWED" => 405,
        "REQUEST_TIMEOUT" => 408,
        "PAYLOAD_TOO_LARGE" => 413,
        "URI_TOO_LONG" => 414,
        "UNSUPPORTED_MEDIA_TYPE" => 415,
        "RANGE_NOT_SATISFIABLE" => 416,
        "REQUEST_HEADER_FIELDS_TOO_LARGE" => 431,
        "INTERNAL_SERVER_ERROR" => 500,
        "SERVICE_UNAVAILABLE" => 503,
        other => panic!("unknown status name {other}"),
    }
}
