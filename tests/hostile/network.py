"""Open a TCP connection to a listener of the host on 127.0.0.1."""


# ruff: noqa: E402, SIM105  (written as a model would write it)
# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test


import socket

try:
    socket.create_connection(("127.0.0.1", int("@PORT@")), timeout=1).sendall(b"escaped")
except OSError:
    pass
