"""The statistics report as a spreadsheet: CSV (UTF-8 with BOM, so Excel reads the Chinese labels) and XLSX.

Both hold one table: a header of field names, one line per row, then the totals line (key ``total``).
The XLSX has a second sheet with the period, the targets and the definitions.
"""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from service.statistics import FIELDS, Report

COLUMNS = ("key", "label", *FIELDS)
TOTAL_KEY, TOTAL_LABEL = "total", "合计"
HEADINGS_ZH = {"key": "编号", "label": "名称", "events": "事件数", "confirmed": "确认", "dismissed": "排除", "false_alarm_rate": "误报率",
               "persons_dissuaded": "劝阻人数", "venues_ordered_to_rectify": "责令整改场所数", "penalties_referred": "移送处罚",
               "median_review_minutes": "审核用时中位数（分钟）"}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: object) -> object:
    """Camera and site names could start like a formula; spreadsheets must show them, not evaluate them."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def table(report: Report) -> list[list[object]]:
    """Header, rows, totals; null figures stay None."""
    lines: list[list[object]] = [list(COLUMNS)]
    lines += [[_inert(row[column]) for column in COLUMNS] for row in report.rows]
    lines.append([TOTAL_KEY, TOTAL_LABEL, *(report.totals[name] for name in FIELDS)])
    return lines


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for line in table(report):
        writer.writerow(["" if value is None else value for value in line])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: Report) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "统计"
    for line in table(report):
        sheet.append(line)
    about = book.create_sheet("说明")
    about.append(["开始", report.period.start.isoformat()])
    about.append(["结束（不含）", report.period.end.isoformat()])
    about.append(["季度", report.period.quarter or ""])
    about.append(["分组", report.group_by])
    for name, value in (report.targets or {}).items():
        about.append([f"目标：{HEADINGS_ZH.get(name, name)}", value])
    about.append([])
    for column in COLUMNS:
        about.append([column, HEADINGS_ZH[column]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
