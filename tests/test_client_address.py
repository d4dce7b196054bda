"""The client address the sign-in throttle and the audit log use (dashboard/auth/client.py),
for generated X-Forwarded-For chains; behind a real nginx in tests/test_forwarded_client.py."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.auth.client import client_address
from dashboard.auth.settings import AuthConfigError, _forwarders

BALANCERS = _forwarders("10.0.0.0/24,::1")
balancer = st.integers(1, 254).map(lambda n: f"10.0.0.{n}")
outsider = st.one_of(st.integers(1, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
                     st.integers(1, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))).filter(
    lambda a: not any(ipaddress.ip_address(a) in net for net in BALANCERS))
junk = st.sampled_from(["unknown", "", "1.2.3.4:80:90", "not an address", "999.1.1.1", "_hidden", "[::1"])
anything = st.one_of(outsider, balancer, junk)


def header(hops: list[str]) -> list[str]:
    return [", ".join(hops)] if hops else []


@given(outsider, st.lists(anything, max_size=5))
def test_a_peer_that_is_no_balancer_is_the_client_whatever_it_sends(peer, hops):
    assert client_address(peer, header(hops), BALANCERS) == peer


@given(st.lists(anything, max_size=5), outsider, st.lists(balancer, max_size=3), balancer)
def test_behind_balancers_the_client_is_the_address_the_first_balancer_saw(forged, client, chain, peer):
    # what the client wrote, then the client's address as the first balancer appended it, then
    # the balancers between it and the app; the app's peer is the last balancer
    assert client_address(peer, header([*forged, client, *chain]), BALANCERS) == client


@given(st.lists(anything, max_size=5), junk.filter(lambda j: j.strip()), st.lists(balancer, max_size=3), balancer)
def test_a_hop_that_is_no_address_stops_at_the_last_balancer(forged, bad, chain, peer):
    expected = chain[0] if chain else peer
    assert client_address(peer, header([*forged, bad, *chain]), BALANCERS) == expected


@given(st.lists(anything, max_size=5), outsider, outsider)
def test_with_any_peer_trusted_the_header_is_not_read(forged, client, peer):
    # FORWARDED_ALLOW_IPS=*: a client reaching the app directly must not pick its address
    assert client_address(peer, header([*forged, client]), None) == peer


@given(st.lists(anything, max_size=5), outsider, st.lists(balancer, max_size=3), st.sampled_from(["", None]))
def test_a_unix_socket_peer_is_a_balancer(forged, client, chain, peer):
    assert client_address(peer, header([*forged, client, *chain]), BALANCERS) == client
    assert client_address(peer, [], BALANCERS) == peer


def test_several_header_lines_are_one_chain_and_addresses_are_normalised():
    assert client_address("10.0.0.5", ["203.0.113.9", " 10.0.0.7 "], BALANCERS) == "203.0.113.9"
    assert client_address("::1", ["2001:DB8::0:1"], BALANCERS) == "2001:db8::1"
    # a port some balancers append, a dual-stack socket's IPv4-mapped peer
    assert client_address("10.0.0.5", ["203.0.113.9:5123"], BALANCERS) == "203.0.113.9"
    assert client_address("10.0.0.5", ["[2001:db8::7]:443"], BALANCERS) == "2001:db8::7"
    assert client_address("::ffff:10.0.0.5", ["203.0.113.9"], BALANCERS) == "203.0.113.9"
    assert client_address("::ffff:203.0.113.9", ["10.0.0.1"], BALANCERS) == "203.0.113.9"


def test_the_setting_is_read_as_gunicorn_reads_it():
    assert _forwarders("*") is None
    assert [str(n) for n in _forwarders("127.0.0.1, ::1, 10.1.0.0/16")] == ["127.0.0.1/32", "::1/128", "10.1.0.0/16"]
    with pytest.raises(AuthConfigError, match="FORWARDED_ALLOW_IPS: 'lb.example'"):
        _forwarders("lb.example")
