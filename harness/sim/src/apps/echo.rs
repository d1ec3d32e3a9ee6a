//! TCP echo: the server returns every byte; the client sends pattern bytes
//! in chunks and checks each chunk comes back. With a small `len` and many
//! clients this is also the short-connection workload.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use stack::{Api, Fd, SockType};

use super::{pattern, read_exact, ConnRecord, Ledger, Side};
use crate::exec::Spawner;

/// Bytes per round trip.
pub(crate) const CHUNK: usize = 4 * 1024;

/// Accepts connections on `listener` forever and spawns `handler` for each
/// on application thread `thread`.
pub async fn accept_loop<F, Fut>(api: Api, listener: Fd, spawner: Spawner, thread: usize, handler: F) -> io::Result<()>
where
    F: Fn(Api, Fd, SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    loop {
        let (fd, peer) = api.accept(listener).await?;
        spawner.spawn(thread, format!("handler {peer}"), handler(api.clone(), fd, peer));
    }
}

/// Serves echo clients on `listener` forever.
pub async fn server(api: Api, listener: Fd, spawner: Spawner, thread: usize, ledger: Arc<Ledger>) -> io::Result<()> {
    accept_loop(api, listener, spawner, thread, move |api, fd, peer| {
        let ledger = Arc::clone(&ledger);
        async move { handle(api, fd, peer, ledger).await.map(drop) }
    })
    .await
}

/// Echoes accepted connection `fd` from `peer` until its end, then records
/// it in `ledger`, closes it, and returns how many bytes it echoed.
pub async fn handle(api: Api, fd: Fd, peer: SocketAddr, ledger: Arc<Ledger>) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let data = api.recv(fd, CHUNK).await?;
        if data.is_empty() {
            break;
        }
        api.send_all(fd, &data).await?;
        total += data.len() as u64;
    }
    let (local, stack) = (api.getsockname(fd)?, api.stack_of(fd)?);
    ledger.record(ConnRecord { side: Side::Server, stack, local, peer, bytes: total });
    api.close(fd).await.map(|()| total)
}

/// Echoes `len` bytes of stream `id` through `server`, checking each chunk.
pub async fn client(api: Api, server: SocketAddr, id: u64, len: u64, ledger: Arc<Ledger>) -> io::Result<()> {
    let fd = api.socket(SockType::Stream)?;
    api.connect(fd, server).await?;
    let mut buf = vec![0; CHUNK];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min((len - done) as usize);
        pattern::fill(id, done, &mut buf[..n]);
        api.send_all(fd, &buf[..n]).await?;
        let back = read_exact(&api, fd, n).await?;
        pattern::verify(id, done, &back)
            .map_err(|at| io::Error::new(io::ErrorKind::InvalidData, format!("echo {id}: wrong byte at {at}")))?;
        done += n as u64;
    }
    let (local, stack) = (api.getsockname(fd)?, api.stack_of(fd)?);
    ledger.record(ConnRecord { side: Side::Client, stack, local, peer: server, bytes: len });
    api.close(fd).await
}
