from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "dunning.web"
    label = "web"
    verbose_name = "Customer pages"
