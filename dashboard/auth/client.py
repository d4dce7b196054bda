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

Networks = tuple | None   # ip_network objects; None: FORWARDED_ALLOW_IPS=*


def _address(text: str) -> str | None:
    """An address as one form: ``1.2.3.4:80`` and ``[2001:db8::1]:443`` (some balancers
    append the port) without the port, an IPv4-mapped IPv6 address (a dual-stack socket's
    peer) as IPv4; None for anything else."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def _trusted(address: str, forwarders: tuple) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in forwarders)


def client_address(peer: str | None, forwarded_for: Iterable[str], forwarders: Networks) -> str | None:
    """The client's address for a request from ``peer`` carrying the ``X-Forwarded-For``
    header lines ``forwarded_for``.

    A peer that is no IP address (a unix socket, which gunicorn also trusts) counts as a
    balancer. A hop that is not an IP address ends the walk: the last address read (a
    balancer's) is then counted, never something the client made up. With ``forwarders``
    None (``*``) the header is not read at all: any peer would be believed, so a client that
    reaches the app directly could pick a new address for every guess at a password; list the
    balancers' addresses to count clients behind them one by one."""
    address = _address(peer or "")
    if forwarders is None:
        return address or peer
    hops = [hop for line in forwarded_for for hop in line.split(",")]
    while hops and (address is None or _trusted(address, forwarders)):
        hop = _address(hops.pop())
        if hop is None:
            break
        address = hop
    return address or peer
