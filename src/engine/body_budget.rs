//! The memory that request bodies being received may hold together: [`BODY_BUDGET_FACTOR`] ×
//! `body_spool_threshold` (64 MiB at the defaults). Each body under the threshold takes a
//! [`Lease`] for the bytes it may hold in memory when it starts; when the budget is spent, a new
//! body goes to its temporary file from the first byte instead, so many connections sending
//! bodies at once cost disk, not `connection_limit` × the threshold of memory (10 GiB at the
//! defaults).
//!
//! Owns that count. Never decides where a body goes beyond "memory or not", and never holds
//! a body: a lease ends when the body is complete (handed on with the request; the dispatch
//! queue and the worker threads bound those) or when its connection closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many bodies of the full threshold may be in memory at once.
pub(crate) const BODY_BUDGET_FACTOR: usize = 64;

/// The bytes leased to bodies being received, against their limit.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    held: AtomicUsize,
    limit: usize,
}

/// Memory one body being received may hold; given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    bytes: usize,
    budget: Arc<BodyBudget>,
}

impl BodyBudget {
    /// The budget for bodies spooled past `spool_threshold` bytes.
    pub(crate) fn new(spool_threshold: usize) -> BodyBudget {
        BodyBudget { held: AtomicUsize::new(0), limit: spool_threshold.saturating_mul(BODY_BUDGET_FACTOR) }
    }

    /// A lease of `bytes` for a body about to arrive, or `None` when the budget cannot cover
    /// it (the body then goes to its file from the first byte).
    pub(crate) fn lease(self: &Arc<Self>, bytes: usize) -> Option<Lease> {
        let taken = self.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(bytes).filter(|total| *total <= self.limit)
        });
        taken.is_ok().then(|| Lease { bytes, budget: Arc::clone(self) })
    }

    /// Bytes leased now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_stop_at_the_limit_and_dropping_one_gives_its_bytes_back() {
        let budget = Arc::new(BodyBudget::new(10));
        assert_eq!(budget.limit, 10 * BODY_BUDGET_FACTOR);
        let all: Vec<_> = (0..BODY_BUDGET_FACTOR).map(|_| budget.lease(10).expect("within the budget")).collect();
        assert_eq!(budget.held(), 10 * BODY_BUDGET_FACTOR);
        assert!(budget.lease(1).is_none(), "spent");
        drop(all);
        assert_eq!(budget.held(), 0);
        assert!(budget.lease(10 * BODY_BUDGET_FACTOR).is_some());
        assert!(budget.lease(usize::MAX).is_none(), "no overflow");
    }
}
