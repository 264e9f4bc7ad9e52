"""Benign surprises in simulated traffic: what changes in a real company and is not an attack.

- a user changes role (a rep promoted to manager, a support agent moving to sales): from that day
  the audit lines carry the new roles, the user works the new role's mix and sees a new territory;
- a team is reorganised: on one day its members get new territories (half of their records are
  new to them) and a new team name;
- public holidays at a site (detectors.calendar), month-end and quarter-end peaks: in
  detectors.simtraffic.

Each change is a new *persona* (a copy of the SimUser) from a given day on; the simulator asks
:func:`persona` which one works on a day, so the rest of the code never needs to know.
"""

from __future__ import annotations

import dataclasses

from detectors.simulate import ROLES_OF, Simulation, SimUser, _visible_ids

PROMOTIONS = {"sales_rep": "sales_manager", "support_agent": "sales_rep", "sales_manager": "admin"}
ROLE_CHANGE_SHARE = 0.04


def plan(sim: Simulation) -> dict[str, list[tuple[int, SimUser]]]:
    """user id -> [(first day, persona)], in day order; drawn from ``sim.rng`` after the users."""
    rng, days = sim.rng, sim.days
    changes: dict[str, list[tuple[int, SimUser]]] = {}
    if days < 10:
        return changes
    for user in sim.users:
        new_role = PROMOTIONS.get(user.role)
        earliest = max(user.first_day + 7, days // 4)
        if new_role and rng.random() < ROLE_CHANGE_SHARE and earliest <= days - 3:  # a late joiner may have no room
            day = rng.randint(earliest, days - 3)
            changes.setdefault(user.id, []).append(
                (
                    day,
                    dataclasses.replace(
                        user,
                        role=new_role,
                        roles=ROLES_OF[new_role],
                        visible=_visible_ids(rng, new_role, sim.n_customers),
                    ),
                )
            )
    teams = sorted({u.team for u in sim.users if u.role in ("sales_rep", "sales_manager")})
    if teams:
        team, day = rng.choice(teams), rng.randint(days // 3, days - 3)
        for user in sim.users:
            if user.team != team or not user.visible or user.id in changes:
                continue
            fresh = _visible_ids(rng, user.role, sim.n_customers)
            keep = rng.sample(user.visible, len(user.visible) // 2)
            changes[user.id] = [
                (day, dataclasses.replace(user, team=f"{team}-reorg", visible=sorted(set(keep) | set(fresh[::2]))))
            ]
    return changes


def persona(sim: Simulation, user: SimUser, day: int) -> SimUser:
    """Who ``user`` is on ``day`` (the original, or the latest change that has happened)."""
    current = user
    for first, changed in sim.changes.get(user.id, ()):
        if day >= first:
            current = changed
    return current
