"""The rules of a BandSync session, with no I/O: standard library only."""
