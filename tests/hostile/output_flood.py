"""Flood standard output and error."""

# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test

import sys

while True:
    sys.stdout.write("x" * 100000)
    sys.stderr.write("y" * 100000)
