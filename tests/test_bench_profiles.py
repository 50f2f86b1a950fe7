"""The benchmarks compare like with like: the seed profile is the program's own pods with
only the intervals left at HTCondor's defaults."""

from bench.pool import rendered_pool
from tests.test_condor_config import role_view

INTERVAL_KNOBS = ("UPDATE_INTERVAL", "SCHEDD_INTERVAL", "MASTER_UPDATE_INTERVAL", "NEGOTIATOR_UPDATE_INTERVAL",
                  "COLLECTOR_UPDATE_INTERVAL",
                  "NEGOTIATOR_INTERVAL",
                  "NEGOTIATOR_CYCLE_DELAY", "NEGOTIATOR_MIN_INTERVAL")


def test_the_seed_profile_leaves_every_interval_to_htcondors_defaults():
    seed = role_view(rendered_pool("seed defaults", 2), "schedd")
    assert not [knob for knob in INTERVAL_KNOBS if knob in seed]


def test_the_profiles_differ_in_the_intervals_only():
    project, seed = rendered_pool("project", 2), rendered_pool("seed defaults", 2)
    assert all(knob in role_view(project, "schedd") for knob in INTERVAL_KNOBS)
    for role in ("centralManager", "schedd", "worker"):
        without = {k: v for k, v in role_view(project, role).items() if k not in INTERVAL_KNOBS}
        assert without == role_view(seed, role), role
