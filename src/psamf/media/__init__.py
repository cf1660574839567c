"""From raw clips to psamf's feature layout: decoding, speech recognition, frame features.

Everything here needs the ``media`` extra (``pip install 'psamf[media]'``); each module imports its
libraries inside functions so that ``import psamf`` works without them.
"""
