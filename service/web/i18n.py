"""The web UI's two message catalogs (Simplified Chinese by default, English) and the language cookie."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

LANGUAGE_COOKIE = "smokewatch_lang"
DEFAULT_LANGUAGE = "zh-CN"

ZH: dict[str, str] = {
    "app_name": "控烟智能监督", "language_name": "中文", "switch_to": "English",
    "nav_queue": "待审核", "nav_cameras": "摄像头", "nav_statistics": "统计", "nav_complaint": "登记举报", "nav_logout": "退出",
    "login_title": "登录", "username": "用户名", "password": "密码", "login_button": "登录",
    "login_failed": "用户名或密码错误", "login_blocked": "登录失败次数过多，请 {minutes} 分钟后再试",
    "login_refused": "登录被拒绝", "network_error": "网络错误，请重试", "signed_in_as": "当前用户",
    "role_viewer": "查看员", "role_inspector": "控烟监督员", "role_supervisor": "卫生监督员（主管）", "role_admin": "管理员",
    "state_pending_review": "待审核", "state_confirmed": "已确认", "state_dismissed": "已驳回", "state_closed": "已结案",
    "state_reopened": "已重开", "state_all": "全部状态",
    "queue_title": "案件队列", "filter": "筛选", "site": "单位", "camera": "摄像头", "location_type": "位置类型",
    "from": "开始日期", "to": "结束日期", "state": "状态", "any": "全部", "no_cases": "没有符合条件的案件",
    "snapshot": "抓拍", "case": "案件", "opened_at": "发现时间", "assignee": "承办人", "source": "来源", "select": "选择",
    "select_all": "全选", "bulk_dismiss": "批量驳回", "selected_count": "已选 {count} 件", "reason": "理由", "reason_text": "说明",
    "dismiss_selected": "驳回所选", "nothing_selected": "请先选择案件", "total": "共 {count} 件",
    "loc_corridor": "走廊", "loc_hall": "大厅", "loc_stairwell": "楼梯间", "loc_elevator_lobby": "电梯厅", "loc_meeting_room": "会议室",
    "loc_office": "办公室", "loc_canteen": "食堂", "loc_other": "其他",
    "reason_not_smoking": "未吸烟", "reason_designated_smoking_area": "指定吸烟区", "reason_test": "测试",
    "reason_duplicate": "重复", "reason_other": "其他（需说明）",
    "src_camera": "摄像头", "src_phone": "电话举报", "src_email": "邮件举报", "src_in_person": "现场举报",
    "case_title": "案件 #{id}", "clip": "录像", "no_clip": "此案件没有录像", "clean_snapshot": "原始抓拍", "annotated_snapshot": "标注抓拍",
    "timeline": "事件时间线", "event_started": "开始", "event_confirmed": "确认吸烟", "event_ended": "结束", "peak_score": "最高置信度",
    "location": "位置", "building": "楼栋", "floor": "楼层", "description": "描述", "reporter_contact": "举报人联系方式",
    "occurred_at": "发生时间", "notes": "备注", "add_note": "添加备注", "no_notes": "暂无备注",
    "actions": "执法处置", "record_action": "记录处置", "no_actions": "暂无处置记录", "action_kind": "处置方式",
    "act_dissuaded_on_site": "现场劝阻", "act_ordered_to_rectify": "责令整改", "act_penalty_referred": "移交处罚",
    "person_count": "人数", "venue_name": "场所名称", "action_notes": "处置说明", "officer": "执法人员",
    "history": "状态记录", "no_history": "暂无状态变化", "by": "操作人", "at": "时间",
    "confirm": "确认违规", "dismiss": "驳回", "close": "结案", "reopen": "重开", "reopen_reason": "重开理由",
    "assign": "指派", "unassigned": "未指派", "export": "导出证据包", "back_to_queue": "返回队列",
    "previous_case": "上一件", "next_case": "下一件", "save": "保存", "cancel": "取消",
    "keys_title": "快捷键", "key_play": "播放/暂停", "key_seek": "后退/前进 5 秒", "key_next_prev": "下一件/上一件",
    "key_confirm": "确认违规", "key_dismiss": "驳回，再按 1–5 选理由", "key_cancel": "取消",
    "choose_reason": "按 1–5 选择驳回理由（Esc 取消）", "other_text_prompt": "请说明理由后按回车",
    "saved": "已保存", "error": "出错了", "conflict": "操作与当前状态不符",
    "cameras_title": "摄像头", "status": "状态", "status_online": "在线", "status_offline": "离线", "status_ended": "已停止",
    "status_unknown": "未知", "since": "自 {time}", "last_event": "最近事件", "latest_snapshot": "最近抓拍", "never": "无",
    "no_cameras": "没有可查看的摄像头",
    "statistics_title": "统计", "quarter": "季度", "group_by": "分组", "group_site": "按单位", "group_camera": "按摄像头",
    "show": "查看", "download_csv": "下载 CSV", "download_xlsx": "下载 Excel", "statistics_unavailable": "统计功能暂不可用",
    "events": "事件", "confirmed_count": "确认", "dismissed_count": "驳回", "false_alarm_rate": "误报率",
    "persons_dissuaded": "劝阻人数", "venues_ordered_to_rectify": "责令整改场所", "penalties_referred": "移交处罚",
    "median_review_minutes": "审核用时中位数（分钟）", "target": "目标", "actual": "实际", "targets_title": "季度目标完成情况",
    "events_chart_title": "事件与审核结果", "totals": "合计", "no_rows": "该时段没有数据", "loading": "加载中…",
    "dates_override_quarter": "填写日期时按日期统计（含结束日），否则按季度统计",
    "complaint_title": "登记举报", "complaint_source": "举报方式", "camera_optional": "摄像头（可选）", "create_complaint": "登记",
    "not_found_title": "未找到", "not_found": "没有这个页面，或您无权查看。", "forbidden": "您的角色不能执行此操作",
    "evidence_thumb_alt": "标注抓拍缩略图",
    "attach_file": "附件（可选）", "attach_hint": "JPEG、PNG、PDF 或 MP4，不超过 {mb} MB",
    "attachment_failed": "记录已保存，但附件未上传：",
    "nav_alerts": "告警推送", "alerts_title": "告警推送记录", "alerts_intro": "案件告警的推送结果；失败的可以重新发送（不影响检测）。",
    "alert_pending": "待发送", "alert_sent": "已发送", "alert_failed": "发送失败", "alert_target": "推送目标",
    "alert_attempts": "尝试次数", "alert_last_error": "最近错误", "alert_created": "创建时间", "alert_last_attempt": "最近尝试",
    "alert_next_attempt": "下次尝试", "alert_retry": "重新发送", "retry_queued": "已重新排队发送", "no_deliveries": "没有告警推送记录",
    "alerts_limited": "仅显示最新 {count} 条", "alert_line": "告警", "no_alert": "未推送告警",
}

EN: dict[str, str] = {
    "app_name": "Smokewatch", "language_name": "English", "switch_to": "中文",
    "nav_queue": "Review queue", "nav_cameras": "Cameras", "nav_statistics": "Statistics", "nav_complaint": "New complaint",
    "nav_logout": "Sign out",
    "login_title": "Sign in", "username": "Username", "password": "Password", "login_button": "Sign in",
    "login_failed": "Wrong username or password", "login_blocked": "Too many failed sign-ins; try again in {minutes} minute(s)",
    "login_refused": "Sign-in refused", "network_error": "Network error; please try again", "signed_in_as": "Signed in as",
    "role_viewer": "Viewer", "role_inspector": "Inspector", "role_supervisor": "Supervisor", "role_admin": "Administrator",
    "state_pending_review": "Pending review", "state_confirmed": "Confirmed", "state_dismissed": "Dismissed", "state_closed": "Closed",
    "state_reopened": "Reopened", "state_all": "All states",
    "queue_title": "Case queue", "filter": "Filter", "site": "Site", "camera": "Camera", "location_type": "Location type",
    "from": "From", "to": "To", "state": "State", "any": "Any", "no_cases": "No cases match",
    "snapshot": "Snapshot", "case": "Case", "opened_at": "Detected", "assignee": "Assignee", "source": "Source", "select": "Select",
    "select_all": "Select all", "bulk_dismiss": "Bulk dismiss", "selected_count": "{count} selected", "reason": "Reason",
    "reason_text": "Explanation", "dismiss_selected": "Dismiss selected", "nothing_selected": "Select cases first",
    "total": "{count} cases",
    "loc_corridor": "Corridor", "loc_hall": "Hall", "loc_stairwell": "Stairwell", "loc_elevator_lobby": "Elevator lobby",
    "loc_meeting_room": "Meeting room", "loc_office": "Office", "loc_canteen": "Canteen", "loc_other": "Other",
    "reason_not_smoking": "Not smoking", "reason_designated_smoking_area": "Designated smoking area", "reason_test": "Test",
    "reason_duplicate": "Duplicate", "reason_other": "Other (explain)",
    "src_camera": "Camera", "src_phone": "Phone complaint", "src_email": "Email complaint", "src_in_person": "In-person complaint",
    "case_title": "Case #{id}", "clip": "Clip", "no_clip": "This case has no clip", "clean_snapshot": "Snapshot",
    "annotated_snapshot": "Annotated snapshot",
    "timeline": "Event timeline", "event_started": "Started", "event_confirmed": "Smoking confirmed", "event_ended": "Ended",
    "peak_score": "Peak score", "location": "Location", "building": "Building", "floor": "Floor", "description": "Description",
    "reporter_contact": "Reporter contact", "occurred_at": "Occurred at", "notes": "Notes", "add_note": "Add note",
    "no_notes": "No notes yet",
    "actions": "Enforcement actions", "record_action": "Record action", "no_actions": "No actions recorded", "action_kind": "Action",
    "act_dissuaded_on_site": "Dissuaded on site", "act_ordered_to_rectify": "Ordered to rectify",
    "act_penalty_referred": "Penalty referred",
    "person_count": "Persons", "venue_name": "Venue", "action_notes": "Notes", "officer": "Officer",
    "history": "State history", "no_history": "No state changes yet", "by": "By", "at": "At",
    "confirm": "Confirm", "dismiss": "Dismiss", "close": "Close", "reopen": "Reopen", "reopen_reason": "Reason for reopening",
    "assign": "Assign", "unassigned": "Unassigned", "export": "Export evidence", "back_to_queue": "Back to queue",
    "previous_case": "Previous", "next_case": "Next", "save": "Save", "cancel": "Cancel",
    "keys_title": "Keys", "key_play": "Play/pause", "key_seek": "Back/forward 5 s", "key_next_prev": "Next/previous case",
    "key_confirm": "Confirm", "key_dismiss": "Dismiss, then 1–5 for the reason", "key_cancel": "Cancel",
    "choose_reason": "Press 1–5 for the dismiss reason (Esc cancels)", "other_text_prompt": "Say why, then press Enter",
    "saved": "Saved", "error": "Something went wrong", "conflict": "Not allowed in the case's current state",
    "cameras_title": "Cameras", "status": "Status", "status_online": "Online", "status_offline": "Offline", "status_ended": "Stopped",
    "status_unknown": "Unknown", "since": "since {time}", "last_event": "Last event", "latest_snapshot": "Latest snapshot", "never": "none",
    "no_cameras": "No cameras to show",
    "statistics_title": "Statistics", "quarter": "Quarter", "group_by": "Group by", "group_site": "Site", "group_camera": "Camera",
    "show": "Show", "download_csv": "Download CSV", "download_xlsx": "Download Excel", "statistics_unavailable": "Statistics not available",
    "events": "Events", "confirmed_count": "Confirmed", "dismissed_count": "Dismissed", "false_alarm_rate": "False alarm rate",
    "persons_dissuaded": "Persons dissuaded", "venues_ordered_to_rectify": "Venues ordered to rectify",
    "penalties_referred": "Penalties referred", "median_review_minutes": "Median review time (min)", "target": "Target",
    "actual": "Actual", "targets_title": "Quarterly targets", "events_chart_title": "Events and review outcome", "totals": "Totals",
    "no_rows": "No data for this period", "loading": "Loading…",
    "dates_override_quarter": "With dates filled in, the figures cover those days (end day included); otherwise the quarter",
    "complaint_title": "New complaint", "complaint_source": "Reported by", "camera_optional": "Camera (optional)",
    "create_complaint": "Create", "not_found_title": "Not found", "not_found": "No such page, or you may not see it.",
    "forbidden": "Your role cannot do this", "evidence_thumb_alt": "annotated snapshot thumbnail",
    "attach_file": "Attachment (optional)", "attach_hint": "JPEG, PNG, PDF or MP4, at most {mb} MB",
    "attachment_failed": "Saved, but the attachment was not uploaded:",
    "nav_alerts": "Alerts", "alerts_title": "Alert deliveries",
    "alerts_intro": "Outcome of each case alert; failed ones can be sent again (detection never waits for them).",
    "alert_pending": "Pending", "alert_sent": "Sent", "alert_failed": "Failed", "alert_target": "Target",
    "alert_attempts": "Attempts", "alert_last_error": "Last error", "alert_created": "Created", "alert_last_attempt": "Last attempt",
    "alert_next_attempt": "Next attempt", "alert_retry": "Send again", "retry_queued": "Queued to be sent again",
    "no_deliveries": "No alert deliveries", "alerts_limited": "Only the newest {count} are shown", "alert_line": "Alert",
    "no_alert": "No alert sent",
}

CATALOGS: dict[str, dict[str, str]] = {"zh-CN": ZH, "en": EN}
HTML_LANG = {"zh-CN": "zh-CN", "en": "en"}
# Strings the scripts show (messages after a fetch, prompts); sent to the page as JSON.
SCRIPT_KEYS = ("login_failed", "login_blocked", "login_refused", "network_error", "choose_reason", "other_text_prompt", "saved", "error",
               "conflict", "nothing_selected", "selected_count", "statistics_unavailable", "events", "confirmed_count",
               "dismissed_count", "persons_dissuaded", "venues_ordered_to_rectify", "target", "actual", "no_rows", "totals",
               "false_alarm_rate", "penalties_referred", "median_review_minutes", "forbidden", "retry_queued", "attachment_failed")


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in CATALOGS else DEFAULT_LANGUAGE


def translator(language: str) -> Callable[..., str]:
    """``t(key, **values)``: the message in ``language``, English as fallback, the key itself as last resort."""
    catalog = CATALOGS.get(language, CATALOGS[DEFAULT_LANGUAGE])

    def t(key: str, **values: object) -> str:
        message = catalog.get(key) or EN.get(key) or key
        return message.format(**values) if values else message

    return t


def script_messages(language: str) -> dict[str, str]:
    catalog = CATALOGS.get(language, CATALOGS[DEFAULT_LANGUAGE])
    return {key: catalog[key] for key in SCRIPT_KEYS}
