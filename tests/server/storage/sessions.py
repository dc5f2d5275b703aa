"""Sessions of mixed content for storage tests and the Redis benchmark."""

from __future__ import annotations

import random

from bandsync_desktop.core.session import CONSOLE, Rules, Session, Song

RULES = Rules()
NAMES = ["Ana", "Björn", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gus", "Hélène", "Ívar", "Jo"]


def mixed_session(index: int, members: int, now_ms: float = 1_000_000.0) -> Session:
    """A session with ``members`` members and varied content, deterministic per ``index``."""
    rng = random.Random(index)
    protected = index % 3 == 0
    session = Session.create(
        f"mixed-{index}",
        now_ms,
        protected=protected,
        tempo_bpm=rng.choice([60.0, 96.5, 120.0, 174.0]),
        beats_per_bar=rng.choice([3, 4, 7]),
        beat_unit=rng.choice([4, 8]),
    )
    now = now_ms
    for m in range(members):
        now += rng.uniform(1, 500)
        session.join(
            now,
            f"node1.{index:03d}sock{m:02d}xxxxxxxxxx",
            client_id=f"client-{index}-{m}",
            display_name=f"{NAMES[m % len(NAMES)]} {m} 🎵🎶",
            role=None,
            key=None,
            device="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
            rules=RULES,
        )
    actor = CONSOLE
    session.set_message(now, actor, f'Bar {index}: watch the coda — ¡fuerte! 🥁 "quoted"')
    if index % 2:
        session.set_song(
            now,
            actor,
            Song(f"Song {index}", "C  G  Am  F\nVerse: ♪ la la ♪\n" * (1 + index % 4)),
            tempo_bpm=None,
            meter=None,
            count_in_bars=index % 3,
            rules=RULES,
        )
    now += 50
    session.play(now, actor, RULES)
    now += rng.uniform(100, 5000)
    session.set_tempo(now, actor, 80.0 + index % 100, "beat", RULES)
    if index % 4 == 0:
        now += 1000
        session.pause(now, actor)
    if members > 2 and index % 5 == 0:
        session.leave(now + 10, f"client-{index}-1", disconnected=True)
    return session
