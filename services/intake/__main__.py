"""`python -m services.intake`: run one intake process."""

import gc

from gridline.http import run_service
from services.intake.app import create_app

if __name__ == "__main__":
    # What the imports built lives as long as the process: frozen, it is left out of the
    # collector's full passes, whose pauses over it were intake's slowest answers.
    gc.freeze()
    run_service("intake", create_app)
