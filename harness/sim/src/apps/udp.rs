//! UDP request/response: the client sends numbered requests and checks
//! each response carries its number and payload back.

use std::io;
use std::net::SocketAddr;

use stack::{Api, Fd, SockType};

/// Bytes per request.
const REQUEST: usize = 64;

/// Binds a UDP socket to `addr` and answers every datagram with itself, forever.
pub async fn server(api: Api, fd: Fd) -> io::Result<()> {
    loop {
        let (data, from) = api.recvfrom(fd, 2048).await?;
        api.sendto(fd, &data, from).await?;
    }
}

/// Opens a UDP socket on `addr` for [`server`].
pub async fn bind(api: &Api, addr: SocketAddr) -> io::Result<Fd> {
    let fd = api.socket(SockType::Dgram)?;
    api.bind(fd, addr).await?;
    Ok(fd)
}

/// Sends `count` requests from `local` to `server`, one at a time, and
/// checks every response; returns the number of round trips.
pub async fn client(api: Api, local: SocketAddr, server: SocketAddr, count: u32) -> io::Result<u32> {
    let fd = bind(&api, local).await?;
    for seq in 0..count {
        let request = request(seq);
        api.sendto(fd, &request, server).await?;
        let (response, from) = api.recvfrom(fd, 2048).await?;
        if from != server || response != request {
            let msg = format!("request {seq}: bad response from {from}");
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
    }
    api.close(fd).await?;
    Ok(count)
}

/// Request `seq`: its number, little-endian, then its low byte repeated.
pub(crate) fn request(seq: u32) -> Vec<u8> {
    let mut request = vec![seq as u8; REQUEST];
    request[..4].copy_from_slice(&seq.to_le_bytes());
    request
}
