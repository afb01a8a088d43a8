from django.apps import AppConfig


class CliConfig(AppConfig):
    name = "dunning.cli"
    label = "cli"
    verbose_name = "Command line"
