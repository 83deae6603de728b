"""Streams that acknowledge at once (enricher.quickack), on real loopback sockets.

After a request and its answer Linux delays the ACK of the next answer (it expects to send it with the
next request); a stream of ours must have switched that off again by the time a read returns.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpcore
import pytest

from enricher.addresses import AddressGuard, GuardedBackend
from enricher.quickack import QUICKACK, QuickAckStream, quick_ack

pytestmark = pytest.mark.skipif(QUICKACK is None, reason="TCP_QUICKACK is Linux's")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def exchange(stream: httpcore.NetworkStream, peer: socket.socket, answer: bytes = b"answer") -> bytes:
    """Send a request over STREAM, answer it from PEER, and read the answer."""
    stream.write(b"request")
    assert peer.recv(100) == b"request"
    peer.sendall(answer)
    return stream.read(100)


def quick_ack_on(stream: httpcore.NetworkStream) -> int:
    return stream.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, QUICKACK)


def test_a_kept_alive_connection_acknowledges_at_once_where_a_plain_one_delays(config, listener):
    port = listener.getsockname()[1]
    ours = GuardedBackend(AddressGuard(config)).connect_tcp("127.0.0.1", port)
    our_peer, _ = listener.accept()
    plain = httpcore.SyncBackend().connect_tcp("127.0.0.1", port)
    plain_peer, _ = listener.accept()
    with our_peer, plain_peer:
        for n in range(3):
            assert exchange(ours, our_peer, b"ours %d" % n) == b"ours %d" % n
            assert exchange(plain, plain_peer) == b"answer"
        assert isinstance(ours, QuickAckStream)
        assert quick_ack_on(ours) == 1
        assert quick_ack_on(plain) == 0  # the kernel's delayed ACKs, which the stream turns off
        ours.close()
        plain.close()


def test_a_closed_connection_reads_as_ended(listener):
    stream = quick_ack(httpcore.SyncBackend().connect_tcp("127.0.0.1", listener.getsockname()[1]))
    peer, _ = listener.accept()
    assert exchange(stream, peer) == b"answer"
    peer.close()
    assert stream.read(100) == b""
    stream.close()


def test_a_unix_socket_stream_is_left_as_it_is(tmp_path):
    path = str(tmp_path / "socket")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        stream = httpcore.SyncBackend().connect_unix_socket(path)
        assert quick_ack(stream) is stream
        stream.close()
