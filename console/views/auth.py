"""Log in, log out, and switch organization."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View

from console.base import safe_next
from hookstream.api.authentication import SESSION_ORG_KEY
from hookstream.selectors import memberships_of


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    next_page = "console:login"


class OrganizationSwitchView(LoginRequiredMixin, View):
    """POST only, and open to a user whose organization is not chosen yet (so not an
    ``ActionView``): selects one of the user's organizations, then goes to a safe ``next``."""

    http_method_names = ["post"]

    def post(self, request):
        wanted = request.POST.get("organization_id", "")
        membership = memberships_of(user=request.user).filter(organization_id=wanted).first()
        if membership is None:
            messages.error(request, "You are not a member of that organization.")
        else:
            request.session[SESSION_ORG_KEY] = membership.organization_id
            messages.success(request, f"Switched to {membership.organization.name}.")
        return redirect(safe_next(request, reverse("console:dashboard")))
