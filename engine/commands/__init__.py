"""One module per ``lifecycle`` subcommand; each exposes ``add_arguments`` and ``run``."""
