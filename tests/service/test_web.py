"""The web UI in headless Chromium against a real uvicorn server, SQLite database and evidence folder.

Screenshots of every step go to test-artifacts/web/ (gitignored) for people to look at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from argon2 import PasswordHasher

from service import cases, passwords
from service.config import AppConfig, QuarterlyTargets, StatisticsSettings
from service.db.models import AlertDelivery, Attachment, Event
from tests.support.accounts import PASSWORD, T0, World, build_world
from tests.support.fixtures import _unavailable, free_port, make_video

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CLIP_SECONDS = 8
UI_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.timeout(120)


@dataclass
class Site:
    url: str
    world: World
    real_case: int  # the case whose clip is a real H.264 MP4 with snapshots

    def case_state(self, case_id: int) -> str:
        return self.world.case(case_id).state


def add_real_event(world: World) -> int:
    """An event on the lobby camera with a real clip and clean and annotated snapshots; returns its case id."""
    started = T0 + timedelta(hours=3)
    folder = world.store.event_dir("lobby", "ev-real", started)
    clip = make_video(folder / "clip.mp4", seconds=CLIP_SECONDS)
    picture = np.full((360, 640, 3), 90, np.uint8)
    cv2.rectangle(picture, (260, 80), (380, 340), (200, 200, 200), -1)
    annotated = picture.copy()
    cv2.rectangle(annotated, (260, 80), (380, 340), (0, 0, 255), 3)
    cv2.rectangle(annotated, (300, 120), (330, 130), (0, 215, 255), 2)
    cv2.putText(annotated, "person 0.91 #7", (262, 74), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
    cv2.imwrite(str(folder / "snapshot.jpg"), picture)
    cv2.imwrite(str(folder / "snapshot-annotated.jpg"), annotated)
    event = Event(id="ev-real", camera_id="lobby", track_id=7, started_at=started, confirmed_at=started + timedelta(seconds=2),
                  ended_at=started + timedelta(seconds=CLIP_SECONDS), peak_score=0.91, status="complete",
                  evidence_dir=folder.relative_to(world.store.root).as_posix(), model_version="test", thresholds={})
    with world.database.session() as session:
        case_id = cases.open_event(session, event).id
        cases.add_files(session, "ev-real", [world.store.stored("clip", clip), world.store.stored("snapshot", folder / "snapshot.jpg"),
                                             world.store.stored("snapshot_annotated", folder / "snapshot-annotated.jpg")])
        cases.record_status(session, "lobby", "online", "", at=T0)
        cases.record_status(session, "stairs", "offline", "connection refused", at=T0 + timedelta(hours=1))
    world.case_ids["ev-real"] = case_id
    return case_id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The seeded world (tests.support.accounts) plus one real case, served by uvicorn on a free port."""
    root = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        world = build_world(f"sqlite:///{root}/smokewatch.db", root)
        real_case = add_real_event(world)
        world.app.state.config = AppConfig(statistics=StatisticsSettings(
            site_targets={"unit-a": QuarterlyTargets(persons_dissuaded=10, venues_ordered_to_rectify=4)}))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        try:
            yield Site(f"http://127.0.0.1:{port}", world, real_case)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            world.database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium); the web UI tests drive it")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser, site):  # type: ignore[no-untyped-def]
    """``new_page(viewport=None)``: a page in a fresh browser context (no cookies); contexts close after the test."""
    contexts = []

    def make(viewport: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
        context = browser.new_context(base_url=site.url, viewport=viewport or {"width": 1366, "height": 900}, locale="zh-CN")
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, username: str, password: str = PASSWORD, next_path: str = "/queue") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/login?next={quote(next_path, safe='')}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)


def test_sign_in_page_shows_errors_and_the_rate_limit(site, new_page):
    page = new_page()
    page.goto("/queue")
    page.wait_for_url("**/login?next=%2Fqueue")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    shot(page, "01-login")

    page.fill("#username", "inspector-a")
    page.fill("#password", "not the password")
    page.press("#password", "Enter")
    page.locator("#login-error").wait_for()
    assert page.locator("#login-error").inner_text() == "用户名或密码错误"
    shot(page, "02-login-wrong-password")

    for _ in range(5):  # the limit: 5 failures for one username from one address
        page.request.post("/api/auth/login", data={"username": "supervisor-all", "password": "wrong password"})
    page.fill("#username", "supervisor-all")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_function("() => document.getElementById('login-error').textContent.includes('登录失败次数过多')")
    shot(page, "03-login-rate-limited")


def test_review_a_real_case_with_the_keyboard(site, new_page):
    page = new_page()
    sign_in(page, "inspector-a")
    row = page.locator(f'tr[data-case-id="{site.real_case}"]')
    assert page.locator(".case-row").first.get_attribute("data-case-id") == str(site.real_case)  # newest first
    row.locator("img").wait_for()
    # the element can exist before the image has arrived: wait for the load itself, then check it is the snapshot
    page.wait_for_function("() => document.querySelector('.case-row img').complete")
    assert page.evaluate("() => document.querySelector('.case-row img').naturalWidth") == 640  # the annotated snapshot loaded
    assert int(page.inner_text("#count-pending_review")) >= 1
    shot(page, "04-queue")

    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/cases/{site.real_case}")
    assert "控烟监督员" in page.inner_text(".who")
    for key in ("Space", "j", "l", "n", "p", "c", "d", "Esc"):
        assert page.locator("#keys kbd", has_text=key).count() >= 1, key

    page.keyboard.press("Space")
    page.wait_for_function("() => { const v = document.getElementById('clip'); return v.currentTime > 1 && v.readyState >= 2; }")
    page.keyboard.press("k")
    page.wait_for_function("() => document.getElementById('clip').paused")
    back = max(0.0, page.evaluate("() => document.getElementById('clip').currentTime") - 5)
    page.keyboard.press("j")
    page.wait_for_function(f"() => Math.abs(document.getElementById('clip').currentTime - {back}) < 0.1")
    page.keyboard.press("l")
    page.wait_for_function(f"() => Math.abs(document.getElementById('clip').currentTime - {min(CLIP_SECONDS, back + 5)}) < 0.3")
    assert page.locator("#timeline li").count() == 3  # started, confirmed, ended
    shot(page, "05-case-playing")

    page.keyboard.press("c")
    page.locator('#history .history-row[data-to-state="confirmed"]').wait_for()
    assert page.inner_text("#case-state") == "已确认"
    assert site.case_state(site.real_case) == "confirmed"
    assert page.locator("#confirm-button").count() == 0

    page.select_option("#action-kind", "ordered_to_rectify")
    page.fill("#action-persons", "2")
    page.fill("#action-venue", "三楼东侧走廊")
    page.fill("#action-notes", "已当场责令整改 <b>不是标签</b>")
    page.click("#record-action")
    page.locator("#action-list li").wait_for()
    action_text = page.inner_text("#action-list")
    assert "责令整改" in action_text and "三楼东侧走廊" in action_text and "<b>不是标签</b>" in action_text  # escaped, not markup
    page.fill("#note-text", "监控画面清晰")
    page.click("#note-form button")
    page.locator("#note-list li").wait_for()
    history = page.inner_text("#history")
    assert "待审核 → 已确认" in history and "Inspector-A" in history
    shot(page, "06-case-confirmed-action-recorded")

    export = page.request.get(f"/api/cases/{site.real_case}/export")
    if export.status == 200:  # the export route comes from another change; check it only when it is there
        assert export.headers["content-type"].startswith("application/zip")
    assert page.get_attribute("#export-link", "href") == f"/api/cases/{site.real_case}/export"


def test_next_case_and_dismiss_with_a_typed_reason_by_keyboard(site, new_page):
    older, newer = site.world.new_case("hall"), site.world.new_case("hall")
    page = new_page()
    sign_in(page, "inspector-a", next_path=f"/cases/{newer}")
    page.keyboard.press("n")
    page.wait_for_url(f"**/cases/{older}")
    page.keyboard.press("d")
    assert page.locator("#dismiss-panel").is_visible()
    page.keyboard.press("c")  # ignored while a reason is being chosen
    page.keyboard.press("5")
    page.locator("#other-text").wait_for()
    page.keyboard.type("演练，不是真实吸烟")
    shot(page, "07-case-dismiss-other")
    page.keyboard.press("Enter")
    page.locator('#history .history-row[data-to-state="dismissed"]').wait_for()
    case = site.world.case(older)
    assert (case.state, case.dismiss_reason, case.dismiss_text) == ("dismissed", "other", "演练，不是真实吸烟")
    assert site.case_state(newer) == "pending_review"


def test_bulk_dismiss_from_the_queue(site, new_page):
    page = new_page()
    sign_in(page, "inspector-a")
    chosen = [site.world.case_ids["ev-lobby"], site.world.case_ids["ev-hall"]]
    for case_id in chosen:
        page.check(f'.row-select[value="{case_id}"]')
    assert page.inner_text("#selected-count") == "已选 2 件"
    page.select_option("#bulk-reason", "duplicate")
    shot(page, "08-queue-bulk-selected")
    page.click("#bulk-dismiss")
    page.locator(f'.row-select[value="{chosen[0]}"]').wait_for(state="detached")
    assert [site.case_state(case_id) for case_id in chosen] == ["dismissed", "dismissed"]
    assert int(page.inner_text("#count-dismissed")) >= 2

    page.goto("/queue?camera=hall&state=all&start=2026-11-02&end=2026-11-02")
    assert page.locator(".case-row").count() >= 1
    assert all("hall" in row.inner_text() for row in page.locator(".case-row").all())
    page.goto("/queue?location_type=canteen&state=all")  # the seeded cameras are all "other"
    assert page.locator(".case-row").count() == 0 and page.inner_text("#count-pending_review") == "0"
    shot(page, "09-queue-after-bulk-dismiss")


def test_language_switch_and_phone_layout(site, new_page):
    page = new_page({"width": 390, "height": 844})
    sign_in(page, "supervisor-a")
    assert page.inner_text("h1") == "案件队列"
    page.click("#lang-switch")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.inner_text("h1") == "Case queue" and page.url.endswith("/queue")
    shot(page, "10-queue-english-phone")
    page.goto(f"/cases/{site.real_case}")
    assert page.locator("#assign-form").count() == 1  # supervisors assign
    shot(page, "11-case-english-phone")
    page.click("#lang-switch")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    assert "案件" in page.inner_text("h1")
    page.goto("/cameras")
    lobby = page.locator("#camera-lobby")
    assert "在线" in lobby.inner_text() and lobby.locator("img").count() == 1
    assert "离线" not in lobby.inner_text()
    shot(page, "12-cameras-phone")


def test_statistics_page(site, new_page):
    page = new_page()
    sign_in(page, "supervisor-a", next_path="/statistics")
    page.wait_for_function("() => document.getElementById('stats-status').hidden || document.getElementById('stats-status')"
                           ".classList.contains('error')")
    shot(page, "13-statistics")
    assert page.locator("#stats-status.error").count() == 0, page.inner_text("#stats-status")
    if page.locator("#stats-unavailable").is_visible():
        assert page.inner_text("#stats-unavailable") == "统计功能暂不可用"
        pytest.skip("GET /api/statistics answers 404 (the statistics API is not merged yet); the page says so, charts not checked")
    page.fill('#stats-form input[name="quarter"]', "2026Q4")
    page.click("#stats-form button[type=submit]")
    page.locator('#events-chart rect[data-row="unit-a"]').first.wait_for()
    assert page.locator("#targets-chart svg rect.bar-actual").count() == 2
    targets = {line.get_attribute("data-metric"): line.get_attribute("data-value") for line in page.locator(".target-line").all()}
    assert targets == {"persons_dissuaded": "10", "venues_ordered_to_rectify": "4"}  # unit A's own targets, drawn against actuals
    shot(page, "14-statistics-quarter-targets")
    page.fill('#stats-form input[name="start"]', "2026-11-01")
    page.fill('#stats-form input[name="end"]', "2026-11-30")
    page.select_option('#stats-form select[name="group_by"]', "camera")
    page.click("#stats-form button[type=submit]")
    page.locator('#events-chart rect[data-row="lobby"][data-metric="events"]').wait_for()
    # the seeded world: lobby has its own event and the real one (confirmed by the keyboard test if it ran first)
    assert int(page.get_attribute('#events-chart rect[data-row="lobby"][data-metric="events"]', "data-value") or 0) == 2
    shot(page, "15-statistics-by-camera")
    assert "/api/statistics.csv?" in (page.get_attribute("#download-csv", "href") or "")
    assert "/api/statistics.xlsx?" in (page.get_attribute("#download-xlsx", "href") or "")


def test_viewer_cannot_review_and_other_units_get_404(site, new_page):
    viewer = new_page()
    sign_in(viewer, "viewer-a")
    case_id = site.world.new_case("hall")
    viewer.goto(f"/cases/{case_id}")
    assert viewer.locator("#confirm-button").count() == 0 and viewer.locator("#dismiss-button").count() == 0
    assert viewer.locator("#note-form").count() == 0 and viewer.locator(".row-select").count() == 0
    viewer.keyboard.press("c")
    viewer.keyboard.press("d")
    assert viewer.locator("#dismiss-panel").is_hidden()
    assert site.case_state(case_id) == "pending_review"
    shot(viewer, "16-case-as-viewer")

    other_unit = new_page()
    sign_in(other_unit, "inspector-b")
    response = other_unit.goto(f"/cases/{site.real_case}")
    assert response is not None and response.status == 404
    shot(other_unit, "17-case-other-unit-404")


def test_complaint_form_opens_a_case(site, new_page):
    page = new_page()
    sign_in(page, "inspector-a", next_path="/complaints/new")
    page.select_option("#complaint-source", "phone")
    page.select_option("#complaint-camera", "hall")
    page.fill("#complaint-description", "有人在二楼楼梯间吸烟")
    page.fill("#complaint-contact", "138 0000 0000")
    page.click("#complaint-form button[type=submit]")
    page.wait_for_url("**/cases/*")
    assert "电话举报" in page.inner_text(".facts") and "有人在二楼楼梯间吸烟" in page.inner_text(".facts")
    shot(page, "18-complaint-case")


def test_attach_a_photo_to_an_action(site, new_page):
    case_id = site.world.new_case("hall", "confirmed")
    png = cv2.imencode(".png", np.full((20, 30, 3), 80, np.uint8))[1].tobytes()
    page = new_page()
    sign_in(page, "inspector-a", next_path=f"/cases/{case_id}")
    page.select_option("#action-kind", "dissuaded_on_site")
    page.set_input_files("#action-file", files=[{"name": "现场.png", "mimeType": "image/png", "buffer": png}])
    page.click("#record-action")
    link = page.locator("#action-list .attachment-link")
    link.wait_for()
    assert link.inner_text() == "现场.png"
    with site.world.database.session() as session:
        (attachment,) = session.query(Attachment).filter_by(case_id=case_id).all()
        assert attachment.action_id is not None and attachment.content_type == "image/png"
    assert link.get_attribute("href") == f"/api/attachments/{attachment.id}"
    assert page.request.get(link.get_attribute("href") or "").body() == png
    shot(page, "19-case-action-attachment")


def test_alerts_page_shows_a_failure_and_retries_it(site, new_page):
    case_id = site.world.new_case("lobby")
    with site.world.database.session() as session:
        delivery = AlertDelivery(case_id=case_id, target_name="wecom-unit-a", target_type="wecom", status="failed", attempts=5,
                                 last_error="HTTP 502 Bad Gateway", last_attempt_at=T0)
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id
    page = new_page()
    sign_in(page, "supervisor-a", next_path=f"/cases/{case_id}")
    assert "wecom-unit-a: 发送失败" in page.inner_text("#alert-status")
    page.click("#nav-alerts")
    page.wait_for_url("**/alerts")
    row = page.locator(f"#alert-{delivery_id}")
    assert row.get_attribute("data-status") == "failed" and "HTTP 502 Bad Gateway" in row.inner_text()
    assert row.locator(f'a[href="/cases/{case_id}"]').count() == 1
    page.goto("/alerts?status=failed")
    shot(page, "20-alerts-failed")
    with page.expect_navigation():  # the page reloads once the retry is queued
        page.locator(f"#alert-{delivery_id} .retry-button").click()
    assert page.inner_text("#flash") == "已重新排队发送" and page.locator(f"#alert-{delivery_id}").count() == 0  # no longer failed
    with site.world.database.session() as session:
        assert session.get(AlertDelivery, delivery_id).status == "pending"  # type: ignore[union-attr]
    page.goto("/alerts?status=pending")
    assert page.locator(f"#alert-{delivery_id}").get_attribute("data-status") == "pending"
    assert page.locator(f"#alert-{delivery_id} .retry-button").count() == 0

    inspector = new_page()
    sign_in(inspector, "inspector-a")
    assert inspector.locator("#nav-alerts").count() == 0
    assert (inspector.goto("/alerts") or pytest.fail("no answer")).status == 404


def test_pages_need_a_session(site, new_page):
    page = new_page()
    for path in ("/queue", f"/cases/{site.real_case}", "/cameras", "/statistics", "/complaints/new", "/alerts"):
        page.goto(path)
        assert "/login?next=" in page.url, path


def test_redirects_stay_on_the_site_and_pages_send_a_csp(site):
    with httpx.Client(base_url=site.url, follow_redirects=False) as client:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            assert client.get("/lang/en", params={"next": target}).headers["location"] == "/queue", target
        assert client.get("/lang/en", params={"next": "/cameras?x=1"}).headers["location"] == "/cameras?x=1"
        assert client.get("/lang/xx").status_code == 404
        login = client.get("/login")  # in English now: the client kept the language cookie
        assert "script-src 'self'" in login.headers["content-security-policy"] and 'lang="en"' in login.text
        assert client.get("/static/app.js").status_code == 200
