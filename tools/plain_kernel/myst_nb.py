"""Hides myst-nb from the notebooks that ``make notebook-test`` runs, as Colab or a plain Jupyter has none.

``make notebook-test`` puts this folder first on ``PYTHONPATH``, so ``import myst_nb`` in a
notebook's kernel fails exactly as it does where myst-nb is not installed, and the chapters take
the path a reader's kernel takes (``xaisurvey.glue`` prints instead of gluing).
"""
raise ImportError("myst_nb is hidden: the notebooks are tested as a reader runs them, without the book's machinery")
