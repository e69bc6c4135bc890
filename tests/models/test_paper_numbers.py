"""Params and FLOPs of every trained row of the paper's study specs (Tables 1 and 5-10), against the paper's
numbers that each row's ``paper`` mapping holds (``studies/table*.yaml``)."""

import pytest

from ean.profile import profile_model
from tests.paper_specs import SpecRow, paper_rows

TOLERANCE = 0.02

# Rows where 2% cannot hold, keyed "<study>/<row id>", with the reason the README gives (README, "Params and
# FLOPs against the paper").
KNOWN_DEVIATIONS = {
    "table7/fasterrcnn": (
        0.75,
        "torchvision's fasterrcnn_resnet50_fpn at 224 px costs 10.8 GMACs a frame (its FPN and RPN head alone "
        "5.3 G); the paper's figure implies a 4.4 G-a-frame detector, which it does not name",
    ),
    "table7/all": (
        0.03,
        "we count the attention products of the 392 tokens (0.32 G), which the authors' counter ignores; "
        "without them the row is at +1.5%",
    ),
    "table10/no_dilation": (
        0.03,
        "real 5x5 and 5 kernels add 0.18M / 0.67G here; the paper reports +1.2M / +1.4G, more than the "
        "kernels can add (its other rows match within 2%)",
    ),
}

ROWS = paper_rows()


def _relative(ours: float, paper: float | None) -> float:
    return 0.0 if paper is None else ours / paper - 1


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_params_and_flops_match_the_paper(row: SpecRow):
    """The row's network, as the runner composes and counts it, against the paper (``-s`` prints each row)."""
    assert row.paper_params is not None or row.paper_flops is not None, f"{row.name}: the spec gives no paper counts"
    profile = profile_model(row.model)
    params, flops = profile.params / 1e6, profile.macs / 1e9
    dp, df = _relative(params, row.paper_params), _relative(flops, row.paper_flops)
    tolerance, reason = KNOWN_DEVIATIONS.get(row.name, (TOLERANCE, ""))
    known = f"known: {reason}" if reason else "not a known deviation"
    mark = "" if max(abs(dp), abs(df)) <= TOLERANCE else f"  ({known})"
    print(
        f"\n{row.name:24} {params:7.2f}M / {row.paper_params or '-':>5}M ({dp:+.1%}) "
        f"{flops:7.2f}G / {row.paper_flops or '-':>5}G ({df:+.1%}){mark}"
    )
    assert abs(dp) <= tolerance and abs(df) <= tolerance, (
        f"{row.name} off the paper's numbers: params {dp:+.1%}, FLOPs {df:+.1%} (tolerance {tolerance:.0%})"
    )


def test_known_deviations_name_real_rows():
    assert set(KNOWN_DEVIATIONS) <= {r.name for r in ROWS}


def test_eab_parts_match_the_authors_code():
    """Per-part counts measured on the authors' code (official-code-facts.md), 8F RGB, 224 px."""
    parts = profile_model({}).parts
    expected = {  # part: (params, GMACs)
        "blocks.1": (6.0e3, 0.054),  # authors: 3.5k / 0.047G; our ESP-Net is 2 channels wide there, not 1
        "blocks.2": (0.103e6, 0.739),
        "blocks.3": (0.671e6, 0.742),
        "blocks.4": (4.777e6, 0.746),
        "sois.5": (6.645e6, 0.790),
        "fc": (0.357e6, None),
    }
    for part, (params, gmacs) in expected.items():
        assert parts[part]["params"] == pytest.approx(params, rel=0.05), part
        if gmacs is not None:
            assert parts[part]["macs"] / 1e9 == pytest.approx(gmacs, rel=0.02), part
    assert parts["backbone"]["params"] == pytest.approx(23.69e6, rel=0.002)
