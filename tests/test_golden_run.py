"""A short fixed-seed run logs the numbers it logged when tests/golden/run_log.json was written (_golden_run.py)."""

import json

import numpy as np

from _golden_run import GOLDEN, golden_rows


def _numbers(rows):
    return [{k: v for k, v in r.items() if isinstance(v, (int, float))} for r in rows]


def test_the_golden_run_logs_the_same_numbers(tmp_path):
    expected, got = json.loads(GOLDEN.read_text()), golden_rows(tmp_path)
    for part in ("log", "summary"):
        want, have = _numbers(expected[part]), _numbers(got[part])
        assert [sorted(r) for r in have] == [sorted(r) for r in want], part  # the same columns, rows and order
        for w, h in zip(want, have):
            for key in w:
                np.testing.assert_allclose(h[key], w[key], rtol=1e-6, atol=1e-6, err_msg=f"{part} {key}")
    columns = set(expected["log"][0])
    assert {"regulariser.mmd", "regulariser.tc", "regulariser.dip"} <= columns  # the composed forms are exercised
