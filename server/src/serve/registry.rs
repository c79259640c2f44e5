//! The open connections: which are busy with a request and which are idle, so that at the cap the
//! longest-idle one can be closed for a newcomer, and shutdown can wait for all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

/// What the accept loop asks of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Nothing.
    None,
    /// Close now (it was idle and a newcomer needs its place).
    Close,
    /// Finish the request in flight, if any, then close (shutdown).
    Drain,
}

/// One connection's state, shared by its task, its I/O wrapper and the registry.
pub(crate) struct ConnState {
    /// A request is being served: from the router's call until its answer is flushed.
    busy: AtomicBool,
    /// The answer's body was dropped by hyper, so the next flush completes the answer.
    body_done: AtomicBool,
    /// When the connection last became idle, in ms since the registry started.
    idle_since_ms: AtomicU64,
    command: AtomicU8,
    /// Wakes the connection's task for a [`Command`].
    pub(crate) wake: Notify,
}

impl ConnState {
    /// The router was called for a request.
    pub(crate) fn begin_request(&self) {
        self.body_done.store(false, Ordering::SeqCst);
        self.busy.store(true, Ordering::SeqCst);
    }

    /// Hyper dropped the answer's body: everything of it is in hyper's write buffer or sent.
    pub(crate) fn body_done(&self) {
        self.body_done.store(true, Ordering::SeqCst);
    }

    /// Called after a flush of the socket: if the answer's body was done before it, the answer is
    /// on the wire and the connection is idle again. Returns whether it just became idle.
    pub(crate) fn flushed(&self, now_ms: u64) -> bool {
        if self.busy.load(Ordering::SeqCst) && self.body_done.load(Ordering::SeqCst) {
            self.idle_since_ms.store(now_ms, Ordering::SeqCst);
            self.busy.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Whether a request is being served.
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// The pending command.
    pub(crate) fn command(&self) -> Command {
        match self.command.load(Ordering::SeqCst) {
            1 => Command::Close,
            2 => Command::Drain,
            _ => Command::None,
        }
    }

    fn send(&self, command: Command) {
        let code = match command {
            Command::None => 0,
            Command::Close => 1,
            Command::Drain => 2,
        };
        self.command.store(code, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Every open connection.
pub(crate) struct Registry {
    started: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    emptied: Notify,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            emptied: Notify::new(),
        }
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        // The map stays consistent under a panic (single inserts and removes).
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Milliseconds since the registry started.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a new, idle connection.
    pub(crate) fn insert(&self) -> (u64, Arc<ConnState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            busy: AtomicBool::new(false),
            body_done: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            command: AtomicU8::new(0),
            wake: Notify::new(),
        });
        self.conns().insert(id, Arc::clone(&state));
        (id, state)
    }

    /// Forgets a closed connection.
    pub(crate) fn remove(&self, id: u64) {
        let mut conns = self.conns();
        conns.remove(&id);
        if conns.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// Connections open (not counting ones told to close).
    pub(crate) fn len(&self) -> usize {
        self.conns().len()
    }

    /// Closes the connection idle the longest (no request in flight: a keep-alive connection, or
    /// one still sending its head). Returns false when every connection is busy.
    pub(crate) fn evict_idle(&self) -> bool {
        let mut conns = self.conns();
        let oldest = conns
            .iter()
            .filter(|(_, c)| !c.is_busy())
            .min_by_key(|(_, c)| c.idle_since_ms.load(Ordering::SeqCst))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                conn.send(Command::Close);
                true
            }
            None => false,
        }
    }

    /// Tells every connection to finish what it is doing and close.
    pub(crate) fn drain_all(&self) {
        for conn in self.conns().values() {
            conn.send(Command::Drain);
        }
    }

    /// Resolves once no connection is open.
    pub(crate) async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            // Registered before the check, so a removal in between is not missed.
            emptied.as_mut().enable();
            if self.conns().is_empty() {
                return;
            }
            emptied.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_takes_the_longest_idle_and_never_a_busy_connection() {
        let registry = Registry::new();
        let (_, busy) = registry.insert();
        busy.begin_request();
        let (old_id, old) = registry.insert();
        let (_, young) = registry.insert();
        old.idle_since_ms.store(0, Ordering::SeqCst);
        young.idle_since_ms.store(10, Ordering::SeqCst);
        busy.idle_since_ms.store(0, Ordering::SeqCst);
        assert!(registry.evict_idle());
        assert_eq!(old.command(), Command::Close);
        assert_eq!(young.command(), Command::None);
        assert_eq!(registry.len(), 2);
        registry.remove(old_id);
        assert!(registry.evict_idle());
        assert_eq!(young.command(), Command::Close);
        assert!(!registry.evict_idle(), "only a busy connection is left");
        assert_eq!(busy.command(), Command::None);
    }

    #[test]
    fn an_answer_is_done_at_the_first_flush_after_its_body() {
        let registry = Registry::new();
        let (_, conn) = registry.insert();
        conn.begin_request();
        assert!(!conn.flushed(5), "the head may be flushed before the body");
        conn.body_done();
        assert!(conn.flushed(6));
        assert!(!conn.is_busy());
        assert!(!conn.flushed(7), "once");
    }
}
