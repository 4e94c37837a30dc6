"""Who is speaking in this turn.

In this version the speaker is the person chosen in the UI or named on the command line;
a name that is not known yet becomes a new profile when ``create`` is true.
"""

from __future__ import annotations

from assistant.store import Profile, Store


def identify(store: Store, speaker: int | str, create: bool = False) -> Profile:
    if isinstance(speaker, int):
        return store.profile(speaker)
    return store.get_or_add_profile(speaker) if create else store.profile(speaker)
