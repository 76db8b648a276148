"""``python -m emulators run NAME``."""
from emulators.cli import main

if __name__ == "__main__":
    main()
