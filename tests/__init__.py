
from hypothesis import HealthCheck, settings

# Nothing in this suite is timed: a shared, loaded machine makes hypothesis' input generation and examples
# slow at times, which is not a failure (its deadline and too_slow health check are timings).
settings.register_profile("txrealtime", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("txrealtime")
