"""Outbound campaigns: contact lists (``contacts``), the scheduler (``scheduler``), the simulated and Asterisk
PBX backends (``pbx_sim``, ``pbx_ami``), running them (``runner``), progress display and the demo.

See docs/campaigns.md. Twisted is imported by the scheduler and backends, never by ``contacts``.
"""
