"""Where alert notifications go: the log, a webhook, a callback.

A sink is any callable taking a :class:`~system0.serving.alerts.Notification`; it raises to
say it failed (the :class:`~system0.serving.alerts.AlertManager` logs and counts the failure
and goes on with the other sinks). The webhook posts the JSON body Alertmanager's webhook
receiver sends (``version`` 4: ``status``, ``groupKey``, ``groupLabels``, ``commonLabels``,
``alerts`` with their labels, annotations and times), so receivers written for Alertmanager
read it as they are.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from system0.errors import Unavailable

if TYPE_CHECKING:
    from system0.serving.alerts import Notification

__all__ = ["CallbackSink", "LogSink", "WebhookSink", "webhook_payload"]


class LogSink:
    """Logs each notification, one line per alert (firing at WARNING, resolved at INFO)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("system0.alerts")

    def __call__(self, note: Notification) -> None:
        for alert in note.firing:
            self.logger.warning("alert firing: %s [%s]", alert.summary, alert.fingerprint)
        for alert in note.resolved:
            self.logger.info("alert resolved: %s [%s]", alert.summary, alert.fingerprint)


class CallbackSink:
    """Hands each notification to ``callback`` (a dashboard feed, a pager client...)."""

    def __init__(self, callback: Callable[[Notification], object]) -> None:
        self.callback = callback

    def __call__(self, note: Notification) -> None:
        self.callback(note)


def webhook_payload(note: Notification) -> dict[str, Any]:
    """The Alertmanager webhook (version 4) body for ``note``."""
    alerts = [a.as_json() for a in (*note.firing, *note.resolved)]
    common: dict[str, str] = {}
    if alerts:
        first: Mapping[str, str] = alerts[0]["labels"]
        common = {k: v for k, v in first.items() if all(a["labels"].get(k) == v for a in alerts)}
    return {
        "version": "4",
        "status": note.status,
        "receiver": note.receiver,
        "groupKey": note.group_key,
        "groupLabels": dict(note.group_labels),
        "commonLabels": common,
        "alerts": alerts,
        "truncatedAlerts": 0,
    }


class WebhookSink:
    """POSTs :func:`webhook_payload` as JSON to ``url``; a non-2xx answer, a refused
    connection or ``timeout`` seconds without an answer raise :class:`Unavailable`.

    It sends on the evaluating thread: keep ``timeout`` short (a slow receiver delays the
    next evaluation, never a request).
    """

    def __init__(
        self, url: str, *, timeout: float = 2.0, headers: Mapping[str, str] | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"WebhookSink url must be http:// or https://, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"WebhookSink timeout must be > 0 seconds, got {timeout!r}")
        self.url = url
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def __call__(self, note: Notification) -> None:
        body = json.dumps(webhook_payload(note), sort_keys=True).encode()
        req = urllib.request.Request(self.url, body, self.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise Unavailable(
                f"alert webhook {self.url} answered {exc.code} {exc.reason}; check the receiver"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise Unavailable(
                f"alert webhook {self.url} could not be reached ({exc}); check that the "
                "receiver runs and the url is right"
            ) from exc
