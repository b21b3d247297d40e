from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory

from well.audit import Actor
from well.decorators import workspace_view
from well.models import AuditEvent, Membership, Role
from well.services import ThresholdError, membership_add, workspace_thresholds_update

pytestmark = pytest.mark.django_db


def test_a_new_workspace_has_the_default_thresholds_and_its_own_key(make_workspace):
    workspace = make_workspace("Acme Books")

    assert workspace.slug == "acme-books"
    assert (workspace.auto_threshold, workspace.review_threshold) == (0.85, 0.55)
    assert workspace.data_key.wrapped_key


def test_a_user_in_several_workspaces_picks_one_and_returns_to_it(
    client, make_user, make_workspace
):
    ann = make_user("ann@example.com")
    make_workspace("Alpha", owner=ann)
    make_workspace("Beta", owner=ann, role=Role.VIEWER)
    client.force_login(ann)

    picker = client.get("/")
    assert picker.status_code == 200
    assert b"Alpha" in picker.content and b"Beta" in picker.content

    assert client.get("/w/beta/").status_code == 200
    assert client.get("/").url == "/w/beta/"


def test_a_user_with_one_workspace_goes_straight_to_it(client, make_user, make_workspace):
    ann = make_user("ann@example.com")
    make_workspace("Alpha", owner=ann)
    client.force_login(ann)

    assert client.get("/").url == "/w/alpha/"


def test_signed_out_visitors_are_sent_to_sign_in(client, make_workspace):
    make_workspace("Alpha")

    response = client.get("/w/alpha/")

    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.ACCOUNTANT, False),
        (Role.ACCOUNTANT, Role.ACCOUNTANT, True),
        (Role.ACCOUNTANT, Role.OWNER, False),
        (Role.OWNER, Role.ACCOUNTANT, True),
    ],
)
def test_roles_allow_what_their_rank_allows(make_user, make_workspace, role, needed, allowed):
    user = make_user("ann@example.com")
    workspace = make_workspace("Alpha", owner=user, role=role)
    request = RequestFactory().post("/")
    request.user = user
    request.session = {}
    view = workspace_view(needed)(lambda request: HttpResponse("done"))

    if allowed:
        assert view(request, workspace_slug=workspace.slug).status_code == 200
    else:
        with pytest.raises(PermissionDenied):
            view(request, workspace_slug=workspace.slug)


def test_changing_a_role_is_audited(make_user, make_workspace):
    user = make_user("ann@example.com")
    workspace = make_workspace("Alpha", owner=user, role=Role.VIEWER)

    membership_add(workspace=workspace, user=user, role=Role.ACCOUNTANT, actor=Actor.system())

    assert Membership.objects.get(user=user).role == Role.ACCOUNTANT
    event = AuditEvent.objects.for_workspace(workspace).get(verb="membership.role_changed")
    assert event.before == {"role": "viewer"}


@pytest.mark.parametrize(("auto", "review"), [(0.5, 0.6), (1.2, 0.5), (0.8, -0.1)])
def test_thresholds_out_of_order_are_refused(make_workspace, auto, review):
    workspace = make_workspace("Alpha")

    with pytest.raises(ThresholdError):
        workspace_thresholds_update(
            workspace=workspace, auto_threshold=auto, review_threshold=review, actor=Actor.system()
        )

    workspace.refresh_from_db()
    assert (workspace.auto_threshold, workspace.review_threshold) == (0.85, 0.55)
