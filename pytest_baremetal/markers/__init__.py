"""Marker profiles: a guest's console vocabulary as data, parsed into typed events."""

from pytest_baremetal.markers.events import (
    Event,
    EventParser,
    Generation,
    generations,
)
from pytest_baremetal.markers.profile import (
    EventSpec,
    Profile,
    load_profile,
    profile_from_dict,
    reference_profile,
    resolve_profile,
)

__all__ = [
    "Event",
    "EventParser",
    "EventSpec",
    "Generation",
    "Profile",
    "generations",
    "load_profile",
    "profile_from_dict",
    "reference_profile",
    "resolve_profile",
]
