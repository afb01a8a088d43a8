"""English formats for the admin: a 24-hour clock, and the zone, since times are in UTC."""

DATETIME_FORMAT = "N j, Y, H:i T"  # Nov. 9, 2026, 18:30 UTC
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
