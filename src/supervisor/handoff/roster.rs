//! The workers the supervisor's accept loop may hand a connection to, as the arbiter last
//! published them, and in which order to try them.
//!
//! Owns that choice: round-robin order over the workers that are ready and not draining,
//! passing over those whose last report shows them at their connection cap while another has
//! room; workers told to drain only when no other is left, and only for `drain_delay` after
//! they were told (while their health path answers 503, as a process alone keeps accepting
//! then). Holds a copy of each such worker's control queue, so its standard input stays open
//! while it may still be handed connections. Never touches a socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use polling::Poller;

use crate::supervisor::channel::Down;

/// What the arbiter knows of one worker, each time it publishes.
pub(crate) struct Seen<'a> {
    pub(crate) id: u64,
    pub(crate) pid: u32,
    /// Said `ready` (and is not told to drain).
    pub(crate) ready: bool,
    /// Told to drain.
    pub(crate) draining: bool,
    /// Its control queue while it has one.
    pub(crate) control: Option<&'a Sender<Down>>,
    /// Connections open, from its last report.
    pub(crate) open: u64,
}

/// A worker that may be handed connections.
struct Entry {
    pid: u32,
    /// Holds the worker's standard input open while it may still be handed connections.
    control: Sender<Down>,
    /// Once told to drain: when it stops being handed connections.
    until: Option<Instant>,
    /// Connections open, from its last report.
    open: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    stopping: bool,
}

/// The workers the accept loop may hand connections to, as the arbiter last published them.
pub(crate) struct Roster {
    state: Mutex<State>,
    poller: Arc<Poller>,
    /// A worker whose last report shows this many open connections is passed over while
    /// another has room (its own cap would refuse the connection).
    connection_limit: u64,
}

impl Roster {
    /// An empty roster; `poller` is woken whenever what it says changes.
    pub(crate) fn new(poller: Arc<Poller>, connection_limit: usize) -> Roster {
        Roster { state: Mutex::new(State::default()), poller, connection_limit: connection_limit as u64 }
    }

    /// Brings the roster up to the arbiter's view: ready workers join, workers told to drain
    /// stay `drain_delay` more, workers gone leave. `stopping`: the supervisor is stopping;
    /// once no worker is left the accept loop closes the listeners and ends.
    pub(crate) fn publish<'a>(&self, seen: impl IntoIterator<Item = Seen<'a>>, stopping: bool, drain_delay: Duration) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut present = Vec::new();
        let mut changed = state.stopping != stopping;
        for w in seen {
            present.push(w.id);
            match (state.entries.get_mut(&w.id), w.control) {
                (Some(entry), _) => {
                    entry.open = w.open;
                    if w.draining && entry.until.is_none() {
                        entry.until = Some(now + drain_delay);
                        changed = true;
                    }
                }
                (None, Some(control)) if w.ready && !w.draining => {
                    let entry = Entry { pid: w.pid, control: control.clone(), until: None, open: w.open };
                    state.entries.insert(w.id, entry);
                    changed = true;
                }
                _ => {}
            }
        }
        let before = state.entries.len();
        state.entries.retain(|id, e| present.contains(id) && e.until.is_none_or(|t| t > now));
        changed |= state.entries.len() != before;
        state.stopping = stopping;
        drop(state);
        if changed {
            let _ = self.poller.notify();
        }
    }

    /// Candidates in order of preference: workers not draining with room, else those not
    /// draining, else those still within their `drain_delay`; sorted by worker id so the
    /// round-robin is stable.
    pub(crate) fn candidates(&self) -> Vec<(u64, u32, Sender<Down>)> {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pick = |keep: &dyn Fn(&Entry) -> bool| {
            let mut v: Vec<_> =
                state.entries.iter().filter(|(_, e)| keep(e)).map(|(id, e)| (*id, e.pid, e.control.clone())).collect();
            v.sort_by_key(|(id, _, _)| *id);
            v
        };
        let tiers: [&dyn Fn(&Entry) -> bool; 3] =
            [&|e| e.until.is_none() && e.open < self.connection_limit, &|e| e.until.is_none(), &|e| {
                e.until.is_some_and(|t| t > now)
            }];
        tiers.iter().map(|keep| pick(*keep)).find(|v| !v.is_empty()).unwrap_or_default()
    }

    /// The supervisor is stopping and no worker may take a connection any more.
    pub(crate) fn finished(&self) -> bool {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.stopping && state.entries.values().all(|e| e.until.is_some_and(|t| t <= now))
    }

    /// When a draining worker's `drain_delay` ends next (the loop must look again then).
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.entries.values().filter_map(|e| e.until).min()
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::{bounded, Receiver, TryRecvError};

    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    fn roster(connection_limit: usize) -> Roster {
        Roster::new(Arc::new(Poller::new().unwrap()), connection_limit)
    }

    fn queue() -> (Sender<Down>, Receiver<Down>) {
        bounded(4)
    }

    fn seen(id: u64, control: &Sender<Down>, ready: bool, draining: bool, open: u64) -> Seen<'_> {
        Seen { id, pid: 1000 + id as u32, ready, draining, control: (!draining).then_some(control), open }
    }

    fn ids(roster: &Roster) -> Vec<(u64, u32)> {
        roster.candidates().into_iter().map(|(id, pid, _)| (id, pid)).collect()
    }

    #[test]
    fn ready_workers_are_tried_in_id_order_and_starting_ones_not_at_all() {
        let r = roster(10);
        let (a, b, c) = (queue().0, queue().0, queue().0);
        r.publish(
            [seen(2, &a, true, false, 0), seen(1, &b, true, false, 0), seen(3, &c, false, false, 0)],
            false,
            LONG,
        );
        assert_eq!(ids(&r), [(1, 1001), (2, 1002)]);
        assert!(!r.finished());
    }

    #[test]
    fn a_worker_at_its_connection_cap_is_passed_over_while_another_has_room() {
        let r = roster(10);
        let (a, b) = (queue().0, queue().0);
        r.publish([seen(1, &a, true, false, 10), seen(2, &b, true, false, 3)], false, LONG);
        assert_eq!(ids(&r), [(2, 1002)]);
        r.publish([seen(1, &a, true, false, 10), seen(2, &b, true, false, 10)], false, LONG);
        assert_eq!(ids(&r), [(1, 1001), (2, 1002)], "all full: each worker's own cap decides");
    }

    #[test]
    fn draining_workers_take_connections_only_when_no_other_is_left() {
        let r = roster(10);
        let (a, b) = (queue().0, queue().0);
        r.publish([seen(1, &a, true, false, 0), seen(2, &b, true, false, 0)], false, LONG);
        r.publish([seen(1, &a, true, true, 0), seen(2, &b, true, false, 0)], false, LONG);
        assert_eq!(ids(&r), [(2, 1002)]);
        // A stop: both drain; both keep taking connections for drain_delay.
        r.publish([seen(1, &a, true, true, 0), seen(2, &b, true, true, 0)], true, LONG);
        assert_eq!(ids(&r), [(1, 1001), (2, 1002)]);
        assert!(!r.finished());
        assert!(r.next_expiry().is_some_and(|t| t > Instant::now() + LONG / 2));
    }

    #[test]
    fn after_drain_delay_a_stopping_roster_is_finished() {
        let r = roster(10);
        let a = queue().0;
        r.publish([seen(1, &a, true, false, 0)], false, Duration::ZERO);
        r.publish([seen(1, &a, true, true, 0)], true, Duration::ZERO);
        assert!(ids(&r).is_empty());
        assert!(r.finished());
    }

    #[test]
    fn the_roster_keeps_a_workers_input_open_until_it_leaves() {
        let r = roster(10);
        let (control, lines) = queue();
        r.publish([seen(1, &control, true, false, 0)], false, LONG);
        // The arbiter drops its own sender when it tells the worker to drain.
        r.publish([seen(1, &control, true, true, 0)], false, LONG);
        drop(control);
        assert!(matches!(lines.try_recv(), Err(TryRecvError::Empty)), "still open: the roster holds a copy");
        // Gone from the arbiter's table: the roster lets go, the worker's input ends.
        r.publish([], false, LONG);
        assert!(matches!(lines.try_recv(), Err(TryRecvError::Disconnected)));
        assert!(ids(&r).is_empty());
    }

    #[test]
    fn a_worker_is_never_added_once_told_to_drain() {
        let r = roster(10);
        let a = queue().0;
        r.publish([Seen { id: 1, pid: 1001, ready: true, draining: true, control: Some(&a), open: 0 }], false, LONG);
        assert!(ids(&r).is_empty());
    }
}
