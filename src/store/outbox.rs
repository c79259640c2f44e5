//! Cross-tab posts in stamp order. Receivers push the records of every node they hear of, so
//! each instance must post its records in the HLC order it stamped them, or a peer could push a
//! later record of a node before an earlier one and the server's coverage would pass the
//! earlier one unseen. A commit reserves a ticket when it stamps and fills it when it knows what
//! to post (rows, or nothing if it failed); posts leave in ticket order. Pure, tested natively.

use std::collections::VecDeque;

/// A reserved place in the posting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a reserved ticket holds back every later post until it is filled"]
pub struct Ticket(u64);

/// Messages waiting for earlier tickets.
#[derive(Debug)]
pub struct Outbox<T> {
    /// Ticket number of `slots[0]`.
    first: u64,
    /// `None`: reserved, not filled; `Some(None)`: filled with nothing to post.
    slots: VecDeque<Option<Option<T>>>,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox {
            first: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<T> Outbox<T> {
    /// Reserves the next place.
    pub fn reserve(&mut self) -> Ticket {
        self.slots.push_back(None);
        Ticket(self.first + self.slots.len() as u64 - 1)
    }

    /// Fills `ticket` and returns every message now free to go, in order.
    pub fn fill(&mut self, ticket: Ticket, message: Option<T>) -> Vec<T> {
        if let Some(slot) = ticket
            .0
            .checked_sub(self.first)
            .and_then(|i| self.slots.get_mut(i as usize))
        {
            *slot = Some(message);
        }
        let mut ready = Vec::new();
        while let Some(Some(_)) = self.slots.front() {
            if let Some(Some(message)) = self.slots.pop_front() {
                ready.extend(message);
            }
            self.first += 1;
        }
        ready
    }

    /// Posts `message` after everything reserved before it.
    pub fn push(&mut self, message: T) -> Vec<T> {
        let ticket = self.reserve();
        self.fill(ticket, Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_post_waits_for_an_earlier_reservation() {
        let mut out = Outbox::default();
        let many = out.reserve();
        assert!(
            out.push("batch 2").is_empty(),
            "held back behind the reservation"
        );
        assert_eq!(out.fill(many, Some("many 1")), vec!["many 1", "batch 2"]);
        assert_eq!(out.push("batch 3"), vec!["batch 3"]);
    }

    #[test]
    fn a_failed_commit_releases_its_place_without_posting() {
        let mut out = Outbox::default();
        let a = out.reserve();
        let b = out.reserve();
        assert!(out.fill(b, Some(2)).is_empty());
        assert_eq!(out.fill(a, None), vec![2]);
        assert!(out.slots.is_empty());
    }

    #[test]
    fn filling_twice_or_an_unknown_ticket_changes_nothing() {
        let mut out: Outbox<u8> = Outbox::default();
        let a = out.reserve();
        assert_eq!(out.fill(a, Some(1)), vec![1]);
        assert!(out.fill(a, Some(9)).is_empty());
        assert!(out.fill(Ticket(42), Some(9)).is_empty());
        assert_eq!(out.push(3), vec![3]);
    }
}
