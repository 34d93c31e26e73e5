"""The curve figure's groups: one colour per first key, distinct line styles within it (decompvae.reproduce._curves)."""

from decompvae.reproduce._curves import LINESTYLES, group_styles


def test_every_group_is_drawn_differently_and_a_method_keeps_its_colour():
    methods = [f"method_{i}" for i in range(10)]
    groups = [(m, v) for m in methods for v in (1.0, 4.0)]
    styles = group_styles(groups)
    assert len(set(styles.values())) == len(groups) == 20
    assert [styles[(m, 1.0)][0] for m in methods] == list(range(10))
    assert all(styles[(m, 1.0)][0] == styles[(m, 4.0)][0] for m in methods)
    assert {styles[(m, 1.0)][1] for m in methods} == {LINESTYLES[0]}
    assert {styles[(m, 4.0)][1] for m in methods} == {LINESTYLES[1]}


def test_single_key_groups_get_one_colour_each_in_first_seen_order():
    styles = group_styles([(9999.0,), (2.0,), (9.0,), (2.0,)])
    assert styles == {(9999.0,): (0, "-"), (2.0,): (1, "-"), (9.0,): (2, "-")}
