"""The Hub export bot: webhook → durable job → sandboxed export → one pull request.

See ``docs/bot.md`` for running it and ``DESIGN.md`` for the boundaries it keeps.
"""

__all__: list[str] = []
