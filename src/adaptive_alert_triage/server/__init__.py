"""The environment server (``[server]`` extra): ``app`` (ASGI) and ``main()``."""

from .app import app, create_server_app, main

__all__ = ["app", "create_server_app", "main"]
