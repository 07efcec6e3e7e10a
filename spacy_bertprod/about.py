__version__ = "0.1.0"
# Bumped when the on-disk layout of a saved component changes; older code refuses newer folders.
FORMAT_VERSION = 1
