"""lapse for Django: ``SESSION_ENGINE = "lapse.django.sessions"``.

Needs the ``django`` extra: ``pip install 'lapse[django]'``. Importing ``lapse`` never
imports Django; this package does.
"""
