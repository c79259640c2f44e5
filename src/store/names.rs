//! Database names, which become part of Web Lock, BroadcastChannel and localStorage names
//! (`clientdata:<db>:slot:<n>`, `clientdata:<db>:lock:<name>`, `clientdata:<db>:journal:...`).
//! Pure, tested natively.

/// Longest database name in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Checks a database name: 1 to [`MAX_NAME_LEN`] bytes, no control characters and no `:`,
/// which separates the parts of the names built from it. With `:` allowed, database `a` with
/// lock `x:slot:0` and database `a:lock:x` shared one Web Lock; without it, the text between
/// `clientdata:` and the next `:` is always the whole database name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.chars().any(|c| c.is_control() || c == ':')
    {
        return Err(format!(
            "name must be 1 to {MAX_NAME_LEN} bytes without control characters or ':', not {:?}",
            name.chars().take(40).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_collide_in_derived_names_are_refused() {
        for good in ["a", "notes", "my app/v2", "é🦀", &"n".repeat(MAX_NAME_LEN)] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "a:lock:x",
            ":",
            "a:",
            "x\u{0}",
            "tab\t",
            &"n".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        // The collision that motivated it: db "a" + lock "x:slot:0" vs db "a:lock:x" + slot 0.
        let lock = |db: &str, name: &str| format!("clientdata:{db}:lock:{name}");
        let slot = |db: &str, n: u32| format!("clientdata:{db}:slot:{n}");
        assert_eq!(lock("a", "x:slot:0"), slot("a:lock:x", 0));
        assert!(check_name("a:lock:x").is_err());
    }
}
