"""The evidence a challenger earned in shadow, and the gate it must pass before it serves.

While a version holds the `challenger` alias the gateway mirrors answered predictions to it and
counts how often it agreed with the champion (docs/gateway.md, "Challenger in shadow"). The
figures are read from either

- **Prometheus** (`kind: prometheus`): the gateway's counters summed over every replica, since
  each started (`gateway_shadow_pairs_total`, `gateway_shadow_agreed_total`); or
- **a gateway** (`kind: gateway`): `GET /api/v1/model`'s `shadow`, the figures of whichever
  replica answers (with several replicas a sample, so the minimum count is harder to reach,
  never easier).

Agreement is a sanity bar, not a score: a better model disagrees exactly where the champion was
wrong. The test-split gate (registry.py) judges quality; this one asks that the challenger has
run on real traffic, at all, without surprises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import httpx

from .registry import RegistryError

EvidenceKind = Literal["gateway", "prometheus"]
API_KEY_VARIABLE = "BRAINSCAN_GATEWAY_API_KEY"
"""Environment variable holding an API key for a gateway that requires one."""


class EvidenceUnavailable(RegistryError):
    """The evidence source cannot be read; no evidence is never taken as enough."""


@dataclass(frozen=True)
class ShadowEvidence:
    version: str
    mirrored: int
    """Predictions the challenger answered too, compared with the champion."""
    agreed: int
    source: str

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.mirrored if self.mirrored else None

    def tags(self) -> dict[str, str]:
        agreement = self.agreement
        return {
            "shadow.mirrored": str(self.mirrored),
            "shadow.agreed": str(self.agreed),
            "shadow.agreement": "" if agreement is None else f"{agreement:.6f}",
            "shadow.source": self.source,
        }

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "mirrored": self.mirrored, "agreed": self.agreed,
                "agreement": self.agreement, "source": self.source}  # fmt: skip


@dataclass(frozen=True)
class ShadowGate:
    """`register.shadow_min_requests` and `register.shadow_min_agreement`; off when both are 0."""

    min_requests: int = 0
    min_agreement: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.min_requests > 0 or self.min_agreement > 0

    def shortfall(self, evidence: ShadowEvidence) -> str | None:
        """Why the evidence is not enough, in words; None when it is."""
        if evidence.mirrored < max(self.min_requests, 1):
            return (
                f"{evidence.mirrored} predictions compared in shadow, "
                f"{max(self.min_requests, 1)} needed (register.shadow_min_requests)"
            )
        agreement = evidence.agreement or 0.0
        if agreement < self.min_agreement:
            return (
                f"agreement with production {agreement:.3f} over {evidence.mirrored} "
                f"predictions, {self.min_agreement:g} needed (register.shadow_min_agreement)"
            )
        return None

    def describe(self) -> str:
        return (
            f"at least {self.min_requests} predictions compared in shadow at agreement "
            f">= {self.min_agreement:g}"
        )


def read_evidence(kind: EvidenceKind, url: str, version: str, timeout: float = 10.0):
    """The shadow figures of challenger ``version`` from ``url``; EvidenceUnavailable when the
    source cannot be read. A source that has seen nothing of that version gives zeros."""
    url = url.rstrip("/")
    try:
        if kind == "prometheus":
            return _from_prometheus(url, version, timeout)
        return _from_gateway(url, version, timeout)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise EvidenceUnavailable(
            f"cannot read the shadow evidence from the {kind} at {url} ({exc}); check "
            "register.shadow_evidence_url, or promote with --force"
        ) from exc


def _from_gateway(url: str, version: str, timeout: float) -> ShadowEvidence:
    key = os.environ.get(API_KEY_VARIABLE)
    headers = {"X-API-Key": key} if key else {}
    response = httpx.get(f"{url}/api/v1/model", headers=headers, timeout=timeout)
    if response.status_code in (401, 403):
        raise ValueError(f"HTTP {response.status_code}: set {API_KEY_VARIABLE} to an API key")
    response.raise_for_status()
    shadow = response.json()["shadow"]
    source = f"gateway {url}"
    if not shadow or shadow["version"] != version:
        return ShadowEvidence(version, 0, 0, source)  # mirroring to another version, or none
    return ShadowEvidence(version, int(shadow["mirrored"]), int(shadow["agreed"]), source)


def _from_prometheus(url: str, version: str, timeout: float) -> ShadowEvidence:
    selector = f'{{challenger_version="{version}"}}'

    def total(metric: str) -> int:
        response = httpx.get(
            f"{url}/api/v1/query", params={"query": f"sum({metric}{selector})"}, timeout=timeout
        )
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(body.get("error", "query failed"))
        result = body["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    mirrored = total("gateway_shadow_pairs_total")
    agreed = total("gateway_shadow_agreed_total")
    return ShadowEvidence(version, mirrored, agreed, f"prometheus {url}")
