"""Professionals' own access: accounts, sessions, their records, share links, erasure.

* ``models`` — the tables (no personal data: an account points at the sealed ``persons`` row);
* ``rules`` — pure rules: secrets and their hashes, activation codes, throttling, share scopes;
* ``passwords`` — argon2id hashing, with a dummy hash so an unknown ID number costs the same;
* ``providers`` — the `IdentityProvider` seam (password now; a government OIDC provider later);
* ``services`` — activation codes, activation, sign-in, sessions, erasure (database);
* ``records`` — a holder's records with their history, and compliance per year or cycle;
* ``shares`` — share links: create, extend, close, resolve (with the access log).
"""
