//! The HTTPS listener: bound from `--bind-address:--secure-port`, or inherited from the parent
//! process by socket activation (systemd's `sd_listen_fds(3)` protocol).
//!
//! A parent that starts kubeboot with `LISTEN_FDS=1` (and `LISTEN_PID` unset or kubeboot's pid)
//! has passed an already listening TCP socket as fd 3: kubeboot serves on it instead of binding,
//! and its address is the one kubeboot advertises. A supervisor binds the port itself this way,
//! and a test binds port 0 and knows the port without a race. The socket is taken from the
//! environment once, the first time anything asks: `complete()` learns the address, `app` takes
//! the listener.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

/// The first descriptor a parent passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Why an inherited socket cannot be served on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ListenerError {
    /// `LISTEN_FDS` does not say "one socket".
    #[error("LISTEN_FDS={0:?}: kubeboot takes exactly one listening socket, as fd 3")]
    Count(String),
    /// fd 3 is not an open, listening TCP socket.
    #[error("the socket passed as fd 3 (LISTEN_FDS=1) is not a listening TCP socket: {0}")]
    NotTcp(String),
}

/// A socket taken from the environment: its address, and the listener until someone serves on it.
struct Inherited {
    addr: SocketAddr,
    listener: Mutex<Option<std::net::TcpListener>>,
}

static INHERITED: OnceLock<Result<Option<Inherited>, ListenerError>> = OnceLock::new();

/// The address of the socket the parent passed, if it passed one.
///
/// The first call takes the socket and unsets `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`,
/// as `sd_listen_fds(1)` does; it must happen before the process starts threads (kubeboot's
/// `main` completes its options before it starts the runtime).
pub fn inherited_addr() -> Result<Option<SocketAddr>, ListenerError> {
    match INHERITED.get_or_init(take_from_environment) {
        Ok(inherited) => Ok(inherited.as_ref().map(|i| i.addr)),
        Err(e) => Err(e.clone()),
    }
}

/// The listener to serve on: the inherited socket (once), otherwise `addr` bound now.
pub async fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let inherited = match INHERITED.get_or_init(take_from_environment) {
        Ok(Some(inherited)) => inherited
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take(),
        Ok(None) => None,
        Err(e) => return Err(std::io::Error::other(e.clone())),
    };
    match inherited {
        Some(listener) => from_std(listener),
        None => tokio::net::TcpListener::bind(addr).await,
    }
}

/// A listener bound elsewhere (inherited, or by an in-process caller), ready for the runtime.
pub fn from_std(listener: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Takes fd 3 if `LISTEN_FDS` says the parent passed it to this process.
fn take_from_environment() -> Result<Option<Inherited>, ListenerError> {
    let Some(count) = std::env::var_os("LISTEN_FDS") else {
        return Ok(None);
    };
    let for_us = std::env::var("LISTEN_PID")
        .map_or(true, |pid| pid.trim() == std::process::id().to_string());
    // SAFETY: kubeboot asks for the listener while completing its options, before it starts
    // the runtime or any other thread, so nothing reads the environment concurrently.
    unsafe {
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let count = count.to_string_lossy().into_owned();
    match count.trim().parse::<u32>() {
        _ if !for_us => Ok(None),
        Ok(0) => Ok(None),
        Ok(1) => adopt(LISTEN_FDS_START).map(Some),
        _ => Err(ListenerError::Count(count)),
    }
}

/// Wraps the passed descriptor, after checking it is a listening TCP socket.
fn adopt(fd: RawFd) -> Result<Inherited, ListenerError> {
    let not_tcp = |why: String| ListenerError::NotTcp(why);
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF if fd is not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(not_tcp(std::io::Error::last_os_error().to_string()));
    }
    // SAFETY: fd is open and, by the protocol, passed to this process for it to own; nothing
    // else in kubeboot opens or uses it.
    let socket = socket2::Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // Children kubeboot may start must not inherit the listener in turn.
    socket
        .set_cloexec(true)
        .map_err(|e| not_tcp(e.to_string()))?;
    if socket.r#type().map_err(|e| not_tcp(e.to_string()))? != socket2::Type::STREAM {
        return Err(not_tcp("not a stream socket".into()));
    }
    if !socket.is_listener().map_err(|e| not_tcp(e.to_string()))? {
        return Err(not_tcp("not listening".into()));
    }
    let addr = socket
        .local_addr()
        .map_err(|e| not_tcp(e.to_string()))?
        .as_socket()
        .ok_or_else(|| not_tcp("not an IPv4 or IPv6 socket".into()))?;
    Ok(Inherited {
        addr,
        listener: Mutex::new(Some(socket.into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn a_listening_tcp_socket_is_adopted_with_its_address() {
        let bound = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = bound.local_addr().unwrap();
        let inherited = adopt(bound.into_raw_fd()).unwrap();
        assert_eq!(inherited.addr, addr);
        let listener = inherited.listener.lock().unwrap().take().unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);
    }

    #[test]
    fn sockets_that_cannot_accept_tcp_connections_are_refused() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = adopt(udp.into_raw_fd()).err().unwrap();
        assert!(err.to_string().contains("not a stream socket"), "{err}");

        let unlistened =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        unlistened
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let err = adopt(unlistened.into_raw_fd()).err().unwrap();
        assert!(err.to_string().contains("not listening"), "{err}");
    }
}
