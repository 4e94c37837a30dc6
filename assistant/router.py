"""Routing: where one turn is answered (on this device or in the cloud) and why.

In this version every turn is answered locally; the reason says why the cloud was not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.settings import CloudMode, Settings


@dataclass(frozen=True)
class Route:
    target: str  # "local" or "cloud"
    reason: str


def choose_route(mode: CloudMode, settings: Settings) -> Route:
    if mode == "off":
        return Route("local", "cloud escalation is off")
    if not settings.cloud_configured:
        return Route("local", "no cloud model is configured")
    return Route("local", "cloud escalation is not available in this version")
