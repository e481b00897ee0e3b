"""ASGI entry point for servers with workers: each worker builds its app from the environment."""

from __future__ import annotations

from litestar import Litestar

from api.app import create_app
from api.settings import Settings


def app_factory() -> Litestar:
    return create_app(Settings())
