"""Shared helpers for the system0.data tests: a valid GameState row factory."""

from __future__ import annotations

import json
from typing import Any

import pytest


def game_state(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "timestamp": "2024-05-01T12:00:00.250Z",
        "champion": "Ahri",
        "position": {"x": 0.5, "y": 0.25},
        "health": 530.0,
        "mana": 300.5,
        "cooldowns": {"q": 0, "w": 1.5, "e": 0, "r": 80, "d": 0, "f": 300},
        "inventory": ["boots", "dorans_ring"],
        "vision_score": 12,
        "gold_advantage": -350.0,
    }
    row.update(overrides)
    return row


def sample(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "state": game_state(),
        "action": {"kind": "cast", "slot": "q", "target": {"x": 0.1, "y": 0.9}},
        "reward": 1.5,
        "next_state": game_state(health=400.0),
        "metadata": {"match_id": "EUW-1", "step": 7, "source": "replay"},
    }
    row.update(overrides)
    return row


@pytest.fixture
def row() -> dict[str, Any]:
    return game_state()


def dumps(rows: list[Any]) -> bytes:
    return json.dumps(rows).encode()
