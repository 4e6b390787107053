"""Real-time alerts when a case opens: a plain JSON webhook, WeCom (企业微信) and DingTalk (钉钉) group robots.

``AlertDispatcher.case_opened`` only writes one ``alert_deliveries`` row per matching target and
wakes the worker thread; the HTTP calls happen in that thread, each bounded by a timeout, so a
slow or hanging receiver never holds up detection. The table is the queue: a failed attempt is
retried after 2, 4, 8, 16 s (``first_retry_s`` doubling) until ``max_attempts``, then marked
failed; rows still pending when the process stops are picked up again on the next start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.config import AlertSettings, AlertTarget
from service.db.models import AlertDelivery, Case, Event, utcnow
from service.db.session import Database
from service.scope import case_site

log = logging.getLogger("smokewatch.alerts")

PENDING, SENT, FAILED = "pending", "sent", "failed"
DELIVERY_STATUSES = (PENDING, SENT, FAILED)
CASE_PAGE = "/cases/{case_id}"
EVIDENCE_FILE = "/api/evidence/{file_id}"
TITLE = "禁烟区吸烟告警"
LOCATION_NAMES = {"corridor": "走廊", "hall": "大厅", "stairwell": "楼梯间", "elevator_lobby": "电梯厅", "meeting_room": "会议室",
                  "office": "办公室", "canteen": "食堂", "other": "其他"}


class DeliveryError(Exception):
    """One attempt failed; the message is what the delivery list shows."""


@dataclass(frozen=True)
class CaseAlert:
    """What every alert says about a newly opened case."""

    case_id: int
    camera_id: str
    camera_name: str
    site: str
    building: str
    floor: str
    location_type: str
    started_at: datetime
    confirmed_at: datetime
    peak_score: float
    snapshot_url: str | None
    case_url: str


def load_alert(session: Session, case_id: int, public_url: str) -> CaseAlert | None:
    """The alert for a camera case, or None when the case is gone or has no event (complaints are not alerted)."""
    case = session.scalar(select(Case).where(Case.id == case_id)
                          .options(selectinload(Case.event).selectinload(Event.files), selectinload(Case.camera)))
    if case is None or case.event is None or case.camera is None:
        return None
    base = public_url.rstrip("/")
    files = {f.kind: f for f in case.event.files}
    snapshot = files.get("snapshot_annotated") or files.get("snapshot")
    camera = case.camera
    return CaseAlert(case_id=case.id, camera_id=camera.id, camera_name=camera.name or camera.id, site=camera.site,
                     building=camera.building, floor=camera.floor, location_type=camera.location_type,
                     started_at=case.event.started_at, confirmed_at=case.event.confirmed_at, peak_score=case.event.peak_score,
                     snapshot_url=base + EVIDENCE_FILE.format(file_id=snapshot.id) if snapshot else None,
                     case_url=base + CASE_PAGE.format(case_id=case.id))


# --- message bodies -------------------------------------------------------------------------------------------

def webhook_body(alert: CaseAlert) -> dict[str, object]:
    return {"event": "case_opened", "case_id": alert.case_id,
            "camera": {"id": alert.camera_id, "name": alert.camera_name, "site": alert.site, "building": alert.building,
                       "floor": alert.floor, "location_type": alert.location_type},
            "started_at": alert.started_at.isoformat(), "confirmed_at": alert.confirmed_at.isoformat(), "peak_score": alert.peak_score,
            "snapshot_url": alert.snapshot_url, "case_url": alert.case_url}


def _lines(alert: CaseAlert, zone: ZoneInfo) -> list[str]:
    place = " ".join(part for part in (alert.site, alert.building, alert.floor, LOCATION_NAMES.get(alert.location_type, "")) if part)
    snapshot = f"[查看抓拍]({alert.snapshot_url})" if alert.snapshot_url else "抓拍：暂无"
    return [f"> 案件编号：{alert.case_id}", f"> 摄像头：{alert.camera_name}（{alert.camera_id}）", f"> 位置：{place}",
            f"> 发现时间：{alert.confirmed_at.astimezone(zone):%Y-%m-%d %H:%M:%S}", f"> 置信度：{alert.peak_score:.2f}",
            f"{snapshot}　[处理案件]({alert.case_url})"]


def wecom_body(alert: CaseAlert, zone: ZoneInfo) -> dict[str, object]:
    content = "\n".join([f'## <font color="warning">{TITLE}</font>', *_lines(alert, zone)])
    return {"msgtype": "markdown", "markdown": {"content": content}}


def dingtalk_body(alert: CaseAlert, zone: ZoneInfo) -> dict[str, object]:
    # DingTalk markdown only breaks lines at blank lines.
    text = "\n\n".join([f"#### {TITLE}", *_lines(alert, zone)])
    return {"msgtype": "markdown", "markdown": {"title": f"{TITLE}：{alert.camera_name}", "text": text}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), not yet url-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    query = urllib.parse.urlencode({"timestamp": timestamp_ms, "sign": dingtalk_sign(secret, timestamp_ms)})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def request_for(target: AlertTarget, alert: CaseAlert, zone: ZoneInfo, timestamp_ms: int) -> tuple[str, dict[str, object]]:
    """The URL and JSON body one attempt posts to ``target``."""
    if target.type == "wecom":
        return target.url, wecom_body(alert, zone)
    if target.type == "dingtalk":
        url = dingtalk_signed_url(target.url, target.secret, timestamp_ms) if target.secret else target.url
        return url, dingtalk_body(alert, zone)
    return target.url, webhook_body(alert)


def send(client: httpx.Client, target: AlertTarget, alert: CaseAlert, zone: ZoneInfo) -> None:
    """One attempt; DeliveryError says why it failed."""
    url, body = request_for(target, alert, zone, int(time.time() * 1000))
    try:
        response = client.post(url, json=body)
    except httpx.TimeoutException as error:
        raise DeliveryError(f"timed out ({type(error).__name__})") from None
    except httpx.HTTPError as error:
        raise DeliveryError(f"{type(error).__name__}: {error}") from None
    if response.status_code >= 400:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
    if target.type in ("wecom", "dingtalk"):
        # Both robots answer 200 with a non-zero errcode when they refuse a message (bad key, signature, rate limit).
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError(f"HTTP {response.status_code} but not JSON: {response.text[:200]}") from None
        if isinstance(answer, dict) and answer.get("errcode", 0) != 0:
            raise DeliveryError(f"errcode {answer.get('errcode')}: {answer.get('errmsg', '')}")


# --- the queue ------------------------------------------------------------------------------------------------

def targets_for_site(settings: AlertSettings, site: str | None) -> list[AlertTarget]:
    return [t for t in settings.targets if t.enabled and (not t.sites or site in t.sites)]


def enqueue(session: Session, settings: AlertSettings, case: Case) -> list[AlertDelivery]:
    """One pending delivery per enabled target whose sites cover the case."""
    now = utcnow()
    deliveries = [AlertDelivery(case_id=case.id, target_name=t.name, target_type=t.type, status=PENDING, attempts=0, last_error="",
                                next_attempt_at=now, created_at=now) for t in targets_for_site(settings, case_site(case))]
    session.add_all(deliveries)
    return deliveries


def retry_delay(settings: AlertSettings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: first_retry_s, then doubling."""
    return timedelta(seconds=settings.first_retry_s * 2 ** (attempts - 1))


def record_attempt(delivery: AlertDelivery, settings: AlertSettings, error: str | None, at: datetime) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = at
    if error is None:
        delivery.status, delivery.next_attempt_at = SENT, None
        return
    delivery.last_error = error[:2000]
    if delivery.attempts >= settings.max_attempts:
        delivery.status, delivery.next_attempt_at = FAILED, None
    else:
        delivery.next_attempt_at = at + retry_delay(settings, delivery.attempts)


def request_retry(delivery: AlertDelivery) -> None:
    """Send a delivery again from scratch (a full round of attempts), e.g. after the receiver was fixed."""
    delivery.status, delivery.attempts, delivery.next_attempt_at = PENDING, 0, utcnow()


class AlertDispatcher:
    """Owns the worker thread that sends due deliveries; ``case_opened`` is what the monitor calls."""

    def __init__(self, database: Database, settings: AlertSettings, poll_s: float = 5.0,
                 client_factory: Callable[[AlertSettings], httpx.Client] | None = None) -> None:
        self.database, self.settings, self.poll_s = database, settings, poll_s
        self.zone = ZoneInfo(settings.timezone)
        self._client_factory = client_factory or (lambda s: httpx.Client(timeout=s.timeout_s))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker; it first resumes deliveries left pending by an earlier run."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def case_opened(self, case_id: int) -> None:
        """Queue the case's alerts and return at once; never raises into the caller."""
        if not any(t.enabled for t in self.settings.targets):
            return
        try:
            with self.database.session() as session:
                case = session.scalar(select(Case).where(Case.id == case_id).options(selectinload(Case.camera)))
                if case is None:
                    log.warning("alerts: case %d not found", case_id)
                    return
                enqueue(session, self.settings, case)
        except Exception:  # an alert problem must not stop detection
            log.exception("alerts: cannot queue the alerts of case %d", case_id)
            return
        self._wake.set()

    def send_due(self, client: httpx.Client) -> int:
        """One pass over the deliveries due now; returns how many attempts were made."""
        now = utcnow()
        with self.database.session() as session:
            due = list(session.scalars(select(AlertDelivery.id).where(AlertDelivery.status == PENDING, AlertDelivery.next_attempt_at <= now)
                                       .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id).limit(100)))
        for delivery_id in due:
            if self._stop.is_set():
                break
            self._attempt(client, delivery_id)
        return len(due)

    def _attempt(self, client: httpx.Client, delivery_id: int) -> None:
        with self.database.session() as session:
            delivery = session.get(AlertDelivery, delivery_id)
            if delivery is None or delivery.status != PENDING:
                return
            target = next((t for t in self.settings.targets if t.name == delivery.target_name), None)
            alert = load_alert(session, delivery.case_id, self.settings.public_url)
        # The HTTP call runs outside any transaction: a hanging receiver holds no database lock.
        error: str | None = None
        if target is None or not target.enabled:
            error = f"target {delivery.target_name!r} is no longer configured or is disabled"
        elif alert is None:
            error = f"case {delivery.case_id} has no camera event to report"
        else:
            try:
                send(client, target, alert, self.zone)
            except DeliveryError as failure:
                error = str(failure)
        with self.database.session() as session:
            delivery = session.get(AlertDelivery, delivery_id)
            if delivery is None or delivery.status != PENDING:
                return
            record_attempt(delivery, self.settings, error, utcnow())
            if error is not None:
                log.warning("alert to %s for case %d: attempt %d failed: %s", delivery.target_name, delivery.case_id,
                            delivery.attempts, error)

    def _next_due_in(self) -> float:
        with self.database.session() as session:
            soonest = session.scalar(select(AlertDelivery.next_attempt_at).where(AlertDelivery.status == PENDING)
                                     .order_by(AlertDelivery.next_attempt_at).limit(1))
        if soonest is None:
            return self.poll_s
        return min(self.poll_s, max(0.0, (soonest - utcnow()).total_seconds()))

    def _loop(self) -> None:
        with self._client_factory(self.settings) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self.send_due(client)
                    wait = self._next_due_in()
                except Exception:  # a database hiccup must not end the worker
                    log.exception("alerts: worker pass failed")
                    wait = self.poll_s
                self._wake.wait(wait)
