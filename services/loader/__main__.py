"""python -m services.loader"""
from services.cli import main

if __name__ == "__main__":
    main(["serve", "loader"])
