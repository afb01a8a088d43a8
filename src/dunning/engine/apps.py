from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "dunning.engine"
    label = "engine"
    verbose_name = "Engine"
