//! Replay plans: when to inject which recorded frame.
//!
//! A plan is computed up front from records and a start time and holds no
//! clock: the caller (a simulation's event loop or a threaded executor)
//! asks [`ReplayPlan::poll_at`] when the next frame is due, and takes the
//! due frames with [`ReplayPlan::pop_due`] once its own time has come, then
//! injects them into a port itself.

use std::collections::VecDeque;

use ethdev::Instant;

use crate::record::Record;

/// How recorded times map to injection times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pace {
    /// Every frame is due at the start time, in recorded order.
    AsFastAsPossible,
    /// Each frame is due at the start time plus its offset from the first
    /// record, keeping the recorded gaps. A record earlier than the one
    /// before it (an unsorted capture) is due together with that one, so
    /// injection times never go backwards.
    Recorded,
}

/// One frame to inject at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// When the frame is due, in the caller's time.
    pub time: Instant,
    /// The record being replayed (interface, direction and original time
    /// are kept for the caller to filter or route on).
    pub record: Record,
}

/// The injections of a replay in time order; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayPlan {
    events: VecDeque<Injection>,
}

impl ReplayPlan {
    /// The plan of replaying `records` (in the given order) from `start`.
    pub fn new(records: impl IntoIterator<Item = Record>, start: Instant, pace: Pace) -> ReplayPlan {
        let mut first = None;
        let mut last = start;
        let events = records
            .into_iter()
            .map(|record| {
                let time = match pace {
                    Pace::AsFastAsPossible => start,
                    Pace::Recorded => {
                        let first = *first.get_or_insert(record.time);
                        (start + record.time.since(first)).max(last)
                    }
                };
                last = time;
                Injection { time, record }
            })
            .collect();
        ReplayPlan { events }
    }

    /// When the next injection is due, `None` once the plan is done.
    pub fn poll_at(&self) -> Option<Instant> {
        self.events.front().map(|e| e.time)
    }

    /// The next injection if it is due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Injection> {
        if self.events.front().is_some_and(|e| e.time <= now) {
            self.events.pop_front()
        } else {
            None
        }
    }

    /// Every injection due at or before `now`, in order.
    pub fn drain_due(&mut self, now: Instant) -> Vec<Injection> {
        let due = self.events.iter().take_while(|e| e.time <= now).count();
        self.events.drain(..due).collect()
    }

    /// The injections not yet taken, in order.
    pub fn remaining(&self) -> impl ExactSizeIterator<Item = &Injection> + '_ {
        self.events.iter()
    }

    /// How many injections are left.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether every injection has been taken.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl IntoIterator for ReplayPlan {
    type Item = Injection;
    type IntoIter = std::collections::vec_deque::IntoIter<Injection>;

    /// All injections in order, for callers that schedule them at once.
    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(nanos: u64, tag: u8) -> Record {
        Record::bare(Instant::from_nanos(nanos), vec![tag])
    }

    fn times(plan: &ReplayPlan) -> Vec<u64> {
        plan.remaining().map(|e| e.time.as_nanos()).collect()
    }

    #[test]
    fn as_fast_as_possible_puts_everything_at_start() {
        let plan = ReplayPlan::new([rec(5_000, 1), rec(9_000, 2)], Instant::from_secs(2), Pace::AsFastAsPossible);
        assert_eq!(times(&plan), [2_000_000_000, 2_000_000_000]);
    }

    #[test]
    fn recorded_pace_keeps_offsets_from_first_record() {
        let records = [rec(1_000_000, 1), rec(1_000_120, 2), rec(3_000_000, 3)];
        let plan = ReplayPlan::new(records, Instant::from_millis(10), Pace::Recorded);
        assert_eq!(times(&plan), [10_000_000, 10_000_120, 12_000_000]);
    }

    #[test]
    fn recorded_pace_never_goes_backwards() {
        let plan = ReplayPlan::new([rec(100, 1), rec(300, 2), rec(200, 3)], Instant::ZERO, Pace::Recorded);
        assert_eq!(times(&plan), [0, 200, 200]);
    }

    #[test]
    fn pop_due_releases_frames_when_their_time_comes() {
        let mut plan = ReplayPlan::new([rec(0, 1), rec(50, 2), rec(100, 3)], Instant::from_nanos(1000), Pace::Recorded);
        assert_eq!(plan.poll_at(), Some(Instant::from_nanos(1000)));
        assert!(plan.pop_due(Instant::from_nanos(999)).is_none());
        assert_eq!(plan.pop_due(Instant::from_nanos(1000)).map(|e| e.record.data), Some(vec![1]));
        assert_eq!(plan.drain_due(Instant::from_nanos(1100)).len(), 2);
        assert!(plan.is_empty());
        assert_eq!(plan.poll_at(), None);
    }
}
