"""Test fixtures: real databases, both of them.

Every storage test takes the ``db_url`` fixture and runs twice: on SQLite (a fresh file per
test, copied from a migrated template) and on PostgreSQL (a fresh database per test, cloned
from a migrated template database).  PostgreSQL is found at ``CELEDGER_TEST_PG`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); if it cannot be reached the tests
*error* — they never skip — so a run without PostgreSQL cannot pass for a full run.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.storage.migrate import upgrade

# No per-example time limit: on a loaded two-core machine (the other test worker starting a
# server) one example can stall past Hypothesis's default 200 ms, which measures the machine,
# not the property.
hypothesis_settings.register_profile("celedger", deadline=None)
hypothesis_settings.load_profile("celedger")

PG_ADMIN = os.environ.get(
    "CELEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RUN_ID = secrets.token_hex(4)
PG_TEMPLATE = f"celedger_tmpl_{RUN_ID}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"

_pg_used: dict[str, int] = {"passed": 0}


def _pg_admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        eng = _pg_admin_engine()
        with eng.connect() as c:
            c.execute(text(f'CREATE DATABASE "{PG_TEMPLATE}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL fails the run
        pytest.fail(
            f"PostgreSQL is required for the storage tests and could not be reached at "
            f"{make_url(PG_ADMIN).render_as_string(hide_password=True)}: {exc}",
            pytrace=False,
        )
    url = make_url(PG_ADMIN).set(database=PG_TEMPLATE).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    tmpl_url: str = request.getfixturevalue("pg_template")
    name = f"celedger_t_{secrets.token_hex(6)}"
    eng = _pg_admin_engine()
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"'))
    yield make_url(tmpl_url).set(database=name).render_as_string(hide_password=False)
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


_figures: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "[postgresql" in report.nodeid:
        _pg_used["passed"] += 1
    # Figures travel as user properties because that is what pytest-xdist forwards from its
    # workers to the process that prints the summary.
    if report.when == "call":
        _figures.extend(str(v) for k, v in report.user_properties if k == "figure")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _figures:
        terminalreporter.section("figures")
        for line in sorted(_figures):
            terminalreporter.write_line(line)


@pytest.fixture
def figure(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``figure("crash[sqlite]: 20 trials, 0 records lost")`` — printed in the run's summary.

    The reliability suite's claims are numbers (trials run, detection rate, examples tried);
    they are printed at the end of every run, CI's included, so the README can be checked
    against the latest log.
    """

    def record(line: str) -> None:
        request.node.user_properties.append(("figure", line))

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets this: a green run in which no PostgreSQL test passed proves nothing about
    # production, so it must not be green.
    if (
        os.environ.get("CELEDGER_REQUIRE_POSTGRES") == "1"
        and _pg_used["passed"] == 0
        and not hasattr(session.config, "workerinput")
    ):
        print("\nERROR: CELEDGER_REQUIRE_POSTGRES=1 but no PostgreSQL test passed")
        session.exitstatus = 1


@pytest.fixture
def settings(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for a service on a fresh database of each kind, keys under tmp_path."""
    from api.settings import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=tmp_path / "data",
        origin="test.celedger.example/log",
        public_url="http://testserver",
        # Tests revoke and verify in the same second: every verification reads the ledger.
        # (tests/test_verify_api.py checks the default, a snapshot kept for a second.)
        verify_freshness_seconds=0,
    )


@pytest.fixture
def ctx(settings):  # type: ignore[no-untyped-def]
    from api.context import Context

    c = Context.from_settings(settings)
    yield c
    c.close()


@pytest.fixture
def client(settings, ctx):  # type: ignore[no-untyped-def]
    """An HTTP client on the full app (``create_app``), on SQLite and on PostgreSQL."""
    from litestar.testing import TestClient

    from api.app import create_app

    with TestClient(app=create_app(settings, context=ctx)) as tc:
        yield tc
