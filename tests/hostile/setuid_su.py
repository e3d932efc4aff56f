"""A setuid su in its own session, waiting on its own pipe, outliving the run."""


# ruff: noqa: E402  (written as a model would write it)
# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test


import os
import subprocess

read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    try:
        subprocess.Popen(["su", "root", "-c", "true"], stdin=read_end, pass_fds=(write_end,), start_new_session=True)
    finally:
        os._exit(0)
