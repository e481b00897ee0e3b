"""Pure verification: bytes in, a result out (or an exception).

Nothing here does I/O, talks to a database or knows HTTP.  It builds only on the pure
modules of ``ledger`` (hashing, notes, checkpoints, canonical JSON).  Verify functions raise
``VerificationError`` subclasses; they never return a bool.
"""
