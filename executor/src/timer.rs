//! Deadlines: a min-heap keyed by `(deadline, id)` with lazy cancellation.
//!
//! Ids grow monotonically, so timers with equal deadlines fire in the order they were set, which
//! keeps schedules deterministic. Cancelling only records the id; the entry is skipped when it
//! reaches the top of the heap. When cancelled entries outnumber live ones the heap is rebuilt, so a
//! connection that re-arms its timeout on every request cannot grow the heap without bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::time::Instant;

/// Identifies one timer in a [`Timers`] heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// Below this many cancelled entries the heap is never rebuilt: the scan would cost more than the
/// garbage.
const MIN_GARBAGE_TO_COMPACT: usize = 64;

/// A set of deadlines, each carrying a value of type `T`.
#[derive(Debug)]
pub struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, TimerId, Entry<T>)>>,
    cancelled: HashSet<TimerId>,
    next_id: u64,
}

/// Wraps the value so it takes no part in the heap's ordering.
#[derive(Debug)]
struct Entry<T>(T);

impl<T> PartialEq for Entry<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            cancelled: HashSet::new(),
            next_id: 0,
        }
    }
}

impl<T> Timers<T> {
    /// An empty set.
    pub fn new() -> Timers<T> {
        Timers::default()
    }

    /// Sets a timer for `deadline`.
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerId {
        let id = TimerId(self.next_id);
        self.next_id += 1;
        self.heap.push(Reverse((deadline, id, Entry(value))));
        id
    }

    /// Cancels a timer that has not fired. Cancelling one that fired already is a logic error
    /// the heap cannot see; the executor only cancels timers it knows are pending.
    pub fn cancel(&mut self, id: TimerId) {
        self.cancelled.insert(id);
        if self.cancelled.len() >= MIN_GARBAGE_TO_COMPACT
            && self.cancelled.len() * 2 > self.heap.len()
        {
            let cancelled = std::mem::take(&mut self.cancelled);
            self.heap
                .retain(|Reverse((_, id, _))| !cancelled.contains(id));
        }
    }

    /// Drops cancelled entries from the top, so the top is live.
    fn skip_cancelled(&mut self) {
        while let Some(Reverse((_, id, _))) = self.heap.peek() {
            if !self.cancelled.remove(id) {
                break;
            }
            self.heap.pop();
        }
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_cancelled();
        self.heap.peek().map(|Reverse((deadline, _, _))| *deadline)
    }

    /// Removes and returns the earliest timer whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, T)> {
        self.skip_cancelled();
        match self.heap.peek() {
            Some(Reverse((deadline, _, _))) if *deadline <= now => {
                let Reverse((_, id, Entry(value))) = self.heap.pop()?;
                Some((id, value))
            }
            _ => None,
        }
    }

    /// Number of live timers.
    pub fn len(&self) -> usize {
        self.heap.len().saturating_sub(self.cancelled.len())
    }

    /// True if no live timer is set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fire_in_deadline_order_skipping_cancelled() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::new();
        timers.insert(ms(30), "c");
        let b = timers.insert(ms(20), "b");
        timers.insert(ms(10), "a");
        timers.insert(ms(10), "a2");
        timers.cancel(b);
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.next_deadline(), Some(ms(10)));
        assert_eq!(timers.pop_due(ms(5)).map(|(_, v)| v), None);
        let mut fired = Vec::new();
        while let Some((_, v)) = timers.pop_due(ms(100)) {
            fired.push(v);
        }
        assert_eq!(fired, ["a", "a2", "c"]);
        assert!(timers.is_empty());
    }

    #[test]
    fn many_cancellations_compact_the_heap() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        for i in 0..1000 {
            let id = timers.insert(t0 + Duration::from_secs(i), i);
            timers.cancel(id);
        }
        assert!(timers.heap.len() < 200);
        assert!(timers.is_empty());
    }
}
