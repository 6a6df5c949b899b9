"""The process: configuration, wiring, the TaskGroup, sd_notify, the CLI and the status snapshot.

:mod:`gateway.daemon.config` parses ``posgw.toml``; :mod:`gateway.daemon.daemon` builds every
part once and runs them in one TaskGroup; :mod:`gateway.daemon.sdnotify` speaks systemd's
notify protocol; :mod:`gateway.daemon.cli` is the ``posgw`` command. This ``__init__`` imports
nothing, so that :mod:`gateway.web` can read the snapshot types without pulling in the daemon.
"""
