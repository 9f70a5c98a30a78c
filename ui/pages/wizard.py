"""The task wizard (create and edit): source, target (and pruning it), tag filters with a live
preview, platforms, schedule with the next five run times, enabled.

The preview asks the daemon (PreviewTags) which source tags the filters keep. The source is listed
once per (registry, repository); later previews send that list back, so typing a pattern does not
list the registry again. For a glob source it asks PreviewRepositories instead: the repositories
the glob matches in the catalog now, each with its target and tag counts (the first
REPOSITORY_PREVIEW, and it says when more match). The cron helper asks the daemon too
(PreviewSchedule): its scheduler's next fire times, in UTC as it fires them, `@daily` and the
other aliases included.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from nicegui import ui

from .. import format as fmt
from ..client import DaemonError
from ..components.frame import frame
from ..forms import TaskForm, task_form
from ..session import Panel, Session, go_login, open_session

PREVIEW_DELAY = 0.5  # seconds between checks for changed filters
REPOSITORY_PREVIEW = 50  # repositories a glob's preview lists (each is one tag listing)


class TagPreview:
    """Which source tags the current filters keep, refreshed shortly after a change."""

    def __init__(self, session: Session, form: Callable[[], TaskForm]) -> None:
        self.session = session
        self.form = form
        self.source_tags: dict[tuple[str, str], list[str]] = {}
        self.stale = True
        with ui.row().classes("items-center"):
            ui.label("Preview").classes("font-medium")
            ui.button("Reload source tags", on_click=self.reload).props("flat dense")
        self.container = ui.column().classes("w-full gap-1").mark("preview")
        ui.timer(PREVIEW_DELAY, self._tick)

    def mark_stale(self) -> None:
        self.stale = True

    async def reload(self) -> None:
        self.source_tags.pop(self.form().source_key(), None)
        await self.update()

    async def _tick(self) -> None:
        if self.stale:
            self.stale = False
            await self.update()

    async def update(self) -> None:
        form = self.form()
        key = form.source_key()
        if not all(key):
            self._show_text("Choose a source registry and repository to preview its tags.")
            return
        if "*" in key[1]:
            await self._repositories(form)
            return
        try:
            result = await self.session.api.preview_tags(form.preview_spec(),
                                                         self.source_tags.get(key, ()))
        except DaemonError as error:
            if error.needs_login:
                go_login(self.session.here)
            self._show_text(error.message, error=True)
            return
        self.source_tags.setdefault(key, [*result.kept, *(d.tag for d in result.dropped)])
        self.container.clear()
        with self.container:
            total = len(result.kept) + len(result.dropped)
            ui.label(f"{len(result.kept)} of {total} tags kept").mark("preview-summary")
            with ui.row().classes("gap-1"):
                for tag in result.kept:
                    ui.chip(fmt.shown(tag), color="positive").props("dense outline")
            for dropped in result.dropped[:50]:
                ui.label(fmt.shown(f"{dropped.tag}: {dropped.reason}")).classes(
                    "text-xs text-slate-500")

    async def _repositories(self, form: TaskForm) -> None:
        """A glob source: the repositories it matches, with their tag counts, before saving."""
        try:
            result = await self.session.api.preview_repositories(form.preview_spec(),
                                                                 REPOSITORY_PREVIEW)
        except DaemonError as error:
            if error.needs_login:
                go_login(self.session.here)
            self._show_text(error.message, error=True)
            return
        self.container.clear()
        with self.container:
            count = len(result.repositories)
            more = (f" (the first {count}; more match, a run covers them all)"
                    if result.truncated else "")
            ui.label(f"{count} repositories match{more}").mark("preview-summary")
            with ui.grid(columns="auto auto auto").classes("gap-x-4 gap-y-0").mark(
                    "preview-repositories"):
                for repository in result.repositories:
                    ui.label(fmt.shown(repository.source)).classes("font-mono text-sm")
                    ui.label(fmt.shown(f"-> {repository.target}")).classes(
                        "font-mono text-sm text-slate-500")
                    ui.label(fmt.shown(repository.error) if repository.error else
                             f"{repository.kept} of {repository.tags} tags kept").classes(
                        "text-negative text-sm" if repository.error else "text-sm")

    def _show_text(self, text: str, *, error: bool = False) -> None:
        self.container.clear()
        with self.container:
            ui.label(fmt.shown(text, keep_newlines=True)).classes(
                "text-negative" if error else "text-slate-500")


class CronHelp:
    """The schedule's next runs, asked of the daemon shortly after the expression changes."""

    def __init__(self, session: Session, expression: Callable[[], str]) -> None:
        self.session = session
        self.expression = expression
        self.stale = True
        self.container = ui.column().classes("gap-0").mark("cron-preview")
        ui.timer(PREVIEW_DELAY, self._tick)

    def mark_stale(self) -> None:
        self.stale = True

    async def _tick(self) -> None:
        if self.stale:
            self.stale = False
            await self.update()

    async def update(self) -> None:
        try:
            preview = fmt.cron_preview(await self.session.api.preview_schedule(self.expression()))
        except DaemonError as error:
            if error.needs_login:
                go_login(self.session.here)
            preview = fmt.CronPreview(error=error.message)
        self.container.clear()
        with self.container:
            if preview.error:
                ui.label(fmt.shown(preview.error)).classes("text-slate-500")
                return
            ui.label("Next runs (UTC, as the daemon schedules):").classes("text-slate-500")
            for time in preview.times:
                ui.label(time).classes("font-mono text-sm")


class Wizard:
    def __init__(self, session: Session, initial: TaskForm, registries: list[str], *,
                 create: bool) -> None:
        self.session = session
        self.create = create
        self.initial = initial  # what the wizard does not show is kept as it was
        with ui.stepper().props("vertical").classes("w-full") as self.stepper:
            with ui.step("Source"):
                self.name = ui.input("Task name", value=initial.name).props(
                    "" if create else "readonly").mark("task-name")
                self.source_registry = ui.select(registries, label="Source registry",
                                                 value=initial.source_registry or None
                                                 ).classes("min-w-64").mark("source-registry")
                self.source_repository = ui.input(
                    "Source repository", value=initial.source_repository,
                    placeholder="library/nginx").mark("source-repository")
                self._navigation(first=True)
            with ui.step("Target"):
                self.target_registry = ui.select(registries, label="Target registry",
                                                 value=initial.target_registry or None
                                                 ).classes("min-w-64").mark("target-registry")
                self.target_repository = ui.input(
                    "Target repository", value=initial.target_repository).mark(
                    "target-repository")
                self._prune_fields(initial)
                self._navigation()
            with ui.step("Tags"):
                self._tags_step(initial)
            with ui.step("Platforms"):
                self.architectures = ui.input("Architectures (empty = all)",
                                              value=initial.architectures,
                                              placeholder="amd64, arm64").mark("architectures")
                self.platforms = ui.input("Platforms (empty = all)", value=initial.platforms,
                                          placeholder="linux/arm/v7").mark("platforms")
                self.referrers = ui.switch("Signatures, SBOMs and attestations follow",
                                           value=initial.referrers).mark("referrers")
                self.artifact_types = ui.input(
                    "Referrer artifact types (empty = all)", value=initial.artifact_types,
                    placeholder="application/spdx+json").mark("artifact-types")
                self._navigation()
            with ui.step("Schedule"):
                self._schedule_step(initial)

    def _navigation(self, *, first: bool = False) -> None:
        with ui.stepper_navigation():
            ui.button("Next", on_click=self.stepper.next).mark("next")
            if not first:
                ui.button("Back", on_click=self.stepper.previous).props("flat")

    def _prune_fields(self, initial: TaskForm) -> None:
        self.prune = ui.switch("Prune: after each run, delete the target's tags the filters do"
                               " not keep", value=initial.prune).mark("prune")
        with ui.column().classes("gap-1").bind_visibility_from(self.prune, "value"):
            ui.label("The target repository then mirrors the selection: tags anyone else"
                     " pushed there are deleted too. Nothing is deleted after a failed listing"
                     " or tag.").classes("text-sm text-warning").mark("prune-warning")
            self.prune_max = ui.input("Delete at most (a count, or a percentage of the target's"
                                      " tags; empty = 50%)", value=initial.prune_max,
                                      placeholder="50%").mark("prune-max")

    def _tags_step(self, initial: TaskForm) -> None:
        self.include = ui.textarea("Include patterns (regex, one per line; empty = all)",
                                   value=initial.include).classes("w-full").mark("include")
        self.exclude = ui.textarea("Exclude patterns (regex, one per line)",
                                   value=initial.exclude).classes("w-full").mark("exclude")
        self.semver = ui.input("Version range", value=initial.semver,
                               placeholder=">=1.20 <2").mark("semver")
        self.latest = ui.number("Keep the newest N (0 = all)", value=initial.latest, min=0,
                                precision=0).mark("latest")
        self.preview = TagPreview(self.session, self.form)
        for element in (self.source_registry, self.source_repository, self.target_registry,
                        self.target_repository, self.include, self.exclude, self.semver,
                        self.latest):
            element.on_value_change(self.preview.mark_stale)
        self._navigation()

    def _schedule_step(self, initial: TaskForm) -> None:
        self.cron = ui.input("Cron schedule (empty = manual only)", value=initial.cron,
                             placeholder="0 2 * * *").mark("cron")
        self.cron_help = CronHelp(self.session, lambda: self.cron.value or "")
        self.cron.on_value_change(self.cron_help.mark_stale)
        self.enabled = ui.switch("Enabled", value=initial.enabled).mark("enabled")
        with ui.stepper_navigation():
            ui.button("Save task", on_click=self.save).mark("save-task")
            ui.button("Back", on_click=self.stepper.previous).props("flat")

    def form(self) -> TaskForm:
        return TaskForm(
            name=self.name.value or "",
            source_registry=self.source_registry.value or "",
            source_repository=self.source_repository.value or "",
            target_registry=self.target_registry.value or "",
            target_repository=self.target_repository.value or "",
            include=self.include.value or "", exclude=self.exclude.value or "",
            semver=self.semver.value or "", latest=int(self.latest.value or 0),
            architectures=self.architectures.value or "",
            platforms=self.platforms.value or "",
            cron=self.cron.value or "", enabled=bool(self.enabled.value),
            prune=bool(self.prune.value), prune_max=self.prune_max.value or "",
            source_exclude=self.initial.source_exclude,
            referrers=bool(self.referrers.value),
            artifact_types=self.artifact_types.value or "",
        )

    async def save(self) -> None:
        saved = await self.session.attempt(
            self.session.api.save_task(self.form().to_spec(), create=self.create))
        if saved is not None:
            ui.notify(f"Task {saved.spec.name} saved", type="positive")
            ui.navigate.to("/tasks")


def edit_url(name: str) -> str:
    return "/tasks/edit?" + urlencode({"name": name})


async def build(panel: Panel, name: str | None = None) -> None:
    here = edit_url(name) if name else "/tasks/new"
    session = await open_session(panel, here)
    if session is None:
        return
    registries = await session.attempt(session.api.list_registries())
    initial = TaskForm()
    if name is not None:
        task = await session.attempt(session.api.get_task(name))
        if task is None:
            return
        initial = task_form(task)
    with frame(f"Edit task {name}" if name else "New task", session):
        if registries is not None and not registries:
            ui.label("Add a registry first.").classes("text-negative")
            ui.link("Registries", "/registries")
        Wizard(session, initial, sorted(r.name for r in registries or []), create=name is None)
