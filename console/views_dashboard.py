"""The dashboard: today's traffic of the selected organization at a glance."""

from django.views.generic import TemplateView

from console.base import ConsoleMixin


class DashboardView(ConsoleMixin, TemplateView):
    template_name = "console/dashboard.html"
