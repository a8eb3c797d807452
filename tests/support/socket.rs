//! Listening sockets for the processes tests start. kubeboot is handed a socket the test bound
//! on port 0, as fd 3 by socket activation (systemd's `LISTEN_FDS` protocol), so the test knows
//! the port and nobody can take it in between. etcd cannot take a socket from its parent: it
//! gets free ports, and whoever starts it retries when a port was taken meanwhile.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// The descriptor a socket-activated process finds its first socket at (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// A listener on a loopback port the kernel picked.
pub fn loopback_listener() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0")
}

/// Starts `cmd` with `listener` as its fd 3 and `LISTEN_FDS=1`, then closes this process's copy,
/// so that the socket closes when the child closes it or exits.
pub fn spawn_with_listener(mut cmd: Command, listener: TcpListener) -> io::Result<Child> {
    let fd = listener.as_raw_fd();
    cmd.env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES");
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl and dup2,
    // which are async-signal-safe; it allocates nothing. `listener` is open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            let moved = if fd == LISTEN_FDS_START {
                // dup2 onto itself keeps close-on-exec set: clear it instead.
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                // The copy dup2 makes does not have close-on-exec set.
                libc::dup2(fd, LISTEN_FDS_START)
            };
            if moved == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(listener);
    child
}

/// A loopback port nobody listens on right now, for etcd only (see the module comment).
pub fn free_port() -> u16 {
    loopback_listener()
        .local_addr()
        .expect("local address")
        .port()
}
