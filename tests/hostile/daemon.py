"""A double-forked daemon in its own session, deaf to SIGTERM/SIGHUP, outliving the run."""


# ruff: noqa: E402  (written as a model would write it)
# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test


import os
import signal
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        time.sleep(120)
    os._exit(0)
