"""Flood standard output and error."""


# ruff: noqa: E402  (written as a model would write it)
# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test


import sys

while True:
    sys.stdout.write("x" * 100000)
    sys.stderr.write("y" * 100000)
