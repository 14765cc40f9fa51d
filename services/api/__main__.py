"""python -m services.api: the HTTP API and history recorder."""
from services.cli import main

if __name__ == "__main__":
    main(["serve", "api"])
