"""Registries: a table; add, edit, delete (confirmed); test a connection.

The password field is write-only: it starts empty, a stored password shows only as "set", and
on edit an empty field keeps it (see forms.RegistryForm).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui
from regsync.proto.regsync.v1 import regsync_pb2 as pb

from .. import format as fmt
from ..components.frame import confirm, dismiss, empty, frame, grid_header
from ..forms import RegistryForm, registry_form
from ..session import Panel, Session, open_session


def _verdict(name: str, result: pb.TestRegistryResponse) -> str:
    if result.ok:
        return (f"{name}: reachable, credentials accepted, {result.api_version or 'API v2'} "
                f"({result.latency_ms:.0f} ms)")
    parts = [f"{name}: " + ("reachable" if result.reachable else "unreachable")]
    if result.reachable:
        parts.append("credentials accepted" if result.auth_ok else "credentials refused")
    if result.message:
        parts.append(fmt.shown(result.message))
    return ", ".join(parts)


def registry_dialog(initial: RegistryForm, *, create: bool, password_set: bool,
                    save: Callable[[RegistryForm], Awaitable[bool]]) -> None:
    """The add/edit form; `save` returns whether the daemon accepted it (then it closes)."""
    with ui.dialog() as dialog, ui.card().classes("min-w-96"):
        ui.label("Add registry" if create else f"Edit {initial.name}").classes("text-lg")
        name = ui.input("Name", value=initial.name).props(
            "" if create else "readonly").mark("reg-name")
        url = ui.input("URL", value=initial.url, placeholder="https://registry.example.com"
                       ).mark("reg-url")
        username = ui.input("User name", value=initial.username).mark("reg-username")
        hint = ("set: leave empty to keep it (a new URL or user name drops it)" if password_set
                else "not set")
        password = ui.input("Password", password=True, password_toggle_button=True
                            ).props(f'hint="{hint}"').mark("reg-password")
        clear = ui.checkbox("Remove the stored password").mark("reg-clear-password")
        clear.set_visibility(password_set)
        insecure = ui.checkbox("Skip TLS verification", value=initial.insecure)
        ca_file = ui.input("CA file (on the daemon's machine)", value=initial.ca_file)
        qps = ui.number("Requests per second (0 = unlimited)", value=initial.qps, min=0
                        ).mark("reg-qps")

        async def submit() -> None:
            form = RegistryForm(
                name=name.value or "", url=url.value or "", username=username.value or "",
                password=password.value or "", clear_password=bool(clear.value),
                insecure=bool(insecure.value), ca_file=ca_file.value or "",
                qps=float(qps.value or 0))
            password.value = ""
            if await save(form):
                dismiss(dialog)

        with ui.row().classes("justify-end w-full"):
            ui.button("Cancel", on_click=lambda: dismiss(dialog)).props("flat")
            ui.button("Save", on_click=submit).mark("reg-save")
    dialog.open()


class RegistryTable:
    def __init__(self, session: Session) -> None:
        self.session = session
        ui.button("Add registry", icon="add", on_click=self.add).mark("add-registry")
        self.overlay = ui.element()  # dialogs live here: re-rendering the table keeps them
        self.container = ui.column().classes("w-full")

    async def render(self) -> None:
        registries = await self.session.attempt(self.session.api.list_registries())
        self.container.clear()
        with self.container:
            if registries is None:
                empty("Registries are unavailable right now.")
            elif not registries:
                empty("No registries yet.")
            else:
                self._grid(registries)

    def _grid(self, registries: list[pb.Registry]) -> None:
        with ui.grid(columns="auto 1fr auto auto auto auto auto").classes(
                "w-full items-center gap-x-4 gap-y-2"):
            grid_header("Name", "URL", "User", "Password", "QPS", "Used by", "")
            for registry in registries:
                ui.label(fmt.shown(registry.name))
                ui.label(fmt.shown(registry.url)).classes("font-mono text-sm")
                ui.label(registry.username or "anonymous")
                ui.label("set" if registry.password_set else "not set")
                ui.label(f"{registry.qps:g}" if registry.qps else "unlimited")
                ui.label(", ".join(registry.used_by) or "-")
                with ui.row().classes("gap-1"):
                    self._actions(registry)

    def _actions(self, registry: pb.Registry) -> None:
        name = registry.name
        ui.button("Test", on_click=lambda: self.test(name)).props("flat dense").mark(
            f"test-{name}")
        ui.button("Edit", on_click=lambda: self.edit(registry)).props("flat dense").mark(
            f"edit-{name}")
        ui.button("Delete", on_click=lambda: confirm(
            f"Delete registry {name}?", lambda: self.delete(name))).props(
            "flat dense color=negative").mark(f"delete-{name}")

    def add(self) -> None:
        with self.overlay:
            registry_dialog(RegistryForm(), create=True, password_set=False,
                            save=lambda form: self.save(form, create=True))

    def edit(self, registry: pb.Registry) -> None:
        with self.overlay:
            registry_dialog(registry_form(registry), create=False,
                            password_set=registry.password_set,
                            save=lambda form: self.save(form, create=False))

    async def save(self, form: RegistryForm, *, create: bool) -> bool:
        saved = await self.session.attempt(
            self.session.api.save_registry(form.to_spec(), create=create))
        if saved is None:
            return False
        ui.notify(f"Registry {saved.name} saved", type="positive")
        if saved.password_dropped:
            ui.notify(f"The stored password of {saved.name} was dropped: it stays bound to the URL "
                      "and user name it was given for. Enter it again.", type="warning",
                      multi_line=True, close_button=True)
        await self.render()
        return True

    async def delete(self, name: str) -> None:
        if await self.session.attempt(self.session.api.delete_registry(name)) is not None:
            ui.notify(f"Registry {name} deleted", type="positive")
            await self.render()

    async def test(self, name: str) -> None:
        result = await self.session.attempt(self.session.api.test_registry(name))
        if result is not None:
            ui.notify(_verdict(name, result), type="positive" if result.ok else "negative",
                      multi_line=True, close_button=True)


async def build(panel: Panel) -> None:
    session = await open_session(panel, "/registries")
    if session is None:
        return
    with frame("Registries", session):
        table = RegistryTable(session)
    await table.render()
