"""flask-smorest's Blueprint with the strict body parser."""

from __future__ import annotations

import flask_smorest

from api.parsing import StrictParser


class Blueprint(flask_smorest.Blueprint):
    """A blueprint whose ``arguments`` read the strictly parsed body."""

    ARGUMENTS_PARSER = StrictParser()
