"""Custom activities that rules can ``call``. Every module in this package is imported by
``engine.runtime.registry.load_registry``; see docs/activities.md."""
