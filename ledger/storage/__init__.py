"""Everything in the ledger that touches a database: tables, migrations, the appender, audit."""
