//! The storage seam: a [`Backend`] opens one transaction per round, scoped to one user, which the
//! shared core drives through its [`Store`] trait. SQLite implements it today; a PostgreSQL
//! backend implements the same two traits (a `REPEATABLE READ` transaction from a pool).

use clientdata::core::replica::{serve, ReplicaError, ServeStats};
use clientdata::core::{ExchangeRequest, ExchangeResponse, Limits, Store};

use crate::auth::UserId;

/// A store's transaction: everything written through it lands together or not at all.
pub trait Transaction: Store {
    /// Makes every write of this transaction durable (as the backend defines it) and visible.
    /// Dropping the transaction instead rolls everything back.
    fn commit_transaction(self) -> Result<(), Self::Error>;
}

/// A database that can run exchange rounds.
pub trait Backend: Send + 'static {
    /// The backend's failure type.
    type Error: std::error::Error + Send + Sync + 'static;
    /// One user's transaction.
    type Tx<'a>: Transaction<Error = Self::Error>
    where
        Self: 'a;

    /// Short name reported by `/health` (e.g. `"sqlite"`).
    const NAME: &'static str;

    /// Opens a transaction that reads and writes only `user`'s rows.
    fn begin(&mut self, user: &UserId) -> Result<Self::Tx<'_>, Self::Error>;

    /// A trivial query, to prove the database answers.
    fn ping(&mut self) -> Result<(), Self::Error>;
}

/// One round for `user`: the core's [`serve`] inside ONE transaction, so the push is applied whole
/// or not at all, and the answer is read from the same snapshot the push was written to.
pub fn exchange<B: Backend>(
    backend: &mut B,
    user: &UserId,
    request: &ExchangeRequest,
    limits: &Limits,
    now_ms: u64,
) -> Result<(ExchangeResponse, ServeStats), ReplicaError<B::Error>> {
    let mut tx = backend.begin(user).map_err(ReplicaError::Store)?;
    let answer = serve(&mut tx, request, limits, now_ms)?;
    tx.commit_transaction().map_err(ReplicaError::Store)?;
    Ok(answer)
}
