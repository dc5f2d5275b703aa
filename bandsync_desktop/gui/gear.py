"""The band's gear as the console runs it: which bridges (Link, MIDI clock, OSC) follow the
band session, started beside the running server and kept across its restarts.

The bridges are actors (``server/peers.py``, ``bandsync_desktop/actors/``); this object only
chooses them and starts and stops them on the server's ``ActorSet``, as the headless CLI's
flags do at start. A bridge that cannot start (a missing port, a missing library) never
stops the server: its status says why and the leader can choose again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..actors import GearOptions, LinkMode, build_actors
from ..server.peers import ActorError, ActorSet
from .bridge import Bridge

STATUS_REFRESH_MS = 500
#: The bridges by name, as ``build_actors`` names them, in the order the panel shows them.
KINDS = ("link", "midi-clock", "osc")
TITLES = {"link": "Ableton Link", "midi-clock": "MIDI clock", "osc": "OSC"}


def _part(options: GearOptions, kind: str) -> GearOptions:
    """The part of ``options`` that one bridge runs from."""
    if kind == "link":
        return GearOptions(link=options.link)
    if kind == "midi-clock":
        return GearOptions(midi_clock=options.midi_clock)
    return GearOptions(
        osc_targets=options.osc_targets, osc_listen=options.osc_listen, osc_allow=options.osc_allow
    )


def options_from_settings(values: Mapping[str, Any]) -> GearOptions:
    """The gear saved in the user's settings file (entries ``gear_*``); bad entries are off."""
    link = values.get("gear_link")
    midi = values.get("gear_midi_clock")
    targets: list[tuple[str, int]] = []
    for item in values.get("gear_osc_targets") or []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[1], int):
            targets.append((str(item[0]), item[1]))
    listen = values.get("gear_osc_listen")
    allow = values.get("gear_osc_allow") or []
    return GearOptions(
        link=link if link in ("lead", "follow") else None,
        midi_clock=midi if isinstance(midi, str) and midi else None,
        osc_targets=tuple(targets),
        osc_listen=(str(listen[0]), int(listen[1]))
        if isinstance(listen, list) and len(listen) == 2 and isinstance(listen[1], int)
        else None,
        osc_allow=tuple(str(a) for a in allow if isinstance(a, str)),
    )


def settings_from_options(options: GearOptions) -> dict[str, Any]:
    """``options`` as the ``gear_*`` entries of the settings file (``None`` removes one)."""
    return {
        "gear_link": options.link,
        "gear_midi_clock": options.midi_clock,
        "gear_osc_targets": [list(t) for t in options.osc_targets] or None,
        "gear_osc_listen": list(options.osc_listen) if options.osc_listen else None,
        "gear_osc_allow": list(options.osc_allow) or None,
    }


class GearControl(QObject):
    """Runs the chosen bridges beside the console's server.

    Signals:
        status_changed(dict): each bridge's status by name (``KINDS``), refreshed twice a
            second while the server runs; a bridge that is off reads ``{"state": "off"}``.
        problem(str): a bridge could not start (for the log).
        chosen(GearOptions): the leader changed the choice (to be saved).

    Args:
        bridge: the console's seam to the server.
        options: the gear chosen at start (settings file, command line).
    """

    status_changed = Signal(object)
    problem = Signal(str)
    chosen = Signal(object)

    def __init__(self, bridge: Bridge, options: GearOptions, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._options = options
        self._errors: dict[str, str] = {}
        self._started: dict[str, GearOptions] = {}  # what each running bridge was built from
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._timer = QTimer(self)
        self._timer.setInterval(STATUS_REFRESH_MS)
        self._timer.timeout.connect(self._emit_status)
        bridge.server_state_changed.connect(self._on_server_state)

    @property
    def options(self) -> GearOptions:
        return self._options

    def choose(self, **changes: Any) -> asyncio.Task[Any] | None:
        """Change the choice (``link=``, ``midi_clock=``, ``osc_targets=``, ...) and apply it
        to the running server: only the bridges whose part changed restart."""
        options = dataclasses.replace(self._options, **changes)
        if options == self._options:
            return None
        self._options = options
        self.chosen.emit(options)
        return self._spawn(self.apply())

    def set_link(self, mode: LinkMode | None) -> asyncio.Task[Any] | None:
        return self.choose(link=mode)

    async def apply(self) -> None:
        """Bring the running server's bridges in line with the choice (a no-op when the
        server is stopped: they start with it)."""
        async with self._lock:
            actors = self._actor_set()
            if actors is not None:
                for kind in KINDS:
                    await self._apply_one(actors, kind)
        self._emit_status()

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Each bridge's status by name."""
        actors = self._actor_set()
        result: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            actor = actors.get(kind) if actors is not None else None
            if actor is not None:
                result[kind] = dict(actor.status())
            elif kind in self._errors:
                result[kind] = {"state": "failed", "error": self._errors[kind]}
            else:
                result[kind] = {"state": "off"}
        return result

    async def shutdown(self) -> None:
        """Wait for choices under way (the server's own stop stops the bridges)."""
        self._timer.stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)

    # -- internals ------------------------------------------------------------------------

    def _actor_set(self) -> ActorSet | None:
        runner = self._bridge.runner
        return runner.actors if runner is not None else None

    async def _apply_one(self, actors: ActorSet, kind: str) -> None:
        wanted = _part(self._options, kind)
        running = kind in actors
        if running and self._started.get(kind) == wanted:
            return
        if running:
            await actors.stop(kind)
        self._started.pop(kind, None)
        self._errors.pop(kind, None)
        if not wanted.any:
            return
        try:
            (actor,) = build_actors(wanted)
            await actors.start(actor)
            self._started[kind] = wanted
        except (ActorError, OSError, ValueError) as exc:
            self._errors[kind] = str(exc)
            self.problem.emit(f"{TITLES[kind]} did not start: {exc}")

    def _on_server_state(self, running: bool) -> None:
        self._started.clear()  # a new server has no bridges yet; a stopped one none any more
        if running:
            self._errors.clear()
            self._timer.start()
            self._spawn(self.apply())
        else:
            self._timer.stop()
            self._emit_status()

    def _emit_status(self) -> None:
        self.status_changed.emit(self.statuses())

    def _spawn(self, coro: Any) -> asyncio.Task[Any] | None:
        try:
            task = asyncio.ensure_future(coro)
        except RuntimeError:  # no loop (the window is being torn down)
            coro.close()
            return None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
