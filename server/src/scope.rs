//! What one transaction reads and writes: one dataset of one user (docs/PROTOCOL.md, `dataset`).
//!
//! Each dataset is a row of the `users` table of its own, so every table stays keyed by that
//! row's id and every query that names it keeps datasets apart exactly as it keeps users apart.
//! The default dataset (requests without `dataset`, and every operation before datasets) is the
//! row named by the user id; dataset `d` of user `u` is the row `u/d`. A user id never contains
//! `/`, so no dataset's row can ever be a user's, and `u/` prefixes find all of a user's rows.

use std::borrow::Cow;

use crate::auth::UserId;

/// Separates the user id from the dataset in a row name.
pub const SEPARATOR: char = '/';

/// One user's dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    user: UserId,
    dataset: Option<String>,
}

impl Scope {
    /// The user's default dataset.
    pub fn user(user: UserId) -> Self {
        Scope {
            user,
            dataset: None,
        }
    }

    /// The user's `dataset` (already checked by `clientdata::core::protocol::check_dataset`), or
    /// the default one for `None`.
    pub fn dataset(user: UserId, dataset: Option<&str>) -> Self {
        Scope {
            user,
            dataset: dataset.map(str::to_owned),
        }
    }

    /// The user the scope belongs to (whose lock its transactions take).
    pub fn user_id(&self) -> &UserId {
        &self.user
    }

    /// The name of the scope's row in `users`: `user` or `user/dataset`.
    pub fn row_name(&self) -> Cow<'_, str> {
        match &self.dataset {
            None => Cow::Borrowed(self.user.as_str()),
            Some(d) => Cow::Owned(format!("{}{SEPARATOR}{d}", self.user.as_str())),
        }
    }

    /// The prefix of every non-default dataset row of `user` (`user/`), compared with
    /// `substr`/`left` rather than `LIKE`, which would treat `_` as a wildcard and, in SQLite,
    /// ignore case.
    pub fn datasets_prefix(user: &UserId) -> String {
        format!("{}{SEPARATOR}", user.as_str())
    }

    /// The same rows as a half-open range in byte order, `[user/, user0)` (`0` follows `/`),
    /// which an index on `name` can answer (the per-user caps count over it).
    pub fn dataset_rows_range(user: &UserId) -> (String, String) {
        let next = char::from(SEPARATOR as u8 + 1);
        (
            Self::datasets_prefix(user),
            format!("{}{next}", user.as_str()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_get_their_own_rows_and_the_default_keeps_the_users() {
        let u = UserId::new("a_b").unwrap();
        assert_eq!(Scope::user(u.clone()).row_name(), "a_b");
        assert_eq!(Scope::dataset(u.clone(), None).row_name(), "a_b");
        assert_eq!(
            Scope::dataset(u.clone(), Some("notes/x")).row_name(),
            "a_b/notes/x"
        );
        assert_eq!(Scope::datasets_prefix(&u), "a_b/");
        let (lo, hi) = Scope::dataset_rows_range(&u);
        assert_eq!((lo.as_str(), hi.as_str()), ("a_b/", "a_b0"));
        assert!(lo.as_str() < "a_b/x" && "a_b/x" < hi.as_str() && "a_b" < lo.as_str());
    }
}
