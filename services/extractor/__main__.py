"""python -m services.extractor"""
from services.cli import main

if __name__ == "__main__":
    main(["serve", "extractor"])
