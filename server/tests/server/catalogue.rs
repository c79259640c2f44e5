//! docs/ERRORS.md as a tested catalogue: every code the library or the server can produce is
//! documented, and is triggered by a test the catalogue names, or is listed as a known gap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clientdata_server::error::ANSWERS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `"code"` literals in every `fn code(` body of `source`.
fn codes_of_fn_code(source: &str) -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for (at, _) in source.match_indices("fn code(") {
        let body = &source[at..];
        let Some(open) = body.find('{') else { continue };
        let mut depth = 0;
        let mut end = open;
        for (i, c) in body[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        for literal in body[open..end].split('"').skip(1).step_by(2) {
            if !literal.is_empty() && literal.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                codes.insert(literal.to_owned());
            }
        }
    }
    codes
}

/// Every code the library and the server can produce.
fn produced() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for file in [
        "src/core/error.rs",
        "src/store/error.rs",
        "src/sync/error.rs",
        "src/lock/error.rs",
    ] {
        let found = codes_of_fn_code(&read(file));
        assert!(!found.is_empty(), "no codes found in {file}");
        codes.extend(found);
    }
    codes.extend(ANSWERS.iter().map(|(_, c)| (*c).to_owned()));
    codes
}

/// The backticked codes in the first column (or, in the server's table, the `code` column) of
/// the tables before the catalogue section.
fn documented(errors_md: &str) -> BTreeSet<String> {
    let tables = &errors_md[..errors_md
        .find("## Where each code is tested")
        .expect("the catalogue section")];
    let mut codes = BTreeSet::new();
    let mut code_column = 0;
    for line in tables.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Some(i) = cells.iter().position(|c| *c == "code") {
            code_column = i;
            continue;
        }
        if let Some(cell) = cells.get(code_column) {
            for token in cell.split('`').skip(1).step_by(2) {
                if !token.is_empty() && token.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    codes.insert(token.to_owned());
                }
            }
        }
    }
    codes
}

/// Per code, the (file, test name) pairs that trigger it.
type Tested = BTreeMap<String, Vec<(String, String)>>;

/// The catalogue: what triggers each code, and the gaps.
fn catalogue(errors_md: &str) -> (Tested, BTreeSet<String>) {
    let section = &errors_md[errors_md.find("## Where each code is tested").unwrap()..];
    let (tested, gaps) = section
        .split_once("### Not covered by a test yet")
        .expect("the gaps heading");
    let first_cell = |line: &str| {
        line.split('|')
            .nth(1)
            .map(|c| c.trim().trim_matches('`').to_owned())
    };
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| `"))
            .map(str::to_owned)
            .collect()
    };
    let mut map = BTreeMap::new();
    for line in rows(tested) {
        let code = first_cell(&line).unwrap();
        let cell = line.split('|').nth(2).unwrap();
        let tests: Vec<(String, String)> = cell
            .split(';')
            .map(|entry| {
                let parts: Vec<&str> = entry.split('`').skip(1).step_by(2).collect();
                assert_eq!(parts.len(), 2, "{code}: `file` `test name`, got {entry:?}");
                (parts[0].to_owned(), parts[1].to_owned())
            })
            .collect();
        assert!(
            map.insert(code.clone(), tests).is_none(),
            "{code} listed twice"
        );
    }
    let gaps = rows(gaps).iter().map(|l| first_cell(l).unwrap()).collect();
    (map, gaps)
}

#[test]
fn every_code_is_documented_and_triggered_by_a_named_test_or_listed_as_a_gap() {
    let errors_md = read("docs/ERRORS.md");
    let produced = produced();
    let documented = documented(&errors_md);
    let undocumented: Vec<_> = produced.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "codes missing from docs/ERRORS.md: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&produced).collect();
    assert!(
        stale.is_empty(),
        "docs/ERRORS.md names codes nothing produces: {stale:?}"
    );

    let (tested, gaps) = catalogue(&errors_md);
    for code in &produced {
        assert!(
            tested.contains_key(code) != gaps.contains(code),
            "{code}: must be either triggered by a named test or listed as a gap (not both)"
        );
    }
    for code in tested.keys().chain(&gaps) {
        assert!(
            produced.contains(code),
            "the catalogue names {code}, which nothing produces"
        );
    }
    for (code, tests) in &tested {
        for (file, name) in tests {
            let text = read(file);
            assert!(
                text.contains(name.as_str()),
                "{file} has no test {name:?} (for {code})"
            );
            assert!(
                text.contains(&format!("\"{code}\"")) || text.contains(&format!("'{code}'")),
                "{file} never names the code {code}"
            );
        }
    }
    eprintln!(
        "error catalogue: {} codes, {} triggered by named tests, {} gaps: {:?}",
        produced.len(),
        tested.len(),
        gaps.len(),
        gaps
    );
}
