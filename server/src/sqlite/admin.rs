//! Operations on the SQLite backend that the exchange never needs: users with their sizes,
//! deleting a user.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{SqliteBackend, SqliteError};
use crate::auth::UserId;
use crate::ops::{Admin, UserStats};
use crate::scope::Scope;

impl Admin for SqliteBackend {
    fn users(&mut self) -> Result<Vec<UserStats>, SqliteError> {
        let mut stmt = self.conn.prepare(
            "SELECT u.name, count(r.user_id), COALESCE(sum(length(CAST(r.key AS BLOB)) + COALESCE(length(CAST(r.value AS BLOB)), 0)), 0)
             FROM users u LEFT JOIN records r ON r.user_id = u.id
             GROUP BY u.id ORDER BY u.name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(UserStats {
                name: row.get(0)?,
                records: row.get::<_, i64>(1)?.max(0) as u64,
                bytes: row.get::<_, i64>(2)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn has_scope(&mut self, scope: &Scope) -> Result<bool, SqliteError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM users WHERE name = ?1",
                [scope.row_name()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn delete_user(&mut self, user: &UserId) -> Result<Option<u64>, SqliteError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The user's row and every dataset's (`Scope::row_name`).
        let prefix = Scope::datasets_prefix(user);
        let ids = tx
            .prepare("SELECT id FROM users WHERE name = ?1 OR substr(name, 1, length(?2)) = ?2")?
            .query_map(params![user.as_str(), prefix], |row| row.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        if ids.is_empty() {
            return Ok(None);
        }
        let mut records = 0;
        for id in ids {
            records += tx.execute("DELETE FROM records WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM coverage WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM nodes WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM salts WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM readers WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM reader_seen WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM collected WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM content WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM devices WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(Some(records as u64))
    }
}
