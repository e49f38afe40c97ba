"""The HTTP service (Litestar): the command and query API, the supervisors' dashboard page, Open311."""
