"""Webhooks: a table with each one's last delivery; add (the secret write-only), delete.

The table refreshes on every execution event and every REFRESH seconds (a delivery may end
well after its execution, after its retries), so a result shows up without a reload.
"""

from __future__ import annotations

from datetime import UTC

from nicegui import ui
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import format as fmt
from ..components.frame import confirm, dismiss, empty, frame, grid_header
from ..components.live import Live
from ..session import Panel, Session, open_session

REFRESH = 5.0
EVENTS = ("execution.succeeded", "execution.failed", "execution.stopped", "task.stale")


def last_delivery(hook: pb.Notification) -> tuple[str, str]:
    """(text, colour) of a webhook's last delivery."""
    if not hook.HasField("last_delivery"):
        return "never", "grey"
    last = hook.last_delivery
    at = fmt.when(last.time.ToDatetime(tzinfo=UTC))
    if last.ok:
        return f"ok ({last.code}) {last.event}, {at}", "positive"
    tries = f" after {last.attempts} attempts" if last.attempts > 1 else ""
    return f"failed{tries}: {last.error} ({last.event}, {at})", "negative"


class NotificationTable:
    def __init__(self, session: Session) -> None:
        self.session = session
        ui.button("Add webhook", icon="add", on_click=self.add).mark("add-webhook")
        self.container = ui.column().classes("w-full")

    async def render(self) -> None:
        hooks = await self.session.attempt(self.session.api.list_notifications())
        self.container.clear()
        with self.container:
            if hooks is None:
                empty("Webhooks are unavailable right now.")
            elif not hooks:
                empty("No webhooks yet.")
            else:
                self._rows(hooks)

    def _rows(self, hooks: list[pb.Notification]) -> None:
        with ui.grid(columns="auto 1fr 1fr auto auto 2fr auto").classes(
                "w-full items-center gap-x-4 gap-y-2"):
            grid_header("Name", "URL", "Events", "Tasks", "Secret", "Last delivery", "")
            for hook in hooks:
                ui.label(hook.name).mark(f"webhook-{hook.name}")
                ui.label(hook.url).classes("font-mono text-xs break-all")
                ui.label(", ".join(hook.events)).classes("text-xs")
                ui.label(", ".join(hook.tasks) or "all")
                ui.label("set" if hook.secret_set else "-")
                text, colour = last_delivery(hook)
                ui.label(text).classes(f"text-{colour} text-sm").mark(f"delivery-{hook.name}")
                ui.button(icon="delete", on_click=lambda _, n=hook.name: self.delete(n)).props(
                    "flat dense").mark(f"delete-webhook-{hook.name}")

    def add(self) -> None:
        with ui.dialog() as dialog, ui.card().classes("min-w-96"):
            ui.label("Add webhook").classes("text-lg")
            name = ui.input("Name").mark("hook-name")
            url = ui.input("URL", placeholder="https://hooks.example.com/...").mark("hook-url")
            events = ui.select(list(EVENTS), multiple=True, value=["execution.failed"],
                               label="Events").mark("hook-events")
            tasks = ui.input("Tasks (comma-separated; empty = all)").mark("hook-tasks")
            format_ = ui.select(["json", "slack"], value="json", label="Format")
            secret = ui.input("Signing secret (optional)", password=True,
                              password_toggle_button=True).mark("hook-secret")

            async def submit() -> None:
                spec = pb.NotificationSpec(
                    name=name.value or "", url=url.value or "", events=list(events.value or []),
                    tasks=[t.strip() for t in (tasks.value or "").split(",") if t.strip()],
                    format=format_.value or "json")
                if secret.value:
                    spec.secret = secret.value
                secret.value = ""
                if await self.session.attempt(self.session.api.create_notification(spec)):
                    ui.notify(f"Webhook {spec.name} added", type="positive")  # while in the page
                    dismiss(dialog)
                    await self.render()

            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=lambda: dismiss(dialog)).props("flat")
                ui.button("Save", on_click=submit).mark("hook-save")
        dialog.open()

    def delete(self, name: str) -> None:
        async def go() -> None:
            if await self.session.attempt(self.session.api.delete_notification(name)) is not None:
                ui.notify(f"Webhook {name} deleted", type="info")
                await self.render()

        confirm(f"Delete the webhook {name}?", go)


async def build(panel: Panel) -> None:
    session = await open_session(panel, "/notifications")
    if session is None:
        return
    with frame("Webhooks", session):
        table = NotificationTable(session)
    await table.render()
    Live(session, table.render)
    ui.timer(REFRESH, table.render)
