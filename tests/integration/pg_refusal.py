"""A stand-in for a PostgreSQL server with password authentication that refuses the password.

The local PostgreSQL trusts local connections, so it never refuses a password. This listener
answers the start-up as such a server does (an ErrorResponse, SQLSTATE 28P01), so psycopg2 and
libpq raise exactly the error a real server makes them raise.
"""
from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


@contextmanager
def pg_refusing_password(user: str) -> Iterator[int]:
    """A listener that refuses the start-up like a PostgreSQL server with a wrong password."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def fields(**f: str) -> bytes:
        return b"".join(k.encode() + v.encode() + b"\0" for k, v in f.items()) + b"\0"

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while True:
                    length = struct.unpack("!I", conn.recv(4))[0]
                    body = conn.recv(length - 4)
                    if struct.unpack("!I", body[:4])[0] in (SSL_REQUEST, GSSENC_REQUEST):  # SSL / GSS request
                        conn.sendall(b"N")
                        continue
                    payload = fields(S="FATAL", V="FATAL", C="28P01",
                                     M=f'password authentication failed for user "{user}"')
                    conn.sendall(b"E" + struct.pack("!I", len(payload) + 4) + payload)
                    break

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
