//! TCP bulk transfer: the client sends `len` pattern bytes and half-closes;
//! the server verifies every byte, answers with the count it verified, and
//! closes; the client checks the count.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use stack::{Api, Fd, Shutdown, SockType};

use super::{pattern, read_exact, ConnRecord, Ledger, Side};
use crate::apps::echo::accept_loop;
use crate::exec::Spawner;

/// Bytes per send or receive call.
pub(crate) const CHUNK: usize = 128 * 1024;
/// Connection id and length, little-endian.
pub(crate) const HEADER: usize = 16;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Sends `len` bytes of stream `id` to `server` and waits for the server's receipt.
pub async fn client(api: Api, server: SocketAddr, id: u64, len: u64, ledger: Arc<Ledger>) -> io::Result<()> {
    let fd = api.socket(SockType::Stream)?;
    api.connect(fd, server).await?;
    transfer(&api, fd, id, len).await?;
    let (local, stack) = (api.getsockname(fd)?, api.stack_of(fd)?);
    ledger.record(ConnRecord { side: Side::Client, stack, local, peer: server, bytes: len });
    api.close(fd).await
}

/// The client's exchange on connected `fd`: header, `len` pattern bytes of
/// stream `id`, half-close, and the server's receipt, which must count
/// every byte.
pub async fn transfer(api: &Api, fd: Fd, id: u64, len: u64) -> io::Result<()> {
    let mut header = [0; HEADER];
    header[..8].copy_from_slice(&id.to_le_bytes());
    header[8..].copy_from_slice(&len.to_le_bytes());
    api.send_all(fd, &header).await?;
    // Sized to the stream, not to a chunk: 10,000 short streams at once
    // would otherwise hold 128 KiB each.
    let mut buf = vec![0; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut sent = 0;
    while sent < len {
        let n = CHUNK.min((len - sent) as usize);
        pattern::fill(id, sent, &mut buf[..n]);
        api.send_all(fd, &buf[..n]).await?;
        sent += n as u64;
    }
    api.shutdown(fd, Shutdown::Write).await?;
    let receipt = read_exact(api, fd, 8).await?;
    let verified = u64::from_le_bytes(receipt.try_into().map_err(|_| invalid("short receipt".into()))?);
    if verified != len {
        return Err(invalid(format!("stream {id}: server verified {verified} of {len} bytes")));
    }
    Ok(())
}

/// Serves bulk clients on `listener` forever, a handler task per connection
/// on application thread `thread`.
pub async fn server(api: Api, listener: Fd, spawner: Spawner, thread: usize, ledger: Arc<Ledger>) -> io::Result<()> {
    accept_loop(api, listener, spawner, thread, move |api, fd, peer| handle(api, fd, peer, Arc::clone(&ledger))).await
}

async fn handle(api: Api, fd: Fd, peer: SocketAddr, ledger: Arc<Ledger>) -> io::Result<()> {
    let header = read_exact(&api, fd, HEADER).await?;
    let id = u64::from_le_bytes(header[..8].try_into().map_err(|_| invalid("header".into()))?);
    let len = u64::from_le_bytes(header[8..].try_into().map_err(|_| invalid("header".into()))?);
    let mut got = 0u64;
    loop {
        let data = api.recv(fd, CHUNK).await?;
        if data.is_empty() {
            break;
        }
        pattern::verify(id, got, &data).map_err(|at| invalid(format!("stream {id}: wrong byte at offset {at}")))?;
        got += data.len() as u64;
    }
    if got != len {
        return Err(invalid(format!("stream {id}: {got} of {len} bytes before end of stream")));
    }
    api.send_all(fd, &got.to_le_bytes()).await?;
    let (local, stack) = (api.getsockname(fd)?, api.stack_of(fd)?);
    ledger.record(ConnRecord { side: Side::Server, stack, local, peer, bytes: got });
    api.close(fd).await
}
