from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dunning.api import keys
from dunning.api.models import ApiKey


class Command(BaseCommand):
    help = "Create, list and revoke API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help="create a key; it is printed once, on the last line"
        )
        create.add_argument("name")
        actions.add_parser("list", help="list keys (never the keys themselves)")
        revoke = actions.add_parser("revoke", help="revoke a key by its id")
        revoke.add_argument("id", type=int)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        now = timezone.now()
        if action == "create":
            try:
                new = keys.create_key(name=options["name"], now=now)
            except ValueError as error:
                raise CommandError(str(error)) from None
            self.stderr.write(
                f"Created API key {new.record.pk} ({new.record.name}). Keep it safe: it is shown "
                "only now. Send it as 'Authorization: Bearer <key>'."
            )
            self.stdout.write(new.key)
        elif action == "list":
            self.stdout.write(
                f"{'id':>4}  {'prefix':<12} {'created':<20} {'last used':<20} status  name"
            )
            for record in ApiKey.objects.order_by("id"):
                status = "revoked" if record.revoked_at else "active"
                used = f"{record.last_used_at:%Y-%m-%d %H:%M}" if record.last_used_at else "never"
                self.stdout.write(
                    f"{record.pk:>4}  {record.prefix:<12} {record.created_at:%Y-%m-%d %H:%M}     "
                    f"{used:<20} {status:<7} {record.name}"
                )
        elif action == "revoke":
            try:
                record = keys.revoke_key(key_id=options["id"], now=now)
            except ApiKey.DoesNotExist:
                raise CommandError(f"no API key with id {options['id']}") from None
            self.stdout.write(f"Revoked API key {record.pk} ({record.name}).")
