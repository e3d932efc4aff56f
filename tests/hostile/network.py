"""Open a TCP connection to a listener of the host on 127.0.0.1."""

# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test

import socket

try:
    socket.create_connection(("127.0.0.1", @PORT@), timeout=1).sendall(b"escaped")
except OSError:
    pass
