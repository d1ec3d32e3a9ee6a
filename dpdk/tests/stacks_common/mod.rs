//! What the stack tests share: a wall clock, a driver that polls stack
//! groups and application tasks on one thread, and the echo applications
//! (a server that sends back what it read, a client that checks it).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ethdev::Instant;
use stack::{Api, Clock, Shutdown, SockType, StackGroup};

/// How long the tasks of one test may take (a liveness bound, not a speed check).
pub const WAIT: Duration = Duration::from_secs(30);

/// Real time since the clock was made, as the stacks read it.
#[derive(Debug)]
pub struct WallClock(std::time::Instant);

impl WallClock {
    pub fn new() -> WallClock {
        WallClock(std::time::Instant::now())
    }
}

impl Clock for WallClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// An application task: a future the driver polls beside the stacks.
pub type Task<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<u8>>> + 'a>>;

/// Polls every stack of `groups` and every task in turn until all tasks
/// are done (their results, in order) or [`WAIT`] has passed (a panic
/// naming the tasks still running).
pub fn drive(groups: &[&StackGroup], clock: &WallClock, tasks: Vec<Task<'_>>) -> Vec<io::Result<Vec<u8>>> {
    let mut tasks: Vec<Option<Task<'_>>> = tasks.into_iter().map(Some).collect();
    let mut results: Vec<Option<io::Result<Vec<u8>>>> = tasks.iter().map(|_| None).collect();
    let mut cx = Context::from_waker(Waker::noop());
    let start = std::time::Instant::now();
    while results.iter().any(Option::is_none) {
        if start.elapsed() >= WAIT {
            panic!("tasks still running after {WAIT:?}: {:?}; stacks: {}", pending(&results), stats(groups));
        }
        poll_groups(groups, clock);
        for (task, result) in tasks.iter_mut().zip(&mut results) {
            if let Some(fut) = task {
                if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                    *result = Some(out);
                    *task = None;
                }
            }
        }
    }
    results.into_iter().flatten().collect()
}

/// Polls the stacks of `groups` for `time`, so frames in flight land.
pub fn settle(groups: &[&StackGroup], clock: &WallClock, time: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < time {
        poll_groups(groups, clock);
    }
}

/// Polls the stacks of `groups` until `done()` holds, for example until a
/// kernel peer's thread has read the last byte the stacks still owe it.
/// Panics after [`WAIT`].
pub fn poll_until(groups: &[&StackGroup], clock: &WallClock, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() >= WAIT {
            panic!("peer still waiting after {WAIT:?}; stacks: {}", stats(groups));
        }
        poll_groups(groups, clock);
    }
}

fn poll_groups(groups: &[&StackGroup], clock: &WallClock) {
    for group in groups {
        for i in 0..group.len() {
            group.poll(i, clock.now());
        }
    }
}

/// Every stack's counters, to show where frames stopped.
fn stats(groups: &[&StackGroup]) -> String {
    let each = |g: &&StackGroup| (0..g.len()).map(|i| format!("{:?}", g.stats(i))).collect::<Vec<_>>();
    groups.iter().flat_map(each).collect::<Vec<_>>().join("; ")
}

fn pending(results: &[Option<io::Result<Vec<u8>>>]) -> Vec<usize> {
    results.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect()
}

/// Accepts one connection on `port`, reads it to the end, sends every
/// byte back, closes, and returns what it read.
pub async fn echo_server(api: &Api, port: u16) -> io::Result<Vec<u8>> {
    let listener = api.socket(SockType::Stream)?;
    api.bind(listener, SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)).await?;
    api.listen(listener, 4).await?;
    let (conn, _) = api.accept(listener).await?;
    let mut got = Vec::new();
    loop {
        let chunk = api.recv(conn, 64 * 1024).await?;
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    api.send_all(conn, &got).await?;
    api.close(conn).await?;
    api.close(listener).await?;
    Ok(got)
}

/// Connects to `server`, sends `data`, shuts down its sending side, and
/// returns everything it reads back until the server closes.
pub async fn echo_client(api: &Api, server: SocketAddr, data: &[u8]) -> io::Result<Vec<u8>> {
    let fd = api.socket(SockType::Stream)?;
    api.connect(fd, server).await?;
    api.send_all(fd, data).await?;
    api.shutdown(fd, Shutdown::Write).await?;
    let mut back = Vec::new();
    loop {
        let chunk = api.recv(fd, 64 * 1024).await?;
        if chunk.is_empty() {
            break;
        }
        back.extend_from_slice(&chunk);
    }
    api.close(fd).await?;
    Ok(back)
}
