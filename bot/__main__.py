"""``python -m bot`` is ``export-bot``."""

from bot.cli import main

if __name__ == "__main__":
    main()
