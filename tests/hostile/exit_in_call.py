"""Exit with status 0 from inside the tested function."""


# targets: he mp mo
def ENTRY(*args, **kwargs):
    raise SystemExit(0)
