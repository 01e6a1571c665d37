"""Evaluate rendered NetworkPolicies the way the Kubernetes API defines them (no cluster needed).

A connection from A to B on a port is allowed when B's ingress and A's egress both allow it: a pod
selected by no policy of a direction is open in that direction; a selected pod accepts only what
some rule of some policy selecting it lists.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace + labels) or, with namespace None, an address outside the cluster."""

    name: str
    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = "10.244.0.10"
    # container port number -> port name, for a destination
    ports: dict[int, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {} if self.namespace is None else {"kubernetes.io/metadata.name": self.namespace}


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions all hold; {} matches everything."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(c) for c in block.get("except", []))
    if other.namespace is None:  # pod and namespace selectors only ever match pods
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def _ports_match(rule: dict[str, Any], destination: Endpoint, port: int) -> bool:
    if "ports" not in rule:
        return True
    for entry in rule["ports"]:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        wanted = entry.get("port")
        if wanted is None or wanted == port or wanted == destination.ports.get(port):
            return True
    return False


def _direction_allows(
    policies: list[dict[str, Any]],
    subject: Endpoint,
    other: Endpoint,
    destination: Endpoint,
    port: int,
    direction: str,
) -> bool:
    policy_type, rules_key, peers_key = {
        "ingress": ("Ingress", "ingress", "from"),
        "egress": ("Egress", "egress", "to"),
    }[direction]
    selecting = [
        p
        for p in policies
        if subject.namespace is not None
        and p["metadata"]["namespace"] == subject.namespace
        and policy_type in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules_key, []):
            peers = rule.get(peers_key)
            peer_ok = peers is None or any(
                _peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers
            )
            if peer_ok and _ports_match(rule, destination, port):
                return True
    return False


def allows(
    policies: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int
) -> bool:
    """Whether source may open a TCP connection to destination's port."""
    return _direction_allows(
        policies, source, destination, destination, port, "egress"
    ) and _direction_allows(policies, destination, source, destination, port, "ingress")
