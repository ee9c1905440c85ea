"""`python -m services.notify`: run one notify process."""

from gridline.http import run_service
from services.notify.app import create_app

if __name__ == "__main__":
    run_service("notify", create_app)
