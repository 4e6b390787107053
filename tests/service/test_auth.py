"""Accounts and access: sign-in, cookies, CSRF, API tokens, rate limit, roles, user admin, create-admin CLI."""

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.api.app import create_app
from service.cli import app as cli
from service.db.models import ApiToken, AuditEntry, LoginFailure, LoginSession, User, utcnow
from tests.support.accounts import PASSWORD, USERS, World, login

OPEN_PATHS = {"/api/health", "/metrics", "/api/auth/login", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PATH_VALUES = {"case_id": "1", "event_id": "ev-lobby", "camera_id": "lobby", "file_id": "1", "user_id": "1", "token_id": "1",
               "delivery_id": "1", "attachment_id": "1"}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
runner = CliRunner()


def api_routes(world: World) -> list[tuple[str, str]]:
    """(method, concrete path) of every route in the OpenAPI schema except the open ones."""
    routes = []
    for template, operations in world.app.openapi()["paths"].items():
        if template in OPEN_PATHS:
            continue
        path = template
        for name, value in PATH_VALUES.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"add a value for the parameter of {template}"
        routes += [(method.upper(), path) for method in operations]
    return routes


def audit_actions(world: World) -> list[str]:
    with world.database.session() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


# --- sign-in, sessions, cookies ---------------------------------------------------------------


def test_every_route_but_health_metrics_and_login_needs_sign_in(world):
    anonymous = world.client()
    routes = api_routes(world)
    assert len(routes) >= 25
    for method, path in routes:
        response = anonymous.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
    assert anonymous.get("/api/health").status_code == 200 and anonymous.get("/metrics").status_code == 200


def test_every_state_change_needs_the_csrf_token(world):
    client = world.client("admin", csrf=False)
    changing = [(m, p) for m, p in api_routes(world) if m in STATE_CHANGING]
    assert len(changing) >= 15
    before = audit_actions(world)
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        for method, path in changing:
            response = client.request(method, path, json={}, headers=headers)
            assert response.status_code == 403 and "CSRF" in response.json()["detail"], (method, path, response.text)
    assert audit_actions(world) == before  # nothing happened
    assert world.case(1).state == "pending_review"


def test_csrf_token_also_accepted_as_a_form_field(world):
    client = world.client("inspector-a", csrf=False)
    token = client.get("/api/auth/me").json()["csrf_token"]
    assert client.post("/api/auth/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.post("/api/auth/logout", data={"csrf_token": token}).status_code == 204
    assert client.get("/api/cases").status_code == 401


def test_sign_in_cookie_is_httponly_samesite_lax_and_secure_by_default(world):
    app = create_app(world.database, world.store)  # default settings: Secure cookie
    https = TestClient(app, base_url="https://testserver")
    response = https.post("/api/auth/login", json={"username": "viewer-a", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert response.status_code == 200 and "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
    assert https.get("/api/auth/me").json()["user"]["username"] == "viewer-a"
    plain = TestClient(app)  # a Secure cookie never travels over plain http
    plain.post("/api/auth/login", json={"username": "viewer-a", "password": PASSWORD})
    assert plain.get("/api/cases").status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_401_and_are_audited(world):
    client = world.client()
    for username in ("inspector-a", "nobody"):
        response = client.post("/api/auth/login", json={"username": username, "password": "wrong-password"})
        assert response.status_code == 401 and response.json()["detail"] == "wrong username or password"
    login(client, "INSPECTOR-A")  # usernames are case-insensitive
    with world.database.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like("login%")).order_by(AuditEntry.id)).all()
        assert [(e.action, e.username, e.details.get("reason", "")) for e in entries] == [
            ("login_failed", "inspector-a", "wrong password"), ("login_failed", "nobody", "unknown username"),
            ("login_succeeded", "inspector-a", "")]
        assert entries[0].user_id == world.user_ids["inspector-a"] and entries[1].user_id is None


def test_sign_in_from_another_site_is_refused(world):
    response = world.client().post("/api/auth/login", json={"username": "viewer-a", "password": PASSWORD},
                                   headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert world.client().post("/api/auth/login", json={"username": "viewer-a", "password": PASSWORD},
                               headers={"Origin": "http://testserver"}).status_code == 200
    behind_proxy = {"Origin": "https://smokewatch.example", "X-Forwarded-Host": "smokewatch.example"}
    assert world.client().post("/api/auth/login", json={"username": "viewer-a", "password": PASSWORD},
                               headers=behind_proxy).status_code == 200


def test_login_rate_limit_per_username_and_address(world):
    client = world.client()
    for _ in range(5):
        assert client.post("/api/auth/login", json={"username": "inspector-a", "password": "not-it-at-all"}).status_code == 401
    blocked = client.post("/api/auth/login", json={"username": "inspector-a", "password": PASSWORD})  # even the right password
    assert blocked.status_code == 429 and "too many failed sign-ins" in blocked.json()["detail"]
    assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
    login(client, "viewer-a")  # another username from the same address is not blocked
    assert audit_actions(world).count("login_failed") == 5 and "login_blocked" in audit_actions(world)
    with world.database.session() as session:  # 16 minutes later
        for failure in session.scalars(select(LoginFailure)):
            failure.at -= timedelta(minutes=16)
    login(client, "inspector-a")
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.username == "inspector-a")) == 0


def test_deactivated_user_cannot_sign_in(world):
    admin = world.client("admin")
    signed_in = world.client("viewer-a")
    assert admin.patch(f"/api/users/{world.user_ids['viewer-a']}", json={"active": False}).status_code == 200
    assert signed_in.get("/api/cases").status_code == 401  # their sessions ended
    assert world.client().post("/api/auth/login", json={"username": "viewer-a", "password": PASSWORD}).status_code == 401


def test_logout_ends_the_session_for_good(world):
    client = world.client("inspector-a")
    cookie = client.cookies.get("smokewatch_session")
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/cases").status_code == 401
    replay = TestClient(world.app, cookies={"smokewatch_session": cookie})
    assert replay.get("/api/cases").status_code == 401


def test_idle_session_expires_and_a_new_sign_in_replaces_the_old_session(world):
    client = world.client("inspector-a")
    login(client, "inspector-a")
    with world.database.session() as session:
        sessions = session.scalars(select(LoginSession).where(LoginSession.user_id == world.user_ids["inspector-a"])).all()
        assert len(sessions) == 1  # the first one ended at the second sign-in
        sessions[0].last_seen_at -= timedelta(hours=3)
    response = client.get("/api/cases")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_change_own_password(world):
    client, other = world.client("inspector-a"), world.client("inspector-a")
    wrong = client.post("/api/auth/password", json={"current_password": "wrong-one-x", "new_password": "a-new-password-1"})
    assert wrong.status_code == 403
    assert client.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"}).status_code == 422
    assert client.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "a-new-password-1"}).status_code == 204
    assert client.get("/api/cases").status_code == 200 and other.get("/api/cases").status_code == 401
    assert world.client().post("/api/auth/login", json={"username": "inspector-a", "password": PASSWORD}).status_code == 401
    login(world.client(), "inspector-a", "a-new-password-1")


def test_passwords_are_stored_as_argon2id(world):
    with world.database.session() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "admin"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# --- API tokens --------------------------------------------------------------------------------


def test_api_token_acts_as_its_user_without_csrf_and_can_be_revoked(world):
    admin = world.client("admin")
    issued = admin.post("/api/tokens", json={"name": "wecom bridge", "user_id": world.user_ids["inspector-a"]})
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert token.startswith("swt_") and issued.json()["prefix"] == token[:10]
    assert all("token" not in row for row in admin.get("/api/tokens").json())  # shown once only
    with world.database.session() as session:
        row = session.get(ApiToken, issued.json()["id"])
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in (row.prefix, row.name)

    bearer = TestClient(world.app, headers={"Authorization": f"Bearer {token}"})  # no cookie, no CSRF header
    assert bearer.get("/api/cases").json()["total"] == 2  # inspector-a's unit only
    confirmed = bearer.post(f"/api/cases/{world.case_ids['ev-lobby']}/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["transitions"][-1]["user"]["username"] == "inspector-a"
    assert bearer.post(f"/api/cases/{world.case_ids['ev-stairs']}/confirm").status_code == 404
    with world.database.session() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "case_confirmed"))
        assert entry.details["via"] == f"token:{issued.json()['id']}" and entry.username == "inspector-a"

    assert admin.delete(f"/api/tokens/{issued.json()['id']}").status_code == 204
    assert bearer.get("/api/cases").status_code == 401
    assert "token_created" in audit_actions(world) and "token_revoked" in audit_actions(world)


def test_bad_expired_or_orphaned_tokens_are_refused(world):
    admin = world.client("admin")
    for header in ("Bearer nonsense", "Bearer ", "Basic dXNlcjpwYXNz", "swt_abc"):
        response = TestClient(world.app).get("/api/cases", headers={"Authorization": header})
        assert response.status_code == 401, header
    past = (utcnow() - timedelta(days=1)).isoformat()
    assert admin.post("/api/tokens", json={"name": "x", "user_id": world.user_ids["viewer-a"], "expires_at": past}).status_code == 422
    assert admin.post("/api/tokens", json={"name": "x", "user_id": 999}).status_code == 404
    issued = admin.post("/api/tokens", json={"name": "x", "user_id": world.user_ids["viewer-a"]}).json()
    bearer = TestClient(world.app, headers={"Authorization": f"Bearer {issued['token']}"})
    assert bearer.get("/api/cases").status_code == 200
    with world.database.session() as session:
        session.get(ApiToken, issued["id"]).expires_at = utcnow() - timedelta(seconds=1)
    assert bearer.get("/api/cases").status_code == 401
    issued = admin.post("/api/tokens", json={"name": "y", "user_id": world.user_ids["viewer-a"]}).json()
    admin.patch(f"/api/users/{world.user_ids['viewer-a']}", json={"active": False})
    assert TestClient(world.app, headers={"Authorization": f"Bearer {issued['token']}"}).get("/api/cases").status_code == 401
    assert TestClient(world.app, headers={"Authorization": "Bearer x"}).post("/api/auth/logout").status_code == 401


# --- roles -------------------------------------------------------------------------------------


Request = tuple[str, str, object]  # method, path, JSON body


def _role_actions(world: World, role: str) -> list[tuple[str, str, Callable[[], tuple[str, str, Any]]]]:
    """(what, least role, preparation returning the request to make); preparations make fresh cases as needed."""
    unit_a_user = world.user_ids["inspector-a"]

    def fixed(method: str, path: str, body: object = None):  # type: ignore[no-untyped-def]
        return lambda: (method, path, body)

    def on_new(state: str, step: str, body: object = None):  # type: ignore[no-untyped-def]
        return lambda: ("POST", f"/api/cases/{world.new_case('lobby', state)}/{step}", body)

    def closable() -> Request:
        case_id = world.new_case("lobby", "confirmed")
        world.client("admin").post(f"/api/cases/{case_id}/actions", json={"kind": "dissuaded_on_site"})
        return "POST", f"/api/cases/{case_id}/close", None

    def linkable() -> Request:
        complaint = world.client("admin").post("/api/complaints", json={
            "source": "email", "description": "smoking at the lift", "camera_id": "lobby", "occurred_at": "2026-11-02T09:00:00Z"}).json()
        return "POST", f"/api/cases/{complaint['id']}/link-event", {"event_id": "ev-lobby"}

    def token() -> Request:
        issued = world.client("admin").post("/api/tokens", json={"name": "t", "user_id": world.user_ids["viewer-a"]}).json()
        return "DELETE", f"/api/tokens/{issued['id']}", None

    return [
        ("list cases", "viewer", fixed("GET", "/api/cases")),
        ("read case", "viewer", fixed("GET", f"/api/cases/{world.case_ids['ev-lobby']}")),
        ("list events", "viewer", fixed("GET", "/api/events")),
        ("read camera", "viewer", fixed("GET", "/api/cameras/lobby")),
        ("view evidence", "viewer", fixed("GET", f"/api/evidence/{world.file_ids['ev-lobby']}")),
        ("read me", "viewer", fixed("GET", "/api/auth/me")),
        ("confirm", "inspector", on_new("pending_review", "confirm")),
        ("dismiss", "inspector", on_new("pending_review", "dismiss", {"reason": "not_smoking"})),
        ("record action", "inspector", on_new("confirmed", "actions", {"kind": "ordered_to_rectify"})),
        ("close", "inspector", closable),
        ("reopen", "inspector", on_new("dismissed", "reopen", {"reason": "new footage"})),
        ("add note", "inspector", on_new("pending_review", "notes", {"text": "called the unit"})),
        ("bulk dismiss", "inspector", lambda: ("POST", "/api/cases/bulk-dismiss", {
            "case_ids": [world.new_case(), world.new_case("hall")], "reason": "test"})),
        ("open complaint", "inspector", fixed("POST", "/api/complaints", {
            "source": "phone", "description": "smell of smoke", "site": "unit-a", "occurred_at": "2026-11-02T10:00:00+08:00"})),
        ("link event", "inspector", linkable),
        ("assign", "supervisor", on_new("pending_review", "assign", {"user_id": unit_a_user})),
        ("list assignable", "supervisor", lambda: ("GET", f"/api/cases/{world.new_case()}/assignable", None)),
        ("list users", "admin", fixed("GET", "/api/users")),
        ("read user", "admin", fixed("GET", f"/api/users/{unit_a_user}")),
        ("create user", "admin", fixed("POST", "/api/users", {"username": f"new-{role}", "password": "a-long-password", "role": "viewer",
                                                             "sites": ["unit-a"]})),
        ("update user", "admin", fixed("PATCH", f"/api/users/{world.user_ids['viewer-a']}", {"display_name": f"by {role}"})),
        ("list tokens", "admin", fixed("GET", "/api/tokens")),
        ("issue token", "admin", fixed("POST", "/api/tokens", {"name": role, "user_id": unit_a_user})),
        ("revoke token", "admin", token),
        ("read audit", "admin", fixed("GET", "/api/audit")),
    ]


@pytest.mark.parametrize("role", ["viewer", "inspector", "supervisor", "admin"])
def test_role_matrix(world, role):
    username = {"viewer": "viewer-a", "inspector": "inspector-a", "supervisor": "supervisor-a", "admin": "admin"}[role]
    client = world.client(username)
    ranks = ["viewer", "inspector", "supervisor", "admin"]
    for what, least, prepare in _role_actions(world, role):
        method, path, body = prepare()
        audit_before = world.audit_count()
        response = client.request(method, path, json=body)
        if ranks.index(role) >= ranks.index(least):
            assert response.status_code in (200, 201, 204), (role, what, response.text)
        else:
            assert response.status_code == 403 and f"needs the {least} role" in response.json()["detail"], (role, what, response.text)
            assert world.audit_count() == audit_before, (role, what)


# --- user administration -----------------------------------------------------------------------


def test_creating_users_validates_everything(world):
    admin = world.client("admin")
    good: dict[str, Any] = {"username": "clerk", "password": "a-long-password", "role": "viewer", "sites": ["unit-a"]}
    created = admin.post("/api/users", json=good)
    assert created.status_code == 201 and created.json()["sites"] == ["unit-a"] and "password" not in created.json()
    assert admin.post("/api/users", json=good | {"username": "CLERK"}).status_code == 409
    changes: list[tuple[dict[str, Any], int]] = [
        ({"password": "short"}, 422), ({"password": "aaaaaaaaaaaa"}, 422), ({"password": "clerk2clerk2", "username": "clerk2clerk2"}, 422),
        ({"role": "root"}, 422), ({"role": "admin"}, 422), ({"all_sites": True}, 422), ({"sites": []}, 422),
        ({"username": "bad name!"}, 422), ({"is_admin": True}, 422), ({"sites": "unit-a"}, 422),
    ]
    for change, expected in changes:
        body = good | {"username": "clerk2"} | change
        response = admin.post("/api/users", json=body)
        assert response.status_code == expected, (change, response.text)
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.username.like("clerk%"))) == 1


def test_updating_users(world):
    admin = world.client("admin")
    viewer_id = world.user_ids["viewer-a"]
    signed_in = world.client("viewer-a")
    assert admin.patch(f"/api/users/{viewer_id}", json={"role": "inspector", "sites": ["unit-b"]}).json()["sites"] == ["unit-b"]
    assert signed_in.get("/api/cases").json()["total"] == 1  # the new scope applies at once
    assert admin.patch(f"/api/users/{viewer_id}", json={"password": "reset-password-1"}).status_code == 200
    assert signed_in.get("/api/cases").status_code == 401  # reset ends their sessions
    login(world.client(), "viewer-a", "reset-password-1")
    assert admin.patch(f"/api/users/{world.user_ids['admin']}", json={"role": "viewer"}).status_code == 409
    assert admin.patch(f"/api/users/{world.user_ids['admin']}", json={"active": False}).status_code == 409
    assert admin.patch(f"/api/users/{world.user_ids['supervisor-all']}", json={"role": "admin"}).json()["all_sites"] is True
    assert admin.patch(f"/api/users/{world.user_ids['supervisor-all']}", json={"role": "inspector"}).status_code == 422
    assert admin.patch("/api/users/999", json={"display_name": "x"}).status_code == 404
    assert admin.patch(f"/api/users/{viewer_id}", json={"sites": []}).status_code == 422
    changes = [e for e in admin.get("/api/audit", params={"action": "user_updated"}).json()["items"]]
    assert changes[-1]["details"]["changed"] == {"role": "inspector", "sites": ["unit-b"]}


# --- create-admin CLI --------------------------------------------------------------------------


def test_create_admin_prompts_twice_hidden_and_the_admin_can_sign_in(world, database_url):
    result = runner.invoke(cli, ["create-admin", "--username", "chief", "--database-url", database_url],
                           input="first-try-pass1\nmismatch-pass22\nChief-password-9\nChief-password-9\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output and "Chief-password-9" not in result.output and "'chief' created" in result.output
    client = TestClient(world.app)
    login(client, "chief", "Chief-password-9")
    assert client.get("/api/auth/me").json()["user"]["role"] == "admin"
    assert "user_created" in audit_actions(world)


def test_create_admin_refuses_weak_or_taken(world, database_url, tmp_path):
    weak = tmp_path / "weak.txt"
    weak.write_text("short\n")
    result = runner.invoke(cli, ["create-admin", "--username", "chief", "--password-file", str(weak), "--database-url", database_url])
    assert result.exit_code == 2 and "at least 10 characters" in result.output
    good = tmp_path / "good.txt"
    good.write_text("Chief-password-9\n")
    taken = runner.invoke(cli, ["create-admin", "--username", "admin", "--password-file", str(good), "--database-url", database_url])
    assert taken.exit_code == 2 and "taken" in taken.output
    created = runner.invoke(cli, ["create-admin", "--username", "chief", "--password-file", str(good), "--database-url", database_url])
    assert created.exit_code == 0, created.output
    with world.database.session() as session:
        assert session.scalar(select(User).where(User.username == "chief")).role == "admin"
    assert len(USERS) + 1 == len(world.client("admin").get("/api/users").json())
