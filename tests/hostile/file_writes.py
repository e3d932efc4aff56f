"""Write and delete files outside the scratch directory."""


# ruff: noqa: E402, SIM105  (written as a model would write it)
# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test


import os
import shutil

for path in ("@CANARY@/escape.txt", "/tmp/fusebench-hostile-escape.txt", os.path.expanduser("~/fusebench-escape")):
    try:
        with open(path, "w") as fh:
            fh.write("escaped")
    except OSError:
        pass
for path in ("@CANARY@/keep.txt",):
    try:
        os.remove(path)
    except OSError:
        pass
shutil.rmtree("@CANARY@", ignore_errors=True)
