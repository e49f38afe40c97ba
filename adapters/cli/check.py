"""`grievance check`: the health check every process of the stack runs (compose.yaml)."""

from __future__ import annotations

import urllib.error
import urllib.request

import click

from adapters import composition
from adapters.cli.kafka import reaching_kafka
from adapters.cli.session import EXIT_INFRASTRUCTURE, fail, opened, out
from adapters.cli.supervisors import print_set_aside


def register(main: click.Group) -> None:
    """Add this command to the `grievance` group."""
    main.add_command(check)


@click.command()
@click.option("--kafka", "with_kafka", is_flag=True, help="Check the Kafka broker and the engine's topics too.")
@click.option("--http", "url", help="Check that the HTTP service at this base URL answers its health endpoint.")
def check(with_kafka: bool, url: str | None) -> None:
    """Check that the event store answers (and the broker, or the HTTP service): exit 3 if one does not."""
    with opened(views=True) as session:
        position = session.chain.recorder.max_notification_id() or 0
        views = composition.build_views_watch(session.runner).health()
    out.print(f"store: ok, {position:,} events ({session.settings.redacted_url()})")
    out.print(f"views: at event {views.position:,}, {views.backlog:,} behind")
    print_set_aside(views)
    if with_kafka:
        kafka = session.settings.kafka
        with reaching_kafka(kafka):
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=kafka.servers, client_id="grievance-check")
            try:
                topics = set(admin.list_topics())
            finally:
                admin.close()
        missing = sorted({kafka.commands_topic, kafka.rejected_topic, kafka.events_topic} - topics)
        note = f"; not created yet: {', '.join(missing)}" if missing else ""
        out.print(f"kafka: ok at {kafka.bootstrap_servers}{note}")
    if url:
        health = url.rstrip("/") + "/api/v1/health"
        try:
            with urllib.request.urlopen(health, timeout=5) as response:
                status = response.status
        except (urllib.error.URLError, OSError) as e:
            fail(f"http: {health} does not answer: {e}", EXIT_INFRASTRUCTURE)
        if status != 200:
            fail(f"http: {health} answered {status}", EXIT_INFRASTRUCTURE)
        out.print(f"http: ok at {url}")
