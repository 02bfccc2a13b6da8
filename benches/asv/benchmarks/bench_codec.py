"""asv history of the codec: decode + validate into Arrow, and the feature matrix."""

from __future__ import annotations

import json
import random
from typing import ClassVar

from system0.data.models import ITEM_VOCABULARY
from system0.data.serialization import decode_game_states, features


def _data(n: int) -> bytes:
    rng = random.Random(0)
    rows = [
        {
            "timestamp": "2024-05-01T12:00:00.250Z",
            "champion": "Ahri",
            "position": {"x": rng.random(), "y": rng.random()},
            "health": rng.uniform(0, 3000),
            "mana": rng.uniform(0, 2000),
            "cooldowns": {s: rng.uniform(0, 120) for s in "qwerdf"},
            "inventory": rng.sample(ITEM_VOCABULARY, rng.randrange(7)),
            "vision_score": rng.uniform(0, 80),
            "gold_advantage": rng.uniform(-5000, 5000),
        }
        for _ in range(n)
    ]
    return json.dumps(rows).encode()


class CodecSuite:
    params: ClassVar[list[int]] = [1_000, 10_000]
    param_names: ClassVar[list[str]] = ["rows"]

    def setup(self, rows: int) -> None:
        self.data = _data(rows)
        self.batch = decode_game_states(self.data)

    def time_decode_game_states(self, rows: int) -> None:
        decode_game_states(self.data)

    def time_features(self, rows: int) -> None:
        features(self.batch)

    def peakmem_decode_game_states(self, rows: int) -> None:
        decode_game_states(self.data)
