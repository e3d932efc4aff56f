"""Allocate memory until refused."""


# targets: he mp
def ENTRY(*args, **kwargs):
    return None  # wrong on every test


hoard = []
while True:
    hoard.append(bytearray(10**7))
