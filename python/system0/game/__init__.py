"""The demo game: a seeded match simulator, a scripted player, and the shipped policy.

The names below are the part's surface (see ``system0.facade`` for how they load).
"""

from typing import TYPE_CHECKING

from system0.facade import lazy_exports

if TYPE_CHECKING:
    from system0.game.contract import (
        check_state as check_state,
    )
    from system0.game.contract import (
        state_validator as state_validator,
    )
    from system0.game.heuristic import heuristic_actions as heuristic_actions
    from system0.game.policy import (
        load_policy as load_policy,
    )
    from system0.game.policy import (
        policy_weights_path as policy_weights_path,
    )
    from system0.game.samples import (
        match_samples as match_samples,
    )
    from system0.game.samples import (
        training_batch as training_batch,
    )
    from system0.game.simulator import (
        MatchSimulator as MatchSimulator,
    )
    from system0.game.simulator import (
        Tick as Tick,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "system0.game.contract": (
            "check_state",
            "state_validator",
        ),
        "system0.game.heuristic": ("heuristic_actions",),
        "system0.game.policy": (
            "load_policy",
            "policy_weights_path",
        ),
        "system0.game.samples": (
            "match_samples",
            "training_batch",
        ),
        "system0.game.simulator": (
            "MatchSimulator",
            "Tick",
        ),
    },
)
