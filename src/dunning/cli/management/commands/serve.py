from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the web app (API, admin) with gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("DUNNING_WEB_WORKERS", "0")) or None,
            help="worker processes (default: 2 x cores + 1, at most 8)",
        )

    def handle(self, *args: Any, host: str, port: int, workers: int | None, **options: Any) -> None:
        from gunicorn.app.base import BaseApplication

        from dunning.wsgi import application

        count = workers or min(2 * (os.cpu_count() or 1) + 1, 8)
        config = {
            "bind": f"{host}:{port}",
            "workers": count,
            "worker_class": "sync",
            "accesslog": os.environ.get("DUNNING_ACCESS_LOG", "-"),
            "errorlog": "-",
            "timeout": 60,
            "graceful_timeout": 20,
        }

        class Server(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in config.items():
                    self.cfg.set(key, value)

            def load(self) -> Any:
                return application

        self.stdout.write(f"dunning serving on http://{host}:{port}/ ({count} workers)")
        Server().run()
