"""In-process peers of the phones: the console and the bridges to the band's gear.

Each is an ``Actor`` (``server/peers.py``): started with an ``ActorHost`` for the band
session, it reads the read model, hears the session's publications and gives commands
through the one command table. The bridges are optional extras, off by default:

* ``link.LinkBridge``: Ableton Link (``aalink``), leading or following Link peers.
* ``midiclock.MidiClockOut``: MIDI clock out (``python-rtmidi``), 24 pulses per quarter note.
* ``osc.OscBridge``: OSC out to lighting/QLab/TouchOSC and commands in (``python-osc``).

``GearOptions`` is what the leader chose (headless flags or the console's settings);
``build_actors`` turns it into actors, importing only the libraries it needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..server.peers import Actor

LinkMode = Literal["lead", "follow"]


@dataclass(frozen=True, slots=True)
class GearOptions:
    """Which bridges run, and how.

    Attributes:
        link: ``None`` (off), ``"lead"`` (Link follows the band) or ``"follow"`` (the band
            follows a Link peer's tempo).
        midi_clock: ``None`` (off), ``"virtual"`` (a virtual port named "BandSync"), or the
            name (or a unique part of it) of an output port.
        osc_targets: ``(host, port)`` pairs that get the beat, bar, tempo, transport, song.
        osc_listen: ``(host, port)`` to receive OSC commands on, or ``None``.
        osc_allow: addresses whose OSC commands are accepted (all others are ignored).
    """

    link: LinkMode | None = None
    midi_clock: str | None = None
    osc_targets: tuple[tuple[str, int], ...] = ()
    osc_listen: tuple[str, int] | None = None
    osc_allow: tuple[str, ...] = field(default=())

    @property
    def any(self) -> bool:
        return bool(self.link or self.midi_clock or self.osc_targets or self.osc_listen)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a pair; ``argparse`` type."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 192.168.1.20:7000)")
    return host, int(port)


def add_gear_arguments(parser: argparse.ArgumentParser) -> None:
    """The bridges' options, shared by headless mode and the console."""
    gear = parser.add_argument_group("gear (each off unless given)")
    gear.add_argument(
        "--link",
        nargs="?",
        const="lead",
        choices=("lead", "follow"),
        help="join the Ableton Link session: 'lead' (default: Link follows the band) or "
        "'follow' (the band takes a Link peer's tempo)",
    )
    gear.add_argument(
        "--midi-clock",
        metavar="PORT",
        help="send MIDI clock to PORT (a port name or a unique part of it), or 'virtual' "
        "for a virtual port named BandSync",
    )
    gear.add_argument(
        "--osc",
        metavar="HOST:PORT",
        action="append",
        type=host_port,
        default=[],
        help="send /bandsync/beat, /bar, /tempo, /transport, /song to HOST:PORT (repeatable)",
    )
    gear.add_argument(
        "--osc-listen",
        metavar="HOST:PORT",
        type=host_port,
        help="receive OSC commands (/bandsync/play, /bandsync/tempo f, ...) on HOST:PORT",
    )
    gear.add_argument(
        "--osc-allow",
        metavar="ADDRESS",
        action="append",
        default=[],
        help="accept OSC commands from this IP address only (repeatable; none: refuse all)",
    )


def gear_options(args: argparse.Namespace) -> GearOptions:
    return GearOptions(
        link=args.link,
        midi_clock=args.midi_clock,
        osc_targets=tuple(args.osc),
        osc_listen=args.osc_listen,
        osc_allow=tuple(args.osc_allow),
    )


def build_actors(options: GearOptions) -> Sequence[Actor]:
    """The bridges ``options`` asks for; each library is imported only when asked for.

    Raises:
        ActorError: a bridge's library is not installed (install the ``gear`` extra).
    """
    actors: list[Actor] = []
    if options.link is not None:
        from .link import LinkBridge

        actors.append(LinkBridge(mode=options.link))
    if options.midi_clock is not None:
        from .midiclock import MidiClockOut

        actors.append(MidiClockOut(None if options.midi_clock == "virtual" else options.midi_clock))
    if options.osc_targets or options.osc_listen is not None:
        from .osc import OscBridge

        actors.append(
            OscBridge(options.osc_targets, listen=options.osc_listen, allowed=options.osc_allow)
        )
    return actors
