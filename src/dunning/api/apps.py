from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "dunning.api"
    label = "api"
    verbose_name = "API"
