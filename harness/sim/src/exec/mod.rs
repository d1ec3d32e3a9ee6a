//! Executors: who owns time and threads when a [`World`](crate::world::World) runs.
//!
//! Applications are `async` tasks over the stack API. The same tasks run
//! under [`sim`] (one thread, virtual time, deterministic for a seed) and
//! [`threads`] (real time, a thread per stack under run-to-wakeup, a thread
//! per application thread). Tasks are handed to an executor through a
//! [`Spawner`], which also lets a running task start more (a server starting
//! a handler per accepted connection); each task names the application
//! thread it belongs to, so a threaded run keeps gazelle's binding of
//! application threads to stacks. A task that must wait for a moment (a
//! paced sender) calls [`sleep_until`] on a [`TaskClock`]: the simulation's
//! [`SimClock`] keeps such timers and jumps to the earliest when nothing
//! else is due; real time simply polls the task again.

pub mod sim;
pub mod threads;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use ethdev::Instant;

/// A task: an application future, boxed.
pub type TaskFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A task waiting to be started.
pub struct NewTask {
    /// Application thread the task runs on (threads executor).
    pub thread: usize,
    /// Name for reports.
    pub name: String,
    /// The work.
    pub future: TaskFuture,
    /// A daemon (a server's accept loop) does not keep the run going.
    pub daemon: bool,
}

/// Hands tasks to the executor running them. Clones share the queue.
#[derive(Clone, Default)]
pub struct Spawner {
    queue: Arc<Mutex<Vec<NewTask>>>,
    live: Arc<AtomicU64>,
}

impl Spawner {
    /// An empty queue.
    pub fn new() -> Spawner {
        Spawner::default()
    }

    /// Starts `future` as task `name` on application thread `thread`; the
    /// run lasts until every such task has finished.
    pub fn spawn(
        &self,
        thread: usize,
        name: impl Into<String>,
        future: impl Future<Output = io::Result<()>> + Send + 'static,
    ) {
        self.live.fetch_add(1, Ordering::AcqRel);
        self.push(NewTask { thread, name: name.into(), future: Box::pin(future), daemon: false });
    }

    /// Starts a task that runs as long as the others do (a server's accept
    /// loop) and is dropped when they are all done.
    pub fn spawn_daemon(
        &self,
        thread: usize,
        name: impl Into<String>,
        future: impl Future<Output = io::Result<()>> + Send + 'static,
    ) {
        self.push(NewTask { thread, name: name.into(), future: Box::pin(future), daemon: true });
    }

    fn push(&self, task: NewTask) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(task);
    }

    /// Takes the queued tasks for which `mine` holds.
    pub(crate) fn take(&self, mine: impl Fn(usize) -> bool) -> Vec<NewTask> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let (taken, rest) = queue.drain(..).partition(|t| mine(t.thread));
        *queue = rest;
        taken
    }

    /// The highest application thread index queued so far, plus one.
    pub(crate) fn threads(&self) -> usize {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.iter().map(|t| t.thread + 1).max().unwrap_or(0)
    }

    /// Marks one task finished.
    pub(crate) fn finished(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Tasks spawned and not yet finished.
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::Acquire)
    }
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Tasks that failed, with their errors.
    pub failures: Vec<(String, String)>,
    /// Tasks still unfinished when the run stopped.
    pub unfinished: u64,
    /// Names of unfinished tasks (not daemons), for the report.
    pub stuck: Vec<String>,
    /// Time at the end of the run (virtual in `sim`).
    pub end: Instant,
    /// Whether the run stopped because its deadline passed.
    pub timed_out: bool,
    /// Whether the run stopped because its wall-clock limit passed.
    pub wall_limited: bool,
}

impl Outcome {
    /// Every task finished without error.
    pub fn ok(&self) -> Result<(), String> {
        if self.failures.is_empty() && self.unfinished == 0 && !self.timed_out && !self.wall_limited {
            return Ok(());
        }
        Err(format!(
            "{} failed task(s) {:?}, {} unfinished {:?}, timed out: {}, stopped by the wall-clock limit: {}",
            self.failures.len(),
            self.failures.iter().take(5).collect::<Vec<_>>(),
            self.unfinished,
            self.stuck.iter().take(8).collect::<Vec<_>>(),
            self.timed_out,
            self.wall_limited
        ))
    }
}

/// The tasks one thread runs.
#[derive(Default)]
pub(crate) struct TaskList {
    tasks: Vec<Task>,
}

struct Task {
    name: String,
    daemon: bool,
    future: TaskFuture,
    flag: Arc<TaskFlag>,
    waker: Waker,
}

impl TaskList {
    /// Adds tasks; their wakers unpark `thread`, if given.
    pub(crate) fn extend(&mut self, new: Vec<NewTask>, thread: Option<&Thread>) {
        self.tasks.extend(new.into_iter().map(|t| {
            let flag = TaskFlag::new(thread.cloned());
            Task { name: t.name, daemon: t.daemon, future: t.future, waker: Waker::from(Arc::clone(&flag)), flag }
        }));
    }

    /// Names of the unfinished tasks that are not daemons.
    pub(crate) fn stuck(&self) -> impl Iterator<Item = String> + '_ {
        self.tasks.iter().filter(|t| !t.daemon).map(|t| t.name.clone())
    }

    /// Polls every task whose waker fired (every task if `all`), reporting
    /// finished ones to `spawner` and failures to `failed`. True if any task
    /// was polled.
    pub(crate) fn poll(&mut self, all: bool, spawner: &Spawner, mut failed: impl FnMut(String, String)) -> bool {
        let mut polled = false;
        // `retain_mut` keeps the order and moves each task at most once
        // (removing finished tasks one by one was quadratic with thousands
        // of tasks), and reuses the vector: no allocation per poll.
        self.tasks.retain_mut(|task| {
            if !(task.flag.take() || all) {
                return true;
            }
            polled = true;
            let Poll::Ready(result) = task.future.as_mut().poll(&mut Context::from_waker(&task.waker)) else {
                return true;
            };
            if let Err(e) = result {
                failed(std::mem::take(&mut task.name), e.to_string());
            }
            if !task.daemon {
                spawner.finished();
            }
            false
        });
        polled
    }
}

/// A task's "wake me" flag; waking also unparks the thread running it.
pub(crate) struct TaskFlag {
    ready: AtomicBool,
    thread: Option<Thread>,
}

impl TaskFlag {
    pub(crate) fn new(thread: Option<Thread>) -> Arc<TaskFlag> {
        Arc::new(TaskFlag { ready: AtomicBool::new(true), thread })
    }

    /// Clears the flag, returning whether it was set.
    pub(crate) fn take(&self) -> bool {
        self.ready.swap(false, Ordering::AcqRel)
    }
}

impl Wake for TaskFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

/// A clock tasks can wait on: [`sleep_until`] works under either executor.
pub trait TaskClock: stack::Clock {
    /// Arranges for `waker` to be woken once the time reaches `at`.
    fn wake_at(&self, at: Instant, waker: &Waker);
}

/// Waits until `clock` reads `at` or later.
pub async fn sleep_until(clock: &dyn TaskClock, at: Instant) {
    std::future::poll_fn(|cx| {
        if clock.now() >= at {
            return Poll::Ready(());
        }
        clock.wake_at(at, cx.waker());
        Poll::Pending
    })
    .await
}

/// A clock that reads a shared virtual time, and the timers tasks set on
/// it; the simulation executor jumps to the earliest timer when nothing
/// else is due.
#[derive(Debug, Default)]
pub struct SimClock {
    now: AtomicU64,
    timers: Mutex<Vec<(Instant, Waker)>>,
}

impl SimClock {
    /// Sets the time.
    pub fn set(&self, t: Instant) {
        self.now.store(t.as_nanos(), Ordering::Release);
    }

    /// The earliest pending timer.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|t| t.0).min()
    }

    /// Wakes every task whose timer is due at the current time.
    pub fn fire(&self) {
        let now = stack::Clock::now(self);
        let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
        let (due, pending) = timers.drain(..).partition::<Vec<_>, _>(|t| t.0 <= now);
        *timers = pending;
        drop(timers);
        due.into_iter().for_each(|(_, waker)| waker.wake());
    }
}

impl stack::Clock for SimClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.now.load(Ordering::Acquire))
    }
}

impl TaskClock for SimClock {
    fn wake_at(&self, at: Instant, waker: &Waker) {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner).push((at, waker.clone()));
    }
}

/// Monotonic wall time since the clock was made.
#[derive(Debug)]
pub struct RealClock(std::time::Instant);

impl RealClock {
    /// A clock whose epoch is now.
    pub fn new() -> RealClock {
        RealClock(std::time::Instant::now())
    }
}

impl Default for RealClock {
    fn default() -> Self {
        RealClock::new()
    }
}

impl stack::Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

/// Real time has no timer list: a sleeping task asks to be polled again
/// right away and looks at the clock then.
impl TaskClock for RealClock {
    fn wake_at(&self, _at: Instant, waker: &Waker) {
        waker.wake_by_ref();
    }
}
