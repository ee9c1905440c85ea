"""`python -m services.escalation`: run one escalation process."""

from gridline.http import run_service
from services.escalation.app import create_app

if __name__ == "__main__":
    run_service("escalation", create_app)
