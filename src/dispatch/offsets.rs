//! Offset bookkeeping for at-least-once delivery with out-of-order completion.
//!
//! Events of one partition finish in any order (different keys run concurrently), but the
//! offset stored for commit only ever moves to just below the oldest unfinished event.
//! Each assignment of a partition is a generation: work from a revoked generation is
//! cancelled and never stores an offset.

use std::collections::{BTreeSet, HashMap};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct Tracker {
    parts: HashMap<i32, Part>,
    generations: u64,
    /// Every partition's token is a child of this one (cancelled to abandon all work).
    parent: CancellationToken,
}

#[derive(Debug)]
struct Part {
    generation: u64,
    cancel: CancellationToken,
    pending: BTreeSet<i64>,
    /// One past the highest offset received.
    next: i64,
    /// The offset last handed out for storing.
    stored: Option<i64>,
    /// Events whose HTTP work has started and not yet ended.
    active: usize,
}

/// What a received event carries so its finish can be matched to its assignment.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub partition: i32,
    pub offset: i64,
    pub generation: u64,
    /// Cancelled when the partition is revoked or all work is abandoned.
    pub cancel: CancellationToken,
}

impl Tracker {
    /// A tracker whose tickets are also cancelled when `parent` is.
    pub fn new(parent: CancellationToken) -> Tracker {
        Tracker { parent, ..Tracker::default() }
    }

    /// Records a received event.
    pub fn received(&mut self, partition: i32, offset: i64) -> Ticket {
        let (generations, parent) = (&mut self.generations, &self.parent);
        let part = self.parts.entry(partition).or_insert_with(|| {
            *generations += 1;
            Part {
                generation: *generations,
                cancel: parent.child_token(),
                pending: BTreeSet::new(),
                next: offset,
                // Everything before the first event received is already committed.
                stored: Some(offset - 1),
                active: 0,
            }
        });
        part.pending.insert(offset);
        part.next = part.next.max(offset + 1);
        Ticket { partition, offset, generation: part.generation, cancel: part.cancel.clone() }
    }

    /// Marks work on `ticket` as started; false when its assignment is gone.
    pub fn start(&mut self, ticket: &Ticket) -> bool {
        match self.current(ticket) {
            Some(part) => {
                part.active += 1;
                true
            }
            None => false,
        }
    }

    /// Ends started work. When `done`, the event counts as finished and the offset to
    /// store (the last finished offset of the unbroken run) is returned if it advanced.
    /// When not `done` (abandoned), the event stays pending so it is never committed.
    pub fn finish(&mut self, ticket: &Ticket, done: bool) -> Option<i64> {
        let part = self.parts.get_mut(&ticket.partition).filter(|p| p.generation == ticket.generation)?;
        part.active = part.active.saturating_sub(1);
        if !done {
            return None;
        }
        part.pending.remove(&ticket.offset);
        let committable = part.pending.first().copied().unwrap_or(part.next);
        let last_done = committable - 1;
        if last_done >= 0 && part.stored.is_none_or(|s| last_done > s) {
            part.stored = Some(last_done);
            return Some(last_done);
        }
        None
    }

    /// Unfinished events of a partition.
    pub fn pending(&self, partition: i32) -> usize {
        self.parts.get(&partition).map_or(0, |p| p.pending.len())
    }

    /// Unfinished events of any of `partitions`.
    pub fn pending_in(&self, partitions: &[i32]) -> usize {
        partitions.iter().map(|p| self.pending(*p)).sum()
    }

    /// Started, unfinished work on any of `partitions`.
    pub fn active(&self, partitions: &[i32]) -> usize {
        partitions.iter().filter_map(|p| self.parts.get(p)).map(|p| p.active).sum()
    }

    /// True once all work is abandoned (the shutdown's grace period ended): what is still
    /// pending will not finish here.
    pub fn abandoned(&self) -> bool {
        self.parent.is_cancelled()
    }

    /// Cancels the current generation of `partitions` (revocation); pending work is dropped.
    pub fn revoke(&mut self, partitions: &[i32]) {
        for p in partitions {
            if let Some(part) = self.parts.get(p) {
                part.cancel.cancel();
            }
        }
    }

    /// Forgets revoked partitions once their active work ended.
    pub fn forget(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.parts.remove(p);
        }
    }

    fn current(&mut self, ticket: &Ticket) -> Option<&mut Part> {
        self.parts.get_mut(&ticket.partition).filter(|p| p.generation == ticket.generation && !p.cancel.is_cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_below_the_oldest_unfinished_event() {
        let mut t = Tracker::default();
        let a = t.received(0, 10);
        let b = t.received(0, 11);
        let c = t.received(0, 12);
        for x in [&a, &b, &c] {
            assert!(t.start(x));
        }
        assert_eq!(t.finish(&c, true), None, "10 and 11 are still open");
        assert_eq!(t.finish(&a, true), Some(10));
        assert_eq!(t.finish(&b, true), Some(12));
        assert_eq!(t.pending(0), 0);
    }

    #[test]
    fn abandoned_events_are_never_committed() {
        let mut t = Tracker::default();
        let a = t.received(3, 0);
        let b = t.received(3, 1);
        t.start(&a);
        t.start(&b);
        assert_eq!(t.finish(&a, false), None);
        assert_eq!(t.finish(&b, true), None, "offset 0 was abandoned, so nothing may be stored");
        assert_eq!(t.pending(3), 1);
    }

    #[test]
    fn revoked_generations_cannot_start_or_store() {
        let mut t = Tracker::default();
        let a = t.received(1, 5);
        let b = t.received(1, 6);
        assert!(t.start(&a));
        t.revoke(&[1]);
        assert!(a.cancel.is_cancelled());
        assert!(!t.start(&b), "queued work of a revoked partition does not start");
        assert_eq!(t.active(&[1]), 1);
        t.finish(&a, true);
        assert_eq!(t.active(&[1]), 0);
        t.forget(&[1]);
        // Re-assigned: a new generation; old tickets are ignored.
        let c = t.received(1, 6);
        assert_ne!(c.generation, a.generation);
        assert_eq!(t.finish(&a, true), None);
        assert!(t.start(&c));
        assert_eq!(t.finish(&c, true), Some(6));
    }
}
