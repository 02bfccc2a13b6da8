"""system0.core: telemetry, tracing, structured logging, configuration and backpressure.

The names below are the part's surface (see ``system0.facade`` for how they load);
``system0.core.config`` is a package of its own.
"""

from typing import TYPE_CHECKING

from system0.facade import lazy_exports

if TYPE_CHECKING:
    from system0.core.config import (
        AIConfig as AIConfig,
    )
    from system0.core.config import (
        load_from_yaml as load_from_yaml,
    )
    from system0.core.energy import (
        EnergyMeter as EnergyMeter,
    )
    from system0.core.energy import (
        measure as measure,
    )
    from system0.core.error_handling import (
        BoundedQueue as BoundedQueue,
    )
    from system0.core.error_handling import (
        CircuitBreaker as CircuitBreaker,
    )
    from system0.core.error_handling import (
        ConcurrencyLimiter as ConcurrencyLimiter,
    )
    from system0.core.error_handling import (
        TokenBucket as TokenBucket,
    )
    from system0.core.logging import (
        configure_logging as configure_logging,
    )
    from system0.core.logging import (
        get_logger as get_logger,
    )
    from system0.core.telemetry import (
        counter as counter,
    )
    from system0.core.telemetry import (
        gauge as gauge,
    )
    from system0.core.telemetry import (
        histogram as histogram,
    )
    from system0.core.telemetry import (
        now_ns as now_ns,
    )
    from system0.core.telemetry import (
        render_prometheus as render_prometheus,
    )
    from system0.core.telemetry import (
        timer as timer,
    )
    from system0.core.tracing import (
        span as span,
    )
    from system0.core.tracing import (
        traced as traced,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "system0.core.config": (
            "AIConfig",
            "load_from_yaml",
        ),
        "system0.core.energy": (
            "EnergyMeter",
            "measure",
        ),
        "system0.core.error_handling": (
            "BoundedQueue",
            "CircuitBreaker",
            "ConcurrencyLimiter",
            "TokenBucket",
        ),
        "system0.core.logging": (
            "configure_logging",
            "get_logger",
        ),
        "system0.core.telemetry": (
            "counter",
            "gauge",
            "histogram",
            "now_ns",
            "render_prometheus",
            "timer",
        ),
        "system0.core.tracing": (
            "span",
            "traced",
        ),
    },
)
