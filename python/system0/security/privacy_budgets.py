"""Privacy budgets for many datasets: one accountant (``system0.security.privacy``) each,
made on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from system0.security.audit_sink import AuditSink
from system0.security.privacy import PrivacyAccountant
from system0.security.privacy_mechanisms import Mechanism, check_delta, check_epsilon

__all__ = ["PrivacyBudgets"]


class PrivacyBudgets:
    """One :class:`PrivacyAccountant` per dataset, made on first use with shared settings.

    ``epsilon``/``delta`` is each dataset's default budget; ``budgets`` overrides it for named
    datasets. Every accountant shares ``mechanism``, ``max_contributions``, ``enabled`` (the
    config switch) and the ``audit`` sink.
    """

    def __init__(
        self,
        epsilon: float,
        delta: float = 0.0,
        *,
        budgets: Mapping[str, tuple[float, float]] | None = None,
        mechanism: Mechanism = "laplace",
        max_contributions: int = 1,
        enabled: bool = True,
        audit: AuditSink | None = None,
    ) -> None:
        check_epsilon(epsilon, "PrivacyBudgets")
        check_delta(delta, "PrivacyBudgets")
        self._default = (epsilon, delta)
        self._budgets = dict(budgets or {})
        self._settings: dict[str, Any] = {
            "mechanism": mechanism,
            "max_contributions": max_contributions,
            "enabled": enabled,
            "audit": audit,
        }
        self._accountants: dict[str, PrivacyAccountant] = {}
        self._lock = threading.Lock()
        for name in self._budgets:  # validate every override now, not at first use
            self[name]

    def __getitem__(self, dataset: str) -> PrivacyAccountant:
        with self._lock:
            acc = self._accountants.get(dataset)
            if acc is None:
                eps, dlt = self._budgets.get(dataset, self._default)
                acc = PrivacyAccountant(dataset, eps, dlt, **self._settings)
                self._accountants[dataset] = acc
            return acc

    def __contains__(self, dataset: object) -> bool:
        return dataset in self._accountants

    def datasets(self) -> list[str]:
        with self._lock:
            return sorted(self._accountants)

    def replay(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Re-charge recorded releases to their datasets' accountants.

        See :meth:`PrivacyAccountant.replay`; returns how many releases were charged.
        """
        recs = [r for r in records if r.get("kind") == "dp_release" and r.get("dataset")]
        return sum(self[name].replay(recs) for name in sorted({r["dataset"] for r in recs}))
