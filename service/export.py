"""One case as a zip for handing over: evidence files, case history, audit entries and a printable summary.

Every evidence file is hashed while it is copied into the zip and compared with the SHA-256 the
database recorded when it was written; a file that no longer matches (or is missing) stops the
export, so an export never carries evidence that cannot be vouched for.

Layout::

    summary.html                 printable case summary (zh-CN, self-contained)
    case.json                    case, event(s), transitions, actions, notes, assignment
    audit.json                   the audit entries about the case and its evidence files
    evidence/<event id>/<file>   clip(s), snapshots, the event's manifest
    attachments/<id>-<name>      files attached to notes and enforcement actions (also hash-checked)
    export-manifest.json         every other file of the zip with its SHA-256 and size
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO
from zoneinfo import ZoneInfo

from service.db.models import Attachment, Case, Event, EvidenceFile
from service.evidence import EvidenceStore

CHUNK = 1 << 20
ALREADY_COMPRESSED = (".mp4", ".mkv", ".jpg", ".jpeg", ".png")
STATE_NAMES = {"pending_review": "待审核", "confirmed": "已确认", "dismissed": "已排除", "closed": "已办结", "reopened": "已重新打开"}
SOURCE_NAMES = {"camera": "摄像头", "phone": "电话举报", "email": "邮件举报", "in_person": "当面举报"}
ACTION_NAMES = {"dissuaded_on_site": "现场劝阻", "ordered_to_rectify": "责令整改", "penalty_referred": "移送处罚"}
DISMISS_NAMES = {"not_smoking": "非吸烟", "designated_smoking_area": "指定吸烟区", "test": "测试", "duplicate": "重复", "other": "其他"}
LOCATION_NAMES = {"corridor": "走廊", "hall": "大厅", "stairwell": "楼梯间", "elevator_lobby": "电梯厅", "meeting_room": "会议室",
                  "office": "办公室", "canteen": "食堂", "other": "其他"}


class EvidenceProblem(Exception):
    """An evidence file or attachment cannot be exported; ``file`` is its row, ``missing`` tells absence from a hash mismatch."""

    def __init__(self, file: EvidenceFile | Attachment, missing: bool) -> None:
        self.file, self.missing = file, missing
        what = "is missing from the evidence folder" if missing else "does not match its recorded hash"
        noun = "attachment" if isinstance(file, Attachment) else "evidence file"
        super().__init__(f"{noun} {file.path} {what}; the case was not exported")


@dataclass(frozen=True)
class PackedFile:
    name: str
    sha256: str
    size_bytes: int


def case_events(case: Case) -> list[Event]:
    return [event for event in (case.event, case.linked_event) if event is not None]


def case_attachments(case: Case) -> list[Attachment]:
    return sorted([*(a for note in case.notes for a in note.attachments), *(a for action in case.actions for a in action.attachments)],
                  key=lambda attachment: attachment.id)


def attachment_name(attachment: Attachment) -> str:
    return f"attachments/{attachment.id}-{attachment.original_name}"


def _pack_evidence(archive: zipfile.ZipFile, store: EvidenceStore, row: EvidenceFile | Attachment,
                   name: str) -> tuple[PackedFile, bytes | None]:
    """Copy one evidence file (or attachment) into the zip, hashing on the way; the bytes come back for snapshots (to embed them)."""
    path = store.root / row.path
    if not path.is_file():
        raise EvidenceProblem(row, missing=True)
    digest, size, kept = hashlib.sha256(), 0, bytearray()
    keep = isinstance(row, EvidenceFile) and row.kind.startswith("snapshot")
    info = zipfile.ZipInfo(name, _zip_time(row.created_at if isinstance(row, EvidenceFile) else row.uploaded_at))
    info.compress_type = zipfile.ZIP_STORED if path.suffix.lower() in ALREADY_COMPRESSED else zipfile.ZIP_DEFLATED
    with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
            if keep:
                kept += chunk
    if digest.hexdigest() != row.sha256:
        raise EvidenceProblem(row, missing=False)
    return PackedFile(name, row.sha256, size), bytes(kept) if keep and isinstance(row, EvidenceFile) else None


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _write(archive: zipfile.ZipFile, name: str, data: bytes, packed: list[PackedFile]) -> None:
    archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    packed.append(PackedFile(name, hashlib.sha256(data).hexdigest(), len(data)))


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


def write_case_zip(out: IO[bytes], case: Case, history: dict[str, object], audit_entries: list[dict[str, object]], store: EvidenceStore,
                   zone: ZoneInfo, exported_by: str, exported_at: datetime) -> list[PackedFile]:
    """Write the zip to ``out``; raises EvidenceProblem (leaving ``out`` half-written) when a file fails its check."""
    packed: list[PackedFile] = []
    snapshots: dict[str, bytes] = {}
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        for event in case_events(case):
            for row in event.files:
                name = f"evidence/{event.id}/{PurePosixPath(row.path).name}"
                entry, content = _pack_evidence(archive, store, row, name)
                packed.append(entry)
                if content is not None:
                    snapshots.setdefault(row.kind, content)
        for attachment in case_attachments(case):
            packed.append(_pack_evidence(archive, store, attachment, attachment_name(attachment))[0])
        _write(archive, "case.json", _json(history), packed)
        _write(archive, "audit.json", _json(audit_entries), packed)
        picture = snapshots.get("snapshot_annotated") or snapshots.get("snapshot")
        _write(archive, "summary.html", summary_html(case, picture, packed, zone, exported_by, exported_at).encode(), packed)
        manifest = {"case_id": case.id, "exported_at": exported_at.isoformat(), "exported_by": exported_by,
                    "files": [{"name": p.name, "sha256": p.sha256, "bytes": p.size_bytes} for p in packed]}
        archive.writestr("export-manifest.json", _json(manifest), compress_type=zipfile.ZIP_DEFLATED)
    return packed


# --- the printable summary ------------------------------------------------------------------------------------

CSS = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; color: #111; margin: 24px; font-size: 14px; }
h1 { font-size: 20px; border-bottom: 2px solid #111; padding-bottom: 6px; }
h2 { font-size: 16px; margin-top: 20px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid #999; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eee; white-space: nowrap; }
.facts th { width: 8em; }
img { max-width: 100%; border: 1px solid #999; }
.hash { font-family: monospace; font-size: 11px; word-break: break-all; }
.foot { margin-top: 24px; font-size: 12px; color: #444; }
@page { size: A4; margin: 15mm; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; } tr, img { page-break-inside: avoid; } }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _table(headings: list[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p>无</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(case: Case, snapshot: bytes | None, packed: list[PackedFile], zone: ZoneInfo, exported_by: str,
                 exported_at: datetime) -> str:
    camera, event = case.camera, case.event
    place = " ".join(p for p in ((camera.site, camera.building, camera.floor, LOCATION_NAMES.get(camera.location_type, ""))
                                 if camera else (case.site or "",)) if p)
    facts: list[tuple[str, object]] = [
        ("案件编号", case.id), ("状态", STATE_NAMES.get(case.state, case.state)), ("来源", SOURCE_NAMES.get(case.source, case.source)),
        ("摄像头", f"{camera.name}（{camera.id}）" if camera else "无"), ("位置", place), ("立案时间", _local(case.opened_at, zone)),
    ]
    if event is not None:
        facts += [("开始时间", _local(event.started_at, zone)), ("确认时间", _local(event.confirmed_at, zone)),
                  ("置信度", f"{event.peak_score:.2f}"), ("模型版本", event.model_version)]
    if case.source != "camera":
        facts += [("发生时间", _local(case.occurred_at, zone)), ("举报内容", case.description), ("举报人联系方式", case.reporter_contact)]
    if case.dismiss_reason:
        facts.append(("排除原因", f"{DISMISS_NAMES.get(case.dismiss_reason, case.dismiss_reason)} {case.dismiss_text}".strip()))
    facts.append(("承办人", (case.assignee.display_name or case.assignee.username) if case.assignee else "未分配"))
    fact_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    picture = (f'<h2>抓拍（标注）</h2><img alt="抓拍" src="data:image/jpeg;base64,{base64.b64encode(snapshot).decode()}">'
               if snapshot else "<h2>抓拍</h2><p>无抓拍</p>")
    transitions = [[_local(t.at, zone), f"{STATE_NAMES.get(t.from_state, t.from_state)} → {STATE_NAMES.get(t.to_state, t.to_state)}",
                    t.user.display_name or t.user.username, DISMISS_NAMES.get(t.reason, t.reason), t.note] for t in case.transitions]
    actions = [[_local(a.at, zone), ACTION_NAMES.get(a.kind, a.kind), a.officer.display_name or a.officer.username,
                a.person_count if a.person_count is not None else "", a.venue_name or "", a.notes] for a in case.actions]
    notes = [[_local(n.at, zone), n.author.display_name or n.author.username, n.text] for n in case.notes]
    files = "".join(f"<tr><td>{_e(p.name)}</td><td>{p.size_bytes}</td><td class=\"hash\">{_e(p.sha256)}</td></tr>"
                    for p in packed if p.name.startswith(("evidence/", "attachments/")))
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>案件 {case.id} 摘要</title><style>{CSS}</style></head>
<body>
<h1>禁烟区吸烟案件摘要 — 案件 {case.id}</h1>
<table class="facts">{fact_rows}</table>
{picture}
<h2>处理记录</h2>
{_table(["时间", "状态变化", "操作人", "原因", "说明"], transitions)}
<h2>执法措施</h2>
{_table(["时间", "措施", "执法人员", "人数", "场所", "说明"], actions)}
<h2>备注</h2>
{_table(["时间", "作者", "内容"], notes)}
<h2>证据文件（SHA-256 已核对）</h2>
<table><thead><tr><th>文件</th><th>字节</th><th>SHA-256</th></tr></thead><tbody>{files}</tbody></table>
<p class="foot">导出时间：{_e(_local(exported_at, zone))}（{_e(zone.key)}）　导出人：{_e(exported_by)}</p>
</body>
</html>
"""


def export_name(case: Case, exported_at: datetime) -> str:
    return f"case-{case.id}-{exported_at:%Y%m%dT%H%M%SZ}.zip"


def remove_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
