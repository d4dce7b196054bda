"""Who sent a request: the address the sign-in throttle counts and the audit log records.

Behind a balancer every request comes from the balancer's address, so counting failed sign-ins
per address would lock out everyone at once, and the audit log would name the balancer. A
balancer listed in FORWARDED_ALLOW_IPS appends the address it saw to ``X-Forwarded-For``
(nginx's ``$proxy_add_x_forwarded_for``); the client is the nearest address in that chain, read
from the right, that is not such a balancer. Anything further left was written by the client
and is ignored, so a client cannot pick the address it is counted under. A peer that is not
a listed balancer is the client, whatever header it sends. The gate's check of who may name
the user (``AUTH=proxy``) keeps using the peer itself.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Networks = tuple | None   # ip_network objects; None: every peer is a balancer (FORWARDED_ALLOW_IPS=*)


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _trusted(address: str, forwarders: tuple) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in forwarders)


def client_address(peer: str | None, forwarded_for: Iterable[str], forwarders: Networks) -> str | None:
    """The client's address for a request from ``peer`` carrying the ``X-Forwarded-For``
    header lines ``forwarded_for``. A hop that is not an IP address ends the walk: the last
    address read (a balancer's) is then counted, never something the client made up. With
    ``forwarders`` None (``*``: any peer is a balancer, whose own address is then unknown) one
    hop is read: the address the peer saw."""
    address = _address(peer or "")
    if address is None:
        return peer
    hops = [hop for line in forwarded_for for hop in line.split(",")]
    if forwarders is None:
        return (_address(hops[-1]) or address) if hops else address
    while hops and _trusted(address, forwarders):
        hop = _address(hops.pop())
        if hop is None:
            break
        address = hop
    return address
