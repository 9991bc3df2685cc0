"""The Hub export bot: webhook → durable job → sandboxed export → one pull request.

Subpackages follow the flow: :mod:`bot.web` (webhook in), :mod:`bot.jobs` (durable jobs and
workers), :mod:`bot.pipeline` (snapshot → sandboxed export → checked output → PR text),
:mod:`bot.sandbox` (backends), :mod:`bot.hub` (the Hub API). See ``docs/bot.md`` to run it and
``docs/architecture.md`` for the data flow and the boundaries it keeps.
"""

__all__: list[str] = []
