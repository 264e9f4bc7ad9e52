"""Where countries are, roughly: enough to tell a flight from an impossible journey.

The detector only sees ISO country codes (the gateway's geo stage resolves IPs), so travel speed is
measured between country centroids. Two requests from different countries closer in time than any
airliner could manage are "impossible travel". Countries missing from the table give no speed (a
missing fact never makes a user look guilty).
"""

from __future__ import annotations

import math

# ISO 3166-1 alpha-2 -> (latitude, longitude) of a central point, degrees.
CENTROIDS: dict[str, tuple[float, float]] = {
    "FR": (46.6, 2.4),
    "DE": (51.2, 10.4),
    "GB": (54.0, -2.0),
    "ES": (40.4, -3.7),
    "IT": (42.8, 12.8),
    "NL": (52.2, 5.3),
    "BE": (50.6, 4.6),
    "CH": (46.8, 8.2),
    "PL": (52.1, 19.4),
    "PT": (39.6, -8.0),
    "IE": (53.2, -8.2),
    "SE": (62.0, 15.0),
    "AT": (47.6, 14.1),
    "CZ": (49.8, 15.5),
    "RO": (45.9, 24.9),
    "UA": (49.0, 31.4),
    "RU": (61.5, 105.3),
    "TR": (39.0, 35.2),
    "AE": (24.0, 54.0),
    "IN": (22.0, 79.0),
    "CN": (35.9, 104.2),
    "HK": (22.3, 114.2),
    "TW": (23.7, 121.0),
    "JP": (36.2, 138.3),
    "KR": (36.5, 127.9),
    "SG": (1.35, 103.8),
    "VN": (16.0, 107.8),
    "TH": (15.9, 100.9),
    "ID": (-2.5, 118.0),
    "AU": (-25.3, 133.8),
    "NZ": (-41.0, 174.0),
    "US": (39.8, -98.6),
    "CA": (56.1, -106.3),
    "MX": (23.6, -102.5),
    "BR": (-14.2, -51.9),
    "AR": (-38.4, -63.6),
    "ZA": (-30.6, 22.9),
    "NG": (9.1, 8.7),
    "EG": (26.8, 30.8),
    "MA": (31.8, -7.1),
    "IL": (31.0, 34.9),
    "SA": (23.9, 45.1),
}
EARTH_RADIUS_KM = 6371.0


def distance_km(a: str | None, b: str | None) -> float | None:
    """Great-circle distance between two countries' centroids; None when either is unknown."""
    if not a or not b or a not in CENTROIDS or b not in CENTROIDS:
        return None
    (lat1, lon1), (lat2, lon2) = CENTROIDS[a], CENTROIDS[b]
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def speed_kmh(a: str | None, b: str | None, seconds: float) -> float | None:
    """Implied speed of going from country a to country b in ``seconds``; None if unknown."""
    d = distance_km(a, b)
    if d is None or a == b:
        return None
    return d / max(seconds / 3600.0, 1.0 / 60)  # a one-minute floor: clocks and batches jitter
