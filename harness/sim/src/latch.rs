//! A countdown that tasks wait on, and that sans-IO parts can read.
//!
//! Servers count a [`Latch`] down once they listen, and clients wait for
//! it to open before they connect; a [`Replayer`](crate::replayer::Replayer)
//! holds its start back until one opens and signals its own end through
//! another. It is a plain synchronisation value with no clock and no
//! thread of its own, so the executors, the world and the parts the world
//! polls can all share it without depending on one another.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

/// A countdown that tasks can wait on: servers count down once listening,
/// clients wait for zero before connecting.
#[derive(Default)]
pub struct Latch {
    left: Mutex<(usize, Vec<Waker>)>,
}

impl Latch {
    /// A latch that opens after `n` count-downs.
    pub fn new(n: usize) -> Arc<Latch> {
        Arc::new(Latch { left: Mutex::new((n, Vec::new())) })
    }

    /// Counts down once; at zero, wakes every waiter.
    pub fn count_down(&self) {
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        left.0 = left.0.saturating_sub(1);
        if left.0 == 0 {
            left.1.drain(..).for_each(Waker::wake);
        }
    }

    /// Whether the count has reached zero.
    pub fn is_open(&self) -> bool {
        self.left.lock().unwrap_or_else(PoisonError::into_inner).0 == 0
    }

    /// Waits until the count reaches zero.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
            if left.0 == 0 {
                return Poll::Ready(());
            }
            left.1.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
