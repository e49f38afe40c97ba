"""The supervisors' dashboard read model, in one home:

- `changes`: what each grievance event changes (pure: no storage), rolled up the chart;
- `rates`: the three rates 12345 hotlines are ranked by;
- `tables`: its tables in SQLite's and PostgreSQL's dialects, written a page and its position at a time;
- `runner`: projects pages of the event log into the tables (catching up, or rebuilding from zero);
- `queries`: the questions it answers (`Dashboard`), as the Structs of `schemas/dashboard.py`;
- `list_plan`: which index a page of the grievance list walks; `cache`: answers kept until the views move.

A new figure touches this folder, `schemas/dashboard.py` and the presentations (HTTP, CLI, the page).
"""
