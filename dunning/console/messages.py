# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The console's words in `en` and `zh-CN`: a message catalogue in code, as the report's
(`dunning/report/labels.py`), with no compile step. Action and field names are looked
up by the action table's names; the hints under fields are the `…Terms` models' field
descriptions (English, declared once in schemas/commands.py)."""

from __future__ import annotations

from dunning.console.sessions import Language

_TEXT: dict[str, tuple[str, str]] = {
    # key: (en, zh-CN)
    "console": ("Dunning console", "催收控制台"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "token": ("API token", "API 令牌"),
    "token_hint": (
        "from `dunning token create --role ROLE --name NAME`; it is not kept in the browser",
        "由 `dunning token create --role ROLE --name NAME` 生成；浏览器不保存令牌",
    ),
    "language": ("Language", "语言"),
    "change_language": ("Change", "切换"),
    "bad_token": ("That token is unknown or revoked.", "令牌无效或已被吊销。"),
    "no_console_role": (
        "Service tokens are for backends; the console is for operators, supervisors and auditors.",
        "服务令牌仅供后台系统使用；控制台面向催收员、主管和审计员。",
    ),
    "expired": ("Your session ended (idle too long): sign in again.", "会话已超时，请重新登录。"),
    "signed_out": ("You are signed out.", "您已退出。"),
    "bad_csrf": (
        "This form is out of date (its security token does not match): reload the page.",
        "表单已过期（安全令牌不匹配），请刷新页面。",
    ),
    "forbidden": ("Your role may not do this.", "您的角色无权执行此操作。"),
    "not_found": ("No such case.", "没有该案件。"),
    "signed_in_as": ("Signed in as {name} ({role})", "当前用户：{name}（{role}）"),
    "cases": ("Cases", "案件"),
    "dashboard": ("Dashboard", "看板"),
    "filter": ("Filter", "筛选"),
    "any": ("any", "全部"),
    "stage": ("Stage", "阶段"),
    "state": ("State", "状态"),
    "policy": ("Policy", "催收方案"),
    "arm": ("Arm", "组别"),
    "dpd_from": ("Days past due from", "逾期天数自"),
    "dpd_to": ("Days past due to", "逾期天数至"),
    "segment": ("Segment", "客群"),
    "days_past_due": ("Days past due", "逾期天数"),
    "case": ("Case", "案件"),
    "loan_id": ("Loan id", "贷款编号"),
    "find": ("Find", "查找"),
    "no_cases": ("No case matches.", "没有符合条件的案件。"),
    "page": ("Page {page}", "第 {page} 页"),
    "previous": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "status": ("Status", "概况"),
    "balance": ("Balance", "欠款"),
    "principal": ("principal", "本金"),
    "interest": ("interest", "利息"),
    "fees": ("fees", "费用"),
    "penalty": ("penalty", "罚息"),
    "total": ("total", "合计"),
    "paid": ("paid", "已还"),
    "overpaid": ("overpaid", "多还"),
    "holds": ("Holds", "暂停与限制"),
    "no_holds": ("none", "无"),
    "paused_since": (
        "paused since {since} by {operator}: {reason}",
        "{since} 起由 {operator} 暂停：{reason}",
    ),
    "until": ("until {until}", "至 {until}"),
    "dispute": ("dispute since {since}: {reason}", "{since} 起争议：{reason}"),
    "promise": ("promise of {amount} by {pay_by}", "承诺 {pay_by} 前还款 {amount}"),
    "plan": ("repayment plan, next due {next_due}", "还款计划，下期 {next_due}"),
    "settlement": ("settlement of {amount} by {pay_by}", "和解 {amount}，{pay_by} 前"),
    "hard_stop": ("hard stop: {kinds}", "永久停止：{kinds}"),
    "ceased": ("contact ceased: {channels}", "已停止联系：{channels}"),
    "audit_blocked": ("audit store refuses events: {reason}", "审计存储拒绝事件：{reason}"),
    "unreachable": ("unreachable", "无法联系"),
    "next_action": ("Next action", "下一步"),
    "none": ("none", "无"),
    "timeline": ("Timeline", "时间线"),
    "masked_note": (
        "Names, phones and addresses are masked.",
        "姓名、电话和地址已脱敏。",
    ),
    "when": ("When", "时间"),
    "recorded_fields": ("recorded fields (masked)", "记录字段（已脱敏）"),
    "event": ("Event", "事件"),
    "actor": ("Who", "操作人"),
    "summary": ("What", "内容"),
    "contacts": ("Contacts by channel", "各渠道联系情况"),
    "channel": ("Channel", "渠道"),
    "outcome": ("Outcome", "结果"),
    "count": ("Count", "次数"),
    "no_contacts": ("No contact yet.", "尚无联系记录。"),
    "approvals": ("Pending approvals", "待审批"),
    "no_approvals": ("Nothing waits for approval.", "没有待审批的请求。"),
    "request": ("Request", "请求"),
    "requested_by": ("asked by {who}, expires {at}", "由 {who} 申请，{at} 过期"),
    "actions": ("Actions", "操作"),
    "no_actions": ("Your role reads only: no action here.", "您的角色只读，无可用操作。"),
    "required": ("required", "必填"),
    "one_per_line": ("one per line", "每行一项"),
    "one_per_line_as": ("one per line, as {shape}", "每行一项，格式 {shape}"),
    "iso_datetime": (
        "ISO 8601 with offset, e.g. 2026-12-01T10:00+08:00",
        "ISO 8601 含时区，如 2026-12-01T10:00+08:00",
    ),
    "done": ("Done: {action}.", "已完成：{action}。"),
    "requested": (
        "Requested: {action}; it waits for a supervisor's approval.",
        "已申请：{action}，等待主管审批。",
    ),
    "refused": ("The case refused: {reason}", "案件拒绝了该操作：{reason}"),
    "refused_code": ("code {code}", "代码 {code}"),
    "invalid": ("Check the form: {fields}", "请检查表单：{fields}"),
    "unavailable": (
        "A dependency did not answer; nothing was recorded. Try again.",
        "依赖服务未响应，未作任何记录，请重试。",
    ),
    "closed_case": ("The case is closed.", "案件已结案。"),
    "cases_by_stage": ("Cases by stage and state", "各阶段案件（按状态）"),
    "contacts_today": ("Today's contacts by channel (UTC day)", "今日各渠道联系（UTC）"),
    "held_today": (
        "Today's deferrals and skips by rule (UTC day)",
        "今日延后与跳过（按规则，UTC）",
    ),
    "deferred": ("deferred", "延后"),
    "skipped": ("skipped", "跳过"),
    "rule": ("Rule", "规则"),
    "nothing_today": ("Nothing yet today.", "今日暂无。"),
    "promises_today": (
        "Promises due today (the borrower's local date)",
        "今日到期的还款承诺（借款人当地日期）",
    ),
    "promises_today_note": (
        "Due today: the promise's pay-by date is today where the borrower lives (in the "
        "borrower's time zone, as the date was agreed). Kept: paid in full, or the case "
        "closed as paid. None is broken yet: a promise breaks once its grace after that "
        "day is over, on the timeline of its case.",
        "今日到期：承诺的还款日期是借款人所在时区的今天（与约定日期一致）。已兑现：已足额还款，"
        "或案件已因还清结案。此处没有违约：宽限期过后承诺才算违约，见各案件时间线。",
    ),
    "promises": ("Promises", "承诺数"),
    "promised": ("Promised", "承诺金额"),
    "paid_so_far": ("Paid so far", "已还金额"),
    "currency": ("Currency", "币种"),
    "promise.kept": ("kept", "已兑现"),
    "promise.awaiting": ("awaiting payment", "待还款"),
    "promise.closed": ("case closed", "案件已结案"),
    "promises_listed": ("By case: {shown} of {total}", "按案件：{total} 条中的 {shown} 条"),
    "no_promises_today": ("No promise is due today.", "今日没有到期的还款承诺。"),
    "dashboard_only": ("The dashboard is for supervisors.", "看板仅供主管使用。"),
    "skip_to_content": ("Skip to content", "跳到正文"),
    # the auditors' page (audit_pages.py, audit.html.j2)
    "audit": ("Audit of", "审计："),
    "audit_link": ("Audit: verify, reveal, export", "审计：校验、查看明文、导出"),
    "audit_only": ("The audit pages are for auditors.", "审计页面仅供审计员使用。"),
    "audit_again": ("Verify again", "重新校验"),
    "back_to_case": ("Back to the case", "返回案件"),
    "verify": ("Verify", "完整性校验"),
    "verify_ok": (
        "Intact: the chain, the fold, the anchors and the live case agree.",
        "完整：哈希链、事件重放、锚点与在线案件一致。",
    ),
    "verify_broken": ("Broken: {n} problem(s), listed below.", "已损坏：{n} 个问题，见下表。"),
    "audit_rows": ("Audit rows", "审计记录数"),
    "legacy_rows": ("{n} before the chain", "其中 {n} 条早于哈希链"),
    "head_hash": ("Head hash", "链头哈希"),
    "checkpoint": ("Signed checkpoint", "签名检查点"),
    "anchor": ("Anchor in the history", "历史中的锚点"),
    "live": ("Live comparison", "与在线案件比对"),
    "keys_unreadable": ("Checkpoint keys unreadable: {problem}", "检查点密钥无法读取：{problem}"),
    "check": ("Check", "检查项"),
    "problem": ("Problem", "问题"),
    "reveal": ("Reveal the masked fields", "查看脱敏字段明文"),
    "reveal_note": (
        "Names, phones, e-mail and postal addresses are shown in clear on the next page only, "
        "once your name and reason are recorded.",
        "记录您的姓名和原因后，仅在下一页显示姓名、电话、邮箱和地址明文。",
    ),
    "reveal_button": ("Reveal (recorded)", "查看明文（将被记录）"),
    "revealed": (
        "Recorded: {name} revealed this case's personal data. This page is not kept.",
        "已记录：{name} 查看了本案个人信息明文。本页不会被缓存。",
    ),
    "borrower": ("Borrower", "借款人"),
    "name": ("Name", "姓名"),
    "phones": ("Phones", "电话"),
    "address": ("Address", "地址"),
    "email": ("E-mail", "邮箱"),
    "emergency_contact": ("Emergency contact", "紧急联系人"),
    "clear_timeline": ("Timeline, in clear", "时间线（明文）"),
    "clear_fields": ("recorded fields (in clear)", "记录字段（明文）"),
    "export": ("Export", "导出"),
    "export_note": (
        "A zip of what `dunning audit export` writes: the audit rows, every run's history "
        "and manifest.json. It holds personal data in clear: the download is recorded as "
        "a reveal.",
        "`dunning audit export` 的输出打包为 zip：审计记录、各次运行历史和 manifest.json。"
        "其中含个人信息明文，下载将作为一次查看被记录。",
    ),
    "export_button": ("Download the export (recorded)", "下载导出文件（将被记录）"),
    # the collectors' queue (queue_pages.py, queue.html.j2, task.html.j2)
    "queue": ("Call queue", "外呼队列"),
    "queue_only": ("The call queue is for collectors.", "外呼队列仅供催收员使用。"),
    "queue_waiting": ("Waiting", "待处理"),
    "queue_depth": ("Tasks queued", "排队任务数"),
    "queue_oldest": ("Oldest waits", "最久等待"),
    "minutes": ("{n} min", "{n} 分钟"),
    "claim": ("Claim the next task", "领取下一个任务"),
    "queue_order": (
        "Order: later stage first, then the oldest broken promise, then the larger balance, "
        "then the longest waiting.",
        "顺序：阶段靠后优先，其次是最早违约的承诺，再次是欠款较多者，最后是等待最久者。",
    ),
    "queue_empty": ("Nothing to claim now.", "当前没有可领取的任务。"),
    "tasks_held": ("Your tasks", "我的任务"),
    "task": ("Call task", "外呼任务"),
    "no_task": ("No such task of yours.", "没有属于您的该任务。"),
    "back_to_queue": ("Back to the queue", "返回队列"),
    "task_refused": (
        "Task {id} was withdrawn: the compliance guard refused it ({rule}: {detail}).",
        "任务 {id} 已撤回：合规检查拒绝（{rule}：{detail}）。",
    ),
    "task_completed": ("Task {id} completed.", "任务 {id} 已完成。"),
    "task_ended": (
        "This task is {state}: it can no longer be completed.",
        "该任务状态为 {state}，无法再完成。",
    ),
    "task_expires": ("Call by", "最晚拨打"),
    "broken_promise": ("Broken promise of", "违约承诺日期"),
    "show_phone": ("Show the phone number (recorded)", "显示电话号码（将被记录）"),
    "phone_recorded": (
        "Recorded: you were shown this number. This page is not kept.",
        "已记录：向您显示了该号码。本页不会被缓存。",
    ),
    "if_promise": ("If the borrower promised", "如借款人承诺还款"),
    "complete_task": ("Complete the task", "完成任务"),
    "task_state.queued": ("queued", "排队中"),
    "task_state.claimed": ("claimed by you", "已由您领取"),
    "task_state.completed": ("completed", "已完成"),
    "task_state.expired": ("expired", "已过期"),
    "task_state.withdrawn": ("withdrawn", "已撤回"),
    "task_outcome.answered": ("answered", "已接通"),
    "task_outcome.no_answer": ("no answer", "无人接听"),
    "task_outcome.wrong_number": ("wrong number", "号码错误"),
    "task_outcome.promise": ("promise to pay", "承诺还款"),
    "queue_dashboard": ("Call queues", "外呼队列"),
    "team": ("Team", "团队"),
    # case states (schemas.status.CaseStateName)
    "state.open": ("open", "进行中"),
    "state.paused": ("paused", "已暂停"),
    "state.closed": ("closed", "已结案"),
    "state.audit_blocked": ("audit blocked", "审计受阻"),
    # roles
    "role.operator": ("operator", "催收员"),
    "role.supervisor": ("supervisor", "主管"),
    "role.auditor": ("auditor", "审计员"),
    "role.service": ("service", "服务"),
    "role.collector": ("collector", "外呼员"),
    # actions (the table's names)
    "action.pay": ("Report a payment", "登记还款"),
    "action.pause": ("Pause", "暂停催收"),
    "action.resume": ("Resume", "恢复催收"),
    "action.promise": ("Promise to pay", "还款承诺"),
    "action.plan": ("Repayment plan", "还款计划"),
    "action.settle": ("Settlement", "和解"),
    "action.dispute open": ("Open a dispute", "登记争议"),
    "action.dispute resolve": ("Resolve the dispute", "解决争议"),
    "action.visit book": ("Book a visit", "预约外访"),
    "action.visit report": ("Report the visit", "外访结果"),
    "action.escalate": ("Escalate", "升级"),
    "action.deescalate": ("De-escalate", "降级"),
    "action.close": ("Close the case", "结案"),
    "action.write-off": ("Request a write-off", "申请核销"),
    "action.approve": ("Approve", "批准"),
    "action.decline": ("Decline", "拒绝"),
    "action.cease": ("Cease contact", "停止联系"),
    "action.hard-stop": ("Hard stop", "永久停止"),
    "action.third-party-opt-out": ("Third party opt-out", "第三方拒绝联系"),
    "action.note": ("Add a note", "添加备注"),
    "action.policy migrate": ("Migrate the policy", "迁移催收方案"),
    # fields (the terms' names)
    "field.reason": ("reason", "原因"),
    "field.amount": ("amount", "金额"),
    "field.reference": ("reference", "流水号"),
    "field.until": ("until", "截至"),
    "field.pay_by": ("pay by", "还款期限"),
    "field.instalments": ("instalments", "分期"),
    "field.outcome": ("outcome", "结果"),
    "field.at": ("at", "时间"),
    "field.collectors": ("collectors", "外访人员"),
    "field.request": ("request", "请求编号"),
    "field.channel": ("channel", "渠道"),
    "field.kind": ("kind", "类型"),
    "field.contact": ("contact", "联系人序号"),
    "field.topic": ("topic", "主题"),
    "field.to": ("to", "目标方案"),
}

LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "zh-CN": "简体中文"}


def text(language: Language, key: str, **values: object) -> str:
    """The message `key` in `language`; a key with no entry is shown as is (so an
    action or field added to the table shows its own name until it is translated)."""
    pair = _TEXT.get(key)
    if pair is None:
        fallback = key.split(".", 1)[-1]
        return fallback.format(**values) if values else fallback
    template = pair[0] if language == "en" else pair[1]
    return template.format(**values) if values else template


def keys() -> frozenset[str]:
    return frozenset(_TEXT)


def entries() -> dict[str, dict[Language, str]]:
    """Every message in every language, unformatted (for the catalogue's tests)."""
    return {key: {"en": en, "zh-CN": zh} for key, (en, zh) in _TEXT.items()}
