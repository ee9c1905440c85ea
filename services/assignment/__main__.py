"""`python -m services.assignment`: run one assignment process."""

from gridline.http import run_service
from services.assignment.app import create_app

if __name__ == "__main__":
    run_service("assignment", create_app)
