"""Which index a page of the grievance list walks: the one the exact counts say reads the fewest rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.dashboard.list_plan import ListCounts, Walk, cheapest_walk

PAGE = 51  # a page of 50, and one more to know whether there is a next


def test_nothing_is_read_when_the_counts_show_nothing_can_match() -> None:
    assert cheapest_walk(ListCounts(in_unit=0), PAGE) is None
    assert cheapest_walk(ListCounts(in_unit=300_000, status_in_unit=0, status_in_chart=0), PAGE) is None
    assert cheapest_walk(ListCounts(in_unit=300_000, overdue_in_unit=0), PAGE) is None
    assert cheapest_walk(ListCounts(in_unit=300_000, category_in_unit=0, category_in_chart=9), PAGE) is None


def test_a_common_status_walks_the_units_own_list_and_a_rare_one_the_status_index() -> None:
    claimed_in_a_community = ListCounts(in_unit=5_000, status_in_unit=4_000, status_in_chart=800_000)
    assert cheapest_walk(claimed_in_a_community, PAGE) is Walk.LIST
    waiting_in_a_street = ListCounts(in_unit=300_000, status_in_unit=12, status_in_chart=40)
    assert cheapest_walk(waiting_in_a_street, PAGE) is Walk.STATUS


def test_overdue_ones_are_read_and_sorted_when_few_and_found_along_the_list_when_most_are() -> None:
    assert cheapest_walk(ListCounts(in_unit=300_000, overdue_in_unit=800), PAGE) is Walk.OVERDUE
    assert cheapest_walk(ListCounts(in_unit=300_000, overdue_in_unit=240_000), PAGE) is Walk.LIST


def test_a_rare_level_walks_the_level_index_and_a_common_one_the_units_list() -> None:
    grids_in_a_street = ListCounts(in_unit=300_000, level_in_unit=40, level_in_chart=90)
    assert cheapest_walk(grids_in_a_street, PAGE) is Walk.LEVEL
    households_in_a_street = ListCounts(in_unit=300_000, level_in_unit=290_000, level_in_chart=970_000)
    assert cheapest_walk(households_in_a_street, PAGE) is Walk.LIST
    # The level's counts are estimates: none estimated still reads the (short) level index, not nothing.
    none_estimated = ListCounts(in_unit=300_000, level_in_unit=0, level_in_chart=3)
    assert cheapest_walk(none_estimated, PAGE) is Walk.LEVEL


def test_the_rarest_of_several_filters_leads() -> None:
    rare_category = ListCounts(in_unit=1_000_000, status_in_unit=600_000, status_in_chart=600_000,
                               category_in_unit=25, category_in_chart=25)  # fmt: skip
    assert cheapest_walk(rare_category, PAGE) is Walk.CATEGORY
    rare_status = ListCounts(in_unit=1_000_000, status_in_unit=30, status_in_chart=30,
                             category_in_unit=400_000, category_in_chart=400_000)  # fmt: skip
    assert cheapest_walk(rare_status, PAGE) is Walk.STATUS
    # At the root a filter's own index holds a subset of the list's rows, in its order: never the longer walk.
    common_category_at_root = ListCounts(in_unit=1_000_000, category_in_unit=900_000, category_in_chart=900_000)
    assert cheapest_walk(common_category_at_root, PAGE) is Walk.CATEGORY


@given(
    in_unit=st.integers(1, 10**7),
    status_share=st.none() | st.floats(0, 1),
    category_share=st.none() | st.floats(0, 1),
    overdue_share=st.none() | st.floats(0, 1),
    elsewhere=st.integers(0, 10**6),
    wanted=st.integers(1, 10_001),
)
def test_the_chosen_walk_never_reads_more_than_the_units_list_would(
    in_unit: int, status_share: float | None, category_share: float | None, overdue_share: float | None,
    elsewhere: int, wanted: int,
) -> None:  # fmt: skip
    def share(of: float | None) -> int | None:
        return None if of is None else round(in_unit * of)

    status, category, overdue = share(status_share), share(category_share), share(overdue_share)
    counts = ListCounts(
        in_unit=in_unit,
        status_in_unit=status,
        status_in_chart=None if status is None else status + elsewhere,
        category_in_unit=category,
        category_in_chart=None if category is None else category + elsewhere,
        overdue_in_unit=overdue,
    )
    walk = cheapest_walk(counts, wanted)
    counted = [n for n in (in_unit, status, category, overdue) if n is not None]
    if walk is None:
        assert 0 in counted
        return
    matches = min(counted)

    def walked(rows: int) -> float:
        return min(wanted * rows / matches, rows)

    read = {
        Walk.LIST: walked(in_unit),
        Walk.STATUS: walked(counts.status_in_chart or 0),
        Walk.CATEGORY: walked(counts.category_in_chart or 0),
        Walk.OVERDUE: 2 * (overdue or 0),
    }[walk]
    assert read <= walked(in_unit)
