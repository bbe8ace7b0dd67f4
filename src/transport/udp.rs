//! UDP sink: one message per datagram.

use std::net::{SocketAddr, UdpSocket};

use wiretrace_protocol::{encode, Message, MAX_MESSAGE_LEN};

use super::{Sink, SinkError};

/// Sends each message as one datagram to one address.
#[derive(Debug)]
pub struct UdpSink {
    socket: UdpSocket,
    to: SocketAddr,
    buf: [u8; MAX_MESSAGE_LEN],
}

impl UdpSink {
    /// Binds an ephemeral socket of the destination's address family.
    pub fn new(to: SocketAddr) -> Result<Self, SinkError> {
        let local: SocketAddr = if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local).map_err(|source| SinkError::Io { target: to.to_string(), source })?;
        Ok(UdpSink { socket, to, buf: [0; MAX_MESSAGE_LEN] })
    }
}

impl Sink for UdpSink {
    fn target(&self) -> String {
        format!("udp://{}", self.to)
    }

    fn send(&mut self, message: &Message) -> Result<(), SinkError> {
        let n = encode(message, &mut self.buf)?;
        // Unconnected send_to: a receiver that is not there yet (ICMP port unreachable) does
        // not turn into errors on later sends.
        self.socket.send_to(&self.buf[..n], self.to).map(|_| ()).map_err(SinkError::Write)
    }
}
