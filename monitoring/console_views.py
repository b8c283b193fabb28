"""The console's Issues pages (session-cookie web UI): the list, and an issue with
acknowledge / resolve / reopen / retry. Served under the console's layout at ``/issues/``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from deliveries.models import DeliveryAttempt
from hookstream.api.authentication import session_organization
from monitoring import selectors, services
from monitoring.models import Issue, IssueStatus

PAGE_SIZE = 50


class _Console(LoginRequiredMixin, View):
    """A signed-in user with a selected organization (``self.organization``)."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.organization = session_organization(request)
        if self.organization is None:
            return render(request, "console/no_organization.html", status=403)
        request.organization = self.organization
        return super().dispatch(request, *args, **kwargs)

    def issue(self, pk: str) -> Issue:
        issue = Issue.objects.select_related("destination").filter(organization=self.organization, pk=pk).first()
        if issue is None:
            raise Http404("No such issue.")
        return issue


class IssueListView(_Console):
    def get(self, request):
        status = request.GET.get("status", "open")
        if status not in selectors.ISSUE_STATUS_FILTERS:
            status = "open"
        rows = selectors.issues_for_organization(organization=self.organization, status=status).order_by(
            "-last_seen_at", "-id"
        )
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        context = {
            "page": page,
            "status": status,
            "statuses": selectors.ISSUE_STATUS_FILTERS,
            "summary": selectors.issue_summary(organization=self.organization),
        }
        return render(request, "monitoring/console/issue_list.html", context)


class IssueDetailView(_Console):
    def get(self, request, pk):
        issue = self.issue(pk)
        attempts = DeliveryAttempt.objects.filter(
            organization=self.organization, pk__in=issue.recent_attempt_ids
        ).order_by("-created_at")
        return render(request, "monitoring/console/issue_detail.html", {"issue": issue, "attempts": attempts})


class IssueActionView(_Console):
    """POST ``action`` = acknowledge | resolve | reopen | retry."""

    STATUSES = {"acknowledge": IssueStatus.ACKNOWLEDGED, "resolve": IssueStatus.RESOLVED, "reopen": IssueStatus.OPEN}

    def post(self, request, pk):
        issue = self.issue(pk)
        action = request.POST.get("action", "")
        if action == "retry":
            result = services.issue_retry(issue=issue)
            messages.success(request, f"Retried {len(result['retried'])} deliveries.")
        elif action in self.STATUSES:
            try:
                services.issue_update(issue=issue, status=self.STATUSES[action])
            except ValueError as exc:
                messages.error(request, f"Cannot reopen: {exc}.")
            else:
                messages.success(request, f"Issue {issue.get_status_display().lower()}.")
        else:
            messages.error(request, "Unknown action.")
        return redirect("monitoring-console:issue-detail", pk=issue.pk)
