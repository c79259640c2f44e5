//! Operations on the PostgreSQL backend that the exchange never needs: users with their sizes,
//! deleting a user. Each runs in one transaction under the user's advisory lock where it writes.

use super::{lock_user, PgConn, PgError};
use crate::auth::UserId;
use crate::ops::{Admin, UserStats};
use crate::scope::Scope;

impl Admin for PgConn {
    fn users(&mut self) -> Result<Vec<UserStats>, PgError> {
        let rows = self.client.query(
            "SELECT u.name, count(r.user_id), COALESCE(sum(octet_length(r.key) + COALESCE(octet_length(r.value), 0)), 0)::bigint
             FROM users u LEFT JOIN records r ON r.user_id = u.id
             GROUP BY u.id, u.name ORDER BY u.name",
            &[],
        )?;
        rows.iter()
            .map(|row| {
                Ok(UserStats {
                    name: row.try_get(0)?,
                    records: row.try_get::<_, i64>(1)?.max(0) as u64,
                    bytes: row.try_get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .collect()
    }

    fn has_scope(&mut self, scope: &Scope) -> Result<bool, PgError> {
        Ok(self
            .client
            .query_opt(
                "SELECT 1 FROM users WHERE name = $1",
                &[&scope.row_name().as_ref()],
            )?
            .is_some())
    }

    fn delete_user(&mut self, user: &UserId) -> Result<Option<u64>, PgError> {
        let mut tx = self.client.transaction()?;
        // Waits for a round of this user (any dataset) in any process to finish, and keeps new
        // ones out until the delete commits.
        lock_user(&mut tx, user)?;
        let prefix = Scope::datasets_prefix(user);
        let rows = tx.query(
            "SELECT id FROM users WHERE name = $1 OR left(name, length($2)) = $2",
            &[&user.as_str(), &prefix],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut records = 0;
        for row in rows {
            let id: i64 = row.try_get(0)?;
            records += tx.execute("DELETE FROM records WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM coverage WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM nodes WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM salts WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM readers WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM reader_seen WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM collected WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM content WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM devices WHERE user_id = $1", &[&id])?;
            tx.execute("DELETE FROM users WHERE id = $1", &[&id])?;
        }
        tx.commit()?;
        Ok(Some(records))
    }
}
