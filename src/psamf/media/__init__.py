"""From a raw clip to model inputs: decoding, speech recognition, acoustic and facial features.

Everything here needs the optional ``media`` extra (``pip install 'psamf[media]'``; eGeMAPS also
needs the ``egemaps`` extra). Importing this package imports none of them: each module imports its
libraries where it uses them, so ``import psamf`` works on a bare install.
"""
