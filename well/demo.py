"""The demo tenant: workspace `demo` owned by demo@example.com (password printed on start)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from well.audit import Actor
from well.models import Role, Workspace
from well.services import membership_add, workspace_create

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "well-demo"
DEMO_SLUG = "demo"


@transaction.atomic
def demo_tenant_ensure() -> Workspace:
    """Create the demo user and workspace once; later runs reuse them."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=DEMO_EMAIL, defaults={"email": DEMO_EMAIL}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
        from allauth.account.models import EmailAddress

        EmailAddress.objects.create(user=user, email=DEMO_EMAIL, verified=True, primary=True)
    workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
    if workspace is None:
        workspace = workspace_create(
            name="Demo company", slug=DEMO_SLUG, actor=Actor.system("demo")
        )
    membership_add(workspace=workspace, user=user, role=Role.OWNER, actor=Actor.system("demo"))
    return workspace
