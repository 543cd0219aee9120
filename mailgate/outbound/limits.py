"""How many automatic replies may go out: caps per address, per domain and per client network.

Anyone can forge a From, so an acknowledgement could be aimed at a victim. The
outbox rows of the kinds in `RATE_LIMITED` carry the address they went to
(`rate_key`, and its domain in `rate_domain`) and the client network whose mail
caused them (`rate_network`); an hour's worth of those rows is what the caps
count, each cap through its own index (key, created_at), up to the cap: a count
reads at most a cap's worth of one hour of one address, domain or network,
however large the outbox grows and however busy the hour.
"""
from __future__ import annotations

import datetime as dt
import ipaddress

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import Outbox

RATE_LIMITED = {"ack", "rejection", "held", "command_refused", "my_tickets", "status_link"}


def domain_of(address: str) -> str:
    """What `rate_domain` holds for an address, and the per-domain cap counts."""
    return address.rsplit("@", 1)[-1]


def network_of(address: str | None) -> str | None:
    """The client network an automatic-reply cap counts: /24 for IPv4, /56 for IPv6."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _caps(with_network: bool):
    """One statement for the caps. Each count reads its own index range and stops at
    its cap (`address_cap`, …): whether a cap is reached is all it needs to know, so
    its cost is bounded by the cap, not by an hour's mail to a large domain. Built
    once per shape, with bind parameters: building and cache-keying it per message
    cost more than running it."""
    hour = Outbox.created_at >= bindparam("since")
    counted = [(Outbox.rate_key, "address"), (Outbox.rate_domain, "domain")]
    if with_network:
        counted.append((Outbox.rate_network, "network"))
    return select(*(
        select(func.count()).select_from(
            select(Outbox.id).where(column == bindparam(name), hour)
            .limit(bindparam(f"{name}_cap")).subquery()).scalar_subquery()
        for column, name in counted))


CAPS, CAPS_WITH_NETWORK = _caps(False), _caps(True)


def over_rate_limit(session: Session, settings: Settings, address: str,
                    now: dt.datetime, network: str | None = None) -> str | None:
    """Why no automatic reply may go to `address` now (caused by mail from `network`),
    or None: at most `ack_limit_per_hour` to one address, `ack_limit_per_domain` to
    one domain and `ack_limit_per_network` caused by one client network an hour."""
    out = settings.outbound
    domain = domain_of(address)
    values = {"since": now - dt.timedelta(hours=1), "address": address, "domain": domain,
              "address_cap": out.ack_limit_per_hour, "domain_cap": out.ack_limit_per_domain}
    if network:
        values.update(network=network, network_cap=out.ack_limit_per_network)
    to_address, to_domain, *from_network = session.execute(
        CAPS_WITH_NETWORK if network else CAPS, values).one()
    if to_address >= out.ack_limit_per_hour:
        return f"{address} had {out.ack_limit_per_hour} this hour"
    if to_domain >= out.ack_limit_per_domain:
        return f"{domain} had {out.ack_limit_per_domain} this hour"
    if from_network and from_network[0] >= out.ack_limit_per_network:
        return f"mail from {network} caused {out.ack_limit_per_network} this hour"
    return None
