"""HTTP API, HTML pages and the command line.  The only package that knows HTTP."""
