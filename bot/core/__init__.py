"""The transport-neutral core: plain data in, plain data out."""
