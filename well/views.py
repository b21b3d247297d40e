from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from well.selectors import memberships_for_user


@require_GET
def healthz(request):
    """Liveness and database check for load balancers and monitors."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@login_required
@require_GET
def home(request):
    """Open the last workspace used, the only one, or let the user pick."""
    memberships = list(memberships_for_user(user=request.user))
    slugs = [m.workspace.slug for m in memberships]
    last = request.session.get("workspace_slug")
    if last in slugs:
        return redirect("review:dashboard", workspace_slug=last)
    if len(memberships) == 1:
        return redirect("review:dashboard", workspace_slug=slugs[0])
    return render(request, "well/workspaces.html", {"memberships": memberships})
