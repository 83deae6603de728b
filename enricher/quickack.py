"""Acknowledge what a server sends at once, so kept-alive connections answer in a round trip.

Linux holds back the ACK of received data for up to 40 ms, hoping to send it with the next request. A
server that writes an answer's headers and body separately with Nagle's algorithm on (Python's
http.server and wsgiref do; many small image servers do) keeps the body back until the headers are
acknowledged, so every request after a connection's first waited 40 ms for nothing: over loopback, 44
ms instead of 2. TCP_QUICKACK is not a lasting setting (the kernel goes back to delayed ACKs), so the
stream sets it before every read: one system call, which also sends an ACK that is due.
"""

from __future__ import annotations

import socket

import httpcore

QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only; elsewhere streams stay as they are


class QuickAckStream(httpcore.NetworkStream):
    """An httpcore stream that acknowledges at once all it has received before each read."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream
        self._socket = stream.get_extra_info("socket")

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        except OSError:
            pass  # a closed or broken socket: the read says why
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        return quick_ack(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


def quick_ack(stream: httpcore.NetworkStream) -> httpcore.NetworkStream:
    """STREAM acknowledging at once when it is a TCP socket on Linux, else STREAM itself."""
    sock = stream.get_extra_info("socket")
    if QUICKACK is None or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return stream
    return QuickAckStream(stream)
