"""``python -m serve_launcher RUN PORT SETTINGS_JSON``: psamf's server on 127.0.0.1:PORT with the
test stand-in Predictor (tests/serve_fixtures.py) over a trained run."""

import json
import sys
from pathlib import Path

from serve_fixtures import RunPredictor

from psamf.serve.server import serve
from psamf.serve.settings import ServeSettings

if __name__ == "__main__":
    run, port, settings = Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    serve(RunPredictor(run, device="cpu"), ServeSettings(**settings), host="127.0.0.1", port=port)
