"""``psamf serve``: a trained model behind a JSON API and an offline web page.

``create_app(predictor, settings)`` builds the FastAPI app; ``ServeSettings`` holds the limits;
``MicroBatcher`` gathers concurrent text requests into one model call.
"""

from psamf.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
