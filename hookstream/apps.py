from django.apps import AppConfig


class HookstreamConfig(AppConfig):
    name = "hookstream"
    verbose_name = "Tenancy"
