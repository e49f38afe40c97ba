"""Which index a page of the grievance list walks: the one the exact counts say reads the fewest rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.grievance_list_plan import ListCounts, Walk, cheapest_walk

PAGE = 51  # a page of 50, and one more to know whether there is a next


def test_nothing_is_read_when_the_counts_show_nothing_can_match() -> None:
    assert cheapest_walk(ListCounts(in_unit=0, in_chart=1_000_000), PAGE) is None
    no_replies = ListCounts(in_unit=300_000, in_chart=1_000_000, status_in_unit=0, status_in_chart=0)
    assert cheapest_walk(no_replies, PAGE) is None
    nothing_late = ListCounts(in_unit=300_000, in_chart=1_000_000, overdue_in_unit=0)
    assert cheapest_walk(nothing_late, PAGE) is None


def test_a_common_status_walks_the_units_own_list_and_a_rare_one_the_status_index() -> None:
    claimed_in_a_community = ListCounts(in_unit=5_000, in_chart=1_000_000, status_in_unit=4_000,
                                        status_in_chart=800_000, at_root=False)  # fmt: skip
    assert cheapest_walk(claimed_in_a_community, PAGE) is Walk.LIST
    waiting_in_a_street = ListCounts(in_unit=300_000, in_chart=1_000_000, status_in_unit=12,
                                     status_in_chart=40, at_root=False)  # fmt: skip
    assert cheapest_walk(waiting_in_a_street, PAGE) is Walk.STATUS


def test_overdue_ones_are_read_and_sorted_when_few_and_found_along_the_list_when_most_are() -> None:
    a_few_late = ListCounts(in_unit=300_000, in_chart=1_000_000, overdue_in_unit=800, at_root=False)
    assert cheapest_walk(a_few_late, PAGE) is Walk.OVERDUE
    a_backlog = ListCounts(in_unit=300_000, in_chart=1_000_000, overdue_in_unit=240_000, at_root=False)
    assert cheapest_walk(a_backlog, PAGE) is Walk.LIST


def test_a_rare_level_walks_the_level_index_and_a_common_one_the_units_list() -> None:
    grids_in_a_street = ListCounts(in_unit=300_000, in_chart=1_000_000, level_in_unit=40, level_in_chart=90,
                                   at_root=False)  # fmt: skip
    assert cheapest_walk(grids_in_a_street, PAGE) is Walk.LEVEL
    households_in_a_street = ListCounts(in_unit=300_000, in_chart=1_000_000, level_in_unit=290_000,
                                        level_in_chart=970_000, at_root=False)  # fmt: skip
    assert cheapest_walk(households_in_a_street, PAGE) is Walk.LIST
    # The level's counts are estimates: none estimated still reads the (short) level index, not nothing.
    none_estimated = ListCounts(in_unit=300_000, in_chart=1_000_000, level_in_unit=0, level_in_chart=3,
                                at_root=False)  # fmt: skip
    assert cheapest_walk(none_estimated, PAGE) is Walk.LEVEL


def test_at_the_root_a_category_walks_its_own_index_but_never_below_it() -> None:
    at_root = ListCounts(in_unit=1_000_000, in_chart=1_000_000, category_asked=True)
    assert cheapest_walk(at_root, PAGE) is Walk.CATEGORY
    in_a_street = ListCounts(in_unit=300_000, in_chart=1_000_000, category_asked=True, at_root=False)
    assert cheapest_walk(in_a_street, PAGE) is Walk.LIST
    # A counted status says more than an uncounted category.
    rare_status = ListCounts(in_unit=1_000_000, in_chart=1_000_000, status_in_unit=30, status_in_chart=30,
                             category_asked=True)  # fmt: skip
    assert cheapest_walk(rare_status, PAGE) is Walk.STATUS


@given(
    in_chart=st.integers(1, 10**7),
    share=st.floats(0, 1),
    status_share=st.none() | st.floats(0, 1),
    overdue_share=st.none() | st.floats(0, 1),
    wanted=st.integers(1, 10_001),
)
def test_the_chosen_walk_never_reads_more_than_the_units_list_would(
    in_chart: int, share: float, status_share: float | None, overdue_share: float | None, wanted: int
) -> None:
    in_unit = round(in_chart * share)
    status_in_unit = None if status_share is None else round(in_unit * status_share)
    counts = ListCounts(
        in_unit=in_unit,
        in_chart=in_chart,
        status_in_unit=status_in_unit,
        status_in_chart=None if status_in_unit is None else status_in_unit + round((in_chart - in_unit) / 2),
        overdue_in_unit=None if overdue_share is None else round(in_unit * overdue_share),
        at_root=in_unit == in_chart,
    )
    walk = cheapest_walk(counts, wanted)
    if walk is None:
        assert 0 in (in_unit, status_in_unit, counts.overdue_in_unit)
        return
    matches = min(n for n in (in_unit, status_in_unit, counts.overdue_in_unit) if n is not None)
    along_the_list = min(wanted * in_unit / matches, in_unit)
    if walk is Walk.STATUS:
        assert counts.status_in_chart is not None
        assert min(wanted * counts.status_in_chart / matches, counts.status_in_chart) <= along_the_list
    if walk is Walk.OVERDUE:
        assert counts.overdue_in_unit is not None
        assert 2 * counts.overdue_in_unit <= along_the_list
