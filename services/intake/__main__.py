"""`python -m services.intake`: run one intake process."""

from gridline.http import run_service
from services.intake.app import create_app

if __name__ == "__main__":
    run_service("intake", create_app)
