"""The HTTP API (``lifecycle serve``): ``engine.api.app`` builds it, ``ingest`` checks what
comes in, ``temporal`` reaches Temporal, ``pages`` are the unsubscribe pages, ``metrics``
the Prometheus counters. See docs/api.md."""
