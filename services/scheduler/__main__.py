"""python -m services.scheduler"""
from services.cli import main

if __name__ == "__main__":
    main(["serve", "scheduler"])
