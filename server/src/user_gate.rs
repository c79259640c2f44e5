//! Rounds of one user run one at a time, within this process (what PostgreSQL's per-user advisory
//! lock gives across processes). A user hammering from many connections then holds at most one
//! database connection and one core, and every other user's rounds go past it instead of queueing
//! behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::auth::UserId;

/// One lock per user with a round in flight; entries go away when their last round ends, so the
/// map holds only users being served.
#[derive(Debug, Default)]
pub struct UserGate {
    users: Mutex<HashMap<UserId, Arc<Mutex<()>>>>,
}

impl UserGate {
    /// An empty gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` once no other round of `user` is running (blocking).
    pub fn run<T>(&self, user: &UserId, f: impl FnOnce() -> T) -> T {
        let lock = self
            .map()
            .entry(user.clone())
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone();
        let result = {
            // A round that panicked left nothing behind the lock guards (its transaction rolled
            // back while unwinding), so a poisoned lock is safe to take over.
            let _turn = lock.lock().unwrap_or_else(PoisonError::into_inner);
            f()
        };
        let mut users = self.map();
        // Two references: the map's and ours. Nobody else waits, so the entry can go.
        if Arc::strong_count(&lock) == 2 {
            users.remove(user);
        }
        result
    }

    /// Users with a round in flight or waiting (tests).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// No round in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self) -> MutexGuard<'_, HashMap<UserId, Arc<Mutex<()>>>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    #[test]
    fn rounds_of_one_user_never_overlap_and_the_map_empties() {
        let gate = Arc::new(UserGate::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        gate.run(&user("alice"), || {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_micros(200));
                            inside.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(gate.is_empty());
    }

    #[test]
    fn another_user_is_not_held_up() {
        let gate = Arc::new(UserGate::new());
        let (entered, release) = (
            std::sync::mpsc::channel::<()>(),
            std::sync::mpsc::channel::<()>(),
        );
        let (entered_tx, entered_rx) = entered;
        let (release_tx, release_rx) = release;
        let holder = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.run(&user("alice"), || {
                    entered_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
            })
        };
        entered_rx.recv().unwrap();
        // Alice's round is still running; Bob's runs at once.
        assert_eq!(gate.run(&user("bob"), || 7), 7);
        assert_eq!(gate.len(), 1);
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert!(gate.is_empty());
    }
}
