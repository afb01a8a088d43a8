from __future__ import annotations

import os
import subprocess
import sys
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
        parser.add_argument(
            "--with-worker",
            action="store_true",
            help="also run one engine worker (`dunning worker`) while serving",
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        workers: int | None,
        with_worker: bool,
        **options: Any,
    ) -> None:
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

        engine = None
        if with_worker:
            # One engine worker beside the web server (the demo; SQLite runs one worker).
            engine = subprocess.Popen([sys.executable, "-m", "dunning", "worker"])
            self.stdout.write(f"engine worker running (pid {engine.pid})")
        self.stdout.write(f"dunning serving on http://{host}:{port}/ ({count} workers)")
        try:
            Server().run()
        finally:
            if engine is not None:
                engine.terminate()  # SIGTERM: it finishes its batch and exits
                engine.wait(timeout=30)
